// format.js: numbers, rates, levels, service colours and the JSON view's pieces.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { COLORS, color, counted, fmtAgo, fmtMs, fmtNum, fmtPct, fmtRate, jsonTokens, levelClass, stateClass, visible } from "../../../../logmesh/logs/web/static/format.js";

describe("numbers", () => {
  test("fmtNum: thousands separated, no number a dash", () => {
    assert.equal(fmtNum(0), "0");
    assert.equal(fmtNum(1234567), "1,234,567");
    assert.equal(fmtNum(2.5), "2.5");
    assert.equal(fmtNum(undefined), "–");
    assert.equal(fmtNum("12"), "–");
  });
  test("counted: singular for one", () => {
    assert.equal(counted(1, "event"), "1 event");
    assert.equal(counted(0, "event"), "0 events");
    assert.equal(counted(1234, "event"), "1,234 events");
  });
  test("fmtRate: per second, per minute below 0.1/s", () => {
    const cases = [[42.4, "42/s"], [10, "10/s"], [9.94, "9.9/s"], [0.5, "0.5/s"], [0.1, "0.1/s"],
      [0.05, "3.0/min"], [0.001, "0.1/min"], [0, "0/s"], [-1, "0/s"], [null, "–"], ["5", "–"]];
    for (const [r, text] of cases) assert.equal(fmtRate(r), text, String(r));
  });
});

describe("levelClass", () => {
  test("a class per level the stylesheet colours, any case", () => {
    const cases = [["ERROR", "lv-erro"], ["error", "lv-erro"], ["Warn", "lv-warn"], ["warning", "lv-warn"],
      ["critical", "lv-crit"], ["fatal", "lv-fata"], ["debug", "lv-debu"], ["info", "lv-info"],
      ["", "lv-info"], [null, "lv-info"], [undefined, "lv-info"], ["errors", "lv-info"]];
    for (const [level, cls] of cases) assert.equal(levelClass(level), cls, String(level));
  });
  test("err is styled as error", () => {
    assert.equal(levelClass("err"), "lv-erro");
  });
  test("syslog's, log4j's and Go's names for the levels get the same classes", () => {
    const cases = [["err", "lv-erro"], ["ERR", "lv-erro"], ["eror", "lv-erro"], ["crit", "lv-crit"],
      ["alert", "lv-crit"], ["emerg", "lv-fata"], ["emergency", "lv-fata"], ["panic", "lv-fata"],
      ["wrn", "lv-warn"], ["notice", "lv-info"], ["informational", "lv-info"], ["dbg", "lv-debu"],
      ["trace", "lv-debu"], ["TRACE", "lv-debu"], ["trc", "lv-debu"], ["verbose", "lv-debu"], [" warn ", "lv-warn"]];
    for (const [level, cls] of cases) assert.equal(levelClass(level), cls, String(level));
  });
  test("every class it gives has a rule in app.css", () => {
    const css = readFileSync(new URL("../../../../logmesh/logs/web/static/app.css", import.meta.url), "utf8");
    const levels = ["error", "err", "eror", "critical", "crit", "alert", "fatal", "emerg", "emergency", "panic",
      "warn", "warning", "wrn", "info", "notice", "informational", "debug", "dbg", "trace", "trc", "verbose", "x"];
    for (const level of levels) {
      const cls = levelClass(level);
      assert.match(css, new RegExp(`\\.${cls}\\b[^{]*\\{`), `${level} -> ${cls}`);
    }
  });
});

describe("color", () => {
  test("one of the palette, the same for the same name on every load", () => {
    for (const name of ["goods", "members", "purchases", "", "café", "日本", "(none)", 42]) {
      assert.ok(COLORS.includes(color(name)), String(name));
      assert.equal(color(name), color(String(name)));
    }
    // pinned: a change here recolours every chart people know
    assert.equal(color("goods"), "#f59e0b");
    assert.equal(color("members"), "#3b82f6");
    assert.equal(color("purchases"), "#8b5cf6");
  });
  test("hashed over UTF-8 bytes: names differing only in accents may differ in colour", () => {
    assert.equal(color("日本"), "#64748b");
    assert.notEqual(color("cafe"), undefined);
  });
});

