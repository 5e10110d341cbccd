// time.js: relative and absolute ranges, their labels, zoom out, local-time formatting in
// UTC and in zones with daylight saving time (the browser's zone is whatever TZ says).
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import {
  absoluteRange, around, coveringRange, fmtTime, localInput, needsDate, parseRelative,
  rangeLabel, relativeFrom, tickLabel, toMs, zoomOut,
} from "../../../../logmesh/logs/web/static/time.js";

const startTZ = process.env.TZ;
/** Run in time zone tz (node honours TZ set at run time). */
function zone(tz) { process.env.TZ = tz; }
afterEach(() => { if (startTZ === undefined) delete process.env.TZ; else process.env.TZ = startTZ; });

const MIN = 6e4, HOUR = 36e5, DAY = 864e5;
const NOW = Date.UTC(2025, 2, 5, 14, 20, 0); // Wed 2025-03-05 14:20:00 UTC
const iso = (ms) => new Date(ms).toISOString();

describe("parseRelative", () => {
  test("now-N<unit> in ms back from now", () => {
    assert.equal(parseRelative("now-15m"), 15 * MIN);
    assert.equal(parseRelative("now-90s"), 90e3);
    assert.equal(parseRelative("now-4h"), 4 * HOUR);
    assert.equal(parseRelative("now-30d"), 30 * DAY);
    assert.equal(parseRelative("now-1w"), 7 * DAY);
    assert.equal(parseRelative("now-0s"), 0);
    assert.equal(parseRelative("now"), 0);
  });
  test("anything else is null", () => {
    for (const t of ["now-1.5h", "now+5m", "now-5", "now-5y", "-5m", "now -5m", "Now-5m", "", undefined, null,
      "2025-03-05T14:00:00Z", "1741183200000"]) {
      assert.equal(parseRelative(t), null, String(t));
    }
  });
});

describe("toMs", () => {
  test("relative to the given now", () => {
    assert.equal(toMs("now", NOW), NOW);
    assert.equal(toMs("now-15m", NOW), NOW - 15 * MIN);
  });
  test("epoch ms and ISO 8601 with a zone are instants, whatever the browser's zone", () => {
    for (const tz of ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]) {
      zone(tz);
      assert.equal(toMs("1741184400000"), 1741184400000);
      assert.equal(toMs("2025-03-30T01:30:00Z"), Date.UTC(2025, 2, 30, 1, 30));
      assert.equal(toMs("2025-03-30T03:30:00+02:00"), Date.UTC(2025, 2, 30, 1, 30));
      assert.equal(toMs("2025-03-05T14:20:00.123Z"), NOW + 123);
    }
  });
  test("ISO without a zone is local time", () => {
    zone("Europe/Berlin");
    assert.equal(toMs("2025-01-10T12:00:00"), Date.UTC(2025, 0, 10, 11, 0));
    assert.equal(toMs("2025-07-10T12:00:00"), Date.UTC(2025, 6, 10, 10, 0)); // summer time: UTC+2
    zone("UTC");
    assert.equal(toMs("2025-07-10T12:00:00"), Date.UTC(2025, 6, 10, 12, 0));
  });
  test("unreadable is null", () => {
    assert.equal(toMs("yesterday", NOW), null);
    assert.equal(toMs("now-5y", NOW), null);
    assert.equal(toMs("", NOW), null);
  });
});

describe("fmtTime", () => {
  test("local time to the millisecond, the date when asked", () => {
    zone("UTC");
    const t = Date.UTC(2025, 2, 5, 14, 3, 7, 42);
    assert.equal(fmtTime(t, false), "14:03:07.042");
    assert.equal(fmtTime(t, true), "Mar 05 14:03:07.042");
    zone("America/New_York");
    assert.equal(fmtTime(t, true), "Mar 05 09:03:07.042");
    zone("Asia/Kolkata"); // a half-hour offset
    assert.equal(fmtTime(t, true), "Mar 05 19:33:07.042");
  });
  test("across the spring DST change in Berlin: 01:59:59.999 then 03:00:00.000", () => {
    zone("Europe/Berlin");
    const change = Date.UTC(2025, 2, 30, 1, 0); // 02:00 CET becomes 03:00 CEST
    assert.equal(fmtTime(change - 1, true), "Mar 30 01:59:59.999");
    assert.equal(fmtTime(change, true), "Mar 30 03:00:00.000");
  });
  test("across the autumn DST change in New York: 01:xx twice", () => {
    zone("America/New_York");
    const first = Date.UTC(2025, 10, 2, 5, 30); // 01:30 EDT
    assert.equal(fmtTime(first, false), "01:30:00.000");
    assert.equal(fmtTime(first + HOUR, false), "01:30:00.000"); // 01:30 EST
  });
  test("a value that is no number is shown as text", () => {
    assert.equal(fmtTime("2025-03-05T14:03:07Z", true), "2025-03-05T14:03:07Z");
    assert.equal(fmtTime(undefined, false), "");
    assert.equal(fmtTime(null, true), "");
  });
});

