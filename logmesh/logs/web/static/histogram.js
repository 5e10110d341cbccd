// The histogram: events over time stacked by a keyword field (state.by, service.name unless the
// "stack by" select says another), its legend, drag (or click a bar) to zoom.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { $, h, s, setProps } from "./dom.js";
import { handleError } from "./errors.js";
import { color, counted, fmtNum } from "./format.js";
import { niceStep, niceTop, tickTarget, tickTimes } from "./intervals.js";
import { withoutValues } from "./kql.js";
import { bucketParts, legendEntries, stackTotals } from "./series.js";
import { current, state } from "./state.js";
import { coveringRange, fmtTime, tickLabel } from "./time.js";

/** The fields the "stack by" select offers; a `by` from the URL that is not here is added to it. */
export const STACK_FIELDS = ["service.name", "log.level", "http.response.status_code", "http.request.method",
  "url.path", "labels.state", "labels.upstream", "service.instance"];
const HEIGHT = 132;
const M = { left: 44, right: 8, top: 10, bottom: 22 }; // margins around the plot
const LIVE_RELOAD_MS = 3000; // while live, new rows redraw the histogram this long after the last

let hist = null; // the last answer
let reloadTimer = null;

/** The histogram of the search for state, and the count above the table. */
export async function loadHistogram(signal) {
  const mine = current.gen;
  try {
    const by = state.by;
    const r = await api("/api/v1/histogram", { q: state.q, from: state.from, to: state.to, by: state.by }, signal);
    if (mine !== current.gen) return;
    hist = { ...r, by_field: by };
    const total = r.total ?? (r.buckets || []).reduce((a, b) => a + (b.count || 0), 0);
    $("count").textContent = counted(total, "event");
    drawHistogram();
  } catch (e) {
    if (mine === current.gen) { hist = null; drawHistogram(); $("count").textContent = ""; handleError(e, "Histogram"); }
  }
}

/** Load it again a little after new live rows stop coming. */
export function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { if (state.live && current.ctl) loadHistogram(current.ctl.signal); }, LIVE_RELOAD_MS);
}

/** Redraw at the box's width whenever it changes; the "stack by" select sets state.by. */
export function initHistogram() {
  new ResizeObserver(() => requestAnimationFrame(drawHistogram)).observe($("histogram"));
  $("stack-by").addEventListener("change", (e) => setState({ by: e.target.value }));
}

/** The select to state.by (an unknown field gets its own option). */
export function syncStackBy() {
  const sel = $("stack-by");
  const fields = STACK_FIELDS.includes(state.by) ? STACK_FIELDS : [...STACK_FIELDS, state.by];
  if (sel.options.length !== fields.length) sel.replaceChildren(...fields.map((f) => h("option", { value: f }, f)));
  if (sel.value !== state.by) sel.value = state.by;
}

