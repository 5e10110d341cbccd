// The time range picker: quick ranges, typed ranges (now-2h, 2026-11-29 08:00 in the shown time
// zone), an absolute range in local time, zoom out; the auto-refresh select and the UTC/local toggle.

import { setState } from "./actions.js";
import { $, h } from "./dom.js";
import { showBanner } from "./errors.js";
import { state } from "./state.js";
import { QUICK, absoluteRange, localInput, toMs, typedRange, zoomOut } from "./time.js";

export function openRange(open) {
  const pop = $("range-pop");
  pop.hidden = !open;
  $("range-btn").setAttribute("aria-expanded", String(open));
  if (open) {
    const a = toMs(state.from), b = toMs(state.to);
    $("abs-from").value = a != null ? localInput(a) : "";
    $("abs-to").value = b != null ? localInput(b) : "";
    $("typed-from").value = state.from;
    $("typed-to").value = state.to;
    $("typed-err").textContent = "";
    for (const btn of $("quick").children) btn.classList.toggle("on", btn.dataset.from === state.from && state.to === "now");
  }
}

export function initRangePicker() {
  for (const [from, label] of QUICK) {
    $("quick").append(h("button", { type: "button", "data-from": from, onclick: () => { openRange(false); setState({ from, to: "now" }); } }, label));
  }
  $("range-btn").addEventListener("click", () => openRange($("range-pop").hidden));
  $("abs-apply").addEventListener("click", () => {
    const range = absoluteRange($("abs-from").value, $("abs-to").value);
    if (!range) { showBanner("Time range: pick a start before the end."); return; }
    openRange(false);
    setState({ ...range, live: false });
  });
  const applyTyped = () => {
    const range = typedRange($("typed-from").value, $("typed-to").value);
    if (range.error) { $("typed-err").textContent = range.error; return; }
    openRange(false);
    setState({ ...range, live: false });
  };
  $("typed-apply").addEventListener("click", applyTyped);
  // inside the search form (forms do not nest): Enter here applies the range, not the search
  $("typed").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); applyTyped(); } });
  $("refresh").addEventListener("change", () => setState({ refresh: Number($("refresh").value) }, false));
  $("tz").addEventListener("click", () => setState({ utc: !state.utc }, false));
  $("zoom-out").addEventListener("click", () => {
    const range = zoomOut(state.from, state.to);
    if (range) setState(range);
  });
  document.addEventListener("click", (e) => {
    if (!$("range-pop").hidden && !e.target.closest(".range")) openRange(false);
  });
}
