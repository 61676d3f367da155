// stockup web UI: the only script. Pages work without it, except live progress.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The selected agency's login hint, under the agency menu.
  const agency = document.getElementById("agency");
  const hint = document.getElementById("agency-hint");
  if (agency && hint) {
    agency.addEventListener("change", () => {
      hint.textContent = agency.selectedOptions[0]?.dataset.hint ?? "";
    });
  }

  // Ask before destructive actions.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Live progress of an upload, from server-sent events rendered by the server.
  const run = document.getElementById("run");
  if (!run || !["preparing", "running"].includes(run.dataset.state)) return;
  const progress = document.getElementById("progress-body");
  const results = document.getElementById("results-body");
  const cancel = document.getElementById("cancel-form");
  const events = new EventSource(run.dataset.events);
  events.addEventListener("update", (message) => {
    const update = JSON.parse(message.data);
    run.dataset.state = update.state;
    progress.innerHTML = update.progress;
    // Sent only when they change: results hold buttons, and focus should stay put.
    if (update.results !== undefined) results.innerHTML = update.results;
    cancel.hidden = !["preparing", "running"].includes(update.state);
  });
  events.addEventListener("end", () => events.close());
});
