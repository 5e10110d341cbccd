// Time ranges as the API takes them ("now-15m", ISO 8601, epoch ms) and how the page shows them.
// Pure: what needs the clock takes `now` (epoch ms); local time is the browser's time zone.

export const UNIT_MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 };
const UNIT_NAME = { s: "second", m: "minute", h: "hour", d: "day", w: "week" };
export const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
export const DAY_MS = 864e5;
export const DEFAULT_RANGE = { from: "now-15m", to: "now" };
export const QUICK = [["now-5m", "Last 5 minutes"], ["now-15m", "Last 15 minutes"],
  ["now-30m", "Last 30 minutes"], ["now-1h", "Last 1 hour"], ["now-4h", "Last 4 hours"],
  ["now-12h", "Last 12 hours"], ["now-24h", "Last 24 hours"], ["now-7d", "Last 7 days"],
  ["now-30d", "Last 30 days"]];
const LONGEST_ZOOM_MS = 365 * DAY_MS; // zooming out stops at a year back

export const pad = (n, w = 2) => String(n).padStart(w, "0");
const iso = (ms) => new Date(ms).toISOString();

/** The zone times are shown in: UTC, or the browser's local time (the page's UTC/local toggle sets it). */
export const tz = { utc: false };

/** [year, month (0-11), day, hours, minutes, seconds, ms] of ms in UTC or local time. */
function parts(ms, utc) {
  const d = new Date(ms);
  return utc ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
}

/** "14:03:07.042", or "Mar 05 14:03:07.042" withDate; a value that is no number as text. */
export function fmtTime(ms, withDate, utc = tz.utc) {
  if (typeof ms !== "number") return String(ms ?? "");
  const [, mo, d, h, mi, sec, milli] = parts(ms, utc);
  const t = `${pad(h)}:${pad(mi)}:${pad(sec)}.${pad(milli, 3)}`;
  return withDate ? `${MONTHS[mo]} ${pad(d)} ${t}` : t;
}

/**
 * A typed time as the API takes it: "now", "now-2h", epoch ms as they are; a date
 * ("2026-11-29", "2026-11-29 08:00", "2026-11-29T08:00:05.250", a zone optional) as ISO 8601,
 * read in UTC or local time when it names no zone; null when it is none of these.
 */
