// Small bar charts as SVG (values as text, never markup).
import { svg } from "./dom.js";

/**
 * A vertical bar chart of [label, value] pairs.
 * @param {Array<[string, number]>} data
 * @param {{title: string, width?: number, height?: number, className?: string}} options
 */
export function barChart(data, { title, width = 320, height = 150, className = "" } = {}) {
  const top = 16;
  const bottom = 22;
  const left = 8;
  const max = Math.max(1, ...data.map(([, v]) => v));
  const slot = (width - 2 * left) / Math.max(1, data.length);
  const bar = Math.max(2, Math.min(36, slot * 0.7));
  const chart = svg("svg", { class: `chart ${className}`, viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": `${title}: ${data.map(([k, v]) => `${k}: ${v}`).join(", ")}` });
  chart.append(svg("line", { class: "axis", x1: left, x2: width - left, y1: height - bottom, y2: height - bottom }));
  data.forEach(([label, value], i) => {
    const h = ((height - top - bottom) * value) / max;
    const x = left + i * slot + (slot - bar) / 2;
    const y = height - bottom - h;
    chart.append(svg("g", { class: "bar", dataset: { label: String(label), value: String(value) } },
      svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: bar.toFixed(1), height: Math.max(0, h).toFixed(1), rx: 2 }),
      svg("text", { class: "value", x: (x + bar / 2).toFixed(1), y: (y - 4).toFixed(1), "text-anchor": "middle" }, String(value)),
      svg("text", { class: "label", x: (x + bar / 2).toFixed(1), y: height - 6, "text-anchor": "middle" }, String(label))));
  });
  return chart;
}
