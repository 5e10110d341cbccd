// logmesh web UI: native ES modules, no build step, no third-party code. This module wires the
// page; the others each do one job (see docs/architecture.md). It calls only the public /api/v1/
// API (docs/api.md). Log content is untrusted: it reaches the page through textContent / text
// nodes only, never as HTML.

import { runner, setState } from "./actions.js";
import { $ } from "./dom.js";
import { closeDrawer, openEvent } from "./drawer.js";
import { clearErrors } from "./errors.js";
import { loadMore, loadSearch, toggleRow } from "./events.js";
import { initFields, loadFields } from "./fields.js";
import { initHistogram, loadHistogram, syncStackBy } from "./histogram.js";
import { initLive, startLive, stopLive } from "./live.js";
import { loadMesh } from "./mesh.js";
import { initRangePicker, openRange } from "./range.js";
import { current, readURL, state, writeURL } from "./state.js";
import { rangeLabel } from "./time.js";

/** Search for the state: URL and controls first, then every panel of its view (older answers dropped). */
function run(push = false) {
  writeURL(push);
  syncControls();
  if (current.ctl) current.ctl.abort();
  current.ctl = new AbortController();
  current.gen += 1;
  clearErrors();
  if (state.view === "logs") {
    loadSearch(current.ctl.signal);
    loadHistogram(current.ctl.signal);
    loadFields(current.ctl.signal);
  } else {
    loadMesh(current.ctl.signal);
  }
  startLive();
  if (state.event) openEvent(state.event, false); else closeDrawer(false);
}

function syncControls() {
  const q = $("q");
  if (q.value !== state.q) q.value = state.q;
  $("range-btn").textContent = rangeLabel(state.from, state.to);
  for (const view of ["logs", "mesh"]) {
    $(`tab-${view}`).setAttribute("aria-selected", String(state.view === view));
    $(`view-${view}`).hidden = state.view !== view;
  }
  $("live").setAttribute("aria-pressed", String(state.live));
  $("live").hidden = state.view !== "logs";
  syncStackBy();
  document.title = state.q ? `${state.q} · logmesh` : "logmesh";
}

runner.run = run;
runner.restart = () => { stopLive(); run(false); };

initHistogram();
initFields();
initLive();
initRangePicker();

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
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
document.addEventListener("keydown", (e) => {
  const typing = e.target.closest && e.target.closest("input, textarea");
  if (e.key === "/" && !typing) { e.preventDefault(); $("q").focus(); $("q").select(); }
  if (e.key === "Escape") { if (!$("range-pop").hidden) openRange(false); else if (!$("drawer").hidden) closeDrawer(); }
});
new IntersectionObserver((entries) => { if (entries.some((en) => en.isIntersecting)) loadMore(); },
  { root: $("results"), rootMargin: "300px" }).observe($("more"));
window.addEventListener("popstate", () => { readURL(); run(false); });

readURL();
run(false);
