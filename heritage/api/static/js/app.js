// The genealogy explorer: a hash router over three views (catalogue, family, model), the
// API key dialog, uploads with progress, and jobs followed to completion.
// URLs are shareable: #/, #/families/{id}, #/models/{id}[?depth=&other=].
import { ApiError, apiKey } from "./api.js";
import { el, note, route, show } from "./dom.js";
import { JobTracker } from "./jobs.js";
import { setupUpload } from "./upload.js";
import { catalogueView } from "./views/catalogue.js";
import { familyView } from "./views/family.js";
import { modelView } from "./views/model.js";

const main = document.getElementById("view");
const keyDialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key");
const keyButton = document.getElementById("key-button");
const status = document.getElementById("status");

function parse(hash) {
  const [path, query] = (hash.replace(/^#/, "") || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query ?? "") };
}

const app = {
  tracker: new JobTracker(document.getElementById("jobs-tray")),
  generation: 0,
  resizeHandlers: new Map(),

  go(hash) {
    if (location.hash === hash) this.refresh();
    else location.hash = hash;
  },
  /** Change the URL without rendering again (e.g. a search term). */
  replace(hash) {
    history.replaceState(null, "", hash);
  },
  refresh() {
    render();
  },
  /** Is this view root still the one on screen? (async work of a left view stops) */
  isCurrent(root) {
    return root.isConnected && root.dataset.generation === String(this.generation);
  },
  onResize(root, handler) {
    this.resizeHandlers.set(root, handler);
  },
  say(text, kind = "info") {
    show(status, text ? el("span", { class: kind }, text) : "");
    if (text) setTimeout(() => { if (status.textContent === text) show(status); }, 8000);
  },
  fail(err) {
    this.say(err.message, "error");
  },
  /** Start a job (a 202 call), then follow it in the tray. Resolves to the final job or null. */
  async runJob(start, label) {
    let accepted;
    try {
      accepted = await start();
    } catch (err) {
      this.say(err.message, "error");
      if (err instanceof ApiError && err.needsKey) openKeyDialog(err.message);
      return null;
    }
    const job = await this.tracker.follow(accepted.job, label);
    this.say(`${label}: ${job.state}${job.state === "failed" && job.message ? ` (${job.message})` : ""}`,
      job.state === "failed" ? "error" : "info");
    return job;
  },
};

async function render() {
  const generation = ++app.generation;
  const { parts, params } = parse(location.hash);
  const root = el("div", { class: "view", dataset: { generation: String(generation) } });
  app.resizeHandlers.clear();
  main.replaceChildren(root);
  try {
    if (parts[0] === "families" && parts[1]) {
      root.dataset.view = "family";
      await familyView(root, parts[1], app);
    } else if (parts[0] === "models" && parts[1]) {
      root.dataset.view = "model";
      await modelView(root, parts[1], app, params);
    } else {
      root.dataset.view = "catalogue";
      await catalogueView(root, app, params);
    }
  } catch (err) {
    if (generation !== app.generation) return;
    root.dataset.state = "error";
    const missing = err instanceof ApiError && err.status === 404;
    show(root, el("h2", { tabindex: "-1" }, missing ? "Not found" : "Something went wrong"),
      note(err.message, "error"), el("p", {}, el("a", { href: "#/" }, "Back to the catalogue")));
    if (err instanceof ApiError && err.needsKey) openKeyDialog(err.message);
  }
  if (generation === app.generation && document.activeElement === document.body) {
    root.querySelector("h2")?.focus({ preventScroll: true });
  }
}

// ---------------------------------------------------------------------- the API key
function showKeyState() {
  const set = Boolean(apiKey.get());
  keyButton.textContent = set ? "API key ✓" : "API key";
  keyButton.setAttribute("aria-label", set ? "API key (set for this tab)" : "API key (not set)");
}

function openKeyDialog(reason) {
  show(keyDialog.querySelector(".reason"), reason ?? "");
  keyInput.value = apiKey.get();
  if (!keyDialog.open) keyDialog.showModal();
  keyInput.focus();
}

keyButton.addEventListener("click", () => openKeyDialog());
keyDialog.querySelector("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const action = e.submitter?.value ?? "save";
  apiKey.set(action === "forget" ? "" : keyInput.value.trim());
  keyInput.value = "";
  showKeyState();
  keyDialog.close();
  app.say(action === "forget" ? "API key forgotten" : "API key kept for this tab");
});
keyDialog.querySelector("[data-close]").addEventListener("click", () => keyDialog.close());

setupUpload(app, { openKeyDialog });
showKeyState();
// The skip link moves the focus to the content without touching the route in the URL.
document.querySelector("a.skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", render);
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => app.resizeHandlers.forEach((handler) => handler()), 150);
});
render();
export { app, route };
