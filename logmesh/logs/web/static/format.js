// Numbers, rates, log levels, service colours and JSON as the page shows them. Pure.

export const COLORS = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#84cc16", "#06b6d4",
  "#ec4899", "#8b5cf6", "#f97316", "#64748b", "#6366f1", "#a855f7"];

/** 12345 -> "12,345"; anything but a number -> "–". */
export const fmtNum = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");

/** "12 events", "1 event". */
export const counted = (n, noun) => `${fmtNum(n)} ${noun}${n === 1 ? "" : "s"}`;

/** Requests per second as a person reads them: "42/s", "0.5/s", "1.2/min". */
export function fmtRate(r) {
  if (typeof r !== "number") return "–";
  return r >= 10 ? `${r.toFixed(0)}/s` : r >= 0.1 ? `${r.toFixed(1)}/s` : r > 0 ? `${(r * 60).toFixed(1)}/min` : "0/s";
}

// log.level's names in the wild (syslog, log4j, Go, Python, ...) onto the classes app.css styles.
const LEVEL_CLASS = {
  error: "lv-erro", err: "lv-erro", eror: "lv-erro",
  critical: "lv-crit", crit: "lv-crit", alert: "lv-crit",
  fatal: "lv-fata", emerg: "lv-fata", emergency: "lv-fata", panic: "lv-fata",
  warn: "lv-warn", warning: "lv-warn", wrn: "lv-warn",
  debug: "lv-debu", dbg: "lv-debu", trace: "lv-debu", trc: "lv-debu", verbose: "lv-debu",
};

/** The CSS class of a log.level: lv-erro, lv-crit, lv-fata, lv-warn, lv-debu, and lv-info for the rest. */
export function levelClass(level) {
  const l = String(level ?? "").trim().toLowerCase();
  return Object.hasOwn(LEVEL_CLASS, l) ? LEVEL_CLASS[l] : "lv-info";
}

/** A service's colour: a hash (FNV-1a) of its name, so every view and every reload agree. */
export function color(name) {
  let x = 0x811c9dc5;
  for (const c of new TextEncoder().encode(String(name))) x = Math.imul(x ^ c, 0x01000193) >>> 0;
  return COLORS[x % COLORS.length];
}

/**
 * JSON.stringify(obj, null, 2) cut into [class, text] pieces for light colouring: "k" a key,
 * "s" a string, "b" true/false/null, "n" a number, null the rest. Joined, the texts are the JSON.
 */
export function jsonTokens(obj) {
  const text = JSON.stringify(obj, null, 2);
  const out = [];
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push([null, text.slice(last, m.index)]);
    if (m[1]) { out.push([m[2] ? "k" : "s", m[1]]); if (m[2]) out.push([null, m[2]]); }
    else if (m[3]) out.push(["b", m[3]]);
    else out.push(["n", m[4]]);
    last = re.lastIndex;
  }
  out.push([null, text.slice(last)]);
  return out;
}

/** How long ago epoch ms `t` was at `now`: "just now", "3 s ago", "4 min ago", "2 h ago", "5 d ago"; "–" when unknown. */
export function fmtAgo(t, now) {
  if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) return "–";
  const s = Math.floor((now - t) / 1000);
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Milliseconds of a duration: "0.8 ms", "12 ms", "1,234 ms"; "–" when null. */
export function fmtMs(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  return x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x).toLocaleString("en-US")} ms`;
}

/** A ratio as a percentage: 0 -> "0%", 0.0123 -> "1.2%", 0.5 -> "50%"; "–" when not a number. */
export function fmtPct(r) {
  if (typeof r !== "number" || !Number.isFinite(r)) return "–";
  const p = r * 100;
  return p === 0 ? "0%" : p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}

// an instance's health state (docs/api.md, mesh `instances`) onto the classes app.css colours
const STATES = ["up", "slow", "silent", "down", "unregistered"];

/** The CSS class of an instance's state: st-up, st-slow, st-silent, st-down, st-unregistered, st-unknown. */
export function stateClass(st) {
  const v = String(st ?? "").toLowerCase();
  return `st-${STATES.includes(v) ? v : "unknown"}`;
}

// The bidirectional overrides and isolates (U+202A-202E, U+2066-2069) reorder what follows them:
// "hello \u202eevil" read "hello live", and one in a message turned the rest of the stored line
// around. dom.js shows each as its escape, as the CLI does (logmesh/terminal.py); copies keep it.
const BIDI = /[\u202a-\u202e\u2066-\u2069]/g;

/** Text as the page shows it: the bidirectional controls as their escape ("\u202e"). */
export function visible(text) {
  return text.replace(BIDI, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
