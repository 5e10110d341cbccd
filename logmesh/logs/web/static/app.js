// logmesh web UI: native ES modules, no build step, no third-party code. This module wires the
// page; the others each do one job (see docs/architecture.md). It calls only the public /api/v1/
// API (docs/api.md). Log content is untrusted: it reaches the page through textContent / text
// nodes only, never as HTML.

import { runner, setState } from "./actions.js";
import { initAssist, noteQuery } from "./assist.js";
import { $ } from "./dom.js";
import { closeDrawer, openEvent } from "./drawer.js";
import { clearErrors } from "./errors.js";
import { loadMore, loadSearch, toggleRow } from "./events.js";
import { initFields, loadFields } from "./fields.js";
import { initHistogram, loadHistogram, syncStackBy } from "./histogram.js";
import { initLive, startLive, stopLive } from "./live.js";
import { loadMesh } from "./mesh.js";
import { initRangePicker, openRange } from "./range.js";
import { initSaved } from "./saved.js";
import { current, readURL, state, writeURL } from "./state.js";
import { rangeLabel, tz } from "./time.js";

const AWAY_PX = 40; // auto-refresh waits while the reader is scrolled down or has a row open

/** Search for the state: URL and controls first, then every panel of its view (older answers dropped). */
function run(push = false) {
  writeURL(push);
  lastRun = Date.now();
  syncControls();
  if (current.ctl) current.ctl.abort();
  current.ctl = new AbortController();
  current.gen += 1;
  clearErrors();
  if (state.view === "logs") {
    // the rows first: the histogram, fields and top values then (they would share the query
    // threads with it; bench/ui.py measured Search to rows painted both ways)
    const { signal } = current.ctl, gen = current.gen;
    loadSearch(signal).finally(() => {
      if (gen !== current.gen) return;
      loadHistogram(signal);
      loadFields(signal);
    });
  } else {
    loadMesh(current.ctl.signal);
  }
  startLive();
  if (state.event) openEvent(state.event, false); else closeDrawer(false);
}

function syncControls() {
  const q = $("q");
  if (q.value !== state.q) q.value = state.q;
  tz.utc = state.utc;
  $("range-btn").textContent = rangeLabel(state.from, state.to);
  $("refresh").value = String(state.refresh);
  $("tz").textContent = state.utc ? "UTC" : "Local";
  $("tz").setAttribute("aria-pressed", String(state.utc));
  for (const view of ["logs", "mesh"]) {
    $(`tab-${view}`).setAttribute("aria-selected", String(state.view === view));
    $(`view-${view}`).hidden = state.view !== view;
  }
  $("live").setAttribute("aria-pressed", String(state.live));
  $("live").hidden = state.view !== "logs";
  syncStackBy();
  document.title = state.q ? `${state.q} · logmesh` : "logmesh";
}

let lastRun = 0;
runner.run = run;
runner.restart = () => { stopLive(); run(false); };

initHistogram();
initFields();
initLive();
initRangePicker();
initAssist();
initSaved();

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  noteQuery($("q").value);
  setState({ q: $("q").value.trim(), event: "", view: state.view === "mesh" ? "logs" : state.view });
});
$("q").addEventListener("input", () => { $("qerr").hidden = true; $("q").classList.remove("invalid"); });
for (const view of ["logs", "mesh"]) $(`tab-${view}`).addEventListener("click", () => { if (state.view !== view) setState({ view, event: "" }); });
$("rows").addEventListener("click", (e) => {
  if (e.target.closest("a, button")) return;
  const tr = e.target.closest("tr.ev");
  if (tr && !window.getSelection().toString()) toggleRow(tr);
});
$("rows").addEventListener("keydown", (e) => {
  const tr = e.target.closest("tr.ev");
  if (tr && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); toggleRow(tr); }
});
/** j/k: the focus to the next/previous row (Enter opens it). */
function moveRow(delta) {
  const rows = [...$("rows").querySelectorAll("tr.ev")];
  if (!rows.length) return;
  const i = rows.indexOf(document.activeElement.closest ? document.activeElement.closest("tr.ev") : null);
  const next = rows[i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + delta))];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (e) => {
  const typing = e.target.closest && e.target.closest("input, textarea, select");
  if (e.key === "/" && !typing) { e.preventDefault(); $("q").focus(); $("q").select(); }
  if ((e.key === "j" || e.key === "k") && !typing && !e.ctrlKey && !e.metaKey && !e.altKey && state.view === "logs") moveRow(e.key === "j" ? 1 : -1);
  if (e.key === "Escape") {
    // the search box's own Esc closes its suggestions (assist.js); with none open, it leaves
    // the box, so that j/k move among the rows instead of typing "jj" (found from outside)
    if (e.target === $("q")) $("q").blur();
    for (const p of document.querySelectorAll(".tool .pop")) p.hidden = true;
    if (!$("range-pop").hidden) openRange(false); else if (!$("drawer").hidden) closeDrawer();
  }
});
new IntersectionObserver((entries) => { if (entries.some((en) => en.isIntersecting)) loadMore(); },
  { root: $("results"), rootMargin: "300px" }).observe($("more"));
window.addEventListener("popstate", () => { readURL(); run(false); });
function showFields(open) {
  $("sidebar").classList.toggle("shown", open);
  $("fields-open").setAttribute("aria-expanded", String(open));
}
$("fields-open").addEventListener("click", () => showFields(!$("sidebar").classList.contains("shown")));
$("fields-close").addEventListener("click", () => showFields(false));
setInterval(() => { // auto-refresh: the same search again, unless live, hidden, or the reader is busy with the rows
  if (!state.refresh || state.live || state.view !== "logs" || document.hidden || Date.now() - lastRun < state.refresh * 1000) return;
  if ($("results").scrollTop > AWAY_PX || $("rows").querySelector("tr.detail") || !$("suggest").hidden) return;
  run(false);
}, 1000);

readURL();
run(false);
