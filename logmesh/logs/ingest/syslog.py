"""Syslog messages (RFC 5424 and RFC 3164) to events, no I/O.

What is stored (docs/ingest.md has the table): the priority as ECS's
``log.syslog.priority`` label and as ``log.level`` (the labels
``log.syslog.facility.code``/``.name`` and ``log.syslog.severity.code``/``.name``
follow from it: readers derive them, event.derive_syslog_labels, and the stored
line is ~125 bytes shorter); HOSTNAME
as ``host.name``; APP-NAME (RFC 3164: the TAG) as ``service.name``; PROCID,
MSGID and the structured data (``{SD-ID: {PARAM: value}}``) as
``log.syslog.procid``, ``log.syslog.msgid`` and
``log.syslog.structured_data``; MSG as ``message``. The TIMESTAMP is
``@timestamp`` (RFC 3164's has no year and no zone: the server's local time,
in the year that puts it nearest to now, as rsyslog reads it); a message
without one gets the time it was received.

Structured data that does not parse stays in ``message``, whole. A line that is not syslog at all (no ``<PRI>``) is still stored, whole, as
``message`` with the time received: a plain ``nc`` or a misconfigured
sender's lines are not lost. A line of bytes that are not UTF-8 is stored with
U+FFFD for them and the label ``logmesh.replaced: "bad_utf8"``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from operator import add, getitem, itemgetter, sub
from typing import Any

import orjson

from ..event import SYSLOG_PRIORITY, Event
from ..store.live_counts import name_counts
from .common import MAX_TIMESTAMP_MS, REPLACED_LABEL, Rejected, check_timestamp

# log.level: the names the rest of logmesh uses (error and warning count as errors, ledger.py).
LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
NIL = "-"
BOM = "\ufeff"
# A timestamp that does not parse: the line is stored with the time received and this label
# holds the text it sent (rsyslog and syslog-ng keep such a message too; syslog has no answer,
# so a refused line would be lost without the sender ever knowing)
BAD_TIMESTAMP = "log.syslog.timestamp_text"

# One priority's labels, made once, copied per event: the priority alone, first (the facility
# and severity labels are derived from it where lines are read: event.derive_syslog_labels).
_PRI_LABELS = [{SYSLOG_PRIORITY: p} for p in range(192)]

# RFC 3164's TAG: after a full header (time, host) it ends at ":", "[" or a space, as rsyslog
# reads it (its forward formats send an RFC 5424 APP-NAME with no colon); with no header only
# "tag:" or "tag[pid]:" is one (Python's SysLogHandler ident), so a bare "error: x" stays whole.
_TAG = re.compile(r"([^\s:\[\]]{1,64})(?:\[([^\]\s]{1,32})\])?:(?: |$)")
_HEADED_TAG = re.compile(r"([^\s:\[\]]{1,64})(?:\[([^\]\s]{1,32})\])?:?(?: |$)")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"), 1)}
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) ")
_RFC3339_HEAD = re.compile(r"\d{4}-\d\d-\d\dT\S+ ")  # rsyslog's RSYSLOG_ForwardFormat
_SD_ELEMENT = re.compile(r'\[([^\s\]="]{1,32})((?: [^\s\]="]{1,32}="(?:[^"\\]|\\.)*")*) ?\]')
_SD_PARAM = re.compile(r' ([^\s\]="]{1,32})="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')
_TAIL = re.compile(r"(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)")
CACHE_SIZE = 100_000  # entries per cache before it starts again
SD_CACHE_SIZE = 10_000  # heads with structured data made before encode_block's caches restart
SD_NEW_PER_READ = 16  # new kinds of structured data a read may bring (or a quarter of its lines)

# -- encode_block's reads: RFC 5424 lines with no structured data, escaped as one JSON array --
# The read's lines are decoded and JSON-escaped by one orjson call over the list ["", *lines]
# (each line a str of its own: one non-ASCII line does not make the whole read's text wide),
# and _HEADER split out of that text by one re.split: a flat list, per line "PRI>1 SECOND",
# the fraction's first digits (or None), "ZONE HOST APP PROCID MSGID SD" and the escaped MSG
# (what lies between one header and the next string's quotes), with no tuple or match
# object per line; PRI rides with the second and the zone with the sender's fields, as each
# group costs a bytes object a line. '","<' stands in JSON text only where a string ends and
# the next begins with "<" (within a string a quote is escaped), so every match starts a line;
# not after \n: a line that ends with a newline (or with a backslash and an n) is not split
# from the next, and the read goes to _newline_ended, which trims it.
# The header's fields are split on spaces alone, as the per-line path splits them; one that
# needed escaping is refused when first seen (_head).
# Structured data rides in the sender's fields (logger's constant [timeQuality ...] makes one
# head a sender), in JSON text, where its quotes are \": only the plain kind, whose names are
# printable ASCII and whose values hold no quote, backslash or "]", each read by the per-line
# path's _structured_data when its head is made; any other is left to the per-line path.
_SD_NAME = rb"[\x21\x23-\x3c\x3e-\x5b\x5e-\x7e]{1,32}"
_PLAIN_SD = (rb"(?:\[" + _SD_NAME + rb"(?: " + _SD_NAME + rb'=\\"[^"\\\]]*\\")* ?\])+')
_HEADER_AFTER = (rb'(\d{1,3}>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:(\.\d{1,3})\d{0,6})?'
                 rb"((?:[Zz]|[+-]\d\d:\d\d) [^ ]+ [^ ]+ [^ ]+ [^ ]+ (?:-|" + _PLAIN_SD + rb"))"
                 rb'(?: (?:\xef\xbb\xbf)?|(?="))')  # " " and one BOM, or the end
_HEADER = re.compile(rb'","<(?<!\\n","<)' + _HEADER_AFTER)
_TRIMMED_HEADER = re.compile(rb'","<' + _HEADER_AFTER)  # for lines trimmed of their newline
_STRIDE = 4  # re.split's items per line: _HEADER's 3 groups and the text after it
_PRI_END = b">1 "
# A fraction's first 1-3 digits -> its milliseconds (the rest is below a millisecond).
_FRACTION_MS: dict[bytes | None, int] = {None: 0, **{
    b".%0*d" % (k, v): int((f"{v:0{k}d}" + "00")[:3]) for k in (1, 2, 3) for v in range(10 ** k)}}
SEP = b"\x7f"  # joins a read's lines to trim their newlines in one replace (_escaped)
_SAMPLE_SECOND = "1970-01-01T00:00:00"  # _tail reads what follows the second of a timestamp
_HEAD, _ZONE_MS, _SERVICE = map(itemgetter, range(3))  # a head's parts


class SyslogDecoder:
    """Lines -> events; keeps the small caches that make timestamps cheap."""

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch s, as if UTC
        self._tails: dict[str, tuple[int, int]] = {}  # ".003Z" -> (3, 0); "+02:00" -> (0, 7200)
        # encode_block's: "PRI>1 SECOND" -> the second's epoch ms (as if UTC), and -> PRI's
        # heads: "ZONE HOST APP PROCID MSGID" -> (the stored line's part before its message,
        # the part after it, the zone's offset in ms); PRI -> its heads
        self._second_ms: dict[bytes, int] = {}
        self._second_heads: dict[bytes, dict[bytes, tuple[bytes, int]]] = {}
        self._heads: dict[bytes, dict[bytes, tuple[bytes, int]]] = {}
        self._sd_heads = 0  # heads with structured data made since the caches last restarted

    def event(self, line: bytes, received: int, source: tuple[str, int] | None) -> Event:
        """One message -> its event; :class:`Rejected` when it cannot be stored."""
        if line[-1:] == b"\n":  # an octet-counted frame may end with one (rsyslog's templates)
            line = line.rstrip(b"\r\n")
        try:
            text = line.decode()
            replaced = False
        except UnicodeDecodeError:
            text = line.decode("utf-8", "replace")
            replaced = True
        ev = self._parse(text, received)
        if source is not None:
            ev.source_address, ev.source_port = source
        if replaced:
            if ev.labels is None:
                ev.labels = {}
            ev.labels[REPLACED_LABEL] = "bad_utf8"
        return ev

    def _parse(self, text: str, received: int) -> Event:
        gt = text.find(">", 1, 5) if text[:1] == "<" else -1
        pri_text = text[1:gt] if gt > 0 else ""
        if not (pri_text.isascii() and pri_text.isdigit()) or int(pri_text) >= 192:
            return Event(timestamp=received, received_at=received, message=text)  # not syslog
        pri = int(pri_text)
        labels = _PRI_LABELS[pri].copy()
        if text[gt + 1:gt + 3] == "1 ":
            return self._rfc5424(text[gt + 3:], pri, labels, received)
        return self._rfc3164(text[gt + 1:], pri, labels, received)

    def _rfc5424(self, rest: str, pri: int, labels: dict[str, Any], received: int) -> Event:
        parts = rest.split(" ", 5)
        if len(parts) < 5:
            raise Rejected("bad_syslog", "an RFC 5424 header with fewer than 6 fields")
        ts_text, host, app, procid, msgid = parts[:5]
        tail = parts[5] if len(parts) > 5 else ""
        ts = received if ts_text == NIL else self._time(ts_text, labels, received)
        _header_labels(labels, host, procid, msgid)
        if tail[:1] == "[":
            sd, after = _structured_data(tail)
            if sd is not None:  # else the bad structured data stays in message
                labels["log.syslog.structured_data"] = sd
                tail = after
        elif tail[:1] == NIL:
            tail = tail[2:]
        if tail[:1] == BOM:
            tail = tail[1:]
        return Event(timestamp=ts, received_at=received, message=tail, level=LEVELS[pri & 7],
                     service_name=None if app == NIL else app, labels=labels)

    def _rfc3164(self, rest: str, pri: int, labels: dict[str, Any], received: int) -> Event:
        ts = received
        tag = _TAG
        m = _BSD_TIME.match(rest)
        iso = _RFC3339_HEAD.match(rest) if m is None else None
        if (m is not None and m.group(1) in _MONTHS) or iso is not None:
            when = (m or iso).group(0).strip()  # type: ignore[union-attr]
            try:
                ts = _bsd_ms(m, received) if iso is None else self.rfc3339_ms(iso.group(0)[:-1])
            except Rejected:
                ts = _replaced_time(labels, when, received)
            rest = rest[(m or iso).end():]  # type: ignore[union-attr]
            host, sep, after = rest.partition(" ")
            if sep and not host.endswith(":"):  # "host tag: msg"; "tag: msg" names no host
                labels["host.name"] = host
                rest = after
                tag = _HEADED_TAG
        app = None
        t = tag.match(rest)
        if t is not None:
            app = t.group(1)
            if t.group(2):
                labels["log.syslog.procid"] = t.group(2)
            rest = rest[t.end():]
        return Event(timestamp=ts, received_at=received, message=rest, level=LEVELS[pri & 7],
                     service_name=app, labels=labels)

    def _time(self, ts: str, labels: dict[str, Any], received: int) -> int:
        try:
            return self.rfc3339_ms(ts)
        except Rejected:
            return _replaced_time(labels, ts, received)

    def rfc3339_ms(self, ts: str) -> int:
        """``2003-10-11T22:14:15.003Z`` or ``...+02:00`` -> epoch ms.

        Cached by second (``ts[:19]``) and by what follows it (fraction and zone,
        at most a few thousand kinds a second): parsed each time it cost 1.4 µs
        of the ~4 an event took; two dict lookups cost 0.1.
        """
        base = self._seconds.get(ts[:19])
        if base is None:
            base = self._second(ts)
        tail = self._tails.get(ts[19:])
        if tail is None:
            tail = self._tail(ts)
        ms = (base - tail[1]) * 1000 + tail[0]
        if not 0 <= ms <= MAX_TIMESTAMP_MS:
            check_timestamp(ms)  # raises, saying why
        return ms

    def _second(self, ts: str) -> int:
        try:
            dt = datetime.fromisoformat(ts[:19])
        except ValueError:
            raise Rejected("bad_timestamp", f"not an RFC 3339 timestamp: {ts[:40]!r}") from None
        if len(self._seconds) > CACHE_SIZE:
            self._seconds.clear()
        base = self._seconds[ts[:19]] = int(dt.replace(tzinfo=UTC).timestamp())
        return base

    def _tail(self, ts: str) -> tuple[int, int]:
        """(milliseconds, zone offset in s) of ``ts[19:]``: ``.003Z``, ``+02:00``, ..."""
        rest = ts[19:]
        m = _TAIL.fullmatch(rest)
        if m is None:
            raise Rejected("bad_timestamp", f"not an RFC 3339 timestamp (fraction and zone): "
                                            f"{ts[:40]!r}")
        frac, zone = m.groups()
        ms = int((frac + "00")[:3]) if frac else 0
        if zone in ("Z", "z"):
            offset = 0
        else:
            offset = (int(zone[1:3]) * 3600 + int(zone[4:]) * 60) * (1 if zone[0] == "+" else -1)
        if len(self._tails) > CACHE_SIZE:
            self._tails.clear()
        tail = self._tails[rest] = (ms, offset)
        return tail

    # -- the hot path: a read of plain RFC 5424 lines, encoded without event objects ----------
    def encode_block(self, lines: list[bytes], received: int, source: tuple[str, int],
                     reserve: Callable[[int], range]
                     ) -> tuple[bytes, range, list[int], dict[str, int]] | None:
        """The stored lines of a read whose every line is RFC 5424 with no structured data or
        plain structured data (see _PLAIN_SD), valid UTF-8 and a good timestamp (what rsyslog
        and syslog-ng forward, logger sends, and most libraries send);
        None for any other read, which :meth:`event` takes line by line.

        No Python runs per line: one orjson call escapes the whole read, one ``re.split``
        gives its columns (see _HEADER), and ``map`` over dicts (C) turns them into the parts
        of the stored lines: each second's and each zone's milliseconds and each sender's
        header (service, level, labels) are made once, for the distinct values of a read,
        and cached; the stored lines come from one ``bytes %`` over the read. That costs 0.79x
        the CPU of a regex ``findall`` with a tuple per line, an ``orjson.dumps`` per message
        and a join of 8 parts a line (1.42 vs 1.78 µs an event on the shared machine,
        ``bench/ingest_sockets.py --micro``; docs/benchmarks.md).
        ``reserve`` is called only once the read is known to fit; returns (blob, seqs,
        timestamps, events per service: the store's counts, store/live_counts.py).
        """
        n = len(lines)
        escaped = _escaped(lines) if lines[0][-1:] != b"\n" else None
        cols = _HEADER.split(escaped) if escaped is not None else []
        if len(cols) != 1 + _STRIDE * n:  # a line of another shape, or one ending with "\n"
            joined = b"".join(lines)
            if b"\n" not in joined and b"\\n" not in joined:  # another shape: no header
                return None  # where it starts
            escaped = _newline_ended(lines)  # octet-counted frames ending with a newline
            if escaped is None:
                return None
            cols = _TRIMMED_HEADER.split(escaped)
            if len(cols) != 1 + _STRIDE * n:
                return None
        cols[-1] = cols[-1][:-2]  # the last string's closing quote and the array's "]"
        try:
            heads = self._heads_of(cols)
        except KeyError:  # a value not seen yet: made for the read's distinct values
            try:
                heads = self._learn(cols)
            except Rejected:
                return None
        stamps = list(map(sub, map(add, map(self._second_ms.__getitem__, cols[1::_STRIDE]),
                                   map(_FRACTION_MS.__getitem__, cols[2::_STRIDE])),
                          map(_ZONE_MS, heads)))
        if min(stamps) < 0 or max(stamps) > MAX_TIMESTAMP_MS:
            return None  # the per-line path says why
        seqs = reserve(n)
        # One bytes % over the read, not a join of parts: a quarter of the cost (int to text,
        # the heads and messages copied in one C loop). ``message`` comes last, after the
        # head's fields, so that a line takes four values, not five.
        values: list[Any] = [None] * (4 * n)
        values[0::4] = seqs
        values[1::4] = stamps
        values[2::4] = map(_HEAD, heads)
        values[3::4] = cols[4::_STRIDE]
        line = (b'{"seq":%d,"@timestamp":%d,"received_at":' + b"%d" % received +
                b',"source.address":' + orjson.dumps(source[0]).replace(b"%", b"%%") +
                b',"source.port":' + b"%d" % source[1] + b'%b"message":"%b"}\n')
        return line * n % tuple(values), seqs, stamps, name_counts(list(map(_SERVICE, heads)))

    def _heads_of(self, cols: list[Any]) -> list[tuple[bytes, int, str | None]]:
        """Each line's head (KeyError for one not cached): by its PRI (which rides with its
        second), then by its zone and sender's fields."""
        return list(map(getitem, map(self._second_heads.__getitem__, cols[1::_STRIDE]),
                        cols[3::_STRIDE]))

    def _learn(self, cols: list[Any]) -> list[tuple[bytes, int, str | None]]:
        """Cache what a read holds that is not cached yet (Rejected for a value that is bad);
        returns its heads."""
        if len(self._second_ms) > CACHE_SIZE:
            self._second_ms.clear()
            self._second_heads.clear()
        for key in set(cols[1::_STRIDE]).difference(self._second_ms):
            pri, _, second = key.partition(_PRI_END)
            heads = self._heads.setdefault(pri, {})
            self._second_ms[key] = self._second(second.decode()) * 1000
            self._second_heads[key] = heads
        try:  # most often a new second of senders already known: nothing more to make
            return self._heads_of(cols)
        except KeyError:
            pass
        new = [(key, zone_hdr) for key, zone_hdr in set(zip(cols[1::_STRIDE], cols[3::_STRIDE],
                                                             strict=True))
               if zone_hdr not in self._second_heads[key]]
        sds = [zone_hdr.split(b" ", 5)[5] for _, zone_hdr in new if zone_hdr[-2:] != b" -"]
        with_sd = len(sds)
        if len(set(sds)) > max(SD_NEW_PER_READ, len(cols) // (_STRIDE * 4)):
            # structured data that changes from line to line (an id in each): a head a line
            # would cost more than the per-line path and hold memory for nothing
            raise Rejected("bad_syslog", "structured data that varies: the per-line path")
        self._sd_heads += with_sd
        if self._sd_heads > SD_CACHE_SIZE:  # heads with structured data: each ~0.6 KB
            self._sd_heads = with_sd
            for heads in self._heads.values():
                heads.clear()
        for key, zone_hdr in new:
            heads = self._second_heads[key]
            if len(heads) > CACHE_SIZE:
                heads.clear()
            heads[zone_hdr] = self._head(key.partition(_PRI_END)[0], zone_hdr)
        return self._heads_of(cols)

    def _head(self, pri_text: bytes, zone_hdr: bytes) -> tuple[bytes, int, str | None]:
        """What lines of one PRI, zone, HOSTNAME, APP-NAME, PROCID, MSGID and structured data
        share: the fields between ``source.port`` and ``message`` (service, level, labels),
        the zone's offset in ms, and the service (counted by the store)."""
        pri = int(pri_text)
        if pri >= 192:
            raise Rejected("bad_syslog", "PRI over 191")  # the per-line path stores it whole
        text = zone_hdr.decode()
        zone, host, app, procid, msgid, sd_text = text.split(" ", 5)
        if "\\" in text[:len(text) - len(sd_text)]:  # escaped by orjson: a quote, backslash
            raise Rejected("bad_syslog", "a header field the per-line path reads")  # or control
        labels = _header_labels(_PRI_LABELS[pri].copy(), host, procid, msgid)
        if sd_text != NIL:
            sd, rest = _structured_data(sd_text.replace('\\"', '"'))
            if sd is None or rest:
                raise Rejected("bad_syslog", "structured data the per-line path reads")
            labels["log.syslog.structured_data"] = sd
        svc = b',"service.name":' + orjson.dumps(app) if app != NIL else b""
        return (svc + b',"log.level":"' + LEVELS[pri & 7].encode() + b'","labels":' +
                orjson.dumps(labels) + b",",
                self._tail(_SAMPLE_SECOND + zone)[1] * 1000, app if app != NIL else None)


def _escaped(lines: list[bytes]) -> bytes | None:
    """``["", *lines]`` as JSON text; None for bad UTF-8 or a last line that ends with a
    newline (see _newline_ended)."""
    try:
        texts = list(map(bytes.decode, lines))
    except UnicodeDecodeError:
        return None
    texts.insert(0, "")
    escaped = orjson.dumps(texts)
    # A line ending with a newline (or with a backslash and an n) ends its string with \n":
    # the last line's is checked here, the others' by _HEADER's look-behind. Not a scan for
    # \n" here: the text is full of \ and ", and that scan cost 0.18 µs an event (an eighth).
    return escaped if escaped[-4:] != b'\\n"]' else None


def _newline_ended(lines: list[bytes]) -> bytes | None:
    """:func:`_escaped` for lines that end with a newline (octet-counted frames of rsyslog and
    syslog-ng), each trimmed of it as :meth:`SyslogDecoder.event` trims it, in one replace
    over the read; None for a read it must take (bad UTF-8, more than a newline to trim)."""
    blob = SEP.join(lines)
    if blob.count(SEP) != len(lines) - 1:  # a line holding SEP itself
        return None
    if b"\r\n" + SEP in blob or b"\n\n" + SEP in blob or blob.endswith((b"\r\n", b"\n\n")):
        return None  # more than one line end to trim: event() does it
    blob = blob.replace(b"\n" + SEP, SEP).removesuffix(b"\n")
    try:
        texts = blob.decode().split("\x7f")
    except UnicodeDecodeError:
        return None
    texts.insert(0, "")
    return orjson.dumps(texts)


def _header_labels(labels: dict[str, Any], host: str, procid: str, msgid: str) -> dict[str, Any]:
    """An RFC 5424 header's HOSTNAME, PROCID and MSGID as labels; NIL ones left out."""
    if host != NIL:
        labels["host.name"] = host
    if procid != NIL:
        labels["log.syslog.procid"] = procid
    if msgid != NIL:
        labels["log.syslog.msgid"] = msgid
    return labels


def _replaced_time(labels: dict[str, Any], text: str, received: int) -> int:
    """The time received for a line whose own does not parse; its text kept as a label and
    the line marked (``logmesh.replaced: bad_timestamp``, counted where it is stored)."""
    labels[BAD_TIMESTAMP] = text
    labels[REPLACED_LABEL] = "bad_timestamp"
    return received


def _bsd_ms(m: re.Match[str], received: int) -> int:
    """RFC 3164's ``Mmm dd hh:mm:ss``, in local time, in the year nearest to ``received``."""
    now = datetime.fromtimestamp(received / 1000)
    month, day = _MONTHS[m.group(1)], int(m.group(2))
    best = None
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            dt = datetime(year, month, day, int(m.group(3)), int(m.group(4)), int(m.group(5)))
        except ValueError:  # Feb 29 of another year, 25:00, ...
            continue
        if best is None or abs(dt - now) < abs(best - now):
            best = dt
    if best is None:
        raise Rejected("bad_timestamp", f"not a date: {m.group(0).strip()!r}")
    return check_timestamp(int(time.mktime(best.timetuple())) * 1000)


def _structured_data(tail: str) -> tuple[dict[str, dict[str, str]] | None, str]:
    """``[id p="v"][id2 ...] MSG`` -> ({id: {p: v}}, MSG); (None, tail) when it is malformed."""
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while tail[pos:pos + 1] == "[":
        m = _SD_ELEMENT.match(tail, pos)
        if m is None:
            return None, tail
        params = sd.setdefault(m.group(1), {})
        for name, val in _SD_PARAM.findall(m.group(2)):
            params[name] = _SD_UNESCAPE.sub(r"\1", val) if "\\" in val else val
        pos = m.end()
    rest = tail[pos:]
    return sd, rest[1:] if rest[:1] == " " else rest

