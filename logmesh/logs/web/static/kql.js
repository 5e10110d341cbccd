// Values into KQL queries: quoting, adding and negating field:value terms (found as whole terms by
// a lexer that reads the query as query/kql.py's does), where a parse error is.
// Pure. Values are quoted as query/kql.py's _quote does: "..." with \ and " escaped, so * ? ( ) :
// and spaces inside a value are literal (a quoted phrase has no wildcards). Field names are
// escaped as its _escape_word does (a field name is a bare word: it cannot be quoted).

// Python's str.isspace(), which query/kql.py's lexer splits words on (JS's \s differs a little).
const SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const KEYWORDS = ["and", "or", "not"];

/** A value as KQL: numbers and booleans bare, anything else a quoted phrase. */
export function kqlValue(v) {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return `"${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * A field name as KQL: one bare word that lexes back to the name (query/kql.py's _escape_word;
 * the parser takes no quoted phrase as a field name). A backslash before each of \():<>"*? and
 * whitespace, and before a name that is a keyword (and, or, not).
 */
export function kqlField(name) {
  const s = String(name);
  const escaped = s.replace(/[\\():<>"*?]/g, "\\$&").replace(new RegExp(SPACE.source, "g"), "\\$&");
  return (KEYWORDS.includes(s.toLowerCase()) ? "\\" : "") + escaped;
}

/** q and term joined by "and"; a q with an "or" in parentheses first, so the term binds to all of it. */
export function joinTerm(q, term) {
  if (!q) return term;
  return /\bor\b/i.test(q) ? `(${q}) and ${term}` : `${q} and ${term}`;
}

/**
 * The query's tokens as query/kql.py's _lex reads them: { kind, pos, end, text, wild } with kind
 * WORD PHRASE LPAREN RPAREN COLON CMP AND OR NOT, pos/end UTF-16 indices into q, text a WORD's or
 * PHRASE's value with its escapes undone, wild whether a WORD has an unescaped * or ?.
 * null for a query it refuses (an unclosed phrase, a trailing backslash).
 */
export function lex(q) {
  const out = [];
  for (let i = 0; i < q.length;) {
    const c = q[i], pos = i;
    if (SPACE.test(c)) { i += 1; continue; }
    if ("():".includes(c)) {
      i += 1;
      out.push({ kind: { "(": "LPAREN", ")": "RPAREN", ":": "COLON" }[c], pos, end: i, text: c, wild: false });
    } else if (c === "<" || c === ">") {
      i += q[i + 1] === "=" ? 2 : 1;
      out.push({ kind: "CMP", pos, end: i, text: q.slice(pos, i), wild: false });
    } else if (c === '"') {
      let text = "";
      for (i += 1; i < q.length && q[i] !== '"'; i += 1) {
        if (q[i] === "\\") i += 1;
        if (i < q.length) text += q[i];
      }
      if (i >= q.length) return null;
      i += 1;
      out.push({ kind: "PHRASE", pos, end: i, text, wild: false });
    } else {
      let text = "", escaped = false, wild = false;
      while (i < q.length && !SPACE.test(q[i]) && !'():<>"'.includes(q[i])) {
        if (q[i] === "\\") {
          if (i + 1 >= q.length) return null;
          escaped = true;
          i += 1;
        } else if (q[i] === "*" || q[i] === "?") wild = true;
        text += q[i];
        i += 1;
      }
      const keyword = !escaped && KEYWORDS.includes(q.slice(pos, i).toLowerCase());
      out.push({ kind: keyword ? q.slice(pos, i).toUpperCase() : "WORD", pos, end: i, text, wild });
    }
  }
  return out;
}

/**
 * Where the tokens say field:value as a whole term (bare or quoted alike, as the parser reads
 * both), or null: { start, not }, where the term starts in q and where a "not" just before it
 * starts (-1 without one).
 */
function findTerm(tokens, field, value) {
  const want = String(value);
  for (let i = 0; i + 2 < tokens.length; i++) {
    const [f, colon, v] = tokens.slice(i, i + 3);
    if (f.kind !== "WORD" || f.wild || f.text !== field || colon.kind !== "COLON") continue;
    if (!(v.kind === "PHRASE" || (v.kind === "WORD" && !v.wild)) || v.text !== want) continue;
    const before = tokens[i - 1];
    if (before && (before.kind === "COLON" || before.kind === "CMP")) continue;
    return { start: f.pos, not: before && before.kind === "NOT" ? before.pos : -1 };
  }
  return null;
}

/**
 * The query with field:value added (negate: "not field:value"; replace: instead of q), or null
 * when q already says it. An opposite term already in q is flipped rather than added. Terms are
 * found whole, as tokens: 500 is not in 5000, nor x:1 in labels.x:1 or in a quoted phrase.
 * value null means "no value": negate=false looks for events without the field (not field:*),
 * negate=true for events with it (field:*).
 */
export function withFilter(q, field, value, negate = false, replace = false) {
  const base = replace ? "" : q.trim();
  const name = kqlField(field);
  if (value === null) return joinTerm(base, negate ? `${name}:*` : `not ${name}:*`);
  const pos = `${name}:${kqlValue(value)}`;
  const tokens = lex(base);
  const found = tokens && findTerm(tokens, field, value);
  if (!found) return joinTerm(base, negate ? `not ${pos}` : pos);
  if (negate === (found.not >= 0)) return null;
  return negate ? `${base.slice(0, found.start)}not ${base.slice(found.start)}`
    : base.slice(0, found.not) + base.slice(found.start);
}

/** The query with "not field:value" added for each of values: "everything else". */
export function withoutValues(q, field, values) {
  return values.reduce((acc, v) => joinTerm(acc, `not ${kqlField(field)}:${kqlValue(v)}`), q.trim());
}

/**
 * Where the API's parse error points: the query cut around the character at `position` (clamped
 * into the query) and the message, with the position added unless it already names one.
 * The API counts characters (code points, as Python's str does) and JS strings count UTF-16
 * units, so position is converted: pos is the UTF-16 index (for setSelectionRange) and `at` the
 * whole character there, an emoji's two units together.
 */
export function errorSpot(query, message, position) {
  const chars = Array.from(query);
  const n = Math.max(0, Math.min(Math.trunc(Number(position)) || 0, chars.length));
  const before = chars.slice(0, n).join("");
  return {
    pos: before.length,
    before,
    at: chars[n] || " ",
    after: chars.slice(n + 1).join(""),
    message: /\bposition\b/.test(message) ? message : `${message} (at character ${n + 1})`,
  };
}
