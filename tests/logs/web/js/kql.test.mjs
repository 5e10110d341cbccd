// kql.js: values quoted as query/kql.py's parser reads them back, filters added, flipped and
// not repeated, and where a parse error points.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { errorSpot, joinTerm, kqlField, kqlValue, lex, withFilter, withoutValues } from "../../../../logmesh/logs/web/static/kql.js";

describe("kqlValue", () => {
  test("numbers and booleans bare", () => {
    assert.equal(kqlValue(500), "500");
    assert.equal(kqlValue(-1.5), "-1.5");
    assert.equal(kqlValue(0), "0");
    assert.equal(kqlValue(true), "true");
    assert.equal(kqlValue(false), "false");
  });
  test("strings as quoted phrases: spaces, wildcards and KQL syntax stay literal", () => {
    assert.equal(kqlValue("goods"), '"goods"');
    assert.equal(kqlValue("a b  c"), '"a b  c"');
    assert.equal(kqlValue("*"), '"*"');
    assert.equal(kqlValue("/api/*/x?y"), '"/api/*/x?y"');
    assert.equal(kqlValue("a:(b or c)"), '"a:(b or c)"');
    assert.equal(kqlValue("not"), '"not"');
    assert.equal(kqlValue("500"), '"500"'); // a keyword that looks like a number stays a string
    assert.equal(kqlValue(""), '""');
  });
  test("quotes and backslashes escaped (as query/kql.py's _quote)", () => {
    assert.equal(kqlValue('say "hi"'), String.raw`"say \"hi\""`);
    assert.equal(kqlValue(String.raw`C:\temp\x`), String.raw`"C:\\temp\\x"`);
    assert.equal(kqlValue("\\"), String.raw`"\\"`);
    assert.equal(kqlValue('\\"'), String.raw`"\\\""`); // backslash then quote: both escaped, in order
    assert.equal(kqlValue('"'), String.raw`"\""`);
  });
  test("unicode and control characters pass through unchanged", () => {
    assert.equal(kqlValue("café ☕ 日本"), '"café ☕ 日本"');
    assert.equal(kqlValue("😀 émoji"), '"😀 émoji"');
    assert.equal(kqlValue("line1\nline2\ttab"), '"line1\nline2\ttab"');
  });
  test("anything else as its text", () => {
    assert.equal(kqlValue(null), '"null"');
    assert.equal(kqlValue(12n), '"12"');
  });
});

describe("kqlField", () => {
  test("a plain name as it is", () => {
    assert.equal(kqlField("service.name"), "service.name");
    assert.equal(kqlField("labels.城市"), "labels.城市");
    assert.equal(kqlField("labels.a-b_c/d@e"), "labels.a-b_c/d@e");
  });
  test("spaces, colons, quotes, backslashes and the rest of \\():<>\"*? escaped with a backslash (kql.py's _escape_word)", () => {
    assert.equal(kqlField("labels.my key"), String.raw`labels.my\ key`);
    assert.equal(kqlField("labels.a:b"), String.raw`labels.a\:b`);
    assert.equal(kqlField('labels.say "hi"'), String.raw`labels.say\ \"hi\"`);
    assert.equal(kqlField(String.raw`labels.C:\temp`), String.raw`labels.C\:\\temp`);
    assert.equal(kqlField("labels.f(x) <= y*?"), String.raw`labels.f\(x\)\ \<=\ y\*\?`);
    assert.equal(kqlField("labels.tab\there"), "labels.tab\\\there");
    assert.equal(kqlField("labels.a\u3000b"), "labels.a\\\u3000b"); // what Python's isspace() says
  });
  test("a name that is a keyword is escaped, so it is no and/or/not", () => {
    assert.equal(kqlField("not"), String.raw`\not`);
    assert.equal(kqlField("OR"), String.raw`\OR`);
    assert.equal(kqlField("notes"), "notes");
  });
  test("lexed back, the escaped name is one word: the name", () => {
    for (const name of ["labels.my key", 'labels.a:"b" \\c', "and", "labels.f(x)*", "labels.😀 x", "labels. lead"]) {
      const tokens = lex(`${kqlField(name)}:1`);
      assert.deepEqual(tokens.map((t) => t.kind), ["WORD", "COLON", "WORD"], name);
      assert.equal(tokens[0].text, name);
      assert.equal(tokens[0].wild, false);
    }
  });
});

