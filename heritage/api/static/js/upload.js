// The upload dialog: a file, an optional name and description, a progress bar while the
// bytes go up, then the wait while the server reads the weights and places the model.
import { ApiError, apiKey, upload } from "./api.js";
import { el, link, show } from "./dom.js";
import { progressBar } from "./jobs.js";

export function setupUpload(app, { openKeyDialog }) {
  const dialog = document.getElementById("upload-dialog");
  const form = dialog.querySelector("form");
  const progress = dialog.querySelector(".upload-progress");
  const submit = form.querySelector("button[type=submit]");
  document.getElementById("upload-button").addEventListener("click", () => {
    show(progress);
    dialog.showModal();
  });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    if (!apiKey.get()) {
      openKeyDialog("Uploading needs an API key.");
      return;
    }
    const data = new FormData();
    data.append("file", file);
    for (const field of ["name", "description"]) {
      const value = form.elements[field].value.trim();
      if (value) data.append(field, value);
    }
    const bar = progressBar(0, "upload progress");
    const line = el("span", { class: "upload-state" }, "uploading 0%");
    show(progress, bar, line);
    progress.dataset.state = "uploading";
    submit.disabled = true;
    try {
      const body = await upload(data, (fraction) => {
        if (fraction === null) {
          bar.removeAttribute("value");
          show(line, "reading the weights and placing the model…");
          progress.dataset.state = "processing";
        } else {
          bar.value = fraction;
          show(line, `uploading ${Math.round(fraction * 100)}%`);
        }
      });
      bar.value = 1;
      progress.dataset.state = "done";
      show(line, "stored as ", link("models", body.model.id, body.model.name, { "data-uploaded-id": body.model.id }),
        body.model.family_id ? [" in ", link("families", body.model.family_id, "its family")] : "");
      form.reset();
      app.say(`uploaded ${body.model.name}`);
      app.refresh(); // the view behind the dialog shows the new model (family list, tree)
    } catch (err) {
      progress.dataset.state = "failed";
      bar.value = 0;
      show(line, el("span", { class: "error", role: "alert" }, err.message));
      if (err instanceof ApiError && err.needsKey) openKeyDialog(err.message);
    } finally {
      submit.disabled = false;
    }
  });
  // Following a link in the dialog closes it.
  progress.addEventListener("click", (e) => {
    if (e.target.closest("a")) dialog.close();
  });
}
