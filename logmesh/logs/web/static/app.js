// logmesh web UI: plain JS, no build step, no third-party code.
// It calls only the public /api/v1/ API (docs/api.md). Log content is untrusted:
// it reaches the page through textContent / text nodes only, never as HTML.
"use strict";
(() => {
  const PAGE = 100; // events per search page
  const MAX_ROWS = 3000; // rows kept while live; older ones are dropped from view
  const TOP_FIELDS = ["service.name", "log.level", "http.request.method", "url.path",
    "http.response.status_code"]; // opened in the sidebar at first
  const COLORS = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#84cc16", "#06b6d4",
    "#ec4899", "#8b5cf6", "#f97316", "#64748b", "#6366f1", "#a855f7"];
  const QUICK = [["now-5m", "Last 5 minutes"], ["now-15m", "Last 15 minutes"],
    ["now-30m", "Last 30 minutes"], ["now-1h", "Last 1 hour"], ["now-4h", "Last 4 hours"],
    ["now-12h", "Last 12 hours"], ["now-24h", "Last 24 hours"], ["now-7d", "Last 7 days"],
    ["now-30d", "Last 30 days"]];
  const UNIT_MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 };
  const UNIT_NAME = { s: "second", m: "minute", h: "hour", d: "day", w: "week" };
  const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  const DEFAULTS = { view: "logs", q: "", from: "now-15m", to: "now", live: false, event: "" };

  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  // -- DOM helpers: strings always become text nodes -------------------------------------
  function put(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  function setProps(el, props) {
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.setAttribute("class", v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    return el;
  }
  const h = (tag, props, ...kids) => put(setProps(document.createElement(tag), props), kids);
  const s = (tag, props, ...kids) => put(setProps(document.createElementNS(SVG, tag), props), kids);

  // -- formatting ----------------------------------------------------------------------------
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtTime(ms, withDate) {
    if (typeof ms !== "number") return String(ms ?? "");
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    return withDate ? `${MONTHS[d.getMonth()]} ${pad(d.getDate())} ${t}` : t;
  }
  function localInput(ms) { // for <input type=datetime-local>
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  const fmtNum = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");
  function fmtRate(r) {
    if (typeof r !== "number") return "–";
    return r >= 10 ? `${r.toFixed(0)}/s` : r >= 0.1 ? `${r.toFixed(1)}/s` : r > 0 ? `${(r * 60).toFixed(1)}/min` : "0/s";
  }
  function parseRelative(t) { // "now-15m" -> ms back from now, else null
    const m = /^now-(\d+)([smhdw])$/.exec(t || "");
    return m ? Number(m[1]) * UNIT_MS[m[2]] : t === "now" ? 0 : null;
  }
  function toMs(t) { // a from/to value as epoch ms in the browser's clock (for display only)
    const rel = parseRelative(t);
    if (rel != null) return Date.now() - rel;
    if (/^\d+$/.test(t)) return Number(t);
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? null : ms;
  }
  function rangeLabel(from, to) {
    const quick = QUICK.find(([f]) => f === from);
    if (to === "now") {
      if (quick) return quick[1];
      const m = /^now-(\d+)([smhdw])$/.exec(from);
      if (m) return `Last ${m[1]} ${UNIT_NAME[m[2]]}${m[1] === "1" ? "" : "s"}`;
    }
    const a = toMs(from), b = toMs(to);
    if (a == null || b == null) return `${from} → ${to}`;
    const sameDay = new Date(a).toDateString() === new Date(b).toDateString();
    return `${fmtTime(a, true).slice(0, -4)} → ${fmtTime(b, !sameDay).slice(0, -4)}`;
  }
  function kqlValue(v) {
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return `"${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  }

  // -- colours per service: a hash of the name, so every view and every reload agree ----------
  function color(name) {
    let x = 0x811c9dc5; // FNV-1a
    for (const c of new TextEncoder().encode(String(name))) x = Math.imul(x ^ c, 0x01000193) >>> 0;
    return COLORS[x % COLORS.length];
  }

  // -- state <-> URL ---------------------------------------------------------------------------
  let state = { ...DEFAULTS };
  function readURL() {
    const p = new URLSearchParams(location.search);
    state = {
      view: p.get("view") === "mesh" ? "mesh" : "logs",
      q: p.get("q") || "",
      from: p.get("from") || DEFAULTS.from,
      to: p.get("to") || DEFAULTS.to,
      live: p.get("live") === "1",
      event: p.get("event") || "",
    };
  }
  function urlFor(st) {
    const p = new URLSearchParams();
    if (st.view !== "logs") p.set("view", st.view);
    if (st.q) p.set("q", st.q);
    if (st.from !== DEFAULTS.from || st.to !== DEFAULTS.to) { p.set("from", st.from); p.set("to", st.to); }
    if (st.live) p.set("live", "1");
    if (st.event) p.set("event", st.event);
    const qs = p.toString();
    return location.pathname + (qs ? `?${qs}` : "");
  }
  function writeURL(push) {
    const url = urlFor(state);
    if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
  }
  const shareLink = (seq) => new URL(urlFor({ ...state, live: false, event: String(seq) }), location.href).href;

  // -- the API ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body, path) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status; this.body = body || {}; this.path = path;
    }
  }
  async function api(path, params, signal) {
    const url = new URL(path, location.href);
    for (const [k, v] of Object.entries(params || {})) if (v != null && v !== "") url.searchParams.set(k, v);
    let resp;
    try {
      resp = await fetch(url, { signal, headers: authHeaders({ Accept: "application/json" }) });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, { error: "cannot reach the logs service; is it running?" }, path);
    }
    let body = null;
    try { body = await resp.json(); } catch { body = null; }
    if (!resp.ok) throw new ApiError(resp.status, body || { error: `HTTP ${resp.status} ${resp.statusText}` }, path);
    return body;
  }
  const rangeParams = () => ({ from: state.from, to: state.to });

  // -- a read token, when the logs service asks for one (401) -------------------------------------
  const TOKEN_KEY = "logmesh.token";
  function authHeaders(headers) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
  }
  function askToken() {
    const b = $("banner");
    if (!b.hidden && b.querySelector("form")) return;
    const input = h("input", { type: "password", placeholder: "read token", "aria-label": "Read token", autocomplete: "off" });
    b.replaceChildren(h("form", { class: "token", onsubmit: (e) => {
      e.preventDefault();
      if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value); else sessionStorage.removeItem(TOKEN_KEY);
      b.hidden = true;
      if (live.ctl) { live.ctl.abort(); live.ctl = null; }
      run(false);
    } }, h("span", null, "This logs service needs a read token (--token or --read-token). Kept for this tab only: "),
    input, h("button", { type: "submit" }, "Use")));
    b.hidden = false;
    input.focus();
  }

  // -- errors: the query's in place, the rest in a banner -------------------------------------------
  function showBanner(text) {
    const b = $("banner");
    b.replaceChildren(h("span", null, text), h("button", { type: "button", class: "x", "aria-label": "Dismiss", onclick: () => { b.hidden = true; } }, "×"));
    b.hidden = false;
  }
  function clearErrors() {
    if (!$("banner").querySelector("form")) $("banner").hidden = true;
    $("qerr").hidden = true;
    $("q").classList.remove("invalid");
    $("q").removeAttribute("aria-invalid");
  }
  function showQueryError(query, message, position) {
    const pos = Math.max(0, Math.min(Number(position) || 0, query.length));
    const box = $("qerr");
    box.replaceChildren(
      h("code", null, query.slice(0, pos), h("mark", null, query.slice(pos, pos + 1) || " "), query.slice(pos + 1)),
      h("div", { class: "msg" }, /\bposition\b/.test(message) ? message : `${message} (at character ${pos + 1})`));
    box.hidden = false;
    const input = $("q");
    input.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    if (document.activeElement === input) input.setSelectionRange(pos, Math.min(pos + 1, query.length));
  }
  function handleError(e, what) {
    if (e.name === "AbortError") return;
    if (e instanceof ApiError && e.status === 401) {
      askToken();
    } else if (e instanceof ApiError && e.status === 400 && e.body.position != null) {
      showQueryError(state.q, e.body.error || "cannot parse the query", e.body.position);
    } else if (e instanceof ApiError && e.status === 404 && !e.body.error) {
      showBanner(`${what}: this logs service has no ${e.path} (404); is it an older version?`);
    } else {
      showBanner(`${what}: ${e.message}`);
    }
  }

  // -- running a search ----------------------------------------------------------------------------
  let runCtl = null;
  let gen = 0; // bumped per run: answers of an older run are dropped
  function run(push = false) {
    writeURL(push);
    syncControls();
    if (runCtl) runCtl.abort();
    runCtl = new AbortController();
    gen += 1;
    clearErrors();
    if (state.view === "logs") {
      loadSearch(runCtl.signal);
      loadHistogram(runCtl.signal);
      loadFields(runCtl.signal);
    } else {
      loadMesh(runCtl.signal);
    }
    startLive();
    if (state.event) openEvent(state.event, false); else closeDrawer(false);
  }
  function setState(changes, push = true) {
    Object.assign(state, changes);
    run(push);
  }
  function syncControls() {
    const q = $("q");
    if (q.value !== state.q) q.value = state.q;
    $("range-btn").textContent = rangeLabel(state.from, state.to);
    for (const view of ["logs", "mesh"]) {
      $(`tab-${view}`).setAttribute("aria-selected", String(state.view === view));
      $(`view-${view}`).hidden = state.view !== view;
    }
    $("live").setAttribute("aria-pressed", String(state.live));
    $("live").hidden = state.view !== "logs";
    document.title = state.q ? `${state.q} · logmesh` : "logmesh";
  }

  // -- the results table ---------------------------------------------------------------------------------
  const table = { cursor: null, loading: false, keys: new Set(), trimmed: false, withDate: false };
  const keyOf = (ev) => (ev.seq != null ? `s${ev.seq}` : ev["event.id"] ? `e${ev["event.id"]}` : null);

  async function loadSearch(signal) {
    const mine = gen;
    $("rows").replaceChildren();
    table.cursor = null; table.keys.clear(); table.trimmed = false; table.loading = true; table.error = false;
    table.withDate = (toMs(state.to) ?? 0) - (toMs(state.from) ?? 0) > 864e5 ||
      new Date(toMs(state.from) ?? Date.now()).toDateString() !== new Date().toDateString();
    $("results").scrollTop = 0;
    $("took").textContent = "";
    renderMore("Loading…");
    try {
      const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE }, signal);
      if (mine !== gen) return;
      const sentence = r.query && r.query.sentence;
      $("sentence").textContent = state.q && sentence ? `where ${sentence}` : "";
      $("took").textContent = typeof r.took_ms === "number" ? `${r.took_ms} ms` : "";
      addRows(r.events || [], "end");
      table.cursor = r.next_cursor || null;
    } catch (e) {
      if (mine === gen) { table.error = e.name !== "AbortError"; handleError(e, "Search"); $("sentence").textContent = ""; }
    } finally {
      if (mine === gen) { table.loading = false; renderMore(); }
    }
  }
  async function loadMore() {
    if (!table.cursor || table.loading || state.view !== "logs") return;
    const mine = gen;
    table.loading = true;
    renderMore("Loading more…");
    try {
      const r = await api("/api/v1/search", { q: state.q, ...rangeParams(), limit: PAGE, cursor: table.cursor }, runCtl.signal);
      if (mine !== gen) return;
      addRows(r.events || [], "end");
      table.cursor = r.next_cursor || null;
    } catch (e) {
      if (mine === gen) handleError(e, "Search");
    } finally {
      if (mine === gen) { table.loading = false; renderMore(); }
    }
  }
  function renderMore(text) {
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
        : `${fmtNum(n)} event${n === 1 ? "" : "s"}, no more in this range.`));
    }
  }
  function cell(cls, text, title) {
    return h("td", { class: cls, title: title || null }, text == null ? "" : String(text));
  }
  function levelClass(level) {
    const l = String(level || "").toLowerCase();
    return /^(error|err|critical|fatal|warn|warning|debug)$/.test(l) ? `lv-${l.slice(0, 4)}` : "lv-info";
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
      cell("msg", msg.length > 500 ? `${msg.slice(0, 500)}…` : msg));
    if (svc != null) tr.querySelector(".dot").style.setProperty("background", color(svc));
    tr._ev = ev;
    return tr;
  }
  function addRows(events, where) {
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
  function toggleRow(tr) {
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

  // Pretty JSON with light colouring; every piece is a text node.
  function jsonView(obj) {
    const text = JSON.stringify(obj, null, 2);
    const pre = h("pre", { class: "json" });
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) pre.append(text.slice(last, m.index));
      if (m[1]) { pre.append(h("span", { class: m[2] ? "k" : "s" }, m[1])); if (m[2]) pre.append(m[2]); }
      else if (m[3]) pre.append(h("span", { class: "b" }, m[3]));
      else pre.append(h("span", { class: "n" }, m[4]));
      last = re.lastIndex;
    }
    pre.append(text.slice(last));
    return pre;
  }

  // -- adding field:value to the query -------------------------------------------------------------------
  function addFilter(field, value, negate, replace) {
    if (value === null) { // "no value": the field is absent
      setState({ q: join(replace ? "" : state.q.trim(), negate ? `${field}:*` : `not ${field}:*`), view: "logs", event: "" });
      return;
    }
    const pos = `${field}:${kqlValue(value)}`;
    const neg = `not ${pos}`;
    let q = replace ? "" : state.q.trim();
    if (negate) {
      if (q.includes(neg)) return;
      q = q.includes(pos) ? q.replace(pos, neg) : join(q, neg);
    } else {
      if (q.includes(neg)) q = q.replace(neg, pos);
      else if (q.includes(pos)) return;
      else q = join(q, pos);
    }
    setState({ q, view: "logs", event: "" });
  }
  function join(q, term) {
    if (!q) return term;
    return /\bor\b/i.test(q) ? `(${q}) and ${term}` : `${q} and ${term}`;
  }

  // -- the histogram -----------------------------------------------------------------------------------------
  let hist = null;
  let histTimer = null;
  async function loadHistogram(signal) {
    const mine = gen;
    try {
      const r = await api("/api/v1/histogram", { q: state.q, ...rangeParams(), by: "service.name" }, signal);
      if (mine !== gen) return;
      hist = r;
      const total = r.total ?? (r.buckets || []).reduce((a, b) => a + (b.count || 0), 0);
      $("count").textContent = `${fmtNum(total)} event${total === 1 ? "" : "s"}`;
      drawHistogram();
    } catch (e) {
      if (mine === gen) { hist = null; drawHistogram(); $("count").textContent = ""; handleError(e, "Histogram"); }
    }
  }
  function niceStep(span, target) {
    const steps = [1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5,
      216e5, 432e5, 864e5, 1728e5, 6048e5];
    return steps.find((st) => span / st <= target) || 6048e5;
  }
  function tickLabel(ms, step) {
    const d = new Date(ms);
    if (step >= 864e5 || (d.getHours() === 0 && d.getMinutes() === 0 && step >= 36e5)) return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
    return step < 6e4 ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  function drawHistogram() {
    const box = $("histogram");
    const legend = $("legend");
    const W = Math.max(box.clientWidth || 0, 300);
    const H = 132;
    const L = 44, R = 8, T = 10, B = 22;
    const pw = W - L - R, ph = H - T - B;
    const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "hist", role: "img" });
    box.replaceChildren(svg);
    legend.replaceChildren();
    if (!hist || !Array.isArray(hist.buckets)) return;
    const iv = hist.interval_ms || 6e4;
    const buckets = hist.buckets;
    const t0 = Math.min(hist.from ?? Infinity, buckets.length ? buckets[0].t : Infinity);
    const t1 = Math.max(hist.to ?? -Infinity, buckets.length ? buckets[buckets.length - 1].t + iv : -Infinity);
    if (!Number.isFinite(t0) || !Number.isFinite(t1) || t1 <= t0) return;
    const X = (t) => L + ((t - t0) / (t1 - t0)) * pw;
    const tAt = (x) => t0 + ((x - L) / pw) * (t1 - t0);
    let max = 0;
    const totals = new Map();
    for (const b of buckets) {
      max = Math.max(max, b.count || 0);
      for (const [k, v] of Object.entries(b.by || {})) totals.set(k, (totals.get(k) || 0) + v);
    }
    const order = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
    const mag = 10 ** Math.floor(Math.log10(Math.max(max, 1)));
    const top = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= max) || max;
    const Y = (v) => T + ph - (v / top) * ph;
    // grid and y labels
    for (const v of [0, top / 2, top]) {
      svg.append(s("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: v ? "grid" : "axis" }));
      svg.append(s("text", { x: L - 6, y: Y(v) + 4, class: "ylab", "text-anchor": "end" }, fmtNum(Math.round(v * 10) / 10)));
    }
    // x ticks
    const step = niceStep(t1 - t0, Math.max(2, Math.floor(pw / 90)));
    const tz = new Date(t0).getTimezoneOffset() * 6e4;
    for (let t = Math.ceil((t0 - tz) / step) * step + tz; t <= t1; t += step) {
      const x = X(t);
      svg.append(s("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, class: "axis" }));
      svg.append(s("text", { x, y: H - 6, class: "xlab", "text-anchor": "middle" }, tickLabel(t, step)));
    }
    // stacked bars
    const bars = s("g", { class: "bars" });
    for (const b of buckets) {
      if (!b.count) continue;
      const x = X(b.t);
      const w = Math.max(1, X(b.t + iv) - x - (pw / buckets.length > 4 ? 1 : 0));
      const g = s("g", { class: "bucket" });
      const lines = [`${fmtTime(b.t, true).slice(0, -4)} · ${fmtNum(b.count)} event${b.count === 1 ? "" : "s"}`];
      let y = T + ph;
      const by = b.by && Object.keys(b.by).length ? b.by : null;
      const parts = by ? order.filter((k) => by[k]).map((k) => [k, by[k]]) : [[null, b.count]];
      for (const [k, v] of parts) {
        const hgt = (v / top) * ph;
        y -= hgt;
        g.append(s("rect", { x, y, width: w, height: Math.max(hgt, 0.5), fill: k == null ? "#64748b" : color(k) }));
        if (k != null) lines.push(`${k}: ${fmtNum(v)}`);
      }
      g.append(s("title", null, lines.join("\n")));
      g.dataset.t = b.t;
      bars.append(g);
    }
    svg.append(bars);
    const sel = s("rect", { class: "sel", x: 0, y: T, width: 0, height: ph, visibility: "hidden" });
    svg.append(sel);
    // drag across to zoom; a click zooms into one bucket
    let startX = null;
    const px = (e) => Math.min(Math.max(e.clientX - svg.getBoundingClientRect().left, L), L + pw);
    svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      startX = px(e);
      svg.setPointerCapture(e.pointerId);
      setProps(sel, { x: startX, width: 0, visibility: "visible" });
    });
    svg.addEventListener("pointermove", (e) => {
      if (startX == null) return;
      const x = px(e);
      setProps(sel, { x: Math.min(x, startX), width: Math.abs(x - startX) });
    });
    svg.addEventListener("pointerup", (e) => {
      if (startX == null) return;
      const x = px(e);
      const a = Math.min(x, startX), b = Math.max(x, startX);
      startX = null;
      sel.setAttribute("visibility", "hidden");
      let from, to;
      if (b - a >= 4) { from = tAt(a); to = tAt(b); } else {
        const g = e.target.closest && e.target.closest("g.bucket");
        if (!g) return;
        from = Number(g.dataset.t); to = from + iv;
      }
      setState({ from: new Date(Math.floor(from)).toISOString(), to: new Date(Math.ceil(to)).toISOString(), live: false });
    });
    svg.addEventListener("pointercancel", () => { startX = null; sel.setAttribute("visibility", "hidden"); });
    // legend: click a service to filter on it; the API names its two sentinels
    const sentinels = (hist && hist.sentinels) || {};
    const named = order.filter((k) => k !== sentinels.none && k !== sentinels.other);
    for (const k of order) {
      const none = k === sentinels.none; // events without a service.name
      const other = k === sentinels.other; // the services past the ten most frequent
      const title = none ? "Show only events without a service" : other ? "Show only the other services" : `Show only ${k}`;
      const onclick = other
        ? () => setState({ q: named.reduce((q, n) => join(q, `not service.name:${kqlValue(n)}`), state.q.trim()), view: "logs", event: "" })
        : () => addFilter("service.name", none ? null : k, false);
      const item = h("button", { type: "button", class: "chip", title, onclick },
      h("i", { class: "dot" }), none ? "(no service)" : k, h("span", { class: "muted" }, ` ${fmtNum(totals.get(k))}`));
      item.querySelector(".dot").style.setProperty("background", color(k));
      legend.append(item);
    }
  }
  new ResizeObserver(() => requestAnimationFrame(drawHistogram)).observe($("histogram"));

  // -- the field sidebar --------------------------------------------------------------------------------------
  const openFields = new Set(TOP_FIELDS);
  let fieldList = [];
  async function loadFields(signal) {
    const mine = gen;
    try {
      const r = await api("/api/v1/fields", rangeParams(), signal);
      if (mine !== gen) return;
      fieldList = (r.fields || []).filter((f) => f && f.name);
    } catch (e) {
      if (mine !== gen || e.name === "AbortError") return;
      fieldList = [];
      $("fields").replaceChildren(h("li", { class: "muted" }, `Fields unavailable: ${e.message}`));
      return;
    }
    renderFields();
  }
  function renderFields() {
    const filter = $("field-filter").value.trim().toLowerCase();
    const list = $("fields");
    list.replaceChildren();
    const order = (f) => { const i = TOP_FIELDS.indexOf(f.name); return i < 0 ? TOP_FIELDS.length : i; };
    const fields = fieldList.filter((f) => !filter || f.name.toLowerCase().includes(filter))
      .sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name));
    for (const f of fields) {
      const open = openFields.has(f.name);
      const values = h("div", { class: "values" });
      const li = h("li", { class: `field${open ? " open" : ""}`, "data-field": f.name },
        h("button", { type: "button", class: "fname", "aria-expanded": String(open),
          onclick: () => { if (openFields.has(f.name)) openFields.delete(f.name); else openFields.add(f.name); renderFields(); } },
        h("span", { class: "caret" }), h("span", { class: "name" }, f.name), h("span", { class: `type t-${f.type}` }, typeBadge(f.type))),
        values);
      list.append(li);
      if (open) loadTop(f, values);
    }
    if (!fields.length) list.append(h("li", { class: "muted" }, filter ? "No field matches." : "No fields yet."));
  }
  const typeBadge = (t) => ({ keyword: "k", text: "t", long: "#", date: "d", object: "{}" })[t] || "?";
  const topCache = new Map(); // "gen|field" -> answer, so re-rendering the list doesn't refetch
  async function loadTop(f, box) {
    if (f.type === "object" || f.type === "date" || f.type === "text") {
      box.replaceChildren(h("div", { class: "muted hint" }, f.type === "text"
        ? "Full text: search its words, e.g. message:error" : `No top values for ${f.type} fields.`));
      return;
    }
    const key = `${gen}|${f.name}`;
    const mine = gen;
    box.replaceChildren(h("div", { class: "muted hint" }, "…"));
    let r = topCache.get(key);
    if (!r) {
      try {
        r = await api("/api/v1/top", { field: f.name, q: state.q, ...rangeParams(), limit: 5 }, runCtl.signal);
      } catch (e) {
        if (e.name !== "AbortError" && mine === gen) box.replaceChildren(h("div", { class: "muted hint" }, e.status === 400 && e.body.position != null ? "" : e.message));
        return;
      }
      if (mine !== gen) return;
      topCache.clear(); // keep one run's answers only
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
        h("button", { type: "button", class: "v", title: v.value === null ? `Filter for not ${f.name}:*` : `Filter for ${f.name}:${kqlValue(v.value)}`, "data-value": label,
          onclick: () => addFilter(f.name, v.value, false) }, bar, h("span", { class: "vt" }, label)),
        h("span", { class: "cnt", title: `${pct.toFixed(1)}% of ${fmtNum(total)}` }, fmtNum(v.count)),
        h("button", { type: "button", class: "pm", title: `Filter for ${label}`, "aria-label": `Filter for ${label}`, onclick: () => addFilter(f.name, v.value, false) }, "+"),
        h("button", { type: "button", class: "pm", title: `Filter out ${label}`, "aria-label": `Filter out ${label}`, onclick: () => addFilter(f.name, v.value, true) }, "−"));
    }));
  }
  $("field-filter").addEventListener("input", renderFields);

  // -- live tail --------------------------------------------------------------------------------------------------
  // The stream is read with fetch, not EventSource, so it can carry the bearer token and an
  // error answer (400 for a bad query) can be read; it reconnects by itself.
  const live = { ctl: null, q: null, paused: false, buffer: [], status: "" };
  function startLive() {
    const want = state.live && state.view === "logs";
    if (live.ctl && (!want || live.q !== state.q)) { live.ctl.abort(); live.ctl = null; }
    if (!want) { live.buffer = []; renderLiveBar(); return; }
    if (live.ctl) return;
    live.q = state.q;
    live.ctl = new AbortController();
    tail(live.ctl.signal, `/api/v1/tail?${new URLSearchParams(state.q ? { q: state.q } : {})}`);
  }
  const setLiveStatus = (text) => { live.status = text; renderLiveBar(); };
  async function tail(signal, url) {
    const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
    let wait = 500;
    while (!signal.aborted) {
      setLiveStatus("connecting…");
      try {
        const resp = await fetch(url, { signal, headers: authHeaders({ Accept: "text/event-stream" }) });
        if (!resp.ok) {
          let body = null;
          try { body = await resp.json(); } catch { body = null; }
          if (resp.status === 401) askToken();
          if (resp.status >= 400 && resp.status < 500) {
            setLiveStatus(`stopped: ${(body && body.error) || `HTTP ${resp.status}`}`);
            return;
          }
          throw new Error(`HTTP ${resp.status}`);
        }
        setLiveStatus("streaming new events");
        wait = 500;
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(l[5] === " " ? 6 : 5));
            if (data.length) onTailData(data.join("\n"));
          }
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      setLiveStatus("reconnecting…");
      await sleep(wait);
      wait = Math.min(wait * 2, 5000);
    }
  }
  function onTailData(text) {
    let ev;
    try { ev = JSON.parse(text); } catch { return; }
    if (!ev || typeof ev !== "object" || Array.isArray(ev)) return;
    if (live.paused) live.buffer.push(ev); else addLive([ev]);
    renderLiveBar();
  }
  function addLive(events) {
    // newest first: the stream delivers oldest first, so prepend in reverse
    const added = addRows([...events].reverse(), "start");
    if (added) {
      if (!table.cursor && !table.trimmed) renderMore();
      clearTimeout(histTimer);
      histTimer = setTimeout(() => { if (state.live && runCtl) loadHistogram(runCtl.signal); }, 3000);
    }
  }
  function renderLiveBar() {
    const bar = $("livebar");
    if (!state.live || state.view !== "logs") { bar.hidden = true; return; }
    bar.hidden = false;
    bar.classList.toggle("paused", live.paused);
    if (live.paused) {
      bar.replaceChildren(h("span", null, h("i", { class: "pulse off" }), `Live tail paused while you scroll · ${fmtNum(live.buffer.length)} new`),
        h("button", { type: "button", onclick: () => { $("results").scrollTop = 0; } }, "Back to the newest"));
    } else {
      bar.replaceChildren(h("span", null, h("i", { class: "pulse" }), `Live tail: ${live.status}`));
    }
  }
  $("results").addEventListener("scroll", () => {
    const res = $("results");
    const away = res.scrollTop > 40;
    if (res.scrollHeight - res.scrollTop - res.clientHeight < 400) loadMore();
    if (away === live.paused) return;
    live.paused = away;
    if (!away && live.buffer.length) { const buf = live.buffer; live.buffer = []; addLive(buf); }
    renderLiveBar();
  }, { passive: true });
  $("live").addEventListener("click", () => {
    const on = !state.live;
    const changes = { live: on };
    if (on && state.to !== "now") Object.assign(changes, { from: DEFAULTS.from, to: "now" }); // live means "up to now"
    setState(changes, false);
  });

  // -- one event: context and trace ---------------------------------------------------------------------------------
  let drawerCtl = null;
  function closeDrawer(updateUrl = true) {
    if (drawerCtl) { drawerCtl.abort(); drawerCtl = null; }
    $("drawer").hidden = true;
    if (updateUrl && state.event) { state.event = ""; writeURL(true); }
  }
  async function openEvent(seq, push) {
    state.event = String(seq);
    writeURL(push);
    if (drawerCtl) drawerCtl.abort();
    drawerCtl = new AbortController();
    const dr = $("drawer");
    dr.hidden = false;
    dr.replaceChildren(drawerHead(seq), h("p", { class: "muted pad" }, "Loading…"));
    let r;
    try {
      r = await api(`/api/v1/events/${encodeURIComponent(seq)}`, { context: 10 }, drawerCtl.signal);
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
          q: `service.name:${kqlValue(svc)}`, from: new Date(ts - 6e4).toISOString(), to: new Date(ts + 6e4).toISOString(), live: false, event: "" }) },
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
  function miniTable(events, current, withService) {
    if (!events.length) return h("p", { class: "muted pad" }, "Nothing.");
    return h("table", { class: "mini" }, h("tbody", null, events.map((e) => {
      const here = (e.seq != null && e.seq === current.seq) || e === current;
      const tr = h("tr", { class: here ? "here" : null, title: here ? "This event" : "Open this event" },
        h("td", { class: "t" }, fmtTime(e["@timestamp"], false)),
        withService ? h("td", { class: "svc" }, h("span", { class: "chip" }, h("i", { class: "dot" }), String(e["service.name"] ?? ""))) : null,
        h("td", { class: "m" }, String(e["http.request.method"] ?? "")),
        h("td", { class: "u" }, String(e["url.path"] ?? "")),
        h("td", { class: "msg" }, String(e.message ?? "")));
      if (withService && e["service.name"] != null) tr.querySelector(".dot").style.setProperty("background", color(e["service.name"]));
      if (!here && e.seq != null) tr.addEventListener("click", () => openEvent(String(e.seq), true));
      return tr;
    })));
  }

  // -- the mesh view -----------------------------------------------------------------------------------------------------
  async function loadMesh(signal) {
    const mine = gen;
    $("mesh-range").textContent = rangeLabel(state.from, state.to).replace(/^Last/, "the last");
    let m, hg = null;
    try {
      [m, hg] = await Promise.all([
        api("/api/v1/mesh", rangeParams(), signal),
        api("/api/v1/histogram", { ...rangeParams(), by: "service.name" }, signal).catch((e) => { if (e.name === "AbortError") throw e; return null; })]);
    } catch (e) {
      if (mine === gen) { handleError(e, "Mesh"); $("mesh-graph").replaceChildren(); $("mesh-rows").replaceChildren(); }
      return;
    }
    if (mine !== gen) return;
    const nodes = (m.nodes || []).filter((n) => n && n.name != null);
    drawMeshGraph(nodes);
    drawMeshTable(nodes, hg);
  }
  const isGateway = (n) => /gateway/i.test(n.name);
  const isLogs = (n) => n.name === "logs" || (n.urls || []).includes("POST/logs");
  function drawMeshGraph(nodes) {
    const box = $("mesh-graph");
    const W = Math.max(box.clientWidth || 0, 640);
    const gws = nodes.filter(isGateway), logs = nodes.filter(isLogs);
    const svcs = nodes.filter((n) => !isGateway(n) && !isLogs(n));
    const rows = Math.max(gws.length, svcs.length, logs.length, 1);
    const NW = 200, NH = 52, GAP = 18, TOPY = 78;
    const H = TOPY + rows * (NH + GAP) + 10;
    const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "meshsvg", role: "img", "aria-label": "Services and the flow of requests" });
    const colX = [W * 0.14, W * 0.5, W * 0.86];
    const place = (list, col) => list.map((n, i) => {
      const y = TOPY + (rows - list.length) * (NH + GAP) / 2 + i * (NH + GAP);
      return { n, x: colX[col] - NW / 2, y, cx: colX[col], cy: y + NH / 2 };
    });
    const P = [...place(gws, 0), ...place(svcs, 1), ...place(logs, 2)];
    const dist = { x: W / 2 - 60, y: 8, w: 120, h: 34 };
    const maxRate = Math.max(...svcs.map((n) => n.rate_per_s || 0), 0.0001);
    const edges = s("g", { class: "edges" });
    for (const p of P) { // registration: everyone knows the distributor
      edges.append(s("line", { x1: W / 2, y1: dist.y + dist.h, x2: p.cx, y2: p.y, class: "reg" }));
    }
    for (const g of P.filter((p) => isGateway(p.n))) {
      for (const p of P.filter((q) => !isGateway(q.n) && !isLogs(q.n))) {
        const wdt = 1 + 5 * Math.sqrt((p.n.rate_per_s || 0) / maxRate);
        edges.append(s("path", { d: curve(g.cx + NW / 2, g.cy, p.x, p.cy), class: "flow", "stroke-width": wdt.toFixed(1) },
          s("title", null, `${g.n.name} → ${p.n.name}: ${fmtRate(p.n.rate_per_s)}`)));
      }
    }
    for (const l of P.filter((p) => isLogs(p.n))) {
      for (const p of P.filter((q) => !isGateway(q.n) && !isLogs(q.n))) {
        edges.append(s("path", { d: curve(p.x + NW, p.cy, l.x, l.cy), class: "ship" }, s("title", null, `${p.n.name} ships its requests to ${l.n.name}`)));
      }
    }
    svg.append(edges);
    svg.append(s("g", { class: "node dist" },
      s("rect", { x: dist.x, y: dist.y, width: dist.w, height: dist.h, rx: 17 }),
      s("text", { x: W / 2, y: dist.y + 22, "text-anchor": "middle", class: "name" }, "distributor")));
    for (const p of P) {
      const n = p.n;
      const kind = isGateway(n) ? "gw" : isLogs(n) ? "logsn" : "svc";
      const g = s("g", { class: `node ${kind}`, tabindex: "0", role: "button", "aria-label": `Show logs of ${n.name}` },
        s("rect", { x: p.x, y: p.y, width: NW, height: NH, rx: 8 }),
        s("rect", { x: p.x, y: p.y, width: 5, height: NH, rx: 2, fill: color(n.name), class: "stripe" }),
        s("text", { x: p.x + 14, y: p.y + 20, class: "name" }, String(n.name)),
        s("text", { x: p.x + 14, y: p.y + 38, class: "sub" }, `${n.host ?? "?"}:${n.port ?? "?"} · ${fmtRate(n.rate_per_s)}`),
        s("title", null, `${n.name} at ${n.host}:${n.port}\n${fmtNum(n.requests)} requests, ${fmtNum(n.errors)} errors\n${(n.urls || []).join("\n")}`));
      if (n.errors > 0) {
        g.append(s("circle", { cx: p.x + NW - 4, cy: p.y + 4, r: 11, class: "errdot" }),
          s("text", { x: p.x + NW - 4, y: p.y + 8, "text-anchor": "middle", class: "errtxt" }, n.errors > 99 ? "99+" : String(n.errors)));
      }
      const go = () => addFilter("service.name", n.name, false, true);
      g.addEventListener("click", go);
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
      svg.append(g);
    }
    box.replaceChildren(svg);
  }
  function curve(x1, y1, x2, y2) {
    const mx = (x1 + x2) / 2;
    return `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
  }
  function sparkline(name, hg) {
    const W = 120, H = 24;
    const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "spark" });
    const b = (hg && hg.buckets) || [];
    if (!b.length) return svg;
    const vals = b.map((x) => (x.by && x.by[name]) || 0);
    const max = Math.max(...vals, 1);
    const pts = vals.map((v, i) => `${((i / Math.max(vals.length - 1, 1)) * (W - 2) + 1).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`);
    svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: color(name), "stroke-width": 1.5 }));
    return svg;
  }
  function drawMeshTable(nodes, hg) {
    const body = $("mesh-rows");
    body.replaceChildren();
    if (!nodes.length) {
      body.append(h("tr", null, h("td", { colspan: "7", class: "muted" }, "No service is registered at the distributor.")));
      return;
    }
    for (const n of nodes.slice().sort((a, b) => (b.requests || 0) - (a.requests || 0) || String(a.name).localeCompare(String(b.name)))) {
      const go = () => addFilter("service.name", n.name, false, true);
      const name = h("button", { type: "button", class: "link", title: `Show the logs of ${n.name}`, onclick: go }, h("i", { class: "dot" }), String(n.name));
      name.querySelector(".dot").style.setProperty("background", color(n.name));
      body.append(h("tr", { class: "node-row", "data-name": String(n.name) },
        h("td", null, name),
        h("td", { class: "mono" }, `${n.host ?? "?"}:${n.port ?? "?"}`),
        h("td", null, (n.urls || []).length ? (n.urls || []).map((u) => h("span", { class: "route" }, String(u))) : h("span", { class: "muted" }, "none")),
        h("td", { class: "num" }, fmtNum(n.requests)),
        h("td", { class: "num" }, fmtRate(n.rate_per_s)),
        h("td", { class: `num${n.errors > 0 ? " bad" : ""}` }, fmtNum(n.errors)),
        h("td", null, sparkline(n.name, hg))));
    }
  }

  // -- the time range picker -------------------------------------------------------------------------------------------------
  function openRange(open) {
    const pop = $("range-pop");
    pop.hidden = !open;
    $("range-btn").setAttribute("aria-expanded", String(open));
    if (open) {
      const a = toMs(state.from), b = toMs(state.to);
      $("abs-from").value = a != null ? localInput(a) : "";
      $("abs-to").value = b != null ? localInput(b) : "";
      for (const btn of $("quick").children) btn.classList.toggle("on", btn.dataset.from === state.from && state.to === "now");
    }
  }
  for (const [from, label] of QUICK) {
    $("quick").append(h("button", { type: "button", "data-from": from, onclick: () => { openRange(false); setState({ from, to: "now" }); } }, label));
  }
  $("range-btn").addEventListener("click", () => openRange($("range-pop").hidden));
  $("abs-apply").addEventListener("click", () => {
    const a = Date.parse($("abs-from").value), b = Date.parse($("abs-to").value);
    if (Number.isNaN(a) || Number.isNaN(b) || a >= b) { showBanner("Time range: pick a start before the end."); return; }
    openRange(false);
    setState({ from: new Date(a).toISOString(), to: new Date(b).toISOString(), live: false });
  });
  $("zoom-out").addEventListener("click", () => {
    const rel = parseRelative(state.from);
    if (state.to === "now" && rel != null) {
      const ms = Math.min(rel * 2 || 9e5, 365 * 864e5);
      const [n, u] = ms % 864e5 === 0 ? [ms / 864e5, "d"] : ms % 36e5 === 0 ? [ms / 36e5, "h"] : ms % 6e4 === 0 ? [ms / 6e4, "m"] : [Math.round(ms / 1e3), "s"];
      setState({ from: `now-${n}${u}` });
      return;
    }
    const a = toMs(state.from), b = toMs(state.to);
    if (a == null || b == null) return;
    const half = (b - a) / 2;
    const to = Math.min(b + half, Date.now());
    setState({ from: new Date(a - half - (b + half - to)).toISOString(), to: to >= Date.now() - 1000 ? "now" : new Date(to).toISOString() });
  });
  document.addEventListener("click", (e) => {
    if (!$("range-pop").hidden && !e.target.closest(".range")) openRange(false);
  });

  // -- wiring ---------------------------------------------------------------------------------------------------------------
  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    setState({ q: $("q").value.trim(), event: "", view: state.view === "mesh" ? "logs" : state.view });
  });
  $("q").addEventListener("input", () => { $("qerr").hidden = true; $("q").classList.remove("invalid"); });
  for (const view of ["logs", "mesh"]) $(`tab-${view}`).addEventListener("click", () => { if (state.view !== view) setState({ view, event: "" }); });
  $("rows").addEventListener("click", (e) => {
    if (e.target.closest("a, button")) return;
    const tr = e.target.closest("tr.ev");
    if (tr && !window.getSelection().toString()) toggleRow(tr);
  });
  $("rows").addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr.ev");
    if (tr && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); toggleRow(tr); }
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, textarea");
    if (e.key === "/" && !typing) { e.preventDefault(); $("q").focus(); $("q").select(); }
    if (e.key === "Escape") { if (!$("range-pop").hidden) openRange(false); else if (!$("drawer").hidden) closeDrawer(); }
  });
  new IntersectionObserver((entries) => { if (entries.some((en) => en.isIntersecting)) loadMore(); },
    { root: $("results"), rootMargin: "300px" }).observe($("more"));
  window.addEventListener("popstate", () => { readURL(); run(false); });

  readURL();
  run(false);
})();
