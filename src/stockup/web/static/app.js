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

// Live counts on the metadata editor, against each chosen agency's limits.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("meta-form");
  if (!form) return;
  const limits = JSON.parse(form.dataset.limits || "[]");
  const title = document.getElementById("title");
  const keywords = document.getElementById("keywords");
  const titleCount = document.getElementById("title-count");
  const keywordCount = document.getElementById("keyword-count");
  const update = () => {
    const seen = new Set();
    for (const word of keywords.value.split(/[,;]/)) {
      const clean = word.trim().replace(/\s+/g, " ").toLowerCase();
      if (clean) seen.add(clean);
    }
    titleCount.textContent = `${title.value.trim().length} characters`;
    keywordCount.textContent = `${seen.size} different keywords`;
    for (const limit of limits) {
      const item = document.querySelector(`#limits li[data-account="${CSS.escape(limit.account)}"] .verdict`);
      const problems = [];
      if (limit.min_keywords && seen.size < limit.min_keywords) problems.push(`${limit.min_keywords - seen.size} keywords short`);
      if (limit.max_keywords && seen.size > limit.max_keywords) problems.push(`${seen.size - limit.max_keywords} keywords too many`);
      if (limit.max_title && title.value.trim().length > limit.max_title) problems.push("title too long");
      item.textContent = problems.length ? ` — ${problems.join(", ")}` : " — ok";
      item.className = problems.length ? "verdict bad" : "verdict good";
    }
  };
  title.addEventListener("input", update);
  keywords.addEventListener("input", update);
  update();
});