describe("joinTerm", () => {
  test("and, with the query in parentheses when it has an or", () => {
    assert.equal(joinTerm("", "a:1"), "a:1");
    assert.equal(joinTerm("a:1", "b:2"), "a:1 and b:2");
    assert.equal(joinTerm("a:1 or a:2", "b:2"), "(a:1 or a:2) and b:2");
    assert.equal(joinTerm("a:1 OR a:2", "b:2"), "(a:1 OR a:2) and b:2");
    assert.equal(joinTerm("color:red", "b:2"), "color:red and b:2"); // "or" inside a word is no or
    assert.equal(joinTerm('m:"this or that"', "b:2"), '(m:"this or that") and b:2'); // harmless
  });
});

describe("lex", () => {
  const kinds = (q) => lex(q).map((t) => `${t.kind}:${t.text}`);
  test("tokens as query/kql.py's _lex reads them", () => {
    assert.deepEqual(kinds('not a.b:"x y" AND (c >= 5 or d<1)'),
      ["NOT:not", "WORD:a.b", "COLON::", "PHRASE:x y", "AND:AND", "LPAREN:(", "WORD:c", "CMP:>=", "WORD:5",
        "OR:or", "WORD:d", "CMP:<", "WORD:1", "RPAREN:)"]);
  });
  test("escapes undone; an escaped keyword is a word; wildcards noted", () => {
    assert.deepEqual(kinds(String.raw`my\ field\::\"v\\ \not "a\"b"`),
      ["WORD:my field:", "COLON::", 'WORD:"v\\', "WORD:not", 'PHRASE:a"b']);
    assert.deepEqual(lex(String.raw`a*b x\*`).map((t) => t.wild), [true, false]);
  });
  test("words split where Python's isspace() says, not JS's \\s", () => {
    assert.deepEqual(kinds("a\u2003b\x1fc\x85d"), ["WORD:a", "WORD:b", "WORD:c", "WORD:d"]);
    assert.deepEqual(kinds("a\ufeffb"), ["WORD:a\ufeffb"]);
  });
  test("positions in UTF-16 units of the query", () => {
    const [, , v, and] = lex("f:😀 and");
    assert.deepEqual([v.pos, v.end, and.pos], [2, 4, 5]);
  });
  test("null for what the lexer refuses", () => {
    assert.equal(lex('a:"open'), null);
    assert.equal(lex(String.raw`a:"x\"`), null);
    assert.equal(lex("a\\"), null);
  });
});

