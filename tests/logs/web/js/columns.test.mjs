// columns.js: the table's columns in the URL, moved, sorted; values inside params/labels; readable messages.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_COLS, cellClass, colsParam, compareBy, fieldValue, flatFields, moveCol, nextSort, parseCols, parseSort,
  readableMessage, shortParams, textLines, toggleCol } from "../../../../logmesh/logs/web/static/columns.js";

describe("columns in the URL", () => {
  test("empty is the defaults, which stay out of the URL", () => {
    assert.deepEqual(parseCols(""), DEFAULT_COLS);
    assert.equal(colsParam(DEFAULT_COLS), "");
  });
  test("a list, blanks and repeats dropped", () => {
    assert.deepEqual(parseCols(" a, b,,a ,params.id"), ["a", "b", "params.id"]);
    assert.equal(colsParam(["a", "b"]), "a,b");
  });
  test("toggle adds at the end, takes out, never the last one", () => {
    assert.deepEqual(toggleCol(["a"], "b"), ["a", "b"]);
    assert.deepEqual(toggleCol(["a", "b"], "a"), ["b"]);
    assert.deepEqual(toggleCol(["a"], "a"), ["a"]);
  });
  test("move left and right, not past the ends", () => {
    assert.deepEqual(moveCol(["a", "b", "c"], "b", -1), ["b", "a", "c"]);
    assert.deepEqual(moveCol(["a", "b", "c"], "b", 1), ["a", "c", "b"]);
    assert.deepEqual(moveCol(["a", "b"], "a", -1), ["a", "b"]);
    assert.deepEqual(moveCol(["a", "b"], "x", 1), ["a", "b"]);
  });
  test("cell classes of the known columns", () => {
    assert.equal(cellClass("@timestamp"), "t");
    assert.equal(cellClass("message"), "msg");
    assert.equal(cellClass("params.id"), "f");
  });
});

describe("sort", () => {
  test("parse", () => {
    assert.deepEqual(parseSort(""), { field: "@timestamp", desc: true });
    assert.deepEqual(parseSort("-url.path"), { field: "url.path", desc: true });
    assert.deepEqual(parseSort("url.path"), { field: "url.path", desc: false });
  });
  test("clicks cycle: a field desc then asc; time newest, oldest, newest", () => {
    assert.equal(nextSort("", "url.path"), "-url.path");
    assert.equal(nextSort("-url.path", "url.path"), "url.path");
    assert.equal(nextSort("url.path", "url.path"), "-url.path");
    assert.equal(nextSort("", "@timestamp"), "@timestamp");
    assert.equal(nextSort("@timestamp", "@timestamp"), "");
    assert.equal(nextSort("-url.path", "@timestamp"), "");
  });
  test("compare: numbers as numbers, missing last either way, then seq", () => {
    const evs = [{ seq: 1, n: 10 }, { seq: 2 }, { seq: 3, n: 9 }, { seq: 4, n: 10 }];
    assert.deepEqual([...evs].sort(compareBy("n", false)).map((e) => e.seq), [3, 1, 4, 2]);
    assert.deepEqual([...evs].sort(compareBy("n", true)).map((e) => e.seq), [4, 1, 3, 2]);
    const words = [{ seq: 1, w: "b" }, { seq: 2, w: "a" }];
    assert.deepEqual(words.sort(compareBy("w", false)).map((e) => e.w), ["a", "b"]);
  });
});

describe("values", () => {
  const ev = { "url.path": "/x", params: { id: 3, a: { b: "deep" } }, labels: { "event.duration_ms": 5 } };
  test("own keys, params paths, labels keys with dots", () => {
    assert.equal(fieldValue(ev, "url.path"), "/x");
    assert.equal(fieldValue(ev, "params.id"), 3);
    assert.equal(fieldValue(ev, "params.a.b"), "deep");
    assert.equal(fieldValue(ev, "labels.event.duration_ms"), 5);
    assert.equal(fieldValue(ev, "params.nope.x"), undefined);
    assert.equal(fieldValue(ev, "nope"), undefined);
  });
  test("flat fields: params and labels one level down", () => {
    assert.deepEqual(flatFields(ev).map(([k]) => k), ["url.path", "params.id", "params.a", "labels.event.duration_ms"]);
  });
});

describe("readable rows", () => {
  test("a logged request packet is METHOD /path and short params", () => {
    const msg = JSON.stringify({ method: "POST", uri: "/goods", params: { name: "a pen", price: 1, key: 57 }, "trace.id": "t" });
    assert.equal(readableMessage({ message: msg }), 'POST /goods name="a pen" price=1 key=57');
    assert.equal(readableMessage({ message: '{"uri":"/x"}' }), "/x");
  });
  test("long params are cut", () => {
    const s = shortParams({ text: "x".repeat(200) });
    assert.equal(s.length, 80);
    assert.ok(s.endsWith("…"));
  });
  test("JSON that is no request, and plain text, stay as they are", () => {
    assert.equal(readableMessage({ message: '{"a":1}' }), '{"a":1}');
    assert.equal(readableMessage({ message: "{not json" }), "{not json");
    assert.equal(readableMessage({ message: "<img src=x>" }), "<img src=x>");
    assert.equal(readableMessage({}), "");
  });
  test("a stack trace: first line and how many more; real or escaped line breaks", () => {
    assert.equal(readableMessage({ message: "Traceback:\n  File a\nValueError: x\n" }), "Traceback:  (+2 lines)");
    assert.deepEqual(textLines("a\\nb\\n  c"), ["a", "b", "  c"]);
    assert.deepEqual(textLines("a\r\nb"), ["a", "b"]);
    assert.deepEqual(textLines("one"), ["one"]);
  });
  test("a one-line message with a stack trace beside it (Python's log.exception) says how long the trace is", () => {
    const trace = "Traceback (most recent call last):\n  File \"a.py\", line 1\nValueError: x";
    assert.equal(readableMessage({ message: "failed", "error.stack_trace": trace }), "failed  (+3 lines of stack trace)");
    assert.equal(readableMessage({ message: "failed", "error.stack_trace": "one" }), "failed  (+1 line of stack trace)");
    assert.equal(readableMessage({ message: "failed", "error.stack_trace": "" }), "failed");
    assert.equal(readableMessage({ message: "a\nb", "error.stack_trace": trace }), "a  (+1 lines)");
  });
  test("a text the search cut (brief) counts the lines of the whole, which the API sends", () => {
    // GET /api/v1/search?brief=1: a 10 MB message arrives as its first 300 characters
    const cut = { message: "first\nsecond", cut: { message: 10485760 }, cut_lines: { message: 5000 } };
    assert.equal(readableMessage(cut), "first  (+4999 lines)");
    assert.equal(readableMessage({ message: "x".repeat(300), cut: { message: 400 } }), "x".repeat(300));
    const traced = { message: "failed", "error.stack_trace": "Traceback\n  File", cut: { "error.stack_trace": 9000 },
      cut_lines: { "error.stack_trace": 120 } };
    assert.equal(readableMessage(traced), "failed  (+120 lines of stack trace)");
  });
});
