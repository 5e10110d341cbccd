// One event in the side drawer: a shareable link, its service's events before and after, its trace.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { $, h, jsonView } from "./dom.js";
import { color, fmtNum } from "./format.js";
import { kqlValue } from "./kql.js";
import { shareLink, state, writeURL } from "./state.js";
import { around, fmtTime } from "./time.js";

const CONTEXT = 10; // events of the same service either side
const NEIGHBOURHOOD_MS = 6e4; // "This service ±1 minute"

let drawerCtl = null;

export function closeDrawer(updateUrl = true) {
  if (drawerCtl) { drawerCtl.abort(); drawerCtl = null; }
  $("drawer").hidden = true;
  if (updateUrl && state.event) { state.event = ""; writeURL(true); }
}

/** Show event seq (its number in the store) and put it in the URL. */
export async function openEvent(seq, push) {
  state.event = String(seq);
  writeURL(push);
  if (drawerCtl) drawerCtl.abort();
  drawerCtl = new AbortController();
  const dr = $("drawer");
  dr.hidden = false;
  dr.replaceChildren(drawerHead(seq), h("p", { class: "muted pad" }, "Loading…"));
  let r;
  try {
    // brief: the events around it as their rows show them (texts cut); one opens in full
    r = await api(`/api/v1/events/${encodeURIComponent(seq)}`, { context: CONTEXT, brief: 1 }, drawerCtl.signal);
  } catch (e) {
    if (e.name === "AbortError") return;
    dr.replaceChildren(drawerHead(seq), h("p", { class: "pad error" }, e.status === 404 ? `No event ${seq} in the store.` : e.message));
    return;
  }
  const ev = r.event || {};
  const svc = ev["service.name"];
  const trace = ev["trace.id"];
  const link = shareLink(ev.seq ?? seq);
  const linkInput = h("input", { type: "text", readonly: true, value: link, "aria-label": "Link to this event" });
  const copy = h("button", { type: "button", onclick: async () => {
    try { await navigator.clipboard.writeText(link); copy.textContent = "Copied"; } catch { linkInput.select(); copy.textContent = "Press Ctrl+C"; }
  } }, "Copy");
  const ts = ev["@timestamp"];
  dr.replaceChildren(
    drawerHead(seq, ev),
    h("div", { class: "share" }, linkInput, copy),
    h("div", { class: "actions pad" },
      svc != null && typeof ts === "number" ? h("button", { type: "button", onclick: () => setState({
        q: `service.name:${kqlValue(svc)}`, ...around(ts, NEIGHBOURHOOD_MS), live: false, event: "" }) },
      "This service ±1 minute") : null,
      trace != null ? h("button", { type: "button", onclick: () => addFilter("trace.id", trace, false, true) }, "Search this trace") : null),
    h("h3", null, "Context", svc != null ? h("span", { class: "muted" }, ` · ${svc}, before and after`) : null),
    miniTable([...(r.before || []), ev, ...(r.after || [])], ev, false),
    h("h3", null, "Trace", trace != null ? h("span", { class: "muted" }, ` · ${trace}`) : null),
    trace == null ? h("p", { class: "muted pad" }, "This event has no trace.id.")
      : miniTable((r.trace || []).slice().sort((a, b) => (a["@timestamp"] - b["@timestamp"]) || ((a.seq ?? 0) - (b.seq ?? 0))), ev, true),
    h("h3", null, "Event"),
    jsonView(ev));
}

function drawerHead(seq, ev) {
  return h("div", { class: "dhead" },
    h("div", null, h("strong", null, `Event ${seq}`),
      ev && typeof ev["@timestamp"] === "number" ? h("span", { class: "muted" }, ` · ${new Date(ev["@timestamp"]).toLocaleString()}`) : null),
    h("button", { type: "button", class: "x", "aria-label": "Close", title: "Close (Esc)", onclick: () => closeDrawer() }, "×"));
}

/** "[1,900,000 chars]" before a text the API cut (brief; the cell's end is cut off by the
 *  table anyway), null for a whole one. */
function cutNote(e, field) {
  const whole = e.cut && e.cut[field];
  if (typeof whole !== "number") return null;
  return h("span", { class: "muted cut", title: "Cut: open this event to read it all" }, `[${fmtNum(whole)} chars] `);
}

function miniTable(events, here, withService) {
  if (!events.length) return h("p", { class: "muted pad" }, "Nothing.");
  return h("table", { class: "mini" }, h("tbody", null, events.map((e) => {
    const isHere = (e.seq != null && e.seq === here.seq) || e === here;
    const tr = h("tr", { class: isHere ? "here" : null, title: isHere ? "This event" : "Open this event" },
      h("td", { class: "t" }, fmtTime(e["@timestamp"], false)),
      withService ? h("td", { class: "svc" }, h("span", { class: "chip" }, h("i", { class: "dot" }), String(e["service.name"] ?? ""))) : null,
      h("td", { class: "m" }, String(e["http.request.method"] ?? "")),
      h("td", { class: "u" }, String(e["url.path"] ?? "")),
      h("td", { class: "msg" }, cutNote(e, "message"), String(e.message ?? "")));
    if (withService && e["service.name"] != null) tr.querySelector(".dot").style.setProperty("background", color(e["service.name"]));
    if (!isHere && e.seq != null) tr.addEventListener("click", () => openEvent(String(e.seq), true));
    return tr;
  })));
}
