// A small front end over the REST API: list and search models, show a model's
// lineage, upload a model. Every value from the API is inserted as text, never HTML.
"use strict";
const API = "/api";
const PAGE = 25;
let skip = 0;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

async function loadModels() {
  const params = new URLSearchParams({ skip, limit: PAGE });
  const q = document.getElementById("q").value.trim();
  const status = document.getElementById("status").value;
  if (q) params.set("q", q);
  if (status) params.set("status", status);
  const tbody = document.getElementById("models");
  tbody.replaceChildren();
  try {
    const page = await getJSON(`${API}/models?${params}`);
    for (const m of page.items) {
      const row = el("tr");
      row.append(el("td", m.name), el("td", m.format), el("td", m.params?.toLocaleString()),
                 el("td", m.parent_name ?? "—"), el("td", m.confidence?.toFixed(2) ?? ""),
                 el("td", m.status, m.status === "error" ? "error" : ""));
      row.addEventListener("click", () => showLineage(m.id));
      tbody.append(row);
    }
    const last = Math.min(skip + PAGE, page.total);
    document.getElementById("page").textContent = page.total ? `${skip + 1}–${last} of ${page.total}` : "no models";
    document.getElementById("prev").disabled = skip === 0;
    document.getElementById("next").disabled = last >= page.total;
  } catch (err) {
    const row = el("tr");
    const cell = el("td", `could not load models: ${err.message}`, "error");
    cell.colSpan = 6;
    row.append(cell);
    tbody.append(row);
  }
}

function descendantTree(nodes) {
  const list = el("ul");
  for (const node of nodes) {
    const item = el("li");
    item.append(el("span", node.name), el("span", ` (confidence ${node.confidence?.toFixed(2) ?? "?"})`, "muted"));
    if (node.children?.length) item.append(descendantTree(node.children));
    list.append(item);
  }
  return list;
}

async function showLineage(id) {
  const section = document.getElementById("lineage");
  section.hidden = false;
  try {
    const lineage = await getJSON(`${API}/models/${encodeURIComponent(id)}/lineage?depth=10`);
    const m = lineage.model;
    document.getElementById("lineage-name").textContent = m.name;
    const facts = [`${m.format}`, `${m.params?.toLocaleString()} parameters`, `family ${m.family_id ?? "—"}`];
    if (m.declared_base) facts.push(`declared base ${m.declared_base}`);
    document.getElementById("lineage-facts").textContent = facts.join(" · ");
    const ancestors = document.getElementById("ancestors");
    ancestors.replaceChildren(...(lineage.ancestors.length
      ? lineage.ancestors.map((a) => el("li", `${a.name} (generation ${a.generation})`))
      : [el("li", "none: a root", "muted")]));
    const descendants = document.getElementById("descendants");
    descendants.replaceChildren(...(lineage.descendants.length
      ? descendantTree(lineage.descendants).children
      : [el("li", "none", "muted")]));
  } catch (err) {
    document.getElementById("lineage-facts").textContent = `could not load the lineage: ${err.message}`;
  }
}

async function upload(event) {
  event.preventDefault();
  const result = document.getElementById("upload-result");
  const file = document.getElementById("file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const name = document.getElementById("name").value.trim();
  const description = document.getElementById("description").value.trim();
  if (name) form.append("name", name);
  if (description) form.append("description", description);
  const key = document.getElementById("key").value;
  sessionStorage.setItem("heritage-key", key);
  result.textContent = "uploading…";
  result.className = "";
  const response = await fetch(`${API}/models`, {
    method: "POST", body: form, headers: key ? { Authorization: `Bearer ${key}` } : {},
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    result.textContent = `stored as ${body.model?.name ?? "a new model"}`;
    await loadModels();
  } else {
    result.textContent = `${response.status}: ${body.detail ?? response.statusText}`;
    result.className = "error";
  }
}

document.getElementById("search").addEventListener("submit", (e) => { e.preventDefault(); skip = 0; loadModels(); });
document.getElementById("prev").addEventListener("click", () => { skip = Math.max(0, skip - PAGE); loadModels(); });
document.getElementById("next").addEventListener("click", () => { skip += PAGE; loadModels(); });
document.getElementById("upload-form").addEventListener("submit", upload);
document.getElementById("key").value = sessionStorage.getItem("heritage-key") ?? "";
loadModels();
