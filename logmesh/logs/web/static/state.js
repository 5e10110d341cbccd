// The page's state (view, query, range, live, open event, the histogram's stack-by field, the
// table's columns and sort, auto-refresh, UTC or local time) and its URL: every state is a link.
// parseState and urlFor are pure; the rest read and write the one state of this page.

import { colsParam, parseCols } from "./columns.js";
import { DEFAULT_RANGE } from "./time.js";

export const DEFAULT_BY = "service.name"; // the field the histogram stacks by

export const REFRESH = [0, 5, 15, 60]; // auto-refresh choices, seconds (0: off)

export const DEFAULTS = { view: "logs", q: "", from: DEFAULT_RANGE.from, to: DEFAULT_RANGE.to, live: false, event: "", by: DEFAULT_BY,
  cols: parseCols(""), sort: "", refresh: 0, utc: false };

/** The state the page shows; app.js's run() loads what it says. */
export const state = { ...DEFAULTS };

/** The search now running: its number (answers of an older one are dropped) and its AbortController. */
export const current = { gen: 0, ctl: null };

/** A state from a URL's query string ("?q=...&from=..."); what it leaves out is the default. */
export function parseState(search) {
  const p = new URLSearchParams(search);
  return {
    view: p.get("view") === "mesh" ? "mesh" : "logs",
    q: p.get("q") || "",
    from: p.get("from") || DEFAULTS.from,
    to: p.get("to") || DEFAULTS.to,
    live: p.get("live") === "1",
    event: p.get("event") || "",
    by: (p.get("by") || "").trim() || DEFAULTS.by,
    cols: parseCols(p.get("cols")),
    sort: p.get("sort") || "",
    refresh: REFRESH.includes(Number(p.get("refresh"))) ? Number(p.get("refresh")) : 0,
    utc: p.get("tz") === "utc",
  };
}

/** The URL (path and query string) of a state: defaults left out, from and to together. */
export function urlFor(st, pathname) {
  const p = new URLSearchParams();
  if (st.view !== "logs") p.set("view", st.view);
  if (st.q) p.set("q", st.q);
  if (st.from !== DEFAULTS.from || st.to !== DEFAULTS.to) { p.set("from", st.from); p.set("to", st.to); }
  if (st.live) p.set("live", "1");
  if (st.event) p.set("event", st.event);
  if (st.by && st.by !== DEFAULTS.by) p.set("by", st.by);
  if (st.cols && colsParam(st.cols)) p.set("cols", colsParam(st.cols));
  if (st.sort) p.set("sort", st.sort);
  if (st.refresh) p.set("refresh", String(st.refresh));
  if (st.utc) p.set("tz", "utc");
  const qs = p.toString();
  return pathname + (qs ? `?${qs}` : "");
}

export function readURL() {
  Object.assign(state, parseState(location.search));
}

/** The address bar to the state: a new history entry when push, else in place. */
export function writeURL(push) {
  const url = urlFor(state, location.pathname);
  if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
}

/** A full link that opens event seq over this query and range (not live). */
export function shareLink(seq) {
  return new URL(urlFor({ ...state, live: false, event: String(seq) }, location.pathname), location.href).href;
}
