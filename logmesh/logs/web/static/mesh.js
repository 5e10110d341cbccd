// The mesh view: the services registered at the distributor as a graph and a table, with their
// requests, errors and a sparkline from the logs over the range; the health of every instance
// now (/api/v1/mesh `instances`); RED per route of the gateway over the range (/api/v1/routes,
// sparklines from /api/v1/routes/series). A click shows a service's, or a route's, logs.

import { addFilter, setState } from "./actions.js";
import { api } from "./api.js";
import { $, h, s } from "./dom.js";
import { handleError } from "./errors.js";
import { color, fmtAgo, fmtMs, fmtNum, fmtPct, fmtRate, stateClass } from "./format.js";
import { kqlValue } from "./kql.js";
import { countOf, sparkPoints } from "./series.js";
import { current, state } from "./state.js";
import { rangeLabel } from "./time.js";

/** The nodes (/api/v1/mesh) and their activity over time (/api/v1/histogram by service), the
 *  routes (/api/v1/routes) and their sparklines (/api/v1/routes/series): four requests, each
 *  part drawn as its own answer comes, with its own loading and error state. One slow answer
 *  (a histogram over a long range) held back the instance table, where a hung service shows,
 *  while the page waited for all four. */
export function loadMesh(signal) {
  const mine = current.gen;
  const live = () => mine === current.gen;
  const range = { from: state.from, to: state.to };
  $("mesh-range").textContent = rangeLabel(state.from, state.to).replace(/^Last/, "the last");
  for (const [id, cols] of PARTS) loading(id, cols);
  // each answer drawn when it comes (if this is still the page's run); an abort is no error
  const part = (path, params, drawn, failed) => api(path, params, signal).then(
    (body) => { if (live()) drawn(body); },
    (e) => { if (e.name !== "AbortError" && live()) failed(e); });
  let nodes = null, hg = null, rt, rs = null; // rt: undefined while asked, null when it failed
  return Promise.all([
    part("/api/v1/mesh", range, (m) => {
      nodes = ((m && m.nodes) || []).filter((n) => n && n.name != null);
      drawMeshGraph(nodes);
      drawMeshTable(nodes, hg);
      drawInstances(((m && m.instances) || []).filter((i) => i && typeof i === "object"), Date.now());
      drawSinks(m && Array.isArray(m.sinks) ? m.sinks : []);
    }, (e) => {
      handleError(e, "Mesh");
      $("mesh-graph").replaceChildren();
      notice("mesh-rows", 7, "The services could not be read.");
      notice("inst-rows", 10, "The instances could not be read.");
    }),
    part("/api/v1/histogram", { ...range, by: "service.name" }, (body) => {
      hg = body;
      if (nodes) drawMeshTable(nodes, hg);
    }, () => {}), // the sparklines stay empty
    part("/api/v1/routes", range, (body) => { rt = body; drawRoutes(rt, rs); }, (e) => {
      handleError(e, "Routes");
      rt = null;
      drawRoutes(rt, rs);
    }),
    part("/api/v1/routes/series", range, (body) => {
      rs = body;
      if (rt) drawRoutes(rt, rs);
    }, () => {})]);
}

/** The mesh view's tables and their widths, each marked busy while its answer is asked for. */
const PARTS = [["mesh-rows", 7], ["inst-rows", 10], ["route-rows", 9]];

/** A table whose answer is on its way: busy, and a "Loading" row when it shows nothing yet
 *  (what a refresh had drawn stays until the new answer replaces it). */
function loading(id, cols) {
  const body = $(id);
  body.setAttribute("aria-busy", "true");
  if (!body.rows.length) notice(id, cols, "Loading…", true);
}

/** A table of one muted line: loading, nothing to show, or why it could not be read. */
function notice(id, cols, text, busy = false) {
  const body = $(id);
  if (!busy) body.removeAttribute("aria-busy");
  body.replaceChildren(h("tr", { class: "notice" }, h("td", { colspan: String(cols), class: "muted" }, text)));
}

