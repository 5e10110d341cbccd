// The histogram's axes: the step between time ticks, where the ticks fall, the top of the count axis.
// Pure. (The bucket width itself is the API's choice: interval_ms in its answer.)

import { DAY_MS } from "./time.js";

const HOUR_MS = 36e5;

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
 * The tick times in [t0, t1], in the browser's time zone (as tickLabel shows them).
 * Steps under an hour: multiples of step counted from a local midnight (the zone's offset at
 * t0), straight across a clock change. Steps of hours and days follow the local clock, since a
 * day is 23 or 25 hours long when the clock changes: hour ticks at the hours that are multiples
 * of the step (each clock hour once: the hour skipped in spring has none, the hour repeated in
 * autumn one), day ticks at the start of each local day (00:00, or the first instant of a day
 * that skips midnight), every n-th day counted from 1970-01-01 (7 days: Thursdays).
 */
export function tickTimes(t0, t1, step) {
  if (!(t0 <= t1) || !(step > 0)) return [];
  if (step >= HOUR_MS && step % HOUR_MS === 0 && (step % DAY_MS === 0 || DAY_MS % step === 0)) return clockTicks(t0, t1, step);
  const tz = new Date(t0).getTimezoneOffset() * 6e4;
  const out = [];
  for (let t = Math.ceil((t0 - tz) / step) * step + tz; t <= t1; t += step) out.push(t);
  return out;
}

function clockTicks(t0, t1, step) {
  const days = step >= DAY_MS ? step / DAY_MS : 1;
  const hours = step >= DAY_MS ? 24 : step / HOUR_MS;
  const out = [];
  const first = new Date(t0);
  for (let y = first.getFullYear(), m = first.getMonth(), d = first.getDate(); ; d++) {
    const start = new Date(y, m, d).getTime(); // Date normalises day 32 into the next month
    if (start > t1) break;
    if (Math.round(Date.UTC(y, m, d) / DAY_MS) % days !== 0) continue;
    for (let h = 0; h < 24; h += hours) {
      const t = h ? new Date(y, m, d, h).getTime() : start; // an hour the clock skips: the one after
      if (t >= t0 && t <= t1 && !(out.length && t <= out[out.length - 1])) out.push(t);
    }
  }
  return out;
}

/** The top of the count axis: the first of 1, 2, 2.5, 5, 10 times a power of ten at or above max. */
export function niceTop(max) {
  const mag = 10 ** Math.floor(Math.log10(Math.max(max, 1)));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= max) || max;
}
