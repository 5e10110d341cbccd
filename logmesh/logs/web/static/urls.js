// The API calls behind the screen as links and commands: the export's URL and file name, and
// "copy as curl" of the search. Pure.

export const EXPORT_LIMIT = 10000; // events in an export from the page

/** A download name from free text (a saved search's name or the query): letters, digits, . - _ only. */
export function exportName(text, fmt) {
  const stem = String(text || "").trim().replace(/\.(csv|ndjson)$/i, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+|[.-]+$/g, "").slice(0, 80);
  return `${stem || "logmesh-export"}.${fmt}`;
}

/** The parameters of the search the screen shows (defaults left out). */
export function searchParams(st, extra) {
  const p = new URLSearchParams();
  if (st.q) p.set("q", st.q);
  p.set("from", st.from); p.set("to", st.to);
  for (const [k, v] of Object.entries(extra || {})) if (v != null && v !== "") p.set(k, String(v));
  return p;
}

/** /api/v1/export?... for the screen's query, range and (for CSV) columns, as a path. */
export function exportURL(st, fmt, name) {
  return `/api/v1/export?${searchParams(st, { format: fmt, limit: EXPORT_LIMIT, order: st.sort === "@timestamp" ? "asc" : "",
    columns: fmt === "csv" ? st.cols.join(",") : "", filename: exportName(name || st.q, fmt) })}`;
}

/** text as one shell word in single quotes. */
export const shellQuote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

/** A curl command of GET origin+path with params (URL-encoded by curl), and a bearer token from $LOGMESH_TOKEN when one is used. */
export function curlFor(origin, path, params, withToken) {
  const parts = ["curl", "-sG", shellQuote(origin + path)];
  for (const [k, v] of params) parts.push("--data-urlencode", shellQuote(`${k}=${v}`));
  if (withToken) parts.push("-H", '"Authorization: Bearer $LOGMESH_TOKEN"');
  return parts.join(" ");
}