describe("localInput and absoluteRange (the datetime-local inputs)", () => {
  test("local wall time to the second, and back to UTC instants", () => {
    zone("Asia/Kolkata");
    assert.equal(localInput(Date.UTC(2025, 0, 1, 0, 0, 0, 999)), "2025-01-01T05:30:00");
    assert.deepEqual(absoluteRange("2025-01-01T05:30:00", "2025-01-01T06:30:00"),
      { from: "2025-01-01T00:00:00.000Z", to: "2025-01-01T01:00:00.000Z" });
    zone("UTC");
    assert.deepEqual(absoluteRange("2025-01-01T00:00", "2025-01-02T00:00"),
      { from: "2025-01-01T00:00:00.000Z", to: "2025-01-02T00:00:00.000Z" });
  });
  test("round trip of every hour over both of Berlin's DST changes", () => {
    zone("Europe/Berlin");
    for (const start of [Date.UTC(2025, 2, 29, 20), Date.UTC(2025, 9, 25, 20)]) {
      for (let t = start; t < start + 12 * HOUR; t += HOUR) {
        const back = Date.parse(localInput(t));
        // the hour repeated in autumn reads as its first occurrence; every other one exactly
        assert.ok(back === t || back === t - HOUR, `${iso(t)} -> ${localInput(t)}`);
      }
    }
  });
  test("three wall-clock hours over the spring change are two real hours", () => {
    zone("Europe/Berlin");
    assert.deepEqual(absoluteRange("2025-03-30T01:00:00", "2025-03-30T04:00:00"),
      { from: "2025-03-30T00:00:00.000Z", to: "2025-03-30T02:00:00.000Z" });
  });
  test("the autumn's repeated hour shows the same text twice, so a range inside it cannot be typed", () => {
    zone("Europe/Berlin");
    const a = Date.UTC(2025, 9, 26, 0, 30), b = Date.UTC(2025, 9, 26, 1, 30); // 02:30 CEST, 02:30 CET
    assert.equal(localInput(a), "2025-10-26T02:30:00");
    assert.equal(localInput(b), "2025-10-26T02:30:00");
    assert.equal(absoluteRange(localInput(a), localInput(b)), null);
  });
  test("a start at or after the end, or an empty or bad input, is no range", () => {
    zone("UTC");
    assert.equal(absoluteRange("2025-01-02T00:00", "2025-01-01T00:00"), null);
    assert.equal(absoluteRange("2025-01-01T00:00", "2025-01-01T00:00"), null);
    assert.equal(absoluteRange("", "2025-01-01T00:00"), null);
    assert.equal(absoluteRange("2025-01-01T00:00", "soon"), null);
  });
});

describe("rangeLabel", () => {
  test("relative ranges up to now read as words", () => {
    assert.equal(rangeLabel("now-15m", "now", NOW), "Last 15 minutes");
    assert.equal(rangeLabel("now-30d", "now", NOW), "Last 30 days");
    assert.equal(rangeLabel("now-2h", "now", NOW), "Last 2 hours");
    assert.equal(rangeLabel("now-90s", "now", NOW), "Last 90 seconds");
    assert.equal(rangeLabel("now-1w", "now", NOW), "Last 1 week");
    assert.equal(rangeLabel("now-1m", "now", NOW), "Last 1 minute");
  });
  test("other ranges as local times, the end's date only when it is another day", () => {
    zone("UTC");
    assert.equal(rangeLabel("now-15m", "now-5m", NOW), "Mar 05 14:05:00 → 14:15:00");
    assert.equal(rangeLabel("2025-03-05T23:00:00Z", "2025-03-06T01:00:00Z", NOW), "Mar 05 23:00:00 → Mar 06 01:00:00");
    assert.equal(rangeLabel(String(NOW), "now", NOW), "Mar 05 14:20:00 → 14:20:00");
    zone("Europe/Berlin"); // the same instants are one local day there
    assert.equal(rangeLabel("2025-03-05T23:00:00Z", "2025-03-06T01:00:00Z", NOW), "Mar 06 00:00:00 → 02:00:00");
  });
  test("over the spring DST change", () => {
    zone("Europe/Berlin");
    assert.equal(rangeLabel("2025-03-30T00:30:00Z", "2025-03-30T01:30:00Z", NOW), "Mar 30 01:30:00 → 03:30:00");
  });
  test("what cannot be read is shown as given", () => {
    assert.equal(rangeLabel("yesterday", "now", NOW), "yesterday → now");
  });
});

