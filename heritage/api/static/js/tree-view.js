// The family tree as an SVG: nodes, edges styled by relation and confidence, zoom and pan
// (wheel, drag, buttons, keys), collapsible subtrees, keyboard navigation between nodes.
//
// Stable hooks for tests and scripts: each model is a `g.node[data-model-id]` whose text is
// the model's name; each stored edge a `g.edge[data-parent-id][data-child-id][data-relation]`
// (with data-confidence and, for merge parents, data-weight). Details shown beside a node
// (format, parameters, badges) live in a separate layer so a node's text stays its name.
import { svg, el, show } from "./dom.js";
import { LOW_CONFIDENCE, confidence as fmtConfidence, number, relationClass, relationLabel, relationOf } from "./format.js";
import { NODE_HEIGHT, layoutFamily, treeOf } from "./tree-layout.js";

const MIN_ZOOM = 0.02;
const MAX_ZOOM = 3;
const MARGIN = 24;
// Below this zoom text would be under ~6 px: the tree is drawn as boxes and lines only
// (names stay in the document and in tooltips), which also keeps 1,000-model families fast.
const TEXT_ZOOM = 0.45;
// On a narrow screen the tree is not shrunk below this to fit: it stays readable and pans.
const NARROW_PX = 600;
const NARROW_ZOOM = 0.75;

