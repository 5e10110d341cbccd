// The field sidebar: the fields of the query's events in the range, the top values of the open
// ones (more on request), +/- to filter, a button to show a field as a column.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { $, h } from "./dom.js";
import { toggleCol } from "./columns.js";
import { fmtNum } from "./format.js";
import { kqlField, kqlValue } from "./kql.js";
import { current, state } from "./state.js";

const TOP_FIELDS = ["service.name", "log.level", "http.request.method", "url.path",
  "http.response.status_code"]; // listed first, and open at first
const TOP_VALUES = 5;
const MORE_VALUES = 50; // "more values"
const TYPE_BADGE = { keyword: "k", text: "t", long: "#", date: "d", object: "{}" };

const openFields = new Set(TOP_FIELDS);
export let fieldList = []; // the query help reads it too
const more = new Set(); // fields showing MORE_VALUES values
const topCache = new Map(); // "gen|field" -> answer, so re-rendering the list doesn't refetch

/** The fields of the range (/api/v1/fields), then the list. */
export async function loadFields(signal) {
  const mine = current.gen;
  try {
    const r = await api("/api/v1/fields", { q: state.q, from: state.from, to: state.to }, signal);
    if (mine !== current.gen) return;
    fieldList = (r.fields || []).filter((f) => f && f.name);
    document.dispatchEvent(new Event("fields")); // the query help suggests from them (assist.js)
  } catch (e) {
    if (mine !== current.gen || e.name === "AbortError") return;
    fieldList = [];
    $("fields").replaceChildren(h("li", { class: "muted" }, `Fields unavailable: ${e.message}`));
    return;
  }
  renderFields();
}

export function initFields() {
  $("field-filter").addEventListener("input", renderFields);
}

function renderFields() {
  const filter = $("field-filter").value.trim().toLowerCase();
  const list = $("fields");
  list.replaceChildren();
  const rank = (f) => { const i = TOP_FIELDS.indexOf(f.name); return i < 0 ? TOP_FIELDS.length : i; };
  const fields = fieldList.filter((f) => !filter || f.name.toLowerCase().includes(filter))
    .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  for (const f of fields) {
    const open = openFields.has(f.name);
    const values = h("div", { class: "values" });
    const li = h("li", { class: `field${open ? " open" : ""}`, "data-field": f.name },
      h("button", { type: "button", class: "fname", "aria-expanded": String(open),
        onclick: () => { if (openFields.has(f.name)) openFields.delete(f.name); else openFields.add(f.name); renderFields(); } },
      h("span", { class: "caret" }), h("span", { class: "name" }, f.name), h("span", { class: `type t-${f.type}` }, TYPE_BADGE[f.type] || "?")),
      h("button", { type: "button", class: `addcol${state.cols.includes(f.name) ? " on" : ""}`, title: "Show as a column", "aria-label": `Column ${f.name}`,
        "aria-pressed": String(state.cols.includes(f.name)), onclick: () => setState({ cols: toggleCol(state.cols, f.name) }) }, "▥"),
      values);
    list.append(li);
    if (open) loadTop(f, values);
  }
  if (!fields.length) list.append(h("li", { class: "muted" }, filter ? "No field matches." : "No fields yet."));
}

async function loadTop(f, box) {
  if (f.type === "object" || f.type === "date" || f.type === "text") {
    box.replaceChildren(h("div", { class: "muted hint" }, f.type === "text"
      ? "Full text: search its words, e.g. message:error" : `No top values for ${f.type} fields.`));
    return;
  }
  const limit = more.has(f.name) ? MORE_VALUES : TOP_VALUES;
  const key = `${current.gen}|${f.name}|${limit}`;
  const mine = current.gen;
  box.replaceChildren(h("div", { class: "muted hint" }, "…"));
  let r = topCache.get(key);
  if (!r) {
    try {
      r = await api("/api/v1/top", { field: f.name, q: state.q, from: state.from, to: state.to, limit }, current.ctl.signal);
    } catch (e) {
      if (e.name !== "AbortError" && mine === current.gen) box.replaceChildren(h("div", { class: "muted hint" }, e.status === 400 && e.body.position != null ? "" : e.message));
      return;
    }
    if (mine !== current.gen) return;
    for (const k of topCache.keys()) if (!k.startsWith(`${current.gen}|`)) topCache.delete(k); // this run's answers only
    topCache.set(key, r);
  }
  const vals = r.values || [];
  const total = r.total || vals.reduce((a, v) => a + v.count, 0) || 1;
  if (!vals.length) { box.replaceChildren(h("div", { class: "muted hint" }, "No values in this range.")); return; }
  box.replaceChildren(...vals.map((v) => {
    const pct = Math.max(0, Math.min(100, (100 * v.count) / total));
    const label = v.value === null ? "null" : String(v.value);
    const bar = h("span", { class: "bar" });
    bar.style.setProperty("width", `${pct.toFixed(1)}%`);
    return h("div", { class: "value" },
      h("button", { type: "button", class: "v", title: v.value === null ? `Filter for not ${kqlField(f.name)}:*` : `Filter for ${kqlField(f.name)}:${kqlValue(v.value)}`, "data-value": label,
        onclick: () => addFilter(f.name, v.value, false) }, bar, h("span", { class: "vt" }, label)),
      h("span", { class: "cnt", title: `${pct.toFixed(1)}% of ${fmtNum(total)}` }, fmtNum(v.count)),
      h("button", { type: "button", class: "pm", title: `Filter for ${label}`, "aria-label": `Filter for ${label}`, onclick: () => addFilter(f.name, v.value, false) }, "+"),
      h("button", { type: "button", class: "pm", title: `Filter out ${label}`, "aria-label": `Filter out ${label}`, onclick: () => addFilter(f.name, v.value, true) }, "−"));
  }));
  if (vals.length >= limit || limit > TOP_VALUES) {
    box.append(h("button", { type: "button", class: "morev", onclick: () => { if (more.has(f.name)) more.delete(f.name); else more.add(f.name); loadTop(f, box); } },
      limit > TOP_VALUES ? "Fewer values" : "More values"));
  }
}
