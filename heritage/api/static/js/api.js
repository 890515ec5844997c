// The REST API under /api, and the API key kept for this tab only (sessionStorage).
const BASE = "/api";
const KEY_NAME = "heritage.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_NAME) || "",
  set: (value) => (value ? sessionStorage.setItem(KEY_NAME, value) : sessionStorage.removeItem(KEY_NAME)),
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
  get needsKey() {
    return this.status === 401 || this.status === 403;
  }
}

function headers(extra = {}) {
  const key = apiKey.get();
  return { Accept: "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}), ...extra };
}

function detailOf(body, fallback) {
  if (typeof body?.detail === "string") return body.detail;
  if (Array.isArray(body?.detail)) return body.detail.map((d) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return fallback;
}

async function request(method, path, params) {
  const query = params ? `?${new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""))}` : "";
  let response;
  try {
    response = await fetch(`${BASE}${path}${query}`, { method, headers: headers() });
  } catch (err) {
    throw new ApiError(0, `the server cannot be reached (${err.message})`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, `${response.status}: ${detailOf(body, response.statusText)}`);
  return body;
}

export const get = (path, params) => request("GET", path, params);
export const post = (path, params) => request("POST", path, params);

const id = encodeURIComponent;
export const api = {
  families: (skip = 0, limit = 50) => get("/families", { skip, limit }),
  genealogy: (familyId) => get(`/families/${id(familyId)}/genealogy`),
  model: (modelId) => get(`/models/${id(modelId)}`),
  models: (params) => get("/models", params),
  lineage: (modelId, depth) => get(`/models/${id(modelId)}/lineage`, { depth }),
  path: (a, b) => get(`/models/${id(a)}/path/${id(b)}`),
  commonAncestor: (a, b) => get(`/models/${id(a)}/common-ancestor/${id(b)}`),
  mismatches: (modelId, limit = 200) => get("/lineage/declared-mismatches", { model_id: modelId, limit }),
  clusteringStatistics: () => get("/clustering/statistics"),
  jobs: (limit = 10, state) => get("/jobs", { limit, state }),
  job: (jobId) => get(`/jobs/${id(jobId)}`),
  recluster: () => post("/clustering/recluster"),
  rebuild: (familyId) => post(`/families/${id(familyId)}/tree/rebuild`),
  reprocess: (modelId) => post(`/models/${id(modelId)}/reprocess`),
};

/**
 * Upload a model file (multipart) with byte progress: onProgress(fraction) while sending,
 * onProgress(null) once every byte is sent and the server reads and places the model.
 * Resolves to the 201 body; rejects with ApiError.
 */
export function upload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${BASE}/models`);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.upload.addEventListener("load", () => onProgress(null));
    xhr.addEventListener("load", () => {
      const body = xhr.response ?? {};
      if (xhr.status === 201) resolve(body);
      else reject(new ApiError(xhr.status, `${xhr.status}: ${detailOf(body, xhr.statusText || "upload failed")}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was interrupted (network error)")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "the upload was cancelled")));
    xhr.send(form);
  });
}
