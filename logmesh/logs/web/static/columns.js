// The results table's columns: which fields, in which order, sorted how; a field's value in an
// event (params.a.b and labels.k inside their objects) and a row's readable text. Pure.

import { counted } from "./format.js";

export const DEFAULT_COLS = ["@timestamp", "service.name", "http.request.method", "url.path", "log.level", "message"];
// the cell classes app.css styles (and the tests find); other fields get "f"
const CELL = { "@timestamp": "t", "service.name": "svc", "http.request.method": "m", "url.path": "u", "log.level": "lv", message: "msg" };
const LABEL = { "@timestamp": "Time", "service.name": "Service", "http.request.method": "Method", "url.path": "URI", "log.level": "Level", message: "Message" };
const SHORT_PARAMS = 80; // characters of a request's params in its row

export const cellClass = (name) => CELL[name] || "f";
export const colLabel = (name) => LABEL[name] || name;

/** "a,b,c" from the URL -> the field names (defaults when empty). */
export function parseCols(text) {
  const cols = [...new Set(String(text || "").split(",").map((c) => c.trim()).filter(Boolean))];
  return cols.length ? cols : [...DEFAULT_COLS];
}

/** The URL's cols value: "" for the defaults. */
export const colsParam = (cols) => (cols.join(",") === DEFAULT_COLS.join(",") ? "" : cols.join(","));

/** cols with name added at the end, or taken out when it is there (never the last one). */
export function toggleCol(cols, name) {
  if (!cols.includes(name)) return [...cols, name];
  return cols.length > 1 ? cols.filter((c) => c !== name) : cols;
}

/** cols with name moved by delta places (-1 left, +1 right), kept inside the row. */
export function moveCol(cols, name, delta) {
  const i = cols.indexOf(name), j = i + delta;
  if (i < 0 || j < 0 || j >= cols.length) return cols;
  const out = [...cols];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

/** "field" (ascending) or "-field" (descending) -> { field, desc }; "" -> newest first by time. */
export function parseSort(text) {
  const t = String(text || "");
  if (!t) return { field: "@timestamp", desc: true };
  return t.startsWith("-") ? { field: t.slice(1), desc: true } : { field: t, desc: false };
}

/** The next sort after a click on field's header: desc, then asc, by time back to the default. */
export function nextSort(sort, field) {
  const cur = parseSort(sort);
  if (cur.field !== field) return field === "@timestamp" ? "" : `-${field}`;
  if (field === "@timestamp") return cur.desc ? "@timestamp" : "";
  return cur.desc ? field : `-${field}`;
}

/** A field's value in an event: its own key first, else inside params/labels by the dotted path. */
export function fieldValue(ev, name) {
  if (Object.hasOwn(ev, name)) return ev[name];
  const i = name.indexOf(".");
  const obj = i > 0 ? ev[name.slice(0, i)] : null, rest = name.slice(i + 1);
  if (obj == null || typeof obj !== "object") return undefined;
  if (Object.hasOwn(obj, rest)) return obj[rest]; // labels {"event.duration_ms": 5}
  let v = obj;
  for (const p of rest.split(".")) {
    if (v == null || typeof v !== "object") return undefined;
    v = v[p];
  }
  return v;
}

/** A comparator of events by field (missing values last, numbers as numbers), then by seq. */
export function compareBy(field, desc) {
  const sign = desc ? -1 : 1;
  return (a, b) => {
    const x = fieldValue(a, field), y = fieldValue(b, field);
    if (x == null || y == null) return x == null && y == null ? 0 : x == null ? 1 : -1;
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sign * (c || ((a.seq ?? 0) - (b.seq ?? 0)));
  };
}

/** A value as one line of a cell: objects as compact JSON. */
export const asText = (v) => (v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** A request's params shortly: 'id=1 name="pen"', cut at SHORT_PARAMS characters. */
export function shortParams(params) {
  if (params == null || typeof params !== "object") return asText(params);
  const text = Object.entries(params).map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`).join(" ");
  return text.length > SHORT_PARAMS ? `${text.slice(0, SHORT_PARAMS - 1)}…` : text;
}

/**
 * The message as a row shows it: a service's logged request packet ({"method","uri","params"})
 * as "METHOD /path params", a stack trace or any text of several lines as its first line and
 * how many more; anything else as it is.
 */
export function readableMessage(ev) {
  const msg = ev.message == null ? "" : String(ev.message);
  if (msg.startsWith("{")) {
    let req = null;
    try { req = JSON.parse(msg); } catch { req = null; }
    if (req && typeof req === "object" && (req.method != null || req.uri != null)) {
      const params = req.params && typeof req.params === "object" ? shortParams(req.params) : "";
      return [req.method, req.uri, params].filter((p) => p != null && p !== "").join(" ");
    }
  }
  const lines = textLines(msg);
  const n = wholeLines(ev, "message", lines);
  if (n > 1) return `${lines[0]}  (+${n - 1} lines)`;
  // a Python log.exception (or an ECS logger) keeps the trace beside a one-line message
  const trace = ev["error.stack_trace"] == null ? [] : textLines(ev["error.stack_trace"]);
  return trace.length > 0 && trace[0] !== "" ? `${msg}  (+${counted(wholeLines(ev, "error.stack_trace", trace), "line")} of stack trace)` : msg;
}

/** How many lines a field's whole text has: those of `lines`, or, for a text the search cut
 *  (GET /api/v1/search?brief=1: `cut`), the count the API sends in `cut_lines` (1 when absent). */
function wholeLines(ev, field, lines) {
  if (!(ev.cut && ev.cut[field])) return lines.length;
  return (ev.cut_lines && ev.cut_lines[field]) || 1;
}

/** A text's lines: real line breaks, or the literal \n of a trace that was escaped once too often. */
export function textLines(text) {
  const t = String(text ?? "");
  const lines = t.includes("\n") ? t.split(/\r?\n/) : t.includes("\\n") ? t.split(/(?:\\r)?\\n/) : [t];
  return lines.length > 1 && lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines;
}

/** An event's fields for the expanded view: its keys, params and labels flattened one level. */
export function flatFields(ev) {
  const out = [];
  for (const [k, v] of Object.entries(ev)) {
    if ((k === "params" || k === "labels") && v && typeof v === "object" && !Array.isArray(v)) {
      for (const [sub, sv] of Object.entries(v)) out.push([`${k}.${sub}`, sv]);
    } else out.push([k, v]);
  }
  return out;
}
