// Query help, pure: what the word at the caret is (a field name, or a value after "field:"),
// the suggestions for it, the query with one taken, and the recent queries list.

import { kqlField, kqlValue } from "./kql.js";

export const MAX_SUGGESTIONS = 10;
export const MAX_RECENT = 10;
const STOP = /[\s()]/; // a word ends at whitespace and parentheses (quotes are handled apart)

/**
 * The word being typed at caret: { kind: "field", prefix, start, end } or { kind: "value",
 * field, prefix, start, end } (start..end is the text a suggestion replaces), or null when the
 * caret is inside a keyword or after a comparison.
 */
export function wordAt(q, caret) {
  let start = caret;
  let quoted = false;
  // inside an open quote: the value runs from the quote
  const before = q.slice(0, caret);
  const quotes = (before.match(/(?<!\\)"/g) || []).length;
  if (quotes % 2 === 1) { start = before.lastIndexOf('"'); quoted = true; }
  else while (start > 0 && !STOP.test(q[start - 1]) && q[start - 1] !== '"') start -= 1;
  let end = caret;
  while (end < q.length && !STOP.test(q[end]) && q[end] !== ":" && !quoted) end += 1;
  const word = q.slice(start, caret);
  if (!quoted) {
    const colon = word.search(/(?<!\\):/);
    if (colon < 0) {
      if (/^(and|or|not)$/i.test(word) || /[<>=]/.test(word)) return null;
      return { kind: "field", prefix: word.replace(/\\(.)/g, "$1"), start, end };
    }
    return { kind: "value", field: word.slice(0, colon).replace(/\\(.)/g, "$1"), prefix: word.slice(colon + 1).replace(/^"/, ""), start: start + colon + 1, end };
  }
  // a quoted value: the field is the word before the ':' before the quote
  const m = /((?:\\.|[^\s():"])+):\s*$/.exec(q.slice(0, start));
  if (!m) return null;
  return { kind: "value", field: m[1].replace(/\\(.)/g, "$1"), prefix: q.slice(start + 1, caret), start, end: caret };
}

/** Names of fields ({name, type}) matching prefix: those that start with it first, then those that contain it. */
export function fieldSuggestions(fields, prefix) {
  const p = prefix.toLowerCase();
  const starts = [], has = [];
  for (const f of fields) {
    const n = f.name.toLowerCase();
    if (n === p) continue;
    if (n.startsWith(p)) starts.push(f); else if (p && n.includes(p)) has.push(f);
  }
  return [...starts, ...has].slice(0, MAX_SUGGESTIONS);
}

/** Top values ({value, count}) matching prefix, as they are typed (case-insensitive). */
export function valueSuggestions(values, prefix) {
  const p = prefix.toLowerCase();
  return values.filter((v) => v.value != null && String(v.value).toLowerCase().includes(p)).slice(0, MAX_SUGGESTIONS);
}

/** The query with the word replaced by a suggestion, and the caret after it: a field ends in ':', a value in a space. */
export function applySuggestion(q, word, s) {
  const text = word.kind === "field" ? `${kqlField(s.name)}:` : `${kqlValue(s.value)} `;
  const rest = q.slice(word.end).replace(/^"/, "");
  return { q: q.slice(0, word.start) + text + rest, caret: word.start + text.length };
}

/** The recent queries with q first (once), at most MAX_RECENT; empty queries are not kept. */
export function remember(recent, q) {
  const t = q.trim();
  if (!t) return recent;
  return [t, ...recent.filter((r) => r !== t)].slice(0, MAX_RECENT);
}