describe("jsonTokens", () => {
  const join = (tokens) => tokens.map(([, t]) => t).join("");
  test("joined, the pieces are the pretty JSON", () => {
    const obj = { message: 'a "quoted": 1 value', n: -1.5e3, ok: true, none: null, list: [1, "two"], u: "日本 😀" };
    assert.equal(join(jsonTokens(obj)), JSON.stringify(obj, null, 2));
  });
  test("keys, strings, numbers, booleans and null told apart", () => {
    const kinds = jsonTokens({ k: "v", n: 12, b: false, z: null }).filter(([c]) => c);
    assert.deepEqual(kinds, [["k", '"k"'], ["s", '"v"'], ["k", '"n"'], ["n", "12"], ["k", '"b"'], ["b", "false"], ["k", '"z"'], ["b", "null"]]);
  });
  test("a string holding a key, a number or an escaped quote is one string", () => {
    const kinds = jsonTokens({ m: 'x": 5, "true' }).filter(([c]) => c);
    assert.deepEqual(kinds, [["k", '"m"'], ["s", String.raw`"x\": 5, \"true"`]]);
  });
});

describe("fmtAgo", () => {
  const now = 1_700_000_000_000;
  test("seconds, minutes, hours, days ago", () => {
    assert.equal(fmtAgo(now - 3000, now), "3 s ago");
    assert.equal(fmtAgo(now - 59_999, now), "59 s ago");
    assert.equal(fmtAgo(now - 60_000, now), "1 min ago");
    assert.equal(fmtAgo(now - 3_599_000, now), "59 min ago");
    assert.equal(fmtAgo(now - 7_200_000, now), "2 h ago");
    assert.equal(fmtAgo(now - 3 * 86_400_000, now), "3 d ago");
  });
  test("now, the future (a clock ahead) and unknown", () => {
    assert.equal(fmtAgo(now - 400, now), "just now");
    assert.equal(fmtAgo(now + 5000, now), "just now");
    for (const v of [null, undefined, 0, "123", NaN]) assert.equal(fmtAgo(v, now), "–");
  });
});

describe("fmtMs and fmtPct", () => {
  test("durations", () => {
    assert.equal(fmtMs(0.84), "0.8 ms");
    assert.equal(fmtMs(12.4), "12 ms");
    assert.equal(fmtMs(1234.5), "1,235 ms");
    assert.equal(fmtMs(null), "–");
  });
  test("error rates", () => {
    assert.equal(fmtPct(0), "0%");
    assert.equal(fmtPct(0.0123), "1.2%");
    assert.equal(fmtPct(0.5), "50%");
    assert.equal(fmtPct(1), "100%");
    assert.equal(fmtPct(null), "–");
  });
});

describe("stateClass", () => {
  test("the five states, anything else unknown", () => {
    assert.deepEqual(["up", "slow", "silent", "down", "unregistered", "UP"].map(stateClass),
      ["st-up", "st-slow", "st-silent", "st-down", "st-unregistered", "st-up"]);
    for (const v of [null, "", "up x", "<b>", "__proto__"]) assert.equal(stateClass(v), "st-unknown");
  });
});

describe("visible", () => {
  test("the bidirectional overrides and isolates as their escape, everything else as it is", () => {
    assert.equal(visible("hello \u202eevil"), "hello \\u202eevil");
    assert.equal(visible("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069"),
      "\\u202a\\u202b\\u202c\\u202d\\u2066\\u2067\\u2068\\u2069");
    assert.equal(visible("שלום abc \u200f é"), "שלום abc \u200f é");
  });
});