describe("needsDate", () => {
  test("a range within today needs no date", () => {
    zone("UTC");
    assert.equal(needsDate("now-15m", "now", NOW), false);
    assert.equal(needsDate("now-14h", "now", NOW), false);
  });
  test("a range over a day long, or starting on another day, does", () => {
    zone("UTC");
    assert.equal(needsDate("now-25h", "now", NOW), true);
    assert.equal(needsDate("now-15h", "now", NOW), true); // starts yesterday
    assert.equal(needsDate("now-1h", "now", Date.UTC(2025, 2, 5, 0, 30)), true);
  });
  test("'today' is the browser's local day", () => {
    const justAfterMidnightUTC = Date.UTC(2025, 2, 5, 0, 30);
    zone("UTC");
    assert.equal(needsDate("now-1h", "now", justAfterMidnightUTC), true);
    zone("Asia/Kolkata"); // 06:00 there: the hour before is today
    assert.equal(needsDate("now-1h", "now", justAfterMidnightUTC), false);
  });
});

describe("tickLabel", () => {
  test("seconds, minutes, or the date at day steps and local midnights", () => {
    zone("UTC");
    const t = Date.UTC(2025, 2, 6, 14, 5, 7);
    const midnight = Date.UTC(2025, 2, 6);
    assert.equal(tickLabel(t, 1e3), "14:05:07");
    assert.equal(tickLabel(t, 6e4), "14:05");
    assert.equal(tickLabel(t, 36e5), "14:05");
    assert.equal(tickLabel(t, DAY), "Mar 6");
    assert.equal(tickLabel(midnight, 36e5), "Mar 6");
    assert.equal(tickLabel(midnight, 3e5), "00:00"); // below an hour a midnight is a time
    zone("America/New_York");
    assert.equal(tickLabel(Date.UTC(2025, 2, 6, 5), 36e5), "Mar 6");
  });
  test("at hour steps, the date where a day starts that has no midnight", () => {
    zone("America/Santiago"); // 7 Sep 2025 00:00 -> 01:00
    assert.equal(tickLabel(Date.UTC(2025, 8, 7, 4), 36e5), "Sep 7"); // 01:00, the day's first instant
    assert.equal(tickLabel(Date.UTC(2025, 8, 7, 5), 36e5), "02:00");
  });
});

describe("zoomOut", () => {
  test("a relative range doubles, in the largest unit that says it exactly", () => {
    assert.deepEqual(zoomOut("now-15m", "now", NOW), { from: "now-30m", to: "now" });
    assert.deepEqual(zoomOut("now-45s", "now", NOW), { from: "now-90s", to: "now" });
    assert.deepEqual(zoomOut("now-30m", "now", NOW), { from: "now-1h", to: "now" });
    assert.deepEqual(zoomOut("now-12h", "now", NOW), { from: "now-1d", to: "now" });
    assert.deepEqual(zoomOut("now-1w", "now", NOW), { from: "now-14d", to: "now" });
  });
  test("nothing to double zooms to 15 minutes; at most a year", () => {
    assert.deepEqual(zoomOut("now", "now", NOW), { from: "now-15m", to: "now" });
    assert.deepEqual(zoomOut("now-300d", "now", NOW), { from: "now-365d", to: "now" });
  });
  test("an absolute range grows by half each side", () => {
    assert.deepEqual(zoomOut(iso(NOW - 2 * HOUR), iso(NOW - HOUR), NOW),
      { from: iso(NOW - 2.5 * HOUR), to: iso(NOW - 0.5 * HOUR) });
  });
  test("but never into the future: shifted back, and 'now' when it ends within a second", () => {
    assert.deepEqual(zoomOut(iso(NOW - HOUR), iso(NOW), NOW), { from: iso(NOW - 2 * HOUR), to: "now" });
    assert.deepEqual(zoomOut(iso(NOW - HOUR), iso(NOW - 600), NOW).to, "now");
    assert.deepEqual(zoomOut(iso(NOW - 20 * MIN), iso(NOW - 10 * MIN), NOW),
      { from: iso(NOW - 25 * MIN), to: iso(NOW - 5 * MIN) });
    // relative from with an earlier end is absolute too
    assert.deepEqual(zoomOut("now-15m", "now-5m", NOW), { from: iso(NOW - 20 * MIN), to: "now" });
  });
  test("in real time across a DST change: twice the real duration", () => {
    zone("Europe/Berlin");
    const r = zoomOut("2025-03-30T00:00:00Z", "2025-03-30T02:00:00Z", Date.UTC(2025, 3, 1));
    assert.deepEqual(r, { from: "2025-03-29T23:00:00.000Z", to: "2025-03-30T03:00:00.000Z" });
  });
  test("an unreadable range cannot be zoomed", () => {
    assert.equal(zoomOut("yesterday", "now-1m", NOW), null);
  });
});