/** How far each forwarding sink (Elasticsearch) is behind the store: a line under the heading. */
function drawSinks(list) {
  let p = $("mesh-sinks");
  if (!p) {
    p = h("p", { id: "mesh-sinks" });
    document.querySelector("#view-mesh .mesh-head")?.append(p);
  }
  p.replaceChildren(...list.flatMap((k, n) => [n ? " · " : "Forwarding: ",
    h("span", { class: k.lag_events > 0 ? "sink-behind" : "muted", "data-sink": `${k.sink}-w${k.worker}` },
      `${k.sink} (worker ${k.worker}) ` + (k.lag_events > 0
        ? `${fmtNum(k.lag_events)} events, ${Number(k.lag_seconds || 0).toFixed(1)} s behind` : "up to date"))]));
  p.hidden = !list.length;
}

const td = (cls, ...kids) => h("td", cls ? { class: cls } : null, ...kids);

/** One row per instance: its health now. */
function drawInstances(list, now) {
  const body = $("inst-rows");
  body.removeAttribute("aria-busy");
  body.replaceChildren();
  if (!list.length) {
    body.append(h("tr", null, h("td", { colspan: "10", class: "muted" }, "No instance is known yet.")));
    return;
  }
  const order = { down: 0, silent: 1, slow: 2, unregistered: 3, up: 4 };
  const rank = (i) => order[i.state] ?? 5;
  for (const i of list.slice().sort((a, b) => rank(a) - rank(b) || String(a.name).localeCompare(String(b.name)) || String(a.address).localeCompare(String(b.address)))) {
    const name = i.name == null ? "?" : String(i.name);
    const addr = i.address ?? (i.host != null ? `${i.host}:${i.port ?? "?"}` : null);
    const state = String(i.state ?? "unknown");
    const stateEl = h("span", { class: `state ${stateClass(state)}`, title: i.reason == null ? state : String(i.reason) }, state);
    const nameEl = h("button", { type: "button", class: "link", title: `Show the logs of ${name}`, onclick: () => addFilter("service.name", name, false, true) },
      h("i", { class: "dot" }), name);
    nameEl.querySelector(".dot").style.setProperty("background", color(name));
    const ids = Array.isArray(i.instances) ? i.instances.map(String).join("\n") : "";
    body.append(h("tr", { class: `inst-row ${stateClass(state)}`, "data-name": name, "data-state": state },
      td(null, nameEl),
      td("mono", addr == null ? h("span", { class: "muted" }, "none") : String(addr)),
      // a reply begun and never ended (the gateway's 504 names it) is a broken service, not
      // a slow one: said in the row, not only in the state's title
      td(null, stateEl, i.unended > 0 ? h("span", { class: "unended bad", title: i.reason == null ? null : String(i.reason) }, ` unended replies: ${fmtNum(i.unended)}`) : null),
      h("td", { class: "nowrap", title: typeof i.since_ms === "number" ? new Date(i.since_ms).toISOString() : null }, fmtAgo(i.since_ms, now)),
      h("td", { class: "nowrap", title: typeof i.last_seen_ms === "number" ? new Date(i.last_seen_ms).toISOString() : null }, fmtAgo(i.last_seen_ms, now)),
      td("num", fmtNum(i.restarts)),
      td("num", fmtNum(i.events)),
      td(`num${i.errors > 0 ? " bad" : ""}`, fmtNum(i.errors)),
      td(`num${i.missing > 0 ? " bad" : ""}`, fmtNum(i.missing)),
      // the whole id: its first 8 characters were the service's name ("gateway-"), and it is
      // what a query names (service.instance:goods-bc7dc606baa5)
      h("td", { class: "mono nowrap", title: ids || null }, i.instance == null || i.instance === "" ? "–" : String(i.instance))));
  }
}

const routeQuery = (r) => `service.name:gateway and url.path:${kqlValue(String(r.path ?? ""))} and http.request.method:${kqlValue(String(r.method ?? ""))}`;

function routeSpark(series) {
  const W = 120, H = 24;
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "spark" });
  const vals = series && Array.isArray(series.requests) ? series.requests.map((v) => (typeof v === "number" ? v : 0)) : [];
  if (!vals.length) return svg;
  svg.append(s("polyline", { points: sparkPoints(vals, W, H), fill: "none", stroke: "#3b82f6", "stroke-width": 1.5 }),
    s("title", null, `${fmtNum(vals.reduce((a, b) => a + b, 0))} requests over the range`));
  return svg;
}

