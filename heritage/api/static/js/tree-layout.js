// Layout of a family's genealogy: a layered tidy tree (d3-hierarchy's Reingold–Tilford
// `d3.tree`), root at the top. A genealogy is a tree apart from merge children, which have
// one edge per parent: the tree is laid out along each child's primary parent (the merge
// parent with the largest weight, else the most confident edge) and every other parent
// edge is drawn on top of it. Several roots (or a stored cycle, which would be a defect)
// hang below an invisible common root so that one layout holds the whole family.
import { facts, badges as badgesOf } from "./format.js";

export const NODE_HEIGHT = 46;
const LEVEL_GAP = 64;
const SIBLING_GAP = 18;
const PAD_X = 12;
const MIN_WIDTH = 96;
const MAX_WIDTH = 280;
const BADGE_GAP = 6;
const VIRTUAL = "\u0000root";

export const FONTS = {
  name: "600 13px system-ui, -apple-system, 'Segoe UI', sans-serif",
  meta: "11px system-ui, -apple-system, 'Segoe UI', sans-serif",
  badge: "600 10px system-ui, -apple-system, 'Segoe UI', sans-serif",
};

let context = null;
/** Width in px of `text` in one of FONTS (a canvas measures it as the SVG will draw it). */
export function measure(text, font) {
  context ??= document.createElement("canvas").getContext("2d");
  context.font = font;
  return context.measureText(text).width;
}

/** The primary parent edge of each child: the tree edge of the layout. */
export function primaryEdges(edges) {
  const best = new Map();
  const better = (a, b) => (a.weight ?? -1) - (b.weight ?? -1) || (a.confidence ?? -1) - (b.confidence ?? -1)
    || (a.parent < b.parent ? 1 : -1);
  for (const edge of edges) {
    const held = best.get(edge.child);
    if (!held || better(edge, held) > 0) best.set(edge.child, edge);
  }
  return best;
}

/**
 * The tree structure of a genealogy: {ids, parentOf (child -> primary edge), children
 * (id -> ids), roots}. Nodes only reachable through a cycle become roots (their edge is
 * then drawn as an extra edge), so every member is placed exactly once.
 */
export function treeOf(genealogy) {
  const ids = genealogy.nodes.map((n) => n.id);
  const known = new Set(ids);
  const edges = genealogy.edges.filter((e) => known.has(e.parent) && known.has(e.child) && e.parent !== e.child);
  const parentOf = primaryEdges(edges);
  const children = new Map(ids.map((id) => [id, []]));
  for (const [child, edge] of parentOf) children.get(edge.parent).push(child);
  const roots = ids.filter((id) => !parentOf.has(id));
  const reached = new Set();
  const visit = (start) => {
    const stack = [start];
    while (stack.length) {
      const id = stack.pop();
      if (reached.has(id)) continue;
      reached.add(id);
      stack.push(...children.get(id));
    }
  };
  roots.forEach(visit);
  for (const id of ids) {
    if (reached.has(id)) continue;
    const edge = parentOf.get(id); // in a cycle: cut it here
    children.set(edge.parent, children.get(edge.parent).filter((c) => c !== id));
    parentOf.delete(id);
    roots.push(id);
    visit(id);
  }
  return { ids, edges, parentOf, children, roots };
}

/** Number of descendants (through primary edges) of every node. */
function descendantCounts(tree) {
  const counts = new Map();
  const order = [];
  const stack = [...tree.roots];
  while (stack.length) {
    const id = stack.pop();
    order.push(id);
    stack.push(...tree.children.get(id));
  }
  for (const id of order.reverse()) {
    counts.set(id, tree.children.get(id).reduce((sum, c) => sum + 1 + counts.get(c), 0));
  }
  return counts;
}

/** Box size and text of one model's node. */
function box(model, name) {
  const meta = facts(model);
  const badges = badgesOf(model).map(([kind, text]) => ({ kind, text, width: measure(text, FONTS.badge) + 10 }));
  const badgeWidth = badges.reduce((w, b) => w + b.width + BADGE_GAP, 0);
  const nameWidth = measure(name, FONTS.name);
  const metaWidth = measure(meta, FONTS.meta) + badgeWidth;
  const inner = Math.max(nameWidth, metaWidth);
  const width = Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, inner + 2 * PAD_X));
  return { width, meta, badges, clipped: nameWidth + 2 * PAD_X > width };
}

/**
 * Positions of the visible nodes and the edges between them.
 *
 * @param genealogy the API's genealogy answer
 * @param collapsed ids whose subtrees are hidden
 * @returns {{nodes, edges, width, height, tree}} nodes: {id, name, model, x, y, width,
 *   depth, meta, badges, clipped, childCount, hidden (descendants hidden below it)};
 *   edges: the API's edges whose ends are both visible, with `primary` set for tree edges.
 */
export function layoutFamily(genealogy, collapsed = new Set(), tree = treeOf(genealogy)) {
  const d3 = globalThis.d3;
  const models = new Map(genealogy.models.map((m) => [m.id, m]));
  const names = new Map(genealogy.nodes.map((n) => [n.id, n.name]));
  const counts = descendantCounts(tree);
  const boxes = new Map();
  const boxOf = (id) => {
    if (!boxes.has(id)) boxes.set(id, box(models.get(id) ?? {}, names.get(id)));
    return boxes.get(id);
  };
  const childrenOf = (id) => (id === VIRTUAL ? tree.roots : collapsed.has(id) ? [] : tree.children.get(id));
  const root = d3.hierarchy(VIRTUAL, childrenOf);
  const halfWidth = (n) => (n.data === VIRTUAL ? 0 : boxOf(n.data).width / 2);
  d3.tree().nodeSize([1, NODE_HEIGHT + LEVEL_GAP])
    .separation((a, b) => halfWidth(a) + halfWidth(b) + SIBLING_GAP * (a.parent === b.parent ? 1 : 2))(root);

  const nodes = [];
  let minX = Infinity;
  let maxX = -Infinity;
  let maxY = 0;
  root.each((n) => {
    if (n.data === VIRTUAL) return;
    const b = boxOf(n.data);
    const y = (n.depth - 1) * (NODE_HEIGHT + LEVEL_GAP);
    minX = Math.min(minX, n.x - b.width / 2);
    maxX = Math.max(maxX, n.x + b.width / 2);
    maxY = Math.max(maxY, y + NODE_HEIGHT);
    nodes.push({
      id: n.data, name: names.get(n.data), model: models.get(n.data) ?? {}, x: n.x, y, depth: n.depth - 1,
      ...b, childCount: tree.children.get(n.data).length,
      hidden: collapsed.has(n.data) ? counts.get(n.data) : 0,
    });
  });
  if (!nodes.length) return { nodes, edges: [], width: 0, height: 0, tree };
  const shift = -minX;
  for (const n of nodes) n.x += shift;
  const at = new Map(nodes.map((n) => [n.id, n]));
  const edges = tree.edges
    .filter((e) => at.has(e.parent) && at.has(e.child))
    .map((e) => ({ ...e, primary: tree.parentOf.get(e.child) === e, from: at.get(e.parent), to: at.get(e.child) }));
  return { nodes, edges, width: maxX - minX, height: maxY, tree };
}