describe("withFilter", () => {
  test("adds field:value to the query", () => {
    assert.equal(withFilter("", "service.name", "goods"), 'service.name:"goods"');
    assert.equal(withFilter("  level:error  ", "service.name", "goods"), 'level:error and service.name:"goods"');
    assert.equal(withFilter("", "http.response.status_code", 500), "http.response.status_code:500");
    assert.equal(withFilter("a:1 or a:2", "b", "x"), '(a:1 or a:2) and b:"x"');
  });
  test("values that need quoting", () => {
    assert.equal(withFilter("", "url.path", '/a "b" \\c *'), String.raw`url.path:"/a \"b\" \\c *"`);
    assert.equal(withFilter("", "labels.城市", "東京 駅"), 'labels.城市:"東京 駅"');
  });
  test("a term the query has already is no change (null)", () => {
    assert.equal(withFilter('service.name:"goods"', "service.name", "goods"), null);
    assert.equal(withFilter('not service.name:"goods"', "service.name", "goods", true), null);
  });
  test("a quoted value is no substring of a longer one", () => {
    assert.equal(withFilter('service.name:"goods-2"', "service.name", "goods"),
      'service.name:"goods-2" and service.name:"goods"');
  });
  test("the opposite term is flipped, not added", () => {
    assert.equal(withFilter('service.name:"goods" and x:1', "service.name", "goods", true), 'not service.name:"goods" and x:1');
    assert.equal(withFilter('not service.name:"goods" and x:1', "service.name", "goods"), 'service.name:"goods" and x:1');
  });
  test("negate adds not field:value", () => {
    assert.equal(withFilter("x:1", "log.level", "debug", true), 'x:1 and not log.level:"debug"');
  });
  test("replace starts from an empty query", () => {
    assert.equal(withFilter('a:1 and trace.id:"t1"', "trace.id", "t2", false, true), 'trace.id:"t2"');
    assert.equal(withFilter('trace.id:"t2"', "trace.id", "t2", false, true), 'trace.id:"t2"');
  });
  test("value null: events without the field, or (negated) with it", () => {
    assert.equal(withFilter("", "service.name", null), "not service.name:*");
    assert.equal(withFilter("x:1", "service.name", null, true), "x:1 and service.name:*");
    assert.equal(withFilter("x:1", "service.name", null, false, true), "not service.name:*");
  });
  test("a number is no prefix of a longer one", () => {
    assert.equal(withFilter("http.response.status_code:5000", "http.response.status_code", 500),
      "http.response.status_code:5000 and http.response.status_code:500");
    assert.equal(withFilter("not http.response.status_code:5000", "http.response.status_code", 500, true),
      "not http.response.status_code:5000 and not http.response.status_code:500");
    assert.equal(withFilter("http.response.status_code:5000", "http.response.status_code", 500, true),
      "http.response.status_code:5000 and not http.response.status_code:500");
    assert.equal(withFilter("x:15", "x", 5), "x:15 and x:5");
    assert.equal(withFilter("x:-5", "x", 5), "x:-5 and x:5");
  });
  test("a field is no suffix of a longer one", () => {
    assert.equal(withFilter("http.response.status_code:500", "status_code", 500),
      "http.response.status_code:500 and status_code:500");
    assert.equal(withFilter("not labels.x:1", "x", 1), "not labels.x:1 and x:1");
  });
  test("a term inside a quoted phrase is no term", () => {
    assert.equal(withFilter('message:"see x:1 here"', "x", 1), 'message:"see x:1 here" and x:1');
    assert.equal(withFilter('message:"not x:1"', "x", 1, true), 'message:"not x:1" and not x:1');
  });
  test("whole terms are found however they are written", () => {
    assert.equal(withFilter("(x:1 or y:2) and z:3", "x", 1), null);
    assert.equal(withFilter("z:3 and (not x:1)", "x", 1), "z:3 and (x:1)");
    assert.equal(withFilter("NOT   x:1 and z:3", "x", 1), "x:1 and z:3");
    assert.equal(withFilter("x:1", "x", 1, true), "not x:1");
    assert.equal(withFilter("service.name:goods", "service.name", "goods"), null); // bare or quoted: the same term
    assert.equal(withFilter('x:"500"', "x", 500), null);
    assert.equal(withFilter("x:50*", "x", "50*"), 'x:50* and x:"50*"'); // a pattern is another term
    assert.equal(withFilter("x:1 and y:1", "y", 1, true), "x:1 and not y:1");
  });
  test("a query the lexer refuses gets the term added", () => {
    assert.equal(withFilter('m:"open', "x", 1), 'm:"open and x:1');
  });
});

