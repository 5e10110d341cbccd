// The results table: a page of events per search, older pages as it scrolls; the columns the
// state names (chosen, moved, sorted from their headers); a row's fields and stored line on click.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { asText, cellClass, colLabel, compareBy, fieldValue, flatFields, moveCol, nextSort, parseSort, readableMessage, textLines, toggleCol } from "./columns.js";
import { openEvent } from "./drawer.js";
import { $, h } from "./dom.js";
import { handleError, showWarnings } from "./errors.js";
import { color, counted, levelClass } from "./format.js";
import { current, shareLink, state } from "./state.js";
import { fmtTime, needsDate } from "./time.js";

const PAGE = 100; // events per search page
const MAX_ROWS = 3000; // rows kept while live; older ones are dropped from view
const MAX_MESSAGE = 500; // characters of a message shown in its cell
const MULTI = new Set(["message", "error.stack_trace"]); // shown as lines when expanded
const DATES = new Set(["@timestamp", "received_at"]); // epoch ms, shown as a time too

/** The rows shown: the next page's cursor, the keys of the rows (no duplicates), whether live dropped some. */
export const table = { cursor: null, loading: false, keys: new Set(), trimmed: false, withDate: false, error: false };
const keyOf = (ev) => (ev.seq != null ? `s${ev.seq}` : ev["event.id"] ? `e${ev["event.id"]}` : null);
// Pages come brief (texts past 300 characters cut, `cut` their lengths): one 10 MB message among
// the newest 100 made a 10 MB page. A row opened reads its event whole (wholeEvent).
const rangeParams = () => ({ from: state.from, to: state.to, order: state.sort === "@timestamp" ? "asc" : null });

/** The first page of the search for state (newest first), replacing the rows. */
export async function loadSearch(signal) {
  const mine = current.gen;
  $("rows").replaceChildren();
  table.cursor = null; table.keys.clear(); table.trimmed = false; table.loading = true; table.error = false;
  table.withDate = needsDate(state.from, state.to);
  renderHead();
  $("results").scrollTop = 0;
  $("took").textContent = "";
  renderMore("Loading…");
  try {
    const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE, brief: 1 }, signal);
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
    const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE, brief: 1, cursor: table.cursor }, current.ctl.signal);
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

/** The header: per column its name (a click sorts), and buttons to move it or take it out. */
export function renderHead() {
  const sort = parseSort(state.sort);
  const cols = state.cols;
  // the time column as wide as its text: it is never cut ("Nov 29 08:53:07.042" for long ranges)
  $("cols").replaceChildren(...cols.map((c) => {
    const col = h("col", { class: `c-${cellClass(c)}` });
    if (c === "@timestamp") col.style.setProperty("width", `${table.withDate ? 22 : 15}ch`);
    return col;
  }));
  $("head").replaceChildren(h("tr", null, cols.map((c, i) => h("th", { "data-col": c, "aria-sort": sort.field === c ? (sort.desc ? "descending" : "ascending") : null },
    h("button", { type: "button", class: "sort", title: c === "@timestamp" ? "Newest or oldest first" : `Sort the loaded rows by ${c}`, onclick: () => setState({ sort: nextSort(state.sort, c) }) },
      colLabel(c), sort.field === c ? (sort.desc ? " ▼" : " ▲") : ""),
    h("span", { class: "colbtns" },
      i > 0 ? h("button", { type: "button", title: "Move left", "aria-label": `Move ${c} left`, onclick: () => setState({ cols: moveCol(cols, c, -1) }) }, "‹") : null,
      i < cols.length - 1 ? h("button", { type: "button", title: "Move right", "aria-label": `Move ${c} right`, onclick: () => setState({ cols: moveCol(cols, c, 1) }) }, "›") : null,
      cols.length > 1 ? h("button", { type: "button", title: "Remove column", "aria-label": `Remove column ${c}`, onclick: () => setState({ cols: toggleCol(cols, c) }) }, "×") : null)))));
}

function cellFor(ev, c) {
  const v = fieldValue(ev, c);
  const cls = cellClass(c);
  if (c === "@timestamp") return h("td", { class: cls }, fmtTime(v, table.withDate));
  if (c === "service.name" && v != null) {
    const dot = h("i", { class: "dot" });
    dot.style.setProperty("background", color(v));
    return h("td", { class: cls }, h("span", { class: "chip" }, dot, String(v)));
  }
  if (c === "log.level" && v != null) return h("td", { class: cls }, h("span", { class: `level ${levelClass(v)}` }, String(v)));
  const text = c === "message" ? readableMessage(ev) : asText(v);
  const cut = text.length > MAX_MESSAGE || Boolean(ev.cut && ev.cut[c]);
  return h("td", { class: cls, title: c === "url.path" ? text : null }, cut ? `${text.slice(0, MAX_MESSAGE)}…` : text);
}

