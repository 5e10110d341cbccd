// state.js: the page's state to its URL and back; defaults stay out of the URL.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_COLS } from "../../../../logmesh/logs/web/static/columns.js";
import { DEFAULTS, parseState, urlFor } from "../../../../logmesh/logs/web/static/state.js";

describe("parseState", () => {
  test("an empty query string is the defaults", () => {
    assert.deepEqual(parseState(""), DEFAULTS);
    assert.deepEqual(parseState("?"), DEFAULTS);
    assert.deepEqual(DEFAULTS, { view: "logs", q: "", from: "now-15m", to: "now", live: false, event: "", by: "service.name",
      cols: DEFAULT_COLS, sort: "", refresh: 0, utc: false });
  });
  test("every part", () => {
    assert.deepEqual(parseState("?view=mesh&q=service.name%3A%22goods%22&from=now-1h&to=now-5m&live=1&event=42&by=log.level"),
      { ...DEFAULTS, view: "mesh", q: 'service.name:"goods"', from: "now-1h", to: "now-5m", live: true, event: "42", by: "log.level" });
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
        to: "2025-03-30T01:30:00.000Z", live: false, event: "", by: "service.name", cols: DEFAULT_COLS, sort: "", refresh: 0, utc: false },
      { view: "mesh", q: "", from: "now-7d", to: "now", live: false, event: "", by: "labels.城市", cols: ["message", "params.城市"], sort: "-url.path", refresh: 15, utc: true },
      { view: "logs", q: "a & b=c # d", from: "now-15m", to: "now", live: true, event: "9007199254740993", by: "log.level", cols: ["a,b"].flatMap((c) => c.split(",")), sort: "@timestamp", refresh: 60, utc: false },
    ];
    for (const st of states) {
      const url = urlFor(st, "/");
      assert.deepEqual(parseState(url.slice(url.indexOf("?"))), st, url);
    }
  });
});

describe("columns, sort, auto-refresh and time zone", () => {
  test("in the URL only when not the default", () => {
    assert.equal(urlFor({ ...DEFAULTS, cols: ["message", "params.id"], sort: "-params.id", refresh: 5, utc: true }, "/"),
      "/?cols=message%2Cparams.id&sort=-params.id&refresh=5&tz=utc");
    assert.equal(urlFor({ ...DEFAULTS, cols: [...DEFAULT_COLS] }, "/"), "/");
  });
  test("a refresh that is not one of the choices is off", () => {
    assert.equal(parseState("?refresh=1").refresh, 0);
    assert.equal(parseState("?refresh=15").refresh, 15);
    assert.equal(parseState("?tz=mars").utc, false);
  });
});
