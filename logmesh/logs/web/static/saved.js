// Saved searches: the query, range, columns and stack-by field under a name, kept by the logs
// service (/api/v1/saved-searches) so everyone using it shares them; and the export of the
// results (NDJSON, CSV) and "copy as curl" of the search behind the screen. Names are text.

import { setState } from "./actions.js";
import { ApiError, api, authHeaders } from "./api.js";
import { DEFAULT_COLS } from "./columns.js";
import { $, h } from "./dom.js";
import { state } from "./state.js";
import { rangeLabel } from "./time.js";
import { curlFor, exportName, exportURL, searchParams } from "./urls.js";

const PATH = "/api/v1/saved-searches";

async function send(method, path, body) {
  const resp = await fetch(path, { method, headers: authHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
    body: body == null ? null : JSON.stringify(body) });
  let out = {};
  try { out = await resp.json(); } catch { out = {}; }
  if (!resp.ok) throw new ApiError(resp.status, out, path);
  return out;
}

const why = (e) => (e.status === 401 || e.status === 403 ? "saving needs a write token (--token or --write-token)" : e.message);

function toggle(pop, open) {
  for (const p of document.querySelectorAll(".top .pop")) if (p !== pop) p.hidden = true;
  pop.hidden = !open;
}

async function renderSaved(note) {
  const list = $("saved-list");
  $("saved-note").textContent = note || "";
  let items = [];
  try { items = (await api(PATH)).saved_searches || []; } catch (e) { $("saved-note").textContent = why(e); }
  list.replaceChildren(...items.map((it) => h("li", { "data-id": it.id },
    h("button", { type: "button", class: "open", title: it.q || "(every event)", onclick: () => {
      toggle($("saved-pop"), false);
      setState({ q: it.q || "", from: it.from, to: it.to, cols: it.columns && it.columns.length ? it.columns : [...DEFAULT_COLS],
        by: it.by || state.by, event: "", view: "logs" });
    } }, h("strong", null, it.name), h("span", { class: "muted" }, ` ${rangeLabel(it.from, it.to)} · ${it.q || "every event"}`)),
    h("button", { type: "button", class: "x", title: "Delete", "aria-label": `Delete ${it.name}`, onclick: async () => {
      try { await send("DELETE", `${PATH}/${encodeURIComponent(it.id)}`); renderSaved("Deleted."); } catch (e) { $("saved-note").textContent = why(e); }
    } }, "×"))));
  if (!items.length) list.append(h("li", { class: "muted" }, "No saved searches yet."));
}

function renderExport() {
  const name = $("export-name").value || state.q;
  for (const fmt of ["ndjson", "csv"]) {
    const a = $(`export-${fmt}`);
    a.href = exportURL(state, fmt, name);
    a.setAttribute("download", exportName(name, fmt));
  }
  $("curl").value = curlFor(location.origin, "/api/v1/search", searchParams(state, { limit: 100, order: state.sort === "@timestamp" ? "asc" : "" }),
    !!sessionStorage.getItem("logmesh.token"));
}

/** With a token the download is fetched (a link cannot send it) and saved from a blob. */
async function download(e) {
  if (!sessionStorage.getItem("logmesh.token")) return;
  e.preventDefault();
  const a = e.currentTarget;
  const resp = await fetch(a.href, { headers: authHeaders({}) });
  if (!resp.ok) { $("curl").value = `Export: HTTP ${resp.status}`; return; }
  const url = URL.createObjectURL(await resp.blob());
  const tmp = h("a", { href: url, download: a.getAttribute("download") });
  tmp.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function initSaved() {
  $("saved-btn").addEventListener("click", () => { const open = $("saved-pop").hidden; toggle($("saved-pop"), open); if (open) { $("saved-name").value = ""; renderSaved(); } });
  $("saved-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("saved-name").value.trim();
    if (!name) return;
    try {
      await send("POST", PATH, { name, q: state.q, from: state.from, to: state.to, columns: state.cols, by: state.by });
      renderSaved(`Saved “${name}”.`);
    } catch (err) { $("saved-note").textContent = why(err); }
  });
  $("export-btn").addEventListener("click", () => { const open = $("export-pop").hidden; toggle($("export-pop"), open); if (open) renderExport(); });
  $("export-name").addEventListener("input", renderExport);
  for (const fmt of ["ndjson", "csv"]) $(`export-${fmt}`).addEventListener("click", download);
  $("copy-curl").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("curl").value); $("copy-curl").textContent = "Copied"; } catch { $("curl").select(); $("copy-curl").textContent = "Press Ctrl+C"; }
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".tool")) for (const p of document.querySelectorAll(".tool .pop")) p.hidden = true;
  });
}