function eventRow(ev, fresh) {
  const lv = ev["log.level"] == null ? "" : ` row-${levelClass(ev["log.level"]).slice(3)}`; // tinted by level
  const tr = h("tr", { class: `ev${lv}${fresh ? " fresh" : ""}`, tabindex: "0", "aria-expanded": "false" }, state.cols.map((c) => cellFor(ev, c)));
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
  sortRows();
  return added;
}

/** Rows sorted by a column other than time: the loaded rows only (the API pages by time). */
function sortRows() {
  const { field, desc } = parseSort(state.sort);
  if (field === "@timestamp") return;
  const body = $("rows");
  const rows = [...body.querySelectorAll("tr.ev")];
  rows.sort((a, b) => compareBy(field, desc)(a._ev, b._ev));
  for (const tr of rows) {
    const next = tr.nextElementSibling;
    body.append(tr);
    if (next && next.classList.contains("detail")) body.append(next);
  }
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

/** Open or close a row's detail: actions, each field with filter for / out, column, copy, and the stored line. */
export function toggleRow(tr) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("detail")) {
    next.remove(); tr.setAttribute("aria-expanded", "false"); tr.classList.remove("open");
    return;
  }
  const ev = tr._ev;
  if (ev.cut && ev.seq != null) {  // a text was cut in the page: the detail shows the event whole
    const wait = h("tr", { class: "detail" }, h("td", { colspan: String(state.cols.length), class: "muted" }, "Loading the whole event…"));
    tr.after(wait);
    tr.setAttribute("aria-expanded", "true"); tr.classList.add("open");
    wholeEvent(ev.seq).then((whole) => {
      if (!wait.isConnected) return; // closed meanwhile
      wait.remove();
      tr._ev = whole;
      toggleRow(tr);
    }, (e) => {
      if (wait.isConnected) wait.firstChild.textContent = `The whole event could not be read: ${e.message}`;
    });
    return;
  }
  const actions = h("div", { class: "actions" });
  if (ev.seq != null) {
    actions.append(
      h("button", { type: "button", onclick: () => openEvent(String(ev.seq), true) }, "Context & trace"),
      h("a", { class: "btn", href: shareLink(ev.seq), title: "A link to this event that can be shared" }, "Link to this event"));
  }
  if (ev["trace.id"] != null) {
    actions.append(h("button", { type: "button", onclick: () => addFilter("trace.id", ev["trace.id"], false, true) }, "Filter this trace"));
  }
  const detail = h("tr", { class: "detail" }, h("td", { colspan: String(state.cols.length) }, actions, fieldTable(ev),
    h("div", { class: "rawhead muted" }, "Stored line"), h("pre", { class: "json raw" }, JSON.stringify(ev))));
  tr.after(detail);
  tr.setAttribute("aria-expanded", "true"); tr.classList.add("open");
}

/** One event whole, as stored (the search page's row had a text cut). */
async function wholeEvent(seq) {
  const r = await api(`/api/v1/events/${encodeURIComponent(seq)}`, { context: 0 }, current.ctl.signal);
  return r.event;
}

async function copy(btn, text) {
  try { await navigator.clipboard.writeText(text); btn.textContent = "copied"; } catch { btn.textContent = "copy failed"; }
}

function fieldTable(ev) {
  return h("table", { class: "fieldtab" }, h("tbody", null, flatFields(ev).map(([k, v]) => {
    const text = asText(v);
    const lines = MULTI.has(k) ? textLines(text) : [text];
    const simple = v == null || typeof v !== "object";
    const shown = state.cols.includes(k);
    return h("tr", { "data-field": k },
      h("th", null, k),
      h("td", { class: "fbtns" },
        simple ? h("button", { type: "button", title: `Filter for ${k}`, "aria-label": `Filter for ${k}`, onclick: () => addFilter(k, v, false) }, "+") : null,
        simple ? h("button", { type: "button", title: `Filter out ${k}`, "aria-label": `Filter out ${k}`, onclick: () => addFilter(k, v, true) }, "−") : null,
        h("button", { type: "button", title: shown ? "Remove the column" : "Add as a column", "aria-label": `${shown ? "Remove" : "Add"} column ${k}`,
          onclick: () => setState({ cols: toggleCol(state.cols, k) }) }, shown ? "▥−" : "▥+"),
        h("button", { type: "button", title: "Copy the value", "aria-label": `Copy ${k}`, onclick: (e) => copy(e.currentTarget, text) }, "copy")),
      h("td", { class: "fval" }, lines.length > 1 ? h("pre", { class: "lines" }, lines.map((l) => h("div", null, l))) : text,
        DATES.has(k) && typeof v === "number" ? h("span", { class: "muted" }, ` ${fmtTime(v, true)}`) : null));
  })));
}
