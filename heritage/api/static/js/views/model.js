// Model view: profile, declared vs recovered lineage, ancestors and descendants (depth
// control), and the path to any other model through their lowest common ancestor.
import { api } from "../api.js";
import { el, link, note, route, show } from "../dom.js";
import { badges, confidence, count, date, dtype, number, relationClass, relationLabel, relationOf } from "../format.js";

const DEPTHS = [1, 2, 3, 5, 10, 20, 50];

function chip(edge) {
  const r = relationOf(edge);
  return el("span", { class: `chip ${relationClass(r)}` }, relationLabel(r));
}

function badgeList(model) {
  return badges(model).map(([kind, text]) => el("span", { class: `badge badge-${kind}` }, text));
}

/** What the model card declares: every base (several for a merge), the one in the catalogue linked. */
function declaredBases(m) {
  const names = m.declared_bases?.length ? m.declared_bases : m.declared_base ? [m.declared_base] : [];
  if (!names.length) return el("span", { class: "muted" }, "none (no model card base)");
  return [names.map((name, i) => [i ? ", " : "",
    m.declared_base_id && name === m.declared_base ? link("models", m.declared_base_id, name) : name]),
  m.declared_relation ? ` (${m.declared_relation})` : "",
  names.length === 1 && !m.declared_base_id ? el("span", { class: "muted" }, " · not in the catalogue") : ""];
}

