// Catalogue view: families (size, mean confidence), model search, statistics as small
// charts, declared-vs-recovered disagreements, and the jobs that run.
import { api } from "../api.js";
import { barChart } from "../charts.js";
import { el, link, note, show } from "../dom.js";
import { confidence, date, facts } from "../format.js";
import { jobLine } from "../jobs.js";

const FAMILY_PAGE = 50;
const SEARCH_PAGE = 25;

function meter(value) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "—");
  const m = el("meter", { min: "0", max: "1", low: "0.2", high: "0.5", optimum: "1", "aria-label": "mean confidence" });
  m.value = value;
  return el("span", { class: "meter" }, m, " ", confidence(value));
}

function familyRows(items) {
  return items.map((f) => el("tr", { dataset: { familyId: f.id } },
    el("td", {}, link("families", f.id, f.roots.length ? f.roots.map((r) => r.name).join(", ") : f.id)),
    el("td", { class: "num" }, String(f.member_count)),
    el("td", { class: "num" }, f.edge_count ?? "—"),
    el("td", {}, meter(f.mean_confidence)),
    el("td", {}, f.regime ?? "—"),
    el("td", { class: "muted date" }, date(f.updated_at ?? f.created_at))));
}

function statisticsPanel(stats) {
  const sizes = Object.entries(stats.family_size_distribution).map(([size, n]) => [size, n]);
  const statuses = Object.entries(stats.models_by_status);
  const c = stats.configuration;
  return [
    el("dl", { class: "facts-row" },
      [["models", stats.models], ["families", stats.families], ["largest family", stats.largest_family],
        ["single-model families", stats.singleton_families], ["unplaced", stats.unplaced_models],
        ["stale families", stats.stale_families]]
        .map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, String(v))))),
    el("div", { class: "charts" },
      el("figure", {}, barChart(sizes, { title: "families by size", className: "sizes", width: 240, height: 140 }),
        el("figcaption", {}, "families by number of members")),
      el("figure", {}, barChart(statuses, { title: "models by status", className: "statuses", width: 240, height: 140 }),
        el("figcaption", {}, "models by status"))),
    el("p", { class: "muted small" },
      `metric ${c.metric} · clustering ${c.clustering} · threshold ${c.threshold} · tree ${c.tree_method} · λ ${c.lambda}`),
  ];
}

function mismatchList(items) {
  if (!items.length) return note("None: every declared base is a recovered parent.");
  return el("ul", { class: "plain mismatches" }, items.map((x) => el("li", {},
    link("models", x.id, x.name), ": card says ",
    x.declared_id ? link("models", x.declared_id, x.declared_name) : el("strong", {}, x.declared_name),
    ", weights say ", x.recovered_id ? link("models", x.recovered_id, x.recovered_name) : "root",
    x.confidence !== null && x.confidence !== undefined ? ` (${confidence(x.confidence)})` : "")));
}

