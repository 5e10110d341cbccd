// The histogram's axes: the step between time ticks, where the ticks fall, the top of the count axis.
// Pure. (The bucket width itself is the API's choice: interval_ms in its answer.)

import { DAY_MS } from "./time.js";

/** Tick steps, 1 s to 7 days, each a width a person reads at a glance. */
export const TICK_STEPS_MS = [1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5,
  108e5, 216e5, 432e5, DAY_MS, 2 * DAY_MS, 7 * DAY_MS];
const TICK_SPACING_PX = 90; // about one label per this many pixels

/** How many ticks fit on a plot this wide (at least 2). */
export function tickTarget(plotWidth) {
  return Math.max(2, Math.floor(plotWidth / TICK_SPACING_PX));
}

/** The smallest step giving at most `target` ticks over span ms; 7 days past that. */
export function niceStep(span, target) {
  return TICK_STEPS_MS.find((st) => span / st <= target) || 7 * DAY_MS;
}

/**
 * The tick times in [t0, t1]: multiples of step counted from a local midnight (the time zone's
 * offset at t0), so day ticks sit at 00:00 local time and hour ticks on the hour.
 */
export function tickTimes(t0, t1, step) {
  const tz = new Date(t0).getTimezoneOffset() * 6e4;
  const out = [];
  for (let t = Math.ceil((t0 - tz) / step) * step + tz; t <= t1; t += step) out.push(t);
  return out;
}

/** The top of the count axis: the first of 1, 2, 2.5, 5, 10 times a power of ten at or above max. */
export function niceTop(max) {
  const mag = 10 ** Math.floor(Math.log10(Math.max(max, 1)));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= max) || max;
}
