// Family view: the genealogy drawn as a tree, with its legend, statistics and actions.
import { api } from "../api.js";
import { el, link, note, route, show, svg } from "../dom.js";
import { LOW_CONFIDENCE, RELATIONS, confidence, facts, number, relationClass, relationLabel, relationOf } from "../format.js";
import { FamilyTree } from "../tree-view.js";

function legend(edges) {
  const present = new Set(edges.map(relationOf));
  const items = RELATIONS.filter(([r]) => present.has(r) || r === "finetune");
  for (const r of present) if (!RELATIONS.some(([k]) => k === r)) items.push([r, r]);
  return el("ul", { class: "legend", "aria-label": "legend" },
    items.map(([r]) => el("li", { class: relationClass(r) }, el("span", { class: "swatch", "aria-hidden": "true" }), relationLabel(r))),
    el("li", { class: "low" }, el("span", { class: "swatch", "aria-hidden": "true" }), `confidence below ${LOW_CONFIDENCE}`),
    el("li", { class: "widths" }, svg("svg", { class: "widths-swatch", width: 34, height: 12, "aria-hidden": "true" },
      [1.5, 3, 5].map((w, i) => svg("line", { x1: 2 + i * 11, x2: 10 + i * 11, y1: 6, y2: 6, "stroke-width": w }))),
    "thicker = more confident (hover for the number)"),
    el("li", { class: "badge-note" }, "badges: ", el("span", { class: "badge badge-adapter" }, "adapter"), " ",
      el("span", { class: "badge badge-quantised" }, "quantised")));
}

function summary(g) {
  const f = g.family;
  const s = g.statistics ?? {};
  const facts = [
    ["members", g.nodes.length],
    ["edges", g.edges.length],
    ["mean confidence", confidence(g.mean_confidence)],
    ["generations", s.depth ?? "—"],
    ["roots", g.roots.length],
    ["direction", f.regime ?? "—"],
    ["metric", f.metric ?? "—"],
    ["threshold", f.threshold ?? "—"],
    ["tree", f.tree_method ?? "—"],
  ];
  return el("dl", { class: "facts-row" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, String(v)))));
}

function selectionPanel(panel, node, edges, names) {
  if (!node) {
    show(panel, note("Select a model (click, or Tab then arrow keys) to see its details."));
    return;
  }
  const m = node.model;
  show(panel,
    el("h3", {}, link("models", node.id, node.name)),
    el("p", { class: "muted" }, facts(m) || "—"),
    edges.length
      ? el("ul", { class: "plain" }, edges.map((e) => el("li", {},
        el("span", { class: `chip ${relationClass(relationOf(e))}` }, relationLabel(relationOf(e))), " of ",
        link("models", e.parent, names.get(e.parent) ?? e.parent),
        ` · confidence ${confidence(e.confidence)}`,
        e.weight !== null && e.weight !== undefined ? ` · weight ${number(e.weight, 2)}` : "",
        e.distance !== null && e.distance !== undefined ? ` · distance ${number(e.distance)}` : "")))
      : el("p", {}, "A root: no recovered parent."),
    m.declared_base ? el("p", {}, "Model card declares ", el("strong", {}, m.declared_base),
      m.declared_relation ? ` (${m.declared_relation})` : "") : null,
    el("p", {}, el("a", { href: route("models", node.id), class: "button" }, "Open model")));
}

export async function familyView(root, familyId, app) {
  const started = performance.now();
  performance.mark("family:start");
  show(root, note("Loading the family…"));
  root.dataset.state = "loading";
  const genealogy = await api.genealogy(familyId);
  performance.mark("family:fetched");
  const rootNames = genealogy.family.roots.map((r) => r.name);
  const title = rootNames.length ? `Family of ${rootNames.join(", ")}` : `Family ${familyId}`;
  document.title = `${title} · Model Heritage`;
  const names = new Map(genealogy.nodes.map((n) => [n.id, n.name]));

  const host = el("div", { class: "tree-host" });
  const panel = el("aside", { class: "panel selection", "aria-live": "polite" });
  const rebuild = el("button", { type: "button", "data-action": "rebuild" }, "Rebuild tree");
  const toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": "tree view" },
    el("button", { type: "button", "data-action": "zoom-in", "aria-label": "zoom in" }, "+"),
    el("button", { type: "button", "data-action": "zoom-out", "aria-label": "zoom out" }, "−"),
    el("button", { type: "button", "data-action": "fit" }, "Fit"),
    el("button", { type: "button", "data-action": "expand" }, "Expand all"),
    el("button", { type: "button", "data-action": "collapse" }, "Collapse below 2"),
    el("span", { class: "spacer" }),
    rebuild);
  const issues = genealogy.validation?.valid === false
    ? el("p", { class: "note warning", role: "status" }, `The stored tree has issues: ${genealogy.validation.issues.join("; ")}`)
    : null;
  show(root,
    el("nav", { class: "crumbs", "aria-label": "breadcrumb" }, el("a", { href: "#/" }, "Catalogue"), " › ", "family"),
    el("h2", { tabindex: "-1" }, title),
    summary(genealogy),
    issues,
    legend(genealogy.edges),
    toolbar,
    el("div", { class: "family-body" }, host, panel),
    el("p", { class: "hint muted" },
      "Drag to pan, wheel or +/− to zoom, 0 to fit. Tab into the tree, arrows move between models, ",
      "Enter opens one, Space collapses or expands its subtree. Hover an edge for its confidence."));

  const tree = new FamilyTree(host, genealogy, {
    label: `${title}: ${genealogy.nodes.length} models`,
    onOpen: (id) => app.go(route("models", id)),
    onSelect: (node, edges) => selectionPanel(panel, node, edges, names),
  });
  tree.render();
  performance.mark("family:laid-out");
  const sizeHost = () => {
    host.style.height = `${tree.preferredHeight(Math.min(420, window.innerHeight * 0.6), Math.max(420, window.innerHeight * 0.72))}px`;
    tree.fit();
  };
  sizeHost();
  selectionPanel(panel, null);
  toolbar.addEventListener("click", async (e) => {
    const action = e.target.closest("button")?.dataset.action;
    if (action === "zoom-in") tree.zoomAt(1.25);
    else if (action === "zoom-out") tree.zoomAt(0.8);
    else if (action === "fit") tree.fit();
    else if (action === "expand") tree.expandAll();
    else if (action === "collapse") tree.collapseBelow(2);
    else if (action === "rebuild") {
      const job = await app.runJob(() => api.rebuild(familyId), `rebuild ${title}`);
      if (job?.state === "succeeded" && app.isCurrent(root)) app.refresh();
    }
  });
  app.onResize(root, sizeHost);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  performance.mark("family:rendered");
  root.dataset.state = "ready";
  root.dataset.renderMs = String(Math.round(performance.now() - started));
}
