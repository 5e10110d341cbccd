// suggest.js: the word at the caret, suggestions, taking one, recent queries.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_RECENT, applySuggestion, fieldSuggestions, remember, valueSuggestions, wordAt } from "../../../../logmesh/logs/web/static/suggest.js";

describe("wordAt", () => {
  test("a field name being typed", () => {
    assert.deepEqual(wordAt("serv", 4), { kind: "field", prefix: "serv", start: 0, end: 4 });
    assert.deepEqual(wordAt("a:1 and (url", 12), { kind: "field", prefix: "url", start: 9, end: 12 });
  });
  test("a value after field:", () => {
    assert.deepEqual(wordAt("service.name:go", 15), { kind: "value", field: "service.name", prefix: "go", start: 13, end: 15 });
    assert.deepEqual(wordAt("service.name:", 13), { kind: "value", field: "service.name", prefix: "", start: 13, end: 13 });
  });
  test("a quoted value being typed", () => {
    assert.deepEqual(wordAt('url.path:"/go', 13), { kind: "value", field: "url.path", prefix: "/go", start: 9, end: 13 });
  });
  test("an escaped colon in a field name", () => {
    assert.deepEqual(wordAt("a\\:b:x", 6), { kind: "value", field: "a:b", prefix: "x", start: 5, end: 6 });
  });
  test("keywords and comparisons get nothing", () => {
    assert.equal(wordAt("a:1 and", 7), null);
    assert.equal(wordAt("status>=5", 9), null);
  });
});

describe("suggestions", () => {
  const fields = [{ name: "service.name", type: "keyword" }, { name: "labels.service", type: "keyword" }, { name: "url.path", type: "keyword" }];
  test("fields that start with the prefix first, then those containing it", () => {
    assert.deepEqual(fieldSuggestions(fields, "serv").map((f) => f.name), ["service.name", "labels.service"]);
    assert.deepEqual(fieldSuggestions(fields, "").map((f) => f.name), ["service.name", "labels.service", "url.path"]);
    assert.deepEqual(fieldSuggestions(fields, "url.path"), []);
  });
  test("values containing the prefix, nulls left out", () => {
    const values = [{ value: "goods", count: 3 }, { value: null, count: 1 }, { value: "Members", count: 2 }, { value: 404, count: 1 }];
    assert.deepEqual(valueSuggestions(values, "m").map((v) => v.value), ["Members"]);
    assert.deepEqual(valueSuggestions(values, "40").map((v) => v.value), [404]);
  });
});

describe("applySuggestion", () => {
  test("a field gets its colon, escaped as KQL reads it", () => {
    assert.deepEqual(applySuggestion("serv", wordAt("serv", 4), { name: "service.name" }), { q: "service.name:", caret: 13 });
    assert.deepEqual(applySuggestion("a and b", wordAt("a and b", 7), { name: "my field" }), { q: "a and my\\ field:", caret: 16 });
  });
  test("a value is quoted (markup stays text in the query) and followed by a space", () => {
    const q = "service.name:go";
    assert.deepEqual(applySuggestion(q, wordAt(q, 15), { value: "goods" }), { q: 'service.name:"goods" ', caret: 21 });
    const q2 = 'url.path:"/<b';
    assert.equal(applySuggestion(q2, wordAt(q2, q2.length), { value: '/<b>"x' }).q, 'url.path:"/<b>\\"x" ');
    assert.equal(applySuggestion("status:4", wordAt("status:4", 8), { value: 404 }).q, "status:404 ");
  });
});

describe("recent queries", () => {
  test("newest first, once, empty ones not kept, at most MAX_RECENT", () => {
    assert.deepEqual(remember(["b", "a"], " a "), ["a", "b"]);
    assert.deepEqual(remember(["a"], "  "), ["a"]);
    const many = Array.from({ length: 20 }, (_, i) => `q${i}`);
    assert.equal(remember(many, "new").length, MAX_RECENT);
  });
});