describe("field names that need escaping", () => {
  const odd = 'labels.my key: "q" \\x';
  const esc = String.raw`labels.my\ key\:\ \"q\"\ \\x`;
  test("withFilter escapes the name, and finds the term again", () => {
    assert.equal(withFilter("", odd, "v"), `${esc}:"v"`);
    assert.equal(withFilter("a:1", odd, 5, true), `a:1 and not ${esc}:5`);
    assert.equal(withFilter(`${esc}:"v"`, odd, "v"), null);
    assert.equal(withFilter(`${esc}:"v"`, odd, "v", true), `not ${esc}:"v"`);
    assert.equal(withFilter(`not ${esc}:"v"`, odd, "v"), `${esc}:"v"`);
  });
  test("a missing field, and a keyword as a name", () => {
    assert.equal(withFilter("", odd, null), `not ${esc}:*`);
    assert.equal(withFilter("", odd, null, true), `${esc}:*`);
    assert.equal(withFilter("", "not", "x"), String.raw`\not:"x"`);
  });
  test("withoutValues escapes the name", () => {
    assert.equal(withoutValues("", "labels.a b", ["x", "y"]), String.raw`not labels.a\ b:"x" and not labels.a\ b:"y"`);
  });
});

describe("withoutValues", () => {
  test("not field:value for each value: 'the rest'", () => {
    assert.equal(withoutValues("", "service.name", ["goods", 'we "quote"']),
      String.raw`not service.name:"goods" and not service.name:"we \"quote\""`);
    assert.equal(withoutValues(" level:error ", "service.name", ["a"]), 'level:error and not service.name:"a"');
    assert.equal(withoutValues("level:error", "service.name", []), "level:error");
  });
  test("an or in the query stays grouped", () => {
    assert.equal(withoutValues("a:1 or a:2", "s", ["x"]), '(a:1 or a:2) and not s:"x"');
  });
});

describe("errorSpot", () => {
  test("the character at the position marked, the position added to the message", () => {
    assert.deepEqual(errorSpot("a:1 and", "expected a term", 7),
      { pos: 7, before: "a:1 and", at: " ", after: "", message: "expected a term (at character 8)" });
    assert.deepEqual(errorSpot("a:(b", "unclosed (", 2),
      { pos: 2, before: "a:", at: "(", after: "b", message: "unclosed ( (at character 3)" });
  });
  test("a message that names its position is kept", () => {
    assert.equal(errorSpot("a:(", 'expected a term after "(" at position 3', 3).message,
      'expected a term after "(" at position 3');
  });
  test("positions out of the query, or no number, are clamped", () => {
    assert.equal(errorSpot("abc", "x", 99).pos, 3);
    assert.equal(errorSpot("abc", "x", -5).pos, 0);
    assert.equal(errorSpot("abc", "x", "nope").pos, 0);
    assert.equal(errorSpot("abc", "x", null).pos, 0);
    assert.equal(errorSpot("", "empty", 0).at, " ");
  });
  test("unicode before the error", () => {
    assert.equal(errorSpot("city:東京 and (", "expected a term", 13).pos, 13);
    assert.equal(errorSpot("city:東京 and (", "expected a term", 12).at, "(");
  });
  test("positions count characters as the server does", () => {
    // query/kql.py says "at position 9" for 'f:😀 and (': the end, past the "("
    assert.equal(errorSpot("f:😀 and (", "expected a term", 9).at, " ");
    assert.deepEqual(errorSpot("f:😀 and (", "expected a term", 8),
      { pos: 9, before: "f:😀 and ", at: "(", after: "", message: "expected a term (at character 9)" });
    // 'f:😀😀 x:(': position 8, the end; '😀 a:"x': position 4, the phrase's quote
    assert.deepEqual(errorSpot("f:😀😀 x:(", "expected a value", 8).pos, 10);
    assert.equal(errorSpot('😀 a:"x', "expected a closing quote", 4).at, '"');
  });
  test("an astral character at the position is marked whole", () => {
    assert.deepEqual(errorSpot("f:😀 x", "bad", 2),
      { pos: 2, before: "f:", at: "😀", after: " x", message: "bad (at character 3)" });
    assert.equal(errorSpot("𝔘𝔫𝔦", "x", 99).pos, 6); // clamped to the end, in UTF-16 units
    assert.equal(errorSpot("𝔘𝔫𝔦", "x", 2).at, "𝔦");
  });
});