export async function catalogueView(root, app, params) {
  document.title = "Model Heritage";
  root.dataset.state = "loading";
  const familiesBody = el("tbody");
  const moreFamilies = el("button", { type: "button", class: "link" }, "more families");
  const q = el("input", { id: "q", type: "search", placeholder: "name or description", "aria-label": "search models",
                          value: params.get("q") ?? "" });
  const searchForm = el("form", { class: "inline", role: "search" }, q, el("button", { type: "submit" }, "Search"));
  const results = el("div", { class: "results", "aria-live": "polite" });
  const stats = el("div", { class: "stats" }, note("Loading…"));
  const mismatches = el("div", {}, note("Loading…"));
  const jobs = el("div", { class: "jobs-now" }, note("Loading…"));
  const recluster = el("button", { type: "button", "data-action": "recluster" }, "Recluster everything");

  show(root,
    el("h2", { tabindex: "-1", class: "visually-hidden" }, "Catalogue"),
    el("div", { class: "columns" },
      el("div", { class: "stack" },
        el("section", { class: "panel", "aria-labelledby": "families-h" },
          el("h3", { id: "families-h" }, "Families"),
          el("div", { class: "scroll" }, el("table", { class: "families" },
            el("thead", {}, el("tr", {}, ["root", "members", "edges", "mean confidence", "direction", "updated"]
              .map((h) => el("th", { scope: "col" }, h)))),
            familiesBody)),
          moreFamilies),
        el("section", { class: "panel", "aria-labelledby": "search-h" },
          el("h3", { id: "search-h" }, "Find a model"), searchForm, results)),
      el("div", { class: "stack" },
        el("section", { class: "panel", "aria-labelledby": "stats-h" }, el("h3", { id: "stats-h" }, "Statistics"), stats),
        el("section", { class: "panel", "aria-labelledby": "jobs-h" },
          el("div", { class: "title-row" }, el("h3", { id: "jobs-h" }, "Jobs"), el("span", { class: "spacer" }), recluster),
          jobs),
        el("section", { class: "panel", "aria-labelledby": "mismatch-h" },
          el("h3", { id: "mismatch-h" }, "Declared vs recovered"), mismatches))));

  let skip = 0;
  const loadFamilies = async () => {
    const page = await api.families(skip, FAMILY_PAGE);
    if (!skip && !page.items.length) {
      familiesBody.append(el("tr", {}, el("td", { colspan: "6" }, "No families yet: upload a model or run `heritage import`.")));
    }
    familiesBody.append(...familyRows(page.items));
    skip += page.items.length;
    moreFamilies.hidden = page.items.length < FAMILY_PAGE;
  };
  moreFamilies.addEventListener("click", () => loadFamilies().catch((err) => app.fail(err)));

  const search = async (text) => {
    if (!text) {
      show(results);
      return;
    }
    const page = await api.models({ q: text, limit: SEARCH_PAGE });
    show(results, page.items.length
      ? [el("p", { class: "muted small" }, `${page.total} model${page.total === 1 ? "" : "s"} match`),
        el("ul", { class: "plain results-list" }, page.items.map((m) => el("li", {},
          link("models", m.id, m.name), " ", el("span", { class: "muted" }, facts(m)),
          m.family_id ? [" · ", link("families", m.family_id, "family")] : "")))]
      : note(`No model matches “${text}”.`));
  };
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = q.value.trim();
    app.replace(text ? `#/?q=${encodeURIComponent(text)}` : "#/");
    search(text).catch((err) => show(results, note(err.message, "error")));
  });

  const loadJobs = async () => {
    const recent = await api.jobs(8);
    show(jobs, recent.length ? recent.map((j) => jobLine(j, j.kind)) : note("No jobs yet."));
    return recent.some((j) => j.state === "running" || j.state === "queued");
  };
  const pollJobs = async () => {
    if (!app.isCurrent(root)) return;
    const busy = await loadJobs().catch(() => false);
    if (app.isCurrent(root)) setTimeout(pollJobs, busy ? 1000 : 5000);
  };
  recluster.addEventListener("click", async () => {
    const job = await app.runJob(() => api.recluster(), "recluster");
    if (job && app.isCurrent(root)) app.refresh();
  });

  // Each panel loads on its own: one that fails says so and the others still show.
  const failed = (panel) => (err) => show(panel, note(err.message, "error"));
  await Promise.all([
    loadFamilies().catch((err) => show(familiesBody, el("tr", {}, el("td", { colspan: "6" }, note(err.message, "error"))))),
    search(params.get("q") ?? "").catch(failed(results)),
    api.clusteringStatistics().then((s) => show(stats, statisticsPanel(s))).catch(failed(stats)),
    api.mismatches(undefined, 50).then((m) => show(mismatches, mismatchList(m))).catch(failed(mismatches)),
    loadJobs().catch(failed(jobs)),
  ]);
  setTimeout(pollJobs, 2000);
  root.dataset.state = "ready";
}
