// state.js: the page's state to its URL and back; defaults stay out of the URL.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULTS, parseState, urlFor } from "../../../../logmesh/logs/web/static/state.js";

describe("parseState", () => {
  test("an empty query string is the defaults", () => {
    assert.deepEqual(parseState(""), DEFAULTS);
    assert.deepEqual(parseState("?"), DEFAULTS);
    assert.deepEqual(DEFAULTS, { view: "logs", q: "", from: "now-15m", to: "now", live: false, event: "", by: "service.name" });
  });
  test("every part", () => {
    assert.deepEqual(parseState("?view=mesh&q=service.name%3A%22goods%22&from=now-1h&to=now-5m&live=1&event=42&by=log.level"),
      { view: "mesh", q: 'service.name:"goods"', from: "now-1h", to: "now-5m", live: true, event: "42", by: "log.level" });
  });
  test("the stack-by field: service.name when absent or blank", () => {
    assert.equal(parseState("?by=").by, "service.name");
    assert.equal(parseState("?by=%20%20").by, "service.name");
    assert.equal(parseState("?by=http.response.status_code").by, "http.response.status_code");
  });
  test("unknown views are the logs; live only as 1", () => {
    assert.equal(parseState("?view=admin").view, "logs");
    assert.equal(parseState("?live=true").live, false);
    assert.equal(parseState("?live=1").live, true);
  });
});

describe("urlFor", () => {
  test("by only when it is not service.name, and it reads back", () => {
    assert.equal(urlFor({ ...DEFAULTS, by: "service.name" }, "/"), "/");
    const url = urlFor({ ...DEFAULTS, by: "labels.state" }, "/");
    assert.equal(url, "/?by=labels.state");
    assert.equal(parseState(url.slice(1)).by, "labels.state");
  });
  test("the defaults are the bare path", () => {
    assert.equal(urlFor(DEFAULTS, "/"), "/");
  });
  test("from and to go together, even when one is the default", () => {
    assert.equal(urlFor({ ...DEFAULTS, from: "now-1h" }, "/"), "/?from=now-1h&to=now");
    assert.equal(urlFor({ ...DEFAULTS, to: "2025-03-05T14:00:00.000Z" }, "/ui"),
      "/ui?from=now-15m&to=2025-03-05T14%3A00%3A00.000Z");
  });
  test("round trip, quotes, backslashes, * and unicode included", () => {
    const states = [
      { view: "logs", q: 'message:"a \\"b\\" *" and not labels.城市:"東京 😀"', from: "2025-03-30T00:30:00.000Z",
        to: "2025-03-30T01:30:00.000Z", live: false, event: "", by: "service.name" },
      { view: "mesh", q: "", from: "now-7d", to: "now", live: false, event: "", by: "labels.城市" },
      { view: "logs", q: "a & b=c # d", from: "now-15m", to: "now", live: true, event: "9007199254740993", by: "log.level" },
    ];
    for (const st of states) {
      const url = urlFor(st, "/");
      assert.deepEqual(parseState(url.slice(url.indexOf("?"))), st, url);
    }
  });
});
