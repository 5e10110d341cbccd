// The results table: a page of events per search, older pages as it scrolls, a row's JSON on click.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { openEvent } from "./drawer.js";
import { $, h, jsonView } from "./dom.js";
import { handleError, showWarnings } from "./errors.js";
import { color, counted, levelClass } from "./format.js";
import { current, shareLink, state } from "./state.js";
import { fmtTime, needsDate } from "./time.js";

const PAGE = 100; // events per search page
const MAX_ROWS = 3000; // rows kept while live; older ones are dropped from view
const MAX_MESSAGE = 500; // characters of a message shown in its cell

/** The rows shown: the next page's cursor, the keys of the rows (no duplicates), whether live dropped some. */
export const table = { cursor: null, loading: false, keys: new Set(), trimmed: false, withDate: false, error: false };
const keyOf = (ev) => (ev.seq != null ? `s${ev.seq}` : ev["event.id"] ? `e${ev["event.id"]}` : null);
const rangeParams = () => ({ from: state.from, to: state.to });

/** The first page of the search for state (newest first), replacing the rows. */
export async function loadSearch(signal) {
  const mine = current.gen;
  $("rows").replaceChildren();
  table.cursor = null; table.keys.clear(); table.trimmed = false; table.loading = true; table.error = false;
  table.withDate = needsDate(state.from, state.to);
  $("results").scrollTop = 0;
  $("took").textContent = "";
  renderMore("Loading…");
  try {
    const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE }, signal);
    if (mine !== current.gen) return;
    const sentence = r.query && r.query.sentence;
    $("sentence").textContent = state.q && sentence ? `where ${sentence}` : "";
    $("took").textContent = typeof r.took_ms === "number" ? `${r.took_ms} ms` : "";
    showWarnings(r.warnings);
    addRows(r.events || [], "end");
    table.cursor = r.next_cursor || null;
  } catch (e) {
    if (mine === current.gen) { table.error = e.name !== "AbortError"; handleError(e, "Search"); $("sentence").textContent = ""; }
  } finally {
    if (mine === current.gen) { table.loading = false; renderMore(); }
  }
}

/** The next (older) page, if there is one and none is loading. */
export async function loadMore() {
  if (!table.cursor || table.loading || state.view !== "logs") return;
  const mine = current.gen;
  table.loading = true;
  renderMore("Loading more…");
  try {
    const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE, cursor: table.cursor }, current.ctl.signal);
    if (mine !== current.gen) return;
    addRows(r.events || [], "end");
    table.cursor = r.next_cursor || null;
  } catch (e) {
    if (mine === current.gen) handleError(e, "Search");
  } finally {
    if (mine === current.gen) { table.loading = false; renderMore(); }
  }
}

/** The line under the table: text while loading, else a button for more, "no events", or the count. */
export function renderMore(text) {
  const more = $("more");
  if (text) { more.replaceChildren(h("span", { class: "muted" }, text)); return; }
  const n = table.keys.size;
  if (table.error && !n) {
    more.replaceChildren(); // the error is shown at the query or in the banner
  } else if (table.cursor) {
    more.replaceChildren(h("button", { type: "button", onclick: loadMore }, "Load older events"));
  } else if (n === 0) {
    more.replaceChildren(h("div", { class: "empty" },
      h("strong", null, "No events match."),
      " Widen the time range",
      state.q ? " or clear the query." : ".",
      " ",
      h("button", { type: "button", onclick: () => setState({ from: "now-24h", to: "now" }) }, "Last 24 hours"),
      state.q ? h("button", { type: "button", onclick: () => setState({ q: "" }) }, "Clear query") : null));
  } else {
    more.replaceChildren(h("span", { class: "muted" }, table.trimmed
      ? "Older rows were dropped while live; search again to page through them."
      : `${counted(n, "event")}, no more in this range.`));
  }
}

function cell(cls, text, title) {
  return h("td", { class: cls, title: title || null }, text == null ? "" : String(text));
}

function eventRow(ev, fresh) {
  const svc = ev["service.name"];
  const msg = ev.message == null ? "" : String(ev.message);
  const tr = h("tr", { class: `ev${fresh ? " fresh" : ""}`, tabindex: "0", "aria-expanded": "false" },
    cell("t", fmtTime(ev["@timestamp"], table.withDate)),
    h("td", { class: "svc" }, svc == null ? "" : h("span", { class: "chip" }, h("i", { class: "dot" }), String(svc))),
    cell("m", ev["http.request.method"]),
    cell("u", ev["url.path"], ev["url.path"]),
    h("td", { class: "lv" }, ev["log.level"] == null ? "" : h("span", { class: `level ${levelClass(ev["log.level"])}` }, String(ev["log.level"]))),
    cell("msg", msg.length > MAX_MESSAGE ? `${msg.slice(0, MAX_MESSAGE)}…` : msg));
  if (svc != null) tr.querySelector(".dot").style.setProperty("background", color(svc));
  tr._ev = ev;
  return tr;
}

/** Rows for events not shown yet, at the "end" (older) or the "start" (live); how many were added. */
export function addRows(events, where) {
  const frag = document.createDocumentFragment();
  let added = 0;
  for (const ev of events) {
    const k = keyOf(ev);
    if (k) { if (table.keys.has(k)) continue; table.keys.add(k); }
    frag.append(eventRow(ev, where === "start"));
    added += 1;
  }
  const body = $("rows");
  if (where === "start") body.prepend(frag); else body.append(frag);
  if (where === "start" && body.children.length > MAX_ROWS) trimRows();
  return added;
}

function trimRows() {
  const body = $("rows");
  while (body.children.length > MAX_ROWS) {
    const last = body.lastElementChild;
    if (last._ev) table.keys.delete(keyOf(last._ev));
    last.remove();
  }
  table.cursor = null; table.trimmed = true;
  renderMore();
}

/** Open or close a row's detail: actions and the event's JSON. */
export function toggleRow(tr) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("detail")) {
    next.remove(); tr.setAttribute("aria-expanded", "false"); tr.classList.remove("open");
    return;
  }
  const ev = tr._ev;
  const actions = h("div", { class: "actions" });
  if (ev.seq != null) {
    actions.append(
      h("button", { type: "button", onclick: () => openEvent(String(ev.seq), true) }, "Context & trace"),
      h("a", { class: "btn", href: shareLink(ev.seq), title: "A link to this event that can be shared" }, "Link to this event"));
  }
  if (ev["trace.id"] != null) {
    actions.append(h("button", { type: "button", onclick: () => addFilter("trace.id", ev["trace.id"], false, true) }, "Filter this trace"));
  }
  const detail = h("tr", { class: "detail" }, h("td", { colspan: "6" }, actions, jsonView(ev)));
  tr.after(detail);
  tr.setAttribute("aria-expanded", "true"); tr.classList.add("open");
}
