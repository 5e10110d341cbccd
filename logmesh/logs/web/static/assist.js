// Query help under the search box: field names with their type and frequent values (from
// /api/v1/fields and /api/v1/top) as you type, a note for a field no event in the range has,
// and the recent queries (this browser's, in localStorage). Every suggestion is text.

import { api } from "./api.js";
import { $, h } from "./dom.js";
import { fieldList } from "./fields.js";
import { fmtNum } from "./format.js";
import { state } from "./state.js";
import { applySuggestion, fieldSuggestions, remember, valueSuggestions, wordAt } from "./suggest.js";

const RECENT_KEY = "logmesh.recent";
const values = new Map(); // field -> top values of the range (this search's)
// ran: Enter ran the search from the box; no suggestion opens again until the next keystroke
// or focus (the search's field list, or a value list still coming, would reopen it)
const box = { items: [], pick: -1, word: null, seq: 0, ran: false };

export function recentQueries() {
  try { return JSON.parse(localStorage.getItem(RECENT_KEY)) || []; } catch { return []; }
}

/** Keep q among the recent queries (a search ran it). */
export function noteQuery(q) {
  values.clear();
  try { localStorage.setItem(RECENT_KEY, JSON.stringify(remember(recentQueries(), q))); } catch { /* private mode: none kept */ }
}

function close() {
  box.seq++; // a value list still being fetched is not shown
  $("suggest").hidden = true;
  box.items = []; box.pick = -1;
  $("q").setAttribute("aria-expanded", "false");
}

function show(head, items) {
  box.items = items; box.pick = -1;
  const list = $("suggest");
  list.replaceChildren(...(head ? [h("li", { class: "shead", role: "presentation" }, head)] : []),
    ...items.map((it, i) => h("li", { role: "option", id: `sg${i}`, class: "sg", "data-i": String(i),
      onmousedown: (e) => { e.preventDefault(); take(i); } }, it.text, it.note ? h("span", { class: "note" }, it.note) : null)));
  list.hidden = !items.length && !head;
  $("q").setAttribute("aria-expanded", String(!list.hidden));
}

async function topValues(field) {
  if (!values.has(field)) {
    values.set(field, api("/api/v1/top", { field, q: "", from: state.from, to: state.to, limit: 50 })
      .then((r) => r.values || [], () => []));
  }
  return values.get(field);
}

/** Suggestions for the word at the caret (recent queries when the box is empty). */
export async function suggest() {
  const q = $("q");
  const mine = ++box.seq;
  if (!q.value.trim()) {
    const recent = recentQueries();
    show(recent.length ? "Recent queries" : null, recent.map((r) => ({ text: r, recent: r })));
    return;
  }
  const word = wordAt(q.value, q.selectionStart ?? q.value.length);
  box.word = word;
  if (!word) { close(); return; }
  if (word.kind === "field") {
    if (!word.prefix) { close(); return; }
    show(null, fieldSuggestions(fieldList, word.prefix).map((f) => ({ text: f.name, note: f.type, field: f })));
    return;
  }
  const known = fieldList.find((f) => f.name === word.field);
  if (!known && !/^(params|labels)\./.test(word.field)) {
    show(`No event in this range has a field ${word.field}`, []);
    return;
  }
  const vals = await topValues(word.field);
  if (mine !== box.seq) return;
  show(null, valueSuggestions(vals, word.prefix).map((v) => ({ text: String(v.value), note: fmtNum(v.count), value: v })));
}

function take(i) {
  const it = box.items[i];
  const q = $("q");
  if (!it) return;
  if (it.recent != null) {
    q.value = it.recent;
    close();
    box.ran = true;
    $("search").requestSubmit();
    return;
  }
  const r = applySuggestion(q.value, box.word, it.field || it.value);
  q.value = r.q;
  q.setSelectionRange(r.caret, r.caret);
  q.focus();
  suggest();
}

function mark(delta) {
  const n = box.items.length;
  if (!n) return;
  box.pick = (box.pick + delta + n) % n;
  for (const li of $("suggest").querySelectorAll(".sg")) li.setAttribute("aria-selected", String(Number(li.dataset.i) === box.pick));
  $("q").setAttribute("aria-activedescendant", `sg${box.pick}`);
}

export function initAssist() {
  const q = $("q");
  q.addEventListener("input", () => { box.ran = false; suggest(); });
  q.addEventListener("focus", () => { box.ran = false; suggest(); });
  q.addEventListener("blur", close);
  document.addEventListener("fields", () => { if (document.activeElement === q && !box.ran) suggest(); }); // typed before they came
  q.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && ($("suggest").hidden || box.pick < 0)) box.ran = true; // the search runs
    if ($("suggest").hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); mark(e.key === "ArrowDown" ? 1 : -1); }
    else if ((e.key === "Enter" || e.key === "Tab") && box.pick >= 0) { e.preventDefault(); take(box.pick); }
    else if (e.key === "Escape") { e.stopPropagation(); close(); }
    else if (e.key === "Enter") close();
  });
}
