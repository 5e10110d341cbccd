// sse.js: server-sent events from /api/v1/tail as fetch hands them over, in arbitrary chunks.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { feed } from "../../../../logmesh/logs/web/static/sse.js";

/** Every event's data when text arrives in the given chunk sizes. */
function read(text, size) {
  let buf = "";
  const out = [];
  for (let i = 0; i < text.length; i += size) {
    const got = feed(buf, text.slice(i, i + size));
    buf = got.rest;
    out.push(...got.data);
  }
  return { out, rest: buf };
}

describe("feed", () => {
  test("one event per blank line", () => {
    assert.deepEqual(feed("", 'data: {"a":1}\n\ndata: {"b":2}\n\n'), { data: ['{"a":1}', '{"b":2}'], rest: "" });
  });
  test("an unfinished event waits for the next chunk", () => {
    assert.deepEqual(feed("", 'data: {"a":1}\n\ndata: {"b"'), { data: ['{"a":1}'], rest: 'data: {"b"' });
    assert.deepEqual(feed('data: {"b"', ":2}\n\n"), { data: ['{"b":2}'], rest: "" });
  });
  test("the same events whatever the chunk size, unicode included", () => {
    const text = 'data: {"m":"日本 😀"}\n\n: keep-alive\n\nevent: x\nid: 7\ndata: {"n":2}\n\n';
    for (const size of [1, 2, 3, 7, 100]) {
      assert.deepEqual(read(text, size), { out: ['{"m":"日本 😀"}', '{"n":2}'], rest: "" }, `size ${size}`);
    }
  });
  test("CRLF and CR line ends", () => {
    assert.deepEqual(feed("", "data: a\r\n\r\ndata: b\r\rdata: c\n\n").data, ["a", "b", "c"]);
  });
  test("several data lines are joined by newlines; 'data:' without a space", () => {
    assert.deepEqual(feed("", "data: line 1\ndata:line 2\ndata:  two spaces\n\n").data, ["line 1\nline 2\n two spaces"]);
  });
  test("comments and events without data give nothing", () => {
    assert.deepEqual(feed("", ": ping\n\nevent: hello\n\nretry: 500\n\n"), { data: [], rest: "" });
  });
});
