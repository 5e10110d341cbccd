// The time range picker: quick ranges, an absolute range in local time, and zoom out.

import { setState } from "./actions.js";
import { $, h } from "./dom.js";
import { showBanner } from "./errors.js";
import { state } from "./state.js";
import { QUICK, absoluteRange, localInput, toMs, zoomOut } from "./time.js";

export function openRange(open) {
  const pop = $("range-pop");
  pop.hidden = !open;
  $("range-btn").setAttribute("aria-expanded", String(open));
  if (open) {
    const a = toMs(state.from), b = toMs(state.to);
    $("abs-from").value = a != null ? localInput(a) : "";
    $("abs-to").value = b != null ? localInput(b) : "";
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
  $("zoom-out").addEventListener("click", () => {
    const range = zoomOut(state.from, state.to);
    if (range) setState(range);
  });
  document.addEventListener("click", (e) => {
    if (!$("range-pop").hidden && !e.target.closest(".range")) openRange(false);
  });
}