export function parseTyped(text, utc = tz.utc) {
  const t = String(text ?? "").trim();
  if (/^now(-\d+[smhdw])?$/.test(t) || /^\d+$/.test(t)) return t;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(t);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}T${m[2] || "00:00"}${m[3] || (utc ? "Z" : "")}`);
  return Number.isNaN(ms) ? null : iso(ms);
}

/** {from, to} of two typed times, or {error} saying which cannot be read or that they are swapped. */
export function typedRange(fromText, toText, now = Date.now(), utc = tz.utc) {
  const from = parseTyped(fromText, utc), to = parseTyped(toText || "now", utc);
  if (from == null) return { error: `cannot read "${fromText}": use now-2h, 2026-11-29 08:00 or an ISO date` };
  if (to == null) return { error: `cannot read "${toText}": use now, now-5m, 2026-11-29 09:00 or an ISO date` };
  if (toMs(from, now) >= toMs(to, now)) return { error: "the start must be before the end" };
  return { from, to };
}

/** The value of an <input type=datetime-local> for ms: local time to the second. */
export function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "now-15m" -> ms back from now, "now" -> 0, anything else -> null. */
export function parseRelative(t) {
  const m = /^now-(\d+)([smhdw])$/.exec(t || "");
  return m ? Number(m[1]) * UNIT_MS[m[2]] : t === "now" ? 0 : null;
}

/** A from/to value as epoch ms on the browser's clock (for display only; the API decides), or null. */
export function toMs(t, now = Date.now()) {
  const rel = parseRelative(t);
  if (rel != null) return now - rel;
  if (/^\d+$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** The range button's text: "Last 15 minutes", or "Mar 05 14:03:07 → 14:18:07" (the date again only on another day). */
export function rangeLabel(from, to, now = Date.now()) {
  const quick = QUICK.find(([f]) => f === from);
  if (to === "now") {
    if (quick) return quick[1];
    const m = /^now-(\d+)([smhdw])$/.exec(from);
    if (m) return `Last ${m[1]} ${UNIT_NAME[m[2]]}${m[1] === "1" ? "" : "s"}`;
  }
  const a = toMs(from, now), b = toMs(to, now);
  if (a == null || b == null) return `${from} → ${to}`;
  const sameDay = new Date(a).toDateString() === new Date(b).toDateString();
  return `${fmtTime(a, true).slice(0, -4)} → ${fmtTime(b, !sameDay).slice(0, -4)}`;
}

/** Whether the table's times need their date: a range over a day long, or one that starts before today. */
export function needsDate(from, to, now = Date.now()) {
  return (toMs(to, now) ?? 0) - (toMs(from, now) ?? 0) > DAY_MS ||
    new Date(toMs(from, now) ?? now).toDateString() !== new Date(now).toDateString();
}

/**
 * A histogram axis label: the date at day steps (or at the start of a local day at hour steps:
 * 00:00, or 01:00 on a day whose clock skips midnight), else the time.
 */
export function tickLabel(ms, step, utc = tz.utc) {
  const [y, mo, d, h, mi, sec] = parts(ms, utc);
  const dayStart = (utc ? Date.UTC(y, mo, d) : new Date(y, mo, d).getTime()) === ms;
  if (step >= DAY_MS || (dayStart && step >= 36e5)) return `${MONTHS[mo]} ${d}`;
  return step < 6e4 ? `${pad(h)}:${pad(mi)}:${pad(sec)}` : `${pad(h)}:${pad(mi)}`;
}

/** ms as the shortest "now-N<unit>" that says it exactly (seconds rounded). */
export function relativeFrom(ms) {
  const [n, u] = ms % DAY_MS === 0 ? [ms / DAY_MS, "d"] : ms % 36e5 === 0 ? [ms / 36e5, "h"]
    : ms % 6e4 === 0 ? [ms / 6e4, "m"] : [Math.round(ms / 1e3), "s"];
  return `now-${n}${u}`;
}

/**
 * The range twice as long, as the zoom-out button sets it, or null when from/to cannot be read.
 * "now-15m".."now" becomes "now-30m".."now" (at most a year); an absolute range grows by half
 * its length each side, shifted back so it never ends in the future ("now" when it ends within 1 s).
 */
export function zoomOut(from, to, now = Date.now()) {
  const rel = parseRelative(from);
  if (to === "now" && rel != null) {
    return { from: relativeFrom(Math.min(rel * 2 || 9e5, LONGEST_ZOOM_MS)), to: "now" };
  }
  const a = toMs(from, now), b = toMs(to, now);
  if (a == null || b == null) return null;
  const half = (b - a) / 2;
  const end = Math.min(b + half, now);
  return { from: iso(a - half - (b + half - end)), to: end >= now - 1000 ? "now" : iso(end) };
}

/** The range of two <input type=datetime-local> values (local time), or null unless start < end. */
export function absoluteRange(fromInput, toInput) {
  const a = Date.parse(fromInput), b = Date.parse(toInput);
  if (Number.isNaN(a) || Number.isNaN(b) || a >= b) return null;
  return { from: iso(a), to: iso(b) };
}

/** [a, b] in ms (fractions from a drag) as an ISO range that covers it: whole ms, outward. */
export function coveringRange(a, b) {
  return { from: iso(Math.floor(a)), to: iso(Math.ceil(b)) };
}

/** The range `ms` either side of the instant `t`, e.g. one event's neighbourhood. */
export function around(t, ms) {
  return { from: iso(t - ms), to: iso(t + ms) };
}
