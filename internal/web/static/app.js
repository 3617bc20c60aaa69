// Steward's progressive enhancement. Every page works without it; this
// only saves reloads and clicks.
"use strict";

// Live regions: an element with data-live="<ms>" is refreshed from the
// current page's URL until the new copy no longer carries data-live (e.g. a
// ticket that has its number). The element must have an id.
function refreshLive(el) {
  const every = parseInt(el.dataset.live, 10) || 2000;
  const src = el.dataset.src || window.location.href;
  setTimeout(async () => {
    try {
      const resp = await fetch(src, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!resp.ok) { refreshLive(el); return; }
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const next = doc.getElementById(el.id);
      if (!next) return;
      el.replaceWith(next);
      if (next.dataset.live) refreshLive(next);
    } catch (e) {
      refreshLive(el);
    }
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live][id]").forEach(refreshLive);

  // Copy buttons: data-copy names the id of the element whose text to copy.
  document.querySelectorAll("button[data-copy]").forEach((btn) => {
    btn.hidden = false;
    btn.addEventListener("click", async () => {
      const src = document.getElementById(btn.dataset.copy);
      if (!src) return;
      try {
        await navigator.clipboard.writeText(src.value || src.textContent.trim());
        btn.textContent = "Copied";
      } catch (e) {
        btn.textContent = "Select and copy";
      }
    });
  });

  // Forms that change a lot ask first: data-confirm holds the question.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });

  // "Select all" checkboxes: data-select-all names the checkboxes' name.
  document.querySelectorAll("input[data-select-all]").forEach((all) => {
    all.hidden = false;
    all.addEventListener("change", () => {
      document.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`).forEach((cb) => { cb.checked = all.checked; });
    });
  });
});
