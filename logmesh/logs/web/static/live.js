// The live tail: new matching events streamed into the top of the table, paused while the
// reader scrolls away. Read with fetch, not EventSource, so it carries the bearer token and an
// error answer (400 for a bad query) can be read; it reconnects by itself.

import { runner, setState } from "./actions.js";
import { authHeaders } from "./api.js";
import { $, h } from "./dom.js";
import { askToken } from "./errors.js";
import { addRows, loadMore, renderMore, table } from "./events.js";
import { fmtNum } from "./format.js";
import { reloadSoon } from "./histogram.js";
import { feed } from "./sse.js";
import { DEFAULTS, state } from "./state.js";

const FIRST_WAIT_MS = 500; // before reconnecting; doubled per failure up to MAX_WAIT_MS
const MAX_WAIT_MS = 5000;
const RESUME_LAST = 500; // a stream after a broken one first sends the newest this many matches
const RESUME_SLACK_MS = 2000; // of those, the ones that reached the service since the break (less this)
const AWAY_PX = 40; // scrolled further from the top than this: paused
const NEAR_END_PX = 400; // this close to the end of the rows: load older ones
// Events held while paused: the newest this many (up to twice as many between trims); held
// back more, the return to the top searches again instead of drawing them (the table keeps
// at most 3000 rows while live anyway). Unbounded, a tab left scrolled down under traffic
// kept the whole stream in its heap.
const MAX_HELD = 1000;

// buffer: the events held while paused; came: how many arrived then, held or not
const live = { ctl: null, q: null, paused: false, buffer: [], came: 0, status: "" };

/** Stream when the state asks for it (and only its query), else stop. */
export function startLive() {
  const want = state.live && state.view === "logs";
  if (live.ctl && (!want || live.q !== state.q)) stopLive();
  if (!want) { live.buffer = []; live.came = 0; renderLiveBar(); return; }
  if (live.ctl) return;
  live.q = state.q;
  live.ctl = new AbortController();
  // brief, as the list's pages: a 10 MB message arriving shows one line; a row opens whole
  tail(live.ctl.signal, `/api/v1/tail?${new URLSearchParams({ ...(state.q ? { q: state.q } : {}), brief: 1 })}`);
}

export function stopLive() {
  if (live.ctl) { live.ctl.abort(); live.ctl = null; }
}

/** The Live button, the scrolling that pauses the tail (and pages older rows in). */
export function initLive() {
  $("results").addEventListener("scroll", onScroll, { passive: true });
  $("live").addEventListener("click", () => {
    const on = !state.live;
    const changes = { live: on };
    if (on && state.to !== "now") Object.assign(changes, { from: DEFAULTS.from, to: "now" }); // live means "up to now"
    setState(changes, false);
  });
}

const setLiveStatus = (text) => { live.status = text; renderLiveBar(); };

// A new stream starts at the events stored after it connects: what reached the service while
// the page had no stream (a restart of the logs service, a network blip; its shippers deliver
// what they held at once, the page reconnects after its backoff) is asked for again with
// last=, and shown when it reached the service (received_at, the service's clock, read from the
// stream's Date header) after the last stream broke; rows already shown are skipped by key.
async function tail(signal, url) {
  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
  let wait = FIRST_WAIT_MS;
  let clock = null; // the service's time at the last stream's answer, and ours then
  let since = null; // after a broken stream: show events received from then on
  while (!signal.aborted) {
    let opened = false;
    setLiveStatus("connecting…");
    try {
      const asked = since == null ? url : `${url}&last=${RESUME_LAST}`;
      const resp = await fetch(asked, { signal, headers: authHeaders({ Accept: "text/event-stream" }) });
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
      wait = FIRST_WAIT_MS;
      const served = Date.parse(resp.headers.get("date") || "");
      clock = Number.isNaN(served) ? null : { served, local: Date.now() };
      const from = since;
      opened = true;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const got = feed(buf, value);
        buf = got.rest;
        for (const data of got.data) onTailData(data, from);
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    if (opened && clock) since = clock.served + (Date.now() - clock.local) - RESUME_SLACK_MS;
    setLiveStatus("reconnecting…");
    await sleep(wait);
    wait = Math.min(wait * 2, MAX_WAIT_MS);
  }
}

function onTailData(text, since) {
  let ev;
  try { ev = JSON.parse(text); } catch { return; }
  if (!ev || typeof ev !== "object" || Array.isArray(ev)) return;
  if (since != null && !(Number(ev.received_at) >= since)) return; // from before the break
  if (live.paused) hold(ev); else addLive([ev]);
  renderLiveBar();
}

function hold(ev) {
  live.came += 1;
  live.buffer.push(ev);
  if (live.buffer.length >= 2 * MAX_HELD) live.buffer = live.buffer.slice(-MAX_HELD);
}

function addLive(events) {
  // newest first: the stream delivers oldest first, so prepend in reverse
  const added = addRows([...events].reverse(), "start");
  if (added) {
    if (!table.cursor && !table.trimmed) renderMore();
    reloadSoon();
  }
}

function renderLiveBar() {
  const bar = $("livebar");
  if (!state.live || state.view !== "logs") { bar.hidden = true; return; }
  bar.hidden = false;
  bar.classList.toggle("paused", live.paused);
  if (live.paused) {
    bar.replaceChildren(h("span", null, h("i", { class: "pulse off" }), `Live tail paused while you scroll · ${fmtNum(live.came)} new`),
      h("button", { type: "button", onclick: () => { $("results").scrollTop = 0; } }, "Back to the newest"));
  } else {
    bar.replaceChildren(h("span", null, h("i", { class: "pulse" }), `Live tail: ${live.status}`));
  }
}

function onScroll() {
  const res = $("results");
  const away = res.scrollTop > AWAY_PX;
  if (res.scrollHeight - res.scrollTop - res.clientHeight < NEAR_END_PX) loadMore();
  if (away === live.paused) return;
  live.paused = away;
  if (!away && live.came) {
    const buf = live.buffer, all = buf.length === live.came;
    live.buffer = []; live.came = 0;
    if (all) addLive(buf); else runner.run(false); // more came than were held: the newest, searched
  }
  renderLiveBar();
}
