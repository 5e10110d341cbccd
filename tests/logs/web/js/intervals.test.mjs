// intervals.js: the histogram's tick step for ranges from a minute to 30 days, where the ticks
// fall in UTC and in other zones, and the top of the count axis.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { TICK_STEPS_MS, niceStep, niceTop, tickTarget, tickTimes } from "../../../../logmesh/logs/web/static/intervals.js";
import { tickLabel } from "../../../../logmesh/logs/web/static/time.js";

const startTZ = process.env.TZ;
function zone(tz) { process.env.TZ = tz; }
afterEach(() => { if (startTZ === undefined) delete process.env.TZ; else process.env.TZ = startTZ; });

const S = 1e3, MIN = 6e4, HOUR = 36e5, DAY = 864e5;

describe("tickTarget", () => {
  test("one tick per 90 px, at least 2", () => {
    assert.equal(tickTarget(1000), 11);
    assert.equal(tickTarget(248), 2); // the narrowest plot: 300 px less the margins
    assert.equal(tickTarget(90), 2);
    assert.equal(tickTarget(0), 2);
    assert.equal(tickTarget(1800), 20);
  });
});

describe("niceStep", () => {
  test("ranges from 1 minute to 30 days on a 1000 px plot (11 ticks at most)", () => {
    const cases = [
      [MIN, 10 * S], [5 * MIN, 30 * S], [15 * MIN, 2 * MIN], [30 * MIN, 5 * MIN], [HOUR, 10 * MIN],
      [4 * HOUR, 30 * MIN], [12 * HOUR, 2 * HOUR], [DAY, 3 * HOUR], [2 * DAY, 6 * HOUR],
      [7 * DAY, DAY], [14 * DAY, 2 * DAY], [30 * DAY, 7 * DAY],
    ];
    for (const [span, step] of cases) assert.equal(niceStep(span, 11), step, `span ${span / MIN} min`);
  });
  test("a narrow plot (2 ticks) takes longer steps", () => {
    assert.equal(niceStep(MIN, 2), 30 * S);
    assert.equal(niceStep(HOUR, 2), HOUR / 2);
    assert.equal(niceStep(DAY, 2), 12 * HOUR);
    assert.equal(niceStep(30 * DAY, 2), 7 * DAY); // 4 ticks: nothing longer to pick
  });
  test("the smallest step with at most target ticks, for every range from 1 minute to 30 days", () => {
    for (let span = MIN; span <= 30 * DAY; span = Math.ceil(span * 1.37)) {
      for (const target of [2, 3, 5, 8, 11, 16, 20]) {
        const step = niceStep(span, target);
        const i = TICK_STEPS_MS.indexOf(step);
        assert.ok(i >= 0, `${step} is one of the steps`);
        if (i < TICK_STEPS_MS.length - 1) assert.ok(span / step <= target, `span ${span}, target ${target}: ${span / step} ticks`);
        if (i > 0) assert.ok(span / TICK_STEPS_MS[i - 1] > target, `span ${span}, target ${target}: a smaller step fits`);
      }
    }
  });
  test("steps are increasing and a second at the least", () => {
    assert.equal(TICK_STEPS_MS[0], S);
    for (let i = 1; i < TICK_STEPS_MS.length; i++) assert.ok(TICK_STEPS_MS[i] > TICK_STEPS_MS[i - 1]);
    assert.equal(niceStep(10, 11), S);
    assert.equal(niceStep(365 * DAY, 11), 7 * DAY);
  });
});