function drawHistogram() {
  const box = $("histogram");
  const legend = $("legend");
  const W = Math.max(box.clientWidth || 0, 300);
  const H = HEIGHT;
  const L = M.left, R = M.right, T = M.top, B = M.bottom;
  const pw = W - L - R, ph = H - T - B;
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "hist", role: "img" });
  box.replaceChildren(svg);
  legend.replaceChildren();
  if (!hist || !Array.isArray(hist.buckets)) return;
  const iv = hist.interval_ms || 6e4;
  const buckets = hist.buckets;
  const t0 = Math.min(hist.from ?? Infinity, buckets.length ? buckets[0].t : Infinity);
  const t1 = Math.max(hist.to ?? -Infinity, buckets.length ? buckets[buckets.length - 1].t + iv : -Infinity);
  if (!Number.isFinite(t0) || !Number.isFinite(t1) || t1 <= t0) return;
  const X = (t) => L + ((t - t0) / (t1 - t0)) * pw;
  const tAt = (x) => t0 + ((x - L) / pw) * (t1 - t0);
  const { max, totals, order } = stackTotals(buckets);
  const top = niceTop(max);
  const Y = (v) => T + ph - (v / top) * ph;
  // grid and y labels
  for (const v of [0, top / 2, top]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: v ? "grid" : "axis" }));
    svg.append(s("text", { x: L - 6, y: Y(v) + 4, class: "ylab", "text-anchor": "end" }, fmtNum(Math.round(v * 10) / 10)));
  }
  // x ticks
  const step = niceStep(t1 - t0, tickTarget(pw));
  for (const t of tickTimes(t0, t1, step)) {
    const x = X(t);
    svg.append(s("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, class: "axis" }));
    const label = s("text", { x, y: H - 6, class: "xlab", "text-anchor": "middle" }, tickLabel(t, step));
    svg.append(label);
    // a tick near either end: its label moved in to fit (the box clips what sticks out: the last
    // one at 1400 px, found from outside); the svg is in the page, so the label can be measured
    const half = (label.getComputedTextLength?.() ?? 0) / 2;
    const fit = Math.min(Math.max(x, half + 1), W - half - 1);
    if (fit !== x) label.setAttribute("x", fit);
  }
  // stacked bars
  const bars = s("g", { class: "bars" });
  for (const b of buckets) {
    if (!b.count) continue;
    const x = X(b.t);
    const w = Math.max(1, X(b.t + iv) - x - (pw / buckets.length > 4 ? 1 : 0));
    const g = s("g", { class: "bucket" });
    const lines = [`${fmtTime(b.t, true).slice(0, -4)} · ${counted(b.count, "event")}`];
    let y = T + ph;
    for (const [k, v] of bucketParts(b, order)) {
      const hgt = (v / top) * ph;
      y -= hgt;
      g.append(s("rect", { x, y, width: w, height: Math.max(hgt, 0.5), fill: k == null ? "#64748b" : color(k) }));
      if (k != null) lines.push(`${k}: ${fmtNum(v)}`);
    }
    g.append(s("title", null, lines.join("\n")));
    g.dataset.t = b.t;
    bars.append(g);
  }
  svg.append(bars);
  const sel = s("rect", { class: "sel", x: 0, y: T, width: 0, height: ph, visibility: "hidden" });
  svg.append(sel);
  // drag across to zoom; a click zooms into one bucket
  let startX = null;
  const px = (e) => Math.min(Math.max(e.clientX - svg.getBoundingClientRect().left, L), L + pw);
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    startX = px(e);
    svg.setPointerCapture(e.pointerId);
    setProps(sel, { x: startX, width: 0, visibility: "visible" });
  });
  svg.addEventListener("pointermove", (e) => {
    if (startX == null) return;
    const x = px(e);
    setProps(sel, { x: Math.min(x, startX), width: Math.abs(x - startX) });
  });
  svg.addEventListener("pointerup", (e) => {
    if (startX == null) return;
    const x = px(e);
    const a = Math.min(x, startX), b = Math.max(x, startX);
    startX = null;
    sel.setAttribute("visibility", "hidden");
    let from, to;
    if (b - a >= 4) { from = tAt(a); to = tAt(b); } else {
      const g = e.target.closest && e.target.closest("g.bucket");
      if (!g) return;
      from = Number(g.dataset.t); to = from + iv;
    }
    setState({ ...coveringRange(from, to), live: false });
  });
  svg.addEventListener("pointercancel", () => { startX = null; sel.setAttribute("visibility", "hidden"); });
  // legend: click a value to filter on it; the API names its sentinels (no value, the rest)
  const BY = hist.by_field || state.by;
  const { entries, named } = legendEntries(order, hist.sentinels, BY);
  for (const { key, kind, label, title } of entries) {
    const onclick = kind === "other"
      ? () => setState({ q: withoutValues(state.q, BY, named), view: "logs", event: "" })
      : () => addFilter(BY, kind === "none" ? null : key, false);
    const item = h("button", { type: "button", class: "chip", title, onclick },
      h("i", { class: "dot" }), label, h("span", { class: "muted" }, ` ${fmtNum(totals.get(key))}`));
    item.querySelector(".dot").style.setProperty("background", color(key));
    legend.append(item);
  }
}
