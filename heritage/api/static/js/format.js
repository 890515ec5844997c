// How values are written for people, and the visual vocabulary of relations.

/** Relation types of DERIVED_FROM edges, in legend order (an edge without one is a finetune). */
export const RELATIONS = [
  ["finetune", "fine-tune"],
  ["adapter", "adapter (LoRA)"],
  ["merge", "merge"],
  ["quantization", "quantisation"],
  ["conversion", "conversion"],
  ["head_only", "new head only"],
  ["distillation", "distillation"],
];
const KNOWN = new Set(RELATIONS.map(([r]) => r));

/** Edges below this confidence are drawn dashed ("low confidence"). */
export const LOW_CONFIDENCE = 0.25;

export const relationOf = (edge) => edge?.relation || "finetune";
/** A CSS class for a relation (unknown relations share one). */
export const relationClass = (relation) => `rel-${KNOWN.has(relation) ? relation : "other"}`;
export const relationLabel = (relation) => RELATIONS.find(([r]) => r === relation)?.[1] ?? relation;

export function count(n) {
  if (n === null || n === undefined) return "—";
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(n);
}

export const params = (n) => (n === null || n === undefined ? "" : `${count(n)} params`);

export function confidence(c) {
  return c === null || c === undefined ? "—" : c.toFixed(2);
}

export function number(x, digits = 3) {
  if (x === null || x === undefined) return "—";
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1);
  return x.toFixed(digits);
}

export function date(value) {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString(undefined, { year: sameYear ? undefined : "numeric", month: "short", day: "numeric",
                                       hour: "2-digit", minute: "2-digit" });
}

const DTYPES = { float32: "fp32", f32: "fp32", float16: "fp16", f16: "fp16", bfloat16: "bf16", bf16: "bf16",
  float64: "fp64", f64: "fp64" };
/** A short dtype: fp32, fp16, bf16 (others as stored). */
export const dtype = (d) => (d ? DTYPES[String(d).toLowerCase()] ?? String(d) : "");

/** The quantisation of a model (e.g. "Q4_K"), or null for a float model. */
export function quantisation(model) {
  if (model?.quantization) return model.quantization;
  const d = String(model?.dtype ?? "");
  if (/^(q\d|iq\d|int[248]|uint[48]|nf4|fp8|float8)/i.test(d)) return d;
  if (String(model?.format ?? "").toLowerCase() === "gguf") return "quantised";
  return null;
}

/** Short badges of a model: adapter, quantisation, error. */
export function badges(model) {
  const out = [];
  if (model?.is_adapter) out.push(["adapter", model.adapter_rank ? `adapter r${model.adapter_rank}` : "adapter"]);
  const q = quantisation(model);
  if (q) out.push(["quantised", q]);
  if (model?.status === "error") out.push(["error", "error"]);
  else if (model?.status === "processing") out.push(["processing", "processing"]);
  return out;
}

/** One line: format · params · dtype. */
export function facts(model) {
  return [model?.format, model?.params ? count(model.params) : null, dtype(model?.dtype)].filter(Boolean).join(" · ");
}
