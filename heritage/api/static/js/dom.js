// Building DOM nodes from data. Every value is inserted as text (text nodes, textContent,
// setAttribute): nothing here parses a string as HTML, so a model named
// "<img src=x onerror=...>" stays a name.
const SVG_NS = "http://www.w3.org/2000/svg";

function assign(node, attrs) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(name)) throw new Error(`event handler attributes are not allowed: ${name}`);
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name === "className" ? "class" : name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: el("a", {href: "#/"}, "text", otherNode, ...). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  assign(node, attrs);
  return append(node, children);
}

/** An SVG element, same calling convention as el(). */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  assign(node, attrs);
  return append(node, children);
}

/** Replace a node's children. */
export function show(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A link into the explorer: #/models/{id} or #/families/{id}. */
export function link(kind, id, text, attrs = {}) {
  return el("a", { href: route(kind, id), ...attrs }, text ?? id);
}

export function route(kind, id, params) {
  const query = params ? new URLSearchParams(params).toString() : "";
  return `#/${kind}/${encodeURIComponent(id)}${query ? `?${query}` : ""}`;
}

/** A one-line message block (loading, empty, error). */
export function note(text, kind = "muted") {
  return el("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : null }, text);
}
