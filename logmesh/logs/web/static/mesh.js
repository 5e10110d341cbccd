// The mesh view: the services registered at the distributor as a graph and a table, with their
// requests, errors and a sparkline from the logs over the range. A click shows a service's logs.

import { addFilter } from "./actions.js";
import { api } from "./api.js";
import { $, h, s } from "./dom.js";
import { handleError } from "./errors.js";
import { color, fmtNum, fmtRate } from "./format.js";
import { sparkPoints } from "./series.js";
import { current, state } from "./state.js";
import { rangeLabel } from "./time.js";

/** The nodes (/api/v1/mesh) and their activity over time (/api/v1/histogram by service). */
export async function loadMesh(signal) {
  const mine = current.gen;
  const range = { from: state.from, to: state.to };
  $("mesh-range").textContent = rangeLabel(state.from, state.to).replace(/^Last/, "the last");
  let m, hg = null;
  try {
    [m, hg] = await Promise.all([
      api("/api/v1/mesh", range, signal),
      api("/api/v1/histogram", { ...range, by: "service.name" }, signal).catch((e) => { if (e.name === "AbortError") throw e; return null; })]);
  } catch (e) {
    if (mine === current.gen) { handleError(e, "Mesh"); $("mesh-graph").replaceChildren(); $("mesh-rows").replaceChildren(); }
    return;
  }
  if (mine !== current.gen) return;
  const nodes = (m.nodes || []).filter((n) => n && n.name != null);
  drawMeshGraph(nodes);
  drawMeshTable(nodes, hg);
}

const isGateway = (n) => /gateway/i.test(n.name);
const isLogs = (n) => n.name === "logs" || (n.urls || []).includes("POST/logs");
const showLogsOf = (n) => addFilter("service.name", n.name, false, true);

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
  const vals = b.map((x) => (x.by && x.by[name]) || 0);
  svg.append(s("polyline", { points: sparkPoints(vals, W, H), fill: "none", stroke: color(name), "stroke-width": 1.5 }));
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