describe("tickTimes", () => {
  const fmt = (ts) => ts.map((t) => new Date(t).toISOString().slice(11, 16));
  test("multiples of the step inside the range, both ends included", () => {
    zone("UTC");
    const t0 = Date.UTC(2025, 2, 5, 14, 3);
    assert.deepEqual(fmt(tickTimes(t0, t0 + 15 * MIN, 5 * MIN)), ["14:05", "14:10", "14:15"]);
    assert.deepEqual(fmt(tickTimes(t0 + 2 * MIN, t0 + 12 * MIN, 5 * MIN)), ["14:05", "14:10", "14:15"]);
    assert.deepEqual(tickTimes(t0, t0 + MIN, 5 * MIN), []);
    assert.deepEqual(tickTimes(t0, NaN, DAY), []);
    assert.deepEqual(tickTimes(t0 + DAY, t0, DAY), []);
  });
  test("hour ticks on the local hour, also in a half-hour zone", () => {
    zone("Asia/Kolkata"); // UTC+5:30
    const t0 = Date.UTC(2025, 2, 5, 0, 0);
    const ts = tickTimes(t0, t0 + 4 * HOUR, HOUR);
    assert.deepEqual(fmt(ts), ["00:30", "01:30", "02:30", "03:30"]);
    assert.deepEqual(ts.map((t) => tickLabel(t, HOUR)), ["06:00", "07:00", "08:00", "09:00"]);
  });
  test("day ticks at local midnight", () => {
    zone("America/New_York");
    const ts = tickTimes(Date.UTC(2025, 0, 10, 12), Date.UTC(2025, 0, 13, 12), DAY);
    assert.deepEqual(ts.map((t) => new Date(t).toISOString()),
      ["2025-01-11T05:00:00.000Z", "2025-01-12T05:00:00.000Z", "2025-01-13T05:00:00.000Z"]);
    assert.deepEqual(ts.map((t) => tickLabel(t, DAY)), ["Jan 11", "Jan 12", "Jan 13"]);
  });
  test("minute ticks straight across a DST change", () => {
    zone("Europe/Berlin");
    const change = Date.UTC(2025, 2, 30, 1, 0);
    const ts = tickTimes(change - 10 * MIN, change + 10 * MIN, 5 * MIN);
    assert.deepEqual(ts.map((t) => tickLabel(t, 5 * MIN)), ["01:50", "01:55", "03:00", "03:05", "03:10"]);
  });
  const local = (ts) => ts.map((t) => { const d = new Date(t); return `${d.getDate()} ${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`; });
  test("day ticks at local midnight over a DST change, each day once (autumn)", () => {
    zone("Europe/Berlin"); // 26 Oct 2025 03:00 CEST -> 02:00 CET: a 25-hour day
    const ts = tickTimes(Date.UTC(2025, 9, 24, 12), Date.UTC(2025, 9, 28, 12), DAY);
    assert.deepEqual(ts.map((t) => tickLabel(t, DAY)), ["Oct 25", "Oct 26", "Oct 27", "Oct 28"]);
    assert.ok(ts.every((t) => new Date(t).getHours() === 0));
    assert.equal(ts[2] - ts[1], 25 * HOUR);
  });
  test("day ticks at local midnight over a DST change (spring)", () => {
    zone("America/New_York"); // 9 Mar 2025 02:00 EST -> 03:00 EDT: a 23-hour day
    const ts = tickTimes(Date.UTC(2025, 2, 7, 12), Date.UTC(2025, 2, 12, 12), DAY);
    assert.deepEqual(ts.map((t) => tickLabel(t, DAY)), ["Mar 8", "Mar 9", "Mar 10", "Mar 11", "Mar 12"]);
    assert.deepEqual(local(ts), ["8 00:00", "9 00:00", "10 00:00", "11 00:00", "12 00:00"]);
    assert.equal(ts[2] - ts[1], 23 * HOUR);
  });
  test("a day without a midnight gets its tick at its first instant", () => {
    zone("America/Santiago"); // 7 Sep 2025 00:00 -> 01:00: the day starts at 01:00
    const ts = tickTimes(Date.UTC(2025, 8, 5, 12), Date.UTC(2025, 8, 9, 12), DAY);
    assert.deepEqual(ts.map((t) => tickLabel(t, DAY)), ["Sep 6", "Sep 7", "Sep 8", "Sep 9"]);
    assert.deepEqual(local(ts), ["6 00:00", "7 01:00", "8 00:00", "9 00:00"]);
  });
  test("2- and 7-day ticks keep their days across DST changes", () => {
    zone("Europe/Berlin");
    const week = tickTimes(Date.UTC(2025, 2, 1), Date.UTC(2025, 10, 30), 7 * DAY);
    assert.equal(week.length, 39);
    assert.ok(week.every((t) => new Date(t).getHours() === 0 && new Date(t).getDay() === 4), "Thursdays, 00:00");
    const two = tickTimes(Date.UTC(2025, 9, 20), Date.UTC(2025, 10, 3), 2 * DAY);
    assert.deepEqual(two.map((t) => tickLabel(t, 2 * DAY)), ["Oct 21", "Oct 23", "Oct 25", "Oct 27", "Oct 29", "Oct 31", "Nov 2"]);
    assert.ok(two.every((t) => new Date(t).getHours() === 0));
    zone("UTC"); // the same days as before, where no clock changes
    assert.deepEqual(tickTimes(Date.UTC(2025, 9, 20), Date.UTC(2025, 10, 3), 2 * DAY).map((t) => tickLabel(t, 2 * DAY)),
      ["Oct 21", "Oct 23", "Oct 25", "Oct 27", "Oct 29", "Oct 31", "Nov 2"]);
  });
  test("hour ticks on the local clock's multiples of the step across DST changes", () => {
    zone("Europe/Berlin");
    const spring = tickTimes(Date.UTC(2025, 2, 29, 12), Date.UTC(2025, 2, 31, 0), 6 * HOUR);
    assert.deepEqual(local(spring), ["29 18:00", "30 00:00", "30 06:00", "30 12:00", "30 18:00", "31 00:00"]);
    const autumn = tickTimes(Date.UTC(2025, 9, 25, 12), Date.UTC(2025, 9, 27, 0), 6 * HOUR);
    assert.deepEqual(local(autumn), ["25 18:00", "26 00:00", "26 06:00", "26 12:00", "26 18:00", "27 00:00"]);
    assert.deepEqual(autumn.map((t) => tickLabel(t, 6 * HOUR)), ["18:00", "Oct 26", "06:00", "12:00", "18:00", "Oct 27"]);
  });
  test("hour ticks over a DST change: each clock hour once", () => {
    zone("Europe/Berlin");
    const spring = tickTimes(Date.UTC(2025, 2, 29, 23), Date.UTC(2025, 2, 30, 3), HOUR);
    assert.deepEqual(local(spring), ["30 00:00", "30 01:00", "30 03:00", "30 04:00", "30 05:00"]);
    const autumn = tickTimes(Date.UTC(2025, 9, 25, 22), Date.UTC(2025, 9, 26, 3), HOUR);
    const labels = autumn.map((t) => tickLabel(t, HOUR));
    assert.deepEqual(labels, [...new Set(labels)]);
    assert.deepEqual(labels.slice(0, 4), ["Oct 26", "01:00", "02:00", "03:00"]);
    for (let i = 1; i < autumn.length; i++) assert.ok(autumn[i] > autumn[i - 1]);
  });
});

describe("niceTop", () => {
  test("1, 2, 2.5, 5 or 10 times a power of ten, at or above the max", () => {
    const cases = [[0, 1], [0.5, 1], [1, 1], [2, 2], [3, 5], [7, 10], [10, 10], [11, 20], [21, 25],
      [26, 50], [51, 100], [999, 1000], [1001, 2000], [2400, 2500], [123456, 200000]];
    for (const [max, top] of cases) assert.equal(niceTop(max), top, `max ${max}`);
  });
});
