// series.js: the histogram's stacks and legend, by the sentinels the API names, and sparklines.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bucketParts, countOf, legendEntries, sparkPoints, stackTotals } from "../../../../logmesh/logs/web/static/series.js";

const SENTINELS = { none: "(none)", other: "(other)" }; // as /api/v1/histogram sends them today

describe("stackTotals", () => {
  test("the highest bucket, each value's total, biggest first", () => {
    const { max, totals, order } = stackTotals([
      { t: 0, count: 3, by: { goods: 2, members: 1 } },
      { t: 1, count: 0 },
      { t: 2, count: 5, by: { members: 4, "(none)": 1 } },
    ]);
    assert.equal(max, 5);
    assert.deepEqual([...totals], [["goods", 2], ["members", 5], ["(none)", 1]]);
    assert.deepEqual(order, ["members", "goods", "(none)"]);
  });
  test("no buckets", () => {
    const { max, totals, order } = stackTotals([]);
    assert.equal(max, 0);
    assert.equal(totals.size, 0);
    assert.deepEqual(order, []);
  });
});

describe("bucketParts", () => {
  test("bottom up in the legend's order; values absent or 0 in this bucket left out", () => {
    assert.deepEqual(bucketParts({ count: 6, by: { b: 1, a: 5, c: 0 } }, ["a", "c", "b", "d"]), [["a", 5], ["b", 1]]);
  });
  test("a bucket that is not split is one part", () => {
    assert.deepEqual(bucketParts({ count: 7 }, ["a"]), [[null, 7]]);
    assert.deepEqual(bucketParts({ count: 7, by: {} }, ["a"]), [[null, 7]]);
  });
  test("a value named as a member of Object (__proto__, constructor) counts only where the bucket has it", () => {
    // Found from outside: a service named __proto__ or constructor made every bucket without it
    // a part of Object.prototype's size: NaN bars ("<rect> attribute y: NaN") in the histogram.
    const order = ["__proto__", "constructor", "toString", "goods"];
    assert.deepEqual(bucketParts({ count: 2, by: { goods: 2 } }, order), [["goods", 2]]);
    const own = JSON.parse('{"count": 5, "by": {"__proto__": 3, "goods": 2}}'); // as the API's JSON reads
    assert.deepEqual(bucketParts(own, order), [["__proto__", 3], ["goods", 2]]);
  });
});

describe("countOf", () => {
  test("a count of the object's own, else 0", () => {
    assert.equal(countOf({ goods: 3 }, "goods"), 3);
    assert.equal(countOf({ goods: 3 }, "constructor"), 0);
    assert.equal(countOf({ goods: 3 }, "__proto__"), 0);
    assert.equal(countOf(JSON.parse('{"__proto__": 4}'), "__proto__"), 4);
    assert.equal(countOf(undefined, "goods"), 0);
    assert.equal(countOf(null, "goods"), 0);
  });
});

describe("legendEntries", () => {
  test("another stack-by field names itself in the sentinels' labels", () => {
    const { entries } = legendEntries(["200", "(none)", "(other)"], SENTINELS, "http.response.status_code");
    assert.deepEqual(entries.map((e) => e.label), ["200", "(no http.response.status_code)", "(other)"]);
    assert.deepEqual(entries.map((e) => e.title), ["Show only 200", "Show only events without http.response.status_code",
      "Show only the other values of http.response.status_code"]);
  });
  test("the API's sentinels become 'no service' and 'the others'", () => {
    const { entries, named } = legendEntries(["goods", "(other)", "(none)", "members"], SENTINELS);
    assert.deepEqual(entries.map((e) => [e.key, e.kind, e.label]), [
      ["goods", "value", "goods"], ["(other)", "other", "(other)"],
      ["(none)", "none", "(no service)"], ["members", "value", "members"]]);
    assert.deepEqual(entries.map((e) => e.title), ["Show only goods", "Show only the other services",
      "Show only events without a service", "Show only members"]);
    assert.deepEqual(named, ["goods", "members"]);
  });
  test("the sentinels are what the API says, not fixed strings", () => {
    const { entries, named } = legendEntries(["∅", "goods", "…rest"], { none: "∅", other: "…rest" });
    assert.deepEqual(entries.map((e) => e.kind), ["none", "value", "other"]);
    assert.deepEqual(named, ["goods"]);
  });
  test("without sentinels every value is a plain value, even one spelt like a sentinel", () => {
    for (const sentinels of [undefined, null, {}]) {
      const { entries, named } = legendEntries(["(none)", "(other)"], sentinels);
      assert.deepEqual(entries.map((e) => e.kind), ["value", "value"]);
      assert.deepEqual(named, ["(none)", "(other)"]);
    }
  });
});

describe("sparkPoints", () => {
  test("left to right, the largest at the top, a pixel of margin", () => {
    assert.equal(sparkPoints([0, 5, 10], 120, 24), "1.0,22.0 60.0,12.0 119.0,2.0");
  });
  test("all zero lies on the bottom; one value at the left", () => {
    assert.equal(sparkPoints([0, 0], 120, 24), "1.0,22.0 119.0,22.0");
    assert.equal(sparkPoints([3], 120, 24), "1.0,2.0");
  });
});
