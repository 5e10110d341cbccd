// Values into KQL queries: quoting, adding and negating field:value terms, where a parse error is.
// Pure. The quoting is query/kql.py's _quote: "..." with \ and " escaped, so * ? ( ) : and
// spaces inside a value are literal (a quoted phrase has no wildcards).

/** A value as KQL: numbers and booleans bare, anything else a quoted phrase. */
export function kqlValue(v) {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return `"${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** q and term joined by "and"; a q with an "or" in parentheses first, so the term binds to all of it. */
export function joinTerm(q, term) {
  if (!q) return term;
  return /\bor\b/i.test(q) ? `(${q}) and ${term}` : `${q} and ${term}`;
}

/**
 * The query with field:value added (negate: "not field:value"; replace: instead of q), or null
 * when q already says it. An opposite term already in q is flipped rather than added.
 * value null means "no value": negate=false looks for events without the field (not field:*),
 * negate=true for events with it (field:*).
 */
export function withFilter(q, field, value, negate = false, replace = false) {
  const base = replace ? "" : q.trim();
  if (value === null) return joinTerm(base, negate ? `${field}:*` : `not ${field}:*`);
  const pos = `${field}:${kqlValue(value)}`;
  const neg = `not ${pos}`;
  if (negate) {
    if (base.includes(neg)) return null;
    return base.includes(pos) ? base.replace(pos, neg) : joinTerm(base, neg);
  }
  if (base.includes(neg)) return base.replace(neg, pos);
  if (base.includes(pos)) return null;
  return joinTerm(base, pos);
}

/** The query with "not field:value" added for each of values: "everything else". */
export function withoutValues(q, field, values) {
  return values.reduce((acc, v) => joinTerm(acc, `not ${field}:${kqlValue(v)}`), q.trim());
}

/**
 * Where the API's parse error points: the query cut around the character at `position` (clamped
 * into the query) and the message, with the position added unless it already names one.
 */
export function errorSpot(query, message, position) {
  const pos = Math.max(0, Math.min(Number(position) || 0, query.length));
  return {
    pos,
    before: query.slice(0, pos),
    at: query.slice(pos, pos + 1) || " ",
    after: query.slice(pos + 1),
    message: /\bposition\b/.test(message) ? message : `${message} (at character ${pos + 1})`,
  };
}