function edgePath(from, to) {
  const x1 = from.x;
  const y1 = from.y + NODE_HEIGHT;
  const x2 = to.x;
  const y2 = to.y;
  const mid = (y1 + y2) / 2;
  return `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
}

function edgeSummary(edge, names) {
  const parts = [`${relationLabel(relationOf(edge))}: ${names.get(edge.child)} from ${names.get(edge.parent)}`,
    `confidence ${fmtConfidence(edge.confidence)}`];
  if (edge.weight !== null && edge.weight !== undefined) parts.push(`merge weight ${number(edge.weight, 2)}`);
  if (edge.distance !== null && edge.distance !== undefined) parts.push(`distance ${number(edge.distance)}`);
  if (edge.method) parts.push(`method ${edge.method}`);
  return parts;
}

export class FamilyTree {
  /**
   * @param {HTMLElement} host container (gets the SVG and a tooltip)
   * @param genealogy the API's genealogy answer
   * @param {{onOpen: (id) => void, onSelect: (node, edges) => void, label: string}} options
   */
  constructor(host, genealogy, options = {}) {
    this.host = host;
    this.genealogy = genealogy;
    this.options = options;
    this.collapsed = new Set();
    this.tree = treeOf(genealogy);
    this.names = new Map(genealogy.nodes.map((n) => [n.id, n.name]));
    this.view = { k: 1, x: 0, y: 0 };
    this.focusId = null;
    this.svg = svg("svg", { class: "tree", role: "group", "aria-label": options.label ?? "family tree",
                            "aria-roledescription": "genealogy tree" });
    this.viewport = svg("g", { class: "viewport" });
    this.svg.append(this.viewport);
    this.tooltip = el("div", { class: "tooltip", role: "tooltip", hidden: true });
    show(host, this.svg, this.tooltip);
    this.bindPointer();
    this.bindKeys();
  }

  /** Lay out the visible tree and draw it (again), keeping the view. */
  render() {
    const layout = layoutFamily(this.genealogy, this.collapsed, this.tree);
    this.layout = layout;
    this.at = new Map(layout.nodes.map((n) => [n.id, n]));
    const edges = svg("g", { class: "edges" });
    const nodes = svg("g", { class: "nodes" });
    const meta = svg("g", { class: "meta", "aria-hidden": "true" });
    const toggles = svg("g", { class: "toggles" });
    for (const edge of layout.edges) edges.append(this.drawEdge(edge));
    for (const node of layout.nodes) {
      nodes.append(this.drawNode(node));
      meta.append(this.drawMeta(node));
      if (node.childCount) toggles.append(this.drawToggle(node));
    }
    this.viewport.replaceChildren(edges, nodes, meta, toggles);
    if (!this.focusId || !this.at.has(this.focusId)) this.focusId = layout.nodes[0]?.id ?? null;
    this.updateTabStop();
    this.svg.dataset.nodes = String(layout.nodes.length);
    this.svg.dataset.edges = String(layout.edges.length);
  }

  drawEdge(edge) {
    const relation = relationOf(edge);
    const c = edge.confidence;
    const classes = ["edge", relationClass(relation), edge.primary ? "primary" : "extra"];
    if (c === null || c === undefined) classes.push("unscored");
    else if (c < LOW_CONFIDENCE) classes.push("low");
    const d = edgePath(edge.from, edge.to);
    const width = c === null || c === undefined ? 1.5 : 1.25 + 4.5 * Math.max(0, Math.min(1, c));
    const g = svg("g", {
      class: classes.join(" "),
      dataset: {
        parentId: edge.parent, childId: edge.child, relation,
        confidence: c === null || c === undefined ? "" : String(c),
        ...(edge.weight !== null && edge.weight !== undefined ? { weight: String(edge.weight) } : {}),
      },
    },
    svg("path", { class: "hit", d }),
    svg("path", { class: "line", d, "stroke-width": width.toFixed(2) }));
    if (edge.weight !== null && edge.weight !== undefined) {
      const x = (edge.from.x + edge.to.x) / 2;
      const y = (edge.from.y + NODE_HEIGHT + edge.to.y) / 2;
      g.append(svg("text", { class: "edge-label", x, y, "text-anchor": "middle", dy: "-4" }, `w ${number(edge.weight, 2)}`));
    }
    g.edge = edge;
    return g;
  }

  drawNode(node) {
    const { id, x, y, width } = node;
    const status = node.model.status ?? "ok";
    const g = svg("g", {
      class: `node status-${status}${node.hidden ? " collapsed" : ""}`,
      transform: `translate(${x - width / 2},${y})`,
      tabindex: "-1", role: "link",
      "aria-label": `${node.name}${node.hidden ? `, ${node.hidden} descendants hidden` : ""}`,
      dataset: { modelId: id },
    },
    svg("rect", { class: "box", width: width.toFixed(1), height: NODE_HEIGHT, rx: 7 }),
    svg("text", { class: "name", x: 12, y: 19, "clip-path": node.clipped ? `url(#${this.clipId(width)})` : null }, node.name));
    return g;
  }

  clipId(width) {
    const id = `clip-${Math.round(width)}`;
    if (!this.svg.querySelector(`#${id}`)) {
      let defs = this.svg.querySelector("defs");
      if (!defs) this.svg.prepend(defs = svg("defs"));
      defs.append(svg("clipPath", { id }, svg("rect", { x: 4, y: 0, width: Math.round(width) - 12, height: NODE_HEIGHT })));
    }
    return id;
  }

  drawMeta(node) {
    const g = svg("g", { class: "node-meta", transform: `translate(${node.x - node.width / 2},${node.y})` },
      svg("text", { class: "facts", x: 12, y: 36 }, node.meta));
    let bx = node.width - 8;
    for (const badge of [...node.badges].reverse()) {
      bx -= badge.width;
      g.append(svg("g", { class: `badge badge-${badge.kind}`, transform: `translate(${bx},26)` },
        svg("rect", { width: badge.width.toFixed(1), height: 14, rx: 7 }),
        svg("text", { x: (badge.width / 2).toFixed(1), y: 10.5, "text-anchor": "middle" }, badge.text)));
      bx -= 6;
    }
    return g;
  }

  drawToggle(node) {
    const label = node.hidden ? `+${node.hidden}` : "−";
    const w = node.hidden ? Math.max(22, label.length * 7 + 10) : 18;
    return svg("g", {
      class: `toggle${node.hidden ? " closed" : ""}`, transform: `translate(${node.x},${node.y + NODE_HEIGHT})`,
      role: "button", "aria-label": `${node.hidden ? "expand" : "collapse"} ${node.name}`,
      dataset: { toggleFor: node.id },
    },
    svg("rect", { x: -w / 2, y: -8, width: w, height: 16, rx: 8 }),
    svg("text", { x: 0, y: 4, "text-anchor": "middle" }, label));
  }

  // ------------------------------------------------------------------ view (zoom / pan)
  applyView() {
    const { k, x, y } = this.view;
    this.viewport.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${k.toFixed(4)})`);
    this.svg.dataset.zoom = k.toFixed(3);
    this.svg.classList.toggle("far", k < TEXT_ZOOM);
  }

  size() {
    const r = this.svg.getBoundingClientRect();
    return { w: r.width || 800, h: r.height || 500 };
  }

  /** The host height that shows the whole tree at the scale its width allows, within bounds. */
  preferredHeight(min, max) {
    const { w } = this.size();
    const k = Math.max(w < NARROW_PX ? NARROW_ZOOM : 0, Math.min(1, w / (this.layout.width + 2 * MARGIN)));
    return Math.round(Math.max(min, Math.min(max, (this.layout.height + 2 * MARGIN) * k + 8)));
  }

  /** Fit the whole visible tree into the view (never enlarged above 1:1); on a narrow
   * screen, show the top of the tree around its first root at a readable size instead. */
  fit() {
    const { w, h } = this.size();
    const lw = this.layout.width + 2 * MARGIN;
    const lh = this.layout.height + 2 * MARGIN;
    const k = Math.max(MIN_ZOOM, Math.min(1, w / lw, h / lh));
    const first = this.layout.nodes[0];
    if (w < NARROW_PX && k < NARROW_ZOOM && first) {
      const x = Math.min(MARGIN, Math.max(w - MARGIN - this.layout.width * NARROW_ZOOM, w / 2 - first.x * NARROW_ZOOM));
      this.view = { k: NARROW_ZOOM, x, y: MARGIN };
    } else {
      this.view = { k, x: (w - this.layout.width * k) / 2, y: MARGIN * k + Math.max(0, (h - lh * k) / 2) };
    }
    this.applyView();
  }

  zoomAt(factor, cx, cy) {
    const { w, h } = this.size();
    cx ??= w / 2;
    cy ??= h / 2;
    const k = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.view.k * factor));
    const f = k / this.view.k;
    this.view = { k, x: cx - (cx - this.view.x) * f, y: cy - (cy - this.view.y) * f };
    this.applyView();
  }

  panBy(dx, dy) {
    this.view.x += dx;
    this.view.y += dy;
    this.applyView();
  }

  /** Pan so that a node is inside the view (zooming in to a readable size if needed). */
  reveal(id) {
    const node = this.at.get(id);
    if (!node) return;
    const { w, h } = this.size();
    if (this.view.k < 0.6) this.view.k = 0.8;
    const { k } = this.view;
    const sx = node.x * k + this.view.x;
    const sy = (node.y + NODE_HEIGHT / 2) * k + this.view.y;
    const pad = 40 + (node.width * k) / 2;
    if (sx < pad || sx > w - pad || sy < 40 || sy > h - 40) {
      this.view.x = w / 2 - node.x * k;
      this.view.y = h / 2 - (node.y + NODE_HEIGHT / 2) * k;
    }
    this.applyView();
  }

  // ------------------------------------------------------------------ collapse
  toggle(id) {
    if (!this.tree.children.get(id)?.length) return;
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.render();
    this.applyView();
    this.svg.dispatchEvent(new CustomEvent("heritage:collapse", { bubbles: true }));
  }

  expandAll() {
    this.collapsed.clear();
    this.render();
    this.fit();
  }

  /** Collapse everything below `depth` generations (the root is generation 0). */
  collapseBelow(depth) {
    this.collapsed = new Set(this.layoutAll().nodes.filter((n) => n.depth >= depth && n.childCount).map((n) => n.id));
    this.render();
    this.fit();
  }

  layoutAll() {
    return layoutFamily(this.genealogy, new Set(), this.tree);
  }

  // ------------------------------------------------------------------ focus & keys
  nodeElement(id) {
    return this.viewport.querySelector(`g.node[data-model-id="${CSS.escape(id)}"]`);
  }

  updateTabStop() {
    for (const g of this.viewport.querySelectorAll("g.node[tabindex='0']")) g.setAttribute("tabindex", "-1");
    const g = this.focusId && this.nodeElement(this.focusId);
    if (g) g.setAttribute("tabindex", "0");
  }

  focusNode(id) {
    if (!id || !this.at.has(id)) return;
    this.focusId = id;
    this.updateTabStop();
    this.reveal(id);
    this.nodeElement(id)?.focus({ preventScroll: true });
    this.select(id);
  }

  select(id) {
    for (const g of this.viewport.querySelectorAll(".selected")) g.classList.remove("selected");
    this.nodeElement(id)?.classList.add("selected");
    const edges = this.tree.edges.filter((e) => e.child === id);
    this.options.onSelect?.(this.at.get(id), edges);
  }

  neighbour(id, key) {
    const parent = this.tree.parentOf.get(id)?.parent;
    const siblings = parent ? this.tree.children.get(parent) : this.tree.roots;
    const visibleKids = this.collapsed.has(id) ? [] : this.tree.children.get(id);
    const i = siblings.indexOf(id);
    switch (key) {
      case "ArrowUp": return parent;
      case "ArrowDown": return visibleKids[0];
      case "ArrowLeft": return siblings[i - 1];
      case "ArrowRight": return siblings[i + 1];
      case "Home": return this.tree.roots[0];
      default: return undefined;
    }
  }

  bindKeys() {
    this.svg.addEventListener("keydown", (e) => {
      const node = e.target.closest?.("g.node");
      const id = node?.dataset.modelId;
      const step = 60;
      if (id && ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home"].includes(e.key)) {
        e.preventDefault();
        const next = this.neighbour(id, e.key);
        if (next) this.focusNode(next);
      } else if (id && e.key === "Enter") {
        e.preventDefault();
        this.options.onOpen?.(id);
      } else if (id && e.key === " ") {
        e.preventDefault();
        this.toggle(id);
        this.focusNode(id);
      } else if (e.key === "+" || e.key === "=") {
        this.zoomAt(1.25);
      } else if (e.key === "-" || e.key === "_") {
        this.zoomAt(0.8);
      } else if (e.key === "0") {
        this.fit();
      } else if (!id && e.key.startsWith("Arrow")) {
        e.preventDefault();
        const d = { ArrowUp: [0, step], ArrowDown: [0, -step], ArrowLeft: [step, 0], ArrowRight: [-step, 0] }[e.key];
        this.panBy(...d);
      }
    });
    this.svg.addEventListener("focusin", (e) => {
      const node = e.target.closest?.("g.node");
      if (node) {
        this.focusId = node.dataset.modelId;
        this.updateTabStop();
        this.select(this.focusId);
      }
    });
  }

  // ------------------------------------------------------------------ pointer
  bindPointer() {
    const s = this.svg;
    let drag = null;
    s.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = s.getBoundingClientRect();
      this.zoomAt(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    s.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
    });
    s.addEventListener("pointermove", (e) => {
      if (drag && drag.id === e.pointerId) {
        const dx = e.clientX - drag.x;
        const dy = e.clientY - drag.y;
        if (!drag.moved && Math.hypot(dx, dy) < 4) return;
        if (!drag.moved) s.setPointerCapture(e.pointerId);
        drag.moved = true;
        drag.x = e.clientX;
        drag.y = e.clientY;
        this.panBy(dx, dy);
        s.classList.add("panning");
        this.hideTooltip();
        return;
      }
      this.hover(e);
    });
    const end = (e) => {
      if (drag?.moved) {
        s.releasePointerCapture?.(e.pointerId);
        this.suppressClick = true;
        setTimeout(() => { this.suppressClick = false; }, 0);
      }
      drag = null;
      s.classList.remove("panning");
    };
    s.addEventListener("pointerup", end);
    s.addEventListener("pointercancel", end);
    s.addEventListener("pointerleave", () => this.hideTooltip());
    s.addEventListener("click", (e) => {
      if (this.suppressClick) return;
      const toggle = e.target.closest("g.toggle");
      if (toggle) {
        this.toggle(toggle.dataset.toggleFor);
        return;
      }
      const node = e.target.closest("g.node");
      if (node) this.options.onOpen?.(node.dataset.modelId);
    });
  }

  hover(e) {
    const edgeEl = e.target.closest?.("g.edge");
    const nodeEl = e.target.closest?.("g.node");
    if (edgeEl?.edge) {
      this.showTooltip(e, edgeSummary(edgeEl.edge, this.names));
      return;
    }
    if (nodeEl) {
      const node = this.at.get(nodeEl.dataset.modelId);
      const lines = [node.name, node.meta].filter(Boolean);
      const parentEdges = this.tree.edges.filter((x) => x.child === node.id);
      for (const edge of parentEdges) {
        lines.push(`${relationLabel(relationOf(edge))} of ${this.names.get(edge.parent)}, confidence ${fmtConfidence(edge.confidence)}`);
      }
      if (node.hidden) lines.push(`${node.hidden} descendants hidden`);
      this.showTooltip(e, lines);
      return;
    }
    this.hideTooltip();
  }

  showTooltip(e, lines) {
    const r = this.host.getBoundingClientRect();
    show(this.tooltip, ...lines.map((line, i) => el(i ? "div" : "strong", {}, line)));
    this.tooltip.hidden = false;
    const px = e.clientX - r.left;
    const py = e.clientY - r.top;
    // Above and right of the pointer where there is room (edges run down from it), else flipped.
    const x = px + 14 + this.tooltip.offsetWidth < r.width ? px + 14 : px - 14 - this.tooltip.offsetWidth;
    const y = py - 10 - this.tooltip.offsetHeight >= 0 ? py - 10 - this.tooltip.offsetHeight : py + 14;
    this.tooltip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, Math.min(y, r.height - this.tooltip.offsetHeight))}px)`;
  }

  hideTooltip() {
    this.tooltip.hidden = true;
  }
}