/** The line under the route table: how many routes the answer left off, and their requests. */
function leftOff(n, other) {
  const more = `${fmtNum(n)} more route${n === 1 ? "" : "s"} not shown`;
  if (!other || typeof other.requests !== "number") return `${more}.`;
  return `${more}: ${fmtNum(other.requests)} requests (${fmtRate(other.rate_per_s)}), ${fmtPct(other.error_rate)} errors.`;
}

/** RED per route of the gateway over the range, busiest first. */
function drawRoutes(rt, rs) {
  const body = $("route-rows");
  body.removeAttribute("aria-busy");
  body.replaceChildren();
  const routes = ((rt && rt.routes) || []).filter((r) => r && typeof r === "object");
  $("routes-left").textContent = rt && rt.routes_left_off > 0 ? leftOff(rt.routes_left_off, rt.other) : "";
  if (!routes.length) {
    body.append(h("tr", null, h("td", { colspan: "9", class: "muted" }, rt ? "No request went through the gateway over the range." : "The routes could not be read.")));
    return;
  }
  const series = new Map(((rs && rs.routes) || []).filter((x) => x && x.route != null).map((x) => [String(x.route), x]));
  for (const r of routes) {
    const route = String(r.route ?? `${r.method} ${r.path}`);
    const open = () => setState({ q: routeQuery(r), view: "logs", event: "" });
    const up = r.upstream == null ? h("span", { class: "muted" }, "none") : String(r.upstream);
    body.append(h("tr", { class: "route-row", "data-route": route, tabindex: "0", title: `Show the gateway's logs of ${route}`,
      onclick: open, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } } },
    td("mono", h("span", { class: "route" }, route)),
    td(null, up),
    td("num", fmtNum(r.requests)),
    td("num", fmtRate(r.rate_per_s)),
    td(`num${r.errors > 0 ? " bad" : ""}`, fmtPct(r.error_rate)),
    td("num", fmtMs(r.p50_ms)),
    td("num", fmtMs(r.p95_ms)),
    td("num", fmtMs(r.p99_ms)),
    td(null, routeSpark(series.get(route)))));
  }
}

const isGateway = (n) => /gateway/i.test(n.name);
const isLogs = (n) => n.name === "logs" || (n.urls || []).includes("POST/logs");
const showLogsOf = (n) => addFilter("service.name", n.name, false, true);

function drawMeshGraph(nodes) {
  const box = $("mesh-graph");
  const pad = getComputedStyle(box);  // clientWidth counts the padding: the graph is drawn inside it
  const inner = (box.clientWidth || 0) - parseFloat(pad.paddingLeft || 0) - parseFloat(pad.paddingRight || 0);
  const W = Math.max(Math.floor(inner), 640);  // narrower: the panel scrolls (app.css)
  const gws = nodes.filter(isGateway), logs = nodes.filter(isLogs);
  const svcs = nodes.filter((n) => !isGateway(n) && !isLogs(n));
  const rows = Math.max(gws.length, svcs.length, logs.length, 1);
  const NW = 200, NH = 52, GAP = 18, TOPY = 78;
  const H = TOPY + rows * (NH + GAP) + 10;
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "meshsvg", role: "img", "aria-label": "Services and the flow of requests" });
  const M = 12 + NW / 2;  // a node's centre at least this far from the graph's sides
  const colX = [Math.max(W * 0.14, M), W * 0.5, Math.min(W * 0.86, W - M)];
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
    g.addEventListener("click", () => showLogsOf(n));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showLogsOf(n); } });
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
  const vals = b.map((x) => countOf(x.by, name) || 0);
  svg.append(s("polyline", { points: sparkPoints(vals, W, H), fill: "none", stroke: color(name), "stroke-width": 1.5 }));
  return svg;
}

function drawMeshTable(nodes, hg) {
  const body = $("mesh-rows");
  body.removeAttribute("aria-busy");
  body.replaceChildren();
  if (!nodes.length) {
    body.append(h("tr", null, h("td", { colspan: "7", class: "muted" }, "No service is registered at the distributor.")));
    return;
  }
  for (const n of nodes.slice().sort((a, b) => (b.requests || 0) - (a.requests || 0) || String(a.name).localeCompare(String(b.name)))) {
    const name = h("button", { type: "button", class: "link", title: `Show the logs of ${n.name}`, onclick: () => showLogsOf(n) }, h("i", { class: "dot" }), String(n.name));
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
