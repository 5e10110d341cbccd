// urls.js: the export's URL and file name, copy as curl.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_COLS } from "../../../../logmesh/logs/web/static/columns.js";
import { curlFor, exportName, exportURL, searchParams, shellQuote } from "../../../../logmesh/logs/web/static/urls.js";

const st = { q: 'service.name:"goods"', from: "now-1h", to: "now", cols: DEFAULT_COLS, sort: "" };

describe("export", () => {
  test("file names keep letters, digits, . - _ only", () => {
    assert.equal(exportName('<img src=x onerror=alert(1)>"', "csv"), "img-src-x-onerror-alert-1.csv");
    assert.equal(exportName("../../etc/passwd", "ndjson"), "etc-passwd.ndjson");
    assert.equal(exportName("", "csv"), "logmesh-export.csv");
    assert.equal(exportName('<b>"x.CSV', "csv"), "b-x.csv");
  });
  test("the URL carries the query, range, format, columns and name", () => {
    const u = new URL(exportURL({ ...st, cols: ["message", "params.id"] }, "csv", "my errors"), "http://x");
    assert.equal(u.pathname, "/api/v1/export");
    assert.equal(u.searchParams.get("q"), 'service.name:"goods"');
    assert.equal(u.searchParams.get("format"), "csv");
    assert.equal(u.searchParams.get("columns"), "message,params.id");
    assert.equal(u.searchParams.get("filename"), "my-errors.csv");
    assert.equal(u.searchParams.get("limit"), "10000");
    assert.equal(u.searchParams.get("order"), null);
    const n = new URL(exportURL({ ...st, sort: "@timestamp" }, "ndjson"), "http://x");
    assert.equal(n.searchParams.get("columns"), null);
    assert.equal(n.searchParams.get("order"), "asc");
  });
});

describe("curl", () => {
  test("single quotes survive", () => {
    assert.equal(shellQuote("it's"), "'it'\\''s'");
  });
  test("a GET with URL-encoded parameters, the token from the environment", () => {
    const cmd = curlFor("http://127.0.0.1:9041", "/api/v1/search", searchParams(st, { limit: 100 }), true);
    assert.equal(cmd, "curl -sG 'http://127.0.0.1:9041/api/v1/search' --data-urlencode 'q=service.name:\"goods\"' "
      + "--data-urlencode 'from=now-1h' --data-urlencode 'to=now' --data-urlencode 'limit=100' -H \"Authorization: Bearer $LOGMESH_TOKEN\"");
    assert.ok(!curlFor("http://h", "/p", searchParams({ q: "", from: "a", to: "b" }), false).includes("Authorization"));
  });
});