describe("small range helpers", () => {
  test("relativeFrom: the largest exact unit, seconds rounded", () => {
    assert.equal(relativeFrom(2 * DAY), "now-2d");
    assert.equal(relativeFrom(36 * HOUR), "now-36h");
    assert.equal(relativeFrom(90 * MIN), "now-90m");
    assert.equal(relativeFrom(1500), "now-2s");
  });
  test("coveringRange: whole ms, outward", () => {
    assert.deepEqual(coveringRange(1.5, 2.2), { from: "1970-01-01T00:00:00.001Z", to: "1970-01-01T00:00:00.003Z" });
  });
  test("around: either side of an instant", () => {
    assert.deepEqual(around(NOW, 6e4), { from: "2025-03-05T14:19:00.000Z", to: "2025-03-05T14:21:00.000Z" });
  });
});

describe("UTC or local, and typed times", async () => {
  const { fmtTime, parseTyped, typedRange, tickLabel } = await import("../../../../logmesh/logs/web/static/time.js");
  test("fmtTime in UTC", () => {
    assert.equal(fmtTime(Date.UTC(2026, 10, 29, 8, 5, 7, 42), true, true), "Nov 29 08:05:07.042");
    assert.equal(fmtTime(Date.UTC(2026, 10, 29, 23, 0), false, true), "23:00:00.000");
  });
  test("tick labels in UTC: the date at the start of a UTC day", () => {
    assert.equal(tickLabel(Date.UTC(2026, 10, 29), 36e5, true), "Nov 29");
    assert.equal(tickLabel(Date.UTC(2026, 10, 29, 3), 36e5, true), "03:00");
  });
  test("relative times and epoch ms as they are", () => {
    assert.equal(parseTyped(" now-2h "), "now-2h");
    assert.equal(parseTyped("now"), "now");
    assert.equal(parseTyped("1795626000000"), "1795626000000");
  });
  test("dates: UTC when asked or named, else local", () => {
    assert.equal(parseTyped("2026-11-29 08:00", true), "2026-11-29T08:00:00.000Z");
    assert.equal(parseTyped("2026-11-29", true), "2026-11-29T00:00:00.000Z");
    assert.equal(parseTyped("2026-11-29T08:00:05.250+02:00", false), "2026-11-29T06:00:05.250Z");
    assert.equal(parseTyped("2026-11-29 08:00", false), new Date(2026, 10, 29, 8).toISOString());
  });
  test("what is no time is null", () => {
    for (const t of ["yesterday", "now-2", "now+1h", "2026-13-45", "", "<b>"]) assert.equal(parseTyped(t, true), null, t);
  });
  test("ranges: both read, start before end", () => {
    assert.deepEqual(typedRange("now-2h", ""), { from: "now-2h", to: "now" });
    assert.deepEqual(typedRange("2026-11-29 08:00", "2026-11-29 09:00", Date.now(), true),
      { from: "2026-11-29T08:00:00.000Z", to: "2026-11-29T09:00:00.000Z" });
    assert.match(typedRange("soon", "now").error, /cannot read "soon"/);
    assert.match(typedRange("now", "now-1h").error, /before the end/);
  });
});