function profile(m) {
  const parents = m.parents?.length ? m.parents
    : m.parent_id ? [{ id: m.parent_id, name: m.parent_name, confidence: m.confidence, relation: m.relation }] : [];
  const rows = [
    ["format", m.format],
    ["dtype", m.dtype ? (dtype(m.dtype) === m.dtype ? m.dtype : `${dtype(m.dtype)} (${m.dtype})`) : null],
    ["parameters", m.params !== null && m.params !== undefined ? `${m.params.toLocaleString("en")} (${count(m.params)})` : null],
    ["layers", m.layers],
    ["tensors", m.tensors],
    ["adapter rank", m.adapter_rank],
    ["SHA-256", m.sha256 ? el("code", { class: "hash" }, m.sha256) : null],
    ["structure", m.structure_hash ? el("code", { class: "hash" }, m.structure_hash) : null],
    ["declared base", declaredBases(m)],
    ["recovered parent", parents.length
      ? parents.map((p, i) => [i ? ", " : "", link("models", p.id, p.name ?? p.id),
        ` · ${relationLabel(relationOf(p))} · confidence ${confidence(p.confidence)}`,
        p.weight !== null && p.weight !== undefined ? ` · weight ${number(p.weight, 2)}` : ""])
      : el("span", { class: "muted" }, "none: a root of its family")],
    ["distance to parent", m.distance !== null && m.distance !== undefined ? `${number(m.distance)} (${m.method ?? "?"})` : null],
    ["kurtosis", m.kurtosis !== null && m.kurtosis !== undefined ? number(m.kurtosis) : null],
    ["quantisation", m.quantization],
    ["hub revision", m.revision ? el("code", { class: "hash" }, m.revision) : null],
    ["family", m.family_id ? link("families", m.family_id, "open the family tree") : el("span", { class: "muted" }, "none")],
    ["status", m.status],
    ["error", m.error],
    ["description", m.description],
    ["imported", date(m.created_at)],
  ];
  return el("dl", { class: "profile" },
    rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

function disagreements(m, mismatches) {
  if (mismatches.length) {
    return el("div", { class: "note warning", role: "status", "data-mismatches": String(mismatches.length) },
      el("strong", {}, "Declared and recovered lineage disagree."),
      el("ul", { class: "plain" }, mismatches.map((x) => el("li", {},
        "The model card names ", x.declared_id ? link("models", x.declared_id, x.declared_name) : el("strong", {}, x.declared_name),
        x.relation ? ` (${x.relation})` : "",
        x.declared_external ? " (not in the catalogue)" : "",
        "; the weights point to ",
        x.recovered_id ? [link("models", x.recovered_id, x.recovered_name), ` (confidence ${confidence(x.confidence)})`]
          : "no parent (a root)", "."))));
  }
  if (m.declared_base) return el("p", { class: "note ok", "data-mismatches": "0" }, "The declared base agrees with the recovered parent.");
  return el("p", { class: "note muted", "data-mismatches": "0" }, "No declared base to compare with.");
}

function ancestorList(lineage) {
  if (!lineage.ancestors.length) return note("None: this model is a root.");
  return el("ol", { class: "ancestors" }, lineage.ancestors.map((a) => el("li", {},
    link("models", a.id, a.name), " ", chip(a),
    el("span", { class: "muted" }, ` confidence ${confidence(a.confidence)}`))));
}

function descendantTree(nodes) {
  return el("ul", { class: "tree-list" }, nodes.map((d) => el("li", {},
    link("models", d.id, d.name), " ", chip(d), el("span", { class: "muted" }, ` ${confidence(d.confidence)}`),
    d.children?.length ? descendantTree(d.children) : null)));
}

async function findModel(text) {
  const page = await api.models({ q: text, limit: 20 });
  return page.items.find((m) => m.name === text) ?? page.items.find((m) => m.id === text) ?? (page.items.length === 1 ? page.items[0] : null);
}

function comparison(model, other, path, ancestor) {
  if (!path.related) {
    return el("p", { class: "note", "data-related": "false" }, el("strong", {}, other.name),
      " is not related to this model: they are in different trees.");
  }
  const steps = [];
  path.nodes.forEach((n, i) => {
    if (i) {
      const up = path.edges[i - 1].parent === n.id;
      steps.push(el("span", { class: "step", title: up ? "up to the parent" : "down to a child" }, up ? " ↑ " : " ↓ "));
    }
    steps.push(link("models", n.id, n.name));
  });
  const lca = ancestor.ancestor;
  return el("div", { class: "comparison", "data-related": "true" },
    el("p", {}, "Lowest common ancestor: ", el("strong", { "data-lca": lca.id }, link("models", lca.id, lca.name)),
      ` — ${ancestor.from_a} generation(s) up from ${model.name}, ${ancestor.from_b} from ${other.name}.`),
    el("p", { class: "path", "data-length": String(path.length) }, el("span", { class: "muted" }, `path (${path.length} step${path.length === 1 ? "" : "s"}): `), steps));
}

export async function modelView(root, modelId, app, params) {
  const depth = DEPTHS.includes(Number(params.get("depth"))) ? Number(params.get("depth")) : 3;
  show(root, note("Loading the model…"));
  root.dataset.state = "loading";
  const [model, lineage, mismatches] = await Promise.all([
    api.model(modelId), api.lineage(modelId, depth), api.mismatches(modelId)]);
  document.title = `${model.name} · Model Heritage`;

  const depthSelect = el("select", { id: "depth", "aria-label": "generations shown" },
    DEPTHS.map((d) => el("option", { value: String(d), selected: d === depth }, String(d))));
  depthSelect.addEventListener("change", () => app.go(route("models", modelId, { ...Object.fromEntries(params), depth: depthSelect.value })));

  const otherInput = el("input", { id: "other", type: "search", list: "other-options", autocomplete: "off",
    placeholder: "another model's name", "aria-label": "another model" });
  const options = el("datalist", { id: "other-options" });
  const result = el("div", { class: "compare-result", "aria-live": "polite" });
  const compareForm = el("form", { class: "inline", role: "search" }, otherInput, options,
    el("button", { type: "submit" }, "Compare"));
  let searchTimer = null;
  otherInput.addEventListener("input", () => {
    clearTimeout(searchTimer);
    const q = otherInput.value.trim();
    if (q.length < 2) return;
    searchTimer = setTimeout(async () => {
      const page = await api.models({ q, limit: 10 }).catch(() => ({ items: [] }));
      show(options, page.items.filter((m) => m.id !== modelId).map((m) => el("option", { value: m.name })));
    }, 200);
  });
  compareForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = otherInput.value.trim();
    if (!text) return;
    const other = await findModel(text).catch(() => null);
    if (!other) {
      show(result, note(`No model named “${text}”.`, "error"));
      return;
    }
    app.go(route("models", modelId, { ...Object.fromEntries(params), other: other.id }));
  });

  const reprocess = el("button", { type: "button", "data-action": "reprocess" }, "Reprocess");
  reprocess.addEventListener("click", async () => {
    const job = await app.runJob(() => api.reprocess(modelId), `reprocess ${model.name}`);
    if (job?.state === "succeeded" && app.isCurrent(root)) app.refresh();
  });

  show(root,
    el("nav", { class: "crumbs", "aria-label": "breadcrumb" }, el("a", { href: "#/" }, "Catalogue"), " › ",
      model.family_id ? [link("families", model.family_id, "family"), " › "] : "", "model"),
    el("div", { class: "title-row" },
      el("h2", { tabindex: "-1", class: "model-name" }, model.name), el("span", { class: "badges" }, badgeList(model)),
      el("span", { class: "spacer" }),
      model.family_id ? el("a", { class: "button", href: route("families", model.family_id) }, "Family tree") : null,
      reprocess),
    el("div", { class: "columns" },
      el("section", { class: "panel", "aria-labelledby": "profile-h" }, el("h3", { id: "profile-h" }, "Profile"), profile(model)),
      el("div", { class: "stack" },
        el("section", { class: "panel", "aria-labelledby": "declared-h" },
          el("h3", { id: "declared-h" }, "Declared vs recovered"), disagreements(model, mismatches)),
        el("section", { class: "panel", "aria-labelledby": "lineage-h" },
          el("div", { class: "title-row" }, el("h3", { id: "lineage-h" }, "Lineage"), el("span", { class: "spacer" }),
            el("label", { for: "depth" }, "generations "), depthSelect),
          el("h4", {}, "Ancestors ", el("span", { class: "muted" }, "(nearest first)")),
          ancestorList(lineage),
          el("h4", {}, "Descendants ", el("span", { class: "muted" }, `(${lineage.descendant_count} within ${depth} generation${depth === 1 ? "" : "s"})`)),
          lineage.descendants.length ? descendantTree(lineage.descendants) : note("None.")),
        el("section", { class: "panel", "aria-labelledby": "compare-h" },
          el("h3", { id: "compare-h" }, "Path to another model"), compareForm, result))));

  const otherId = params.get("other");
  if (otherId) {
    try {
      const [other, path, ancestor] = await Promise.all([
        api.model(otherId), api.path(modelId, otherId), api.commonAncestor(modelId, otherId)]);
      otherInput.value = other.name;
      show(result, comparison(model, other, path, ancestor));
    } catch (err) {
      show(result, note(err.message, "error"));
    }
  }
  root.dataset.state = "ready";
}
