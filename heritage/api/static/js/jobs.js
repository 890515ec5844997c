// Jobs started from this tab (recluster, rebuild, reprocess), followed until they end.
import { api } from "./api.js";
import { el, show } from "./dom.js";

const POLL_MS = 600;
const FINAL = new Set(["succeeded", "failed"]);

/** A progress bar with its percentage as text (for screen readers and people). */
export function progressBar(fraction, label) {
  const bar = el("progress", { max: "1", "aria-label": label });
  if (fraction === null || fraction === undefined) bar.removeAttribute("value");
  else bar.value = fraction;
  return bar;
}

/** One job's line: what, a bar, its state and message. */
export function jobLine(job, label) {
  const state = el("span", { class: `state state-${job.state}` }, job.state);
  const percent = job.state === "running" || job.state === "queued" ? ` ${Math.round((job.progress ?? 0) * 100)}%` : "";
  return el("div", { class: "job", dataset: { jobId: job.id, state: job.state } },
    el("div", { class: "job-head" }, el("strong", {}, label ?? job.kind ?? "job"), " ", state, percent),
    progressBar(job.state === "succeeded" ? 1 : job.progress ?? 0, `${label ?? job.kind} progress`),
    job.message ? el("div", { class: "job-message" }, job.message) : null);
}

export class JobTracker {
  /** @param {HTMLElement} tray where tracked jobs are shown */
  constructor(tray) {
    this.tray = tray;
    this.list = tray.querySelector(".jobs-list");
  }

  /**
   * Follow a job until it ends: a line in the tray, updated every POLL_MS.
   * Resolves to the final job (state succeeded or failed).
   */
  async follow(job, label) {
    this.tray.hidden = false;
    const slot = el("div", { class: "tracked" });
    this.list.prepend(slot);
    const draw = (j) => show(slot, jobLine(j, label), FINAL.has(j.state)
      ? el("button", { type: "button", class: "link", "aria-label": `dismiss ${label}` }, "dismiss") : null);
    draw(job);
    slot.addEventListener("click", (e) => {
      if (e.target.closest("button")) {
        slot.remove();
        if (!this.list.children.length) this.tray.hidden = true;
      }
    });
    let current = job;
    while (!FINAL.has(current.state)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      try {
        current = await api.job(current.id);
      } catch (err) {
        current = { ...current, message: `cannot read the job: ${err.message}` };
        if (err.status === 404) current.state = "failed";
      }
      draw(current);
    }
    document.dispatchEvent(new CustomEvent("heritage:job-finished", { detail: current }));
    return current;
  }
}
