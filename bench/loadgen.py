#!/usr/bin/env python3
"""Load generator for ingest benchmarks: book log packets over N TCP connections.

Each event is the packet a book service ships to the ``logs`` service for one
request it received (DESIGN.md §1)::

    {"uri":"/logs","method":"POST","key":0,"params":"<raw request frame>"}¶

where the raw request frame is what the book's gateway sends to goods, members
or purchases (``{"uri":"/goods","method":"POST","params":{...,"key":N}}``), with
varied services, methods, ids, names (a tenth of them Korean, so multi-byte
UTF-8 is on the wire) and about 200 bytes per packet on the wire. ``N``, the
gateway's correlation counter, is unique per event (``--first`` + index), so
what lands on disk can be checked number by number (see ``event_numbers``).

``--rate R`` paces the whole run to R events/s (spread over the connections,
batch by batch); without it every connection sends as fast as the server
drains its socket (saturation).

``--lines`` sends the same packets terminated by ``\\n`` instead of ``¶`` (for
rsyslog and other line-oriented receivers). ``--syslog`` sends RFC 5424 syslog
lines instead (LF-framed, RFC 6587), the request frame as MSG after a header
like rsyslog's (``<134>1 <RFC 3339 time> web-3 goods 1042 - - ``), ~200 bytes too.

All payloads are built before the clock starts; then every connection (one
thread each: ``sendall`` releases the GIL, so one process moves several GB/s
over loopback, far beyond any peer here) sends its contiguous share of the
events in batches of about ``--batch-bytes``. If a connection breaks (the
book's receiver crashes under load), the batch in flight is counted in
``failed_events`` and the connection is re-opened (bounded by
``--reconnect-timeout``) to send the rest, as a reconnecting shipper would; a
batch the server does not take within ``--stall-timeout`` seconds counts as
a broken connection too (a node cluster master can hold an accepted
connection that no worker ever reads).

Prints one JSON object: events, sent, seconds, events_per_s, and the
``t_start``/``t_end`` of the sending on the system-wide monotonic clock
(``time.monotonic()``, comparable across processes) so a harness can time
"first byte sent" to "last event on disk".
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import sys
import threading
import time

DELIM = "¶".encode()  # C2 B6

GOODS = [
    ("pen", "stationery", "gel ink, 0.5 mm, black"),
    ("notebook", "stationery", "A5 dotted, 120 pages"),
    ("cup", "kitchen", "ceramic mug 350 ml"),
    ("lamp", "living", "LED desk lamp, warm white"),
    ("desk", "furniture", "oak top 120x60, steel frame"),
    ("chair", "furniture", "mesh back, adjustable arms"),
    ("phone", "digital", "6.1 inch, 128 GB, unlocked"),
    ("bag", "fashion", "canvas tote with zip pocket"),
    ("keyboard", "digital", "tenkeyless, brown switches"),
    ("umbrella", "living", "auto open, windproof"),
]
GOODS_KO = [
    ("볼펜", "문구", "젤 잉크 0.5mm 검정"),
    ("머그컵", "주방", "도자기 350ml"),
    ("스탠드", "리빙", "LED 책상 조명"),
    ("가방", "패션", "캔버스 토트백"),
]
SORTS = ["price", "name", "date", "popular"]
CITIES = ["Seoul", "Busan", "Incheon", "Daegu", "Daejeon", "Gwangju", "Suwon", "Ulsan"]
CITIES_KO = ["서울", "부산", "인천", "대구"]
HEX = "0123456789abcdef"


def _request_frame(rng: random.Random, n: int) -> str:
    """The raw request frame a book gateway sends to a business service (key = n)."""
    ko = rng.random() < 0.1
    svc = rng.random()
    op = rng.random()
    if svc < 0.45:  # goods
        if op < 0.3:
            name, cat, desc = rng.choice(GOODS_KO if ko else GOODS)
            return (f'{{"uri":"/goods","method":"POST","params":{{"name":"{name}",'
                    f'"category":"{cat}","price":{rng.randint(5, 990) * 100},'
                    f'"description":"{desc}","key":{n}}}}}')
        if op < 0.9:
            return (f'{{"uri":"/goods","method":"GET","params":{{"id":"{rng.randint(1, 99999)}",'
                    f'"sort":"{rng.choice(SORTS)}","page":"{rng.randint(1, 40)}",'
                    f'"size":"{rng.choice((10, 20, 50))}","category":"{rng.choice(GOODS)[1]}",'
                    f'"key":{n}}}}}')
        return (f'{{"uri":"/goods","method":"DELETE","params":{{"id":"{rng.randint(1, 99999)}",'
                f'"reason":"discontinued by seller","key":{n}}}}}')
    if svc < 0.75:  # members
        user = f"user{rng.randint(1, 999999):06d}"
        if op < 0.35:
            pw = "".join(rng.choices(HEX, k=32))
            return (f'{{"uri":"/members","method":"POST","params":{{"username":"{user}",'
                    f'"password":"{pw}","key":{n}}}}}')
        if op < 0.9:
            city = rng.choice(CITIES_KO if ko else CITIES)
            return (f'{{"uri":"/members","method":"GET","params":{{"username":"{user}",'
                    f'"city":"{city}","fields":"username,email,grade,joined","key":{n}}}}}')
        return (f'{{"uri":"/members","method":"DELETE","params":{{"username":"{user}",'
                f'"confirm":"true","key":{n}}}}}')
    # purchases
    if op < 0.4:
        return (f'{{"uri":"/purchases","method":"POST","params":{{"userid":{rng.randint(1, 999999)},'
                f'"goodsid":{rng.randint(1, 99999)},"quantity":{rng.randint(1, 5)},'
                f'"coupon":"C{rng.randint(1000, 9999)}","key":{n}}}}}')
    if op < 0.9:
        return (f'{{"uri":"/purchases","method":"GET","params":{{"userid":{rng.randint(1, 999999)},'
                f'"from":"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",'
                f'"status":"{rng.choice(("paid", "shipped", "delivered"))}","key":{n}}}}}')
    return (f'{{"uri":"/purchases","method":"DELETE","params":{{"id":{rng.randint(1, 999999)},'
            f'"userid":{rng.randint(1, 999999)},"key":{n}}}}}')


def event_bytes(rng: random.Random, n: int, lines: bool = False) -> bytes:
    """One log packet on the wire (with its ``¶`` or, in lines mode, ``\\n``)."""
    frame = _request_frame(rng, n)
    # The frame has no backslashes or control characters, so escaping quotes is
    # exactly JSON.stringify of the string (non-ASCII stays raw, as in Node).
    packet = '{"uri":"/logs","method":"POST","key":0,"params":"' + frame.replace('"', '\\"') + '"}'
    return packet.encode() + (b"\n" if lines else DELIM)


def syslog_bytes(rng: random.Random, n: int) -> bytes:
    """One RFC 5424 syslog line carrying request frame ``n`` as its message."""
    frame = _request_frame(rng, n)
    app = frame[9:frame.index('"', 9)].strip("/")  # the frame starts {"uri":"/goods",...
    return (f"<134>1 2026-11-29T16:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z "
            f"web-{n % 8} {app} {1000 + n % 64} - - {frame}\n").encode()


def build_batches(first: int, count: int, *, lines: bool, batch_bytes: int,
                  seed: int, syslog: bool = False) -> list[tuple[bytes, int]]:
    """Events first..first+count-1 as (bytes, number of events) batches."""
    rng = random.Random(seed * 1_000_003 + first)
    batches: list[tuple[bytes, int]] = []
    cur: list[bytes] = []
    size = 0
    for n in range(first, first + count):
        b = syslog_bytes(rng, n) if syslog else event_bytes(rng, n, lines)
        cur.append(b)
        size += len(b)
        if size >= batch_bytes:
            batches.append((b"".join(cur), len(cur)))
            cur, size = [], 0
    if cur:
        batches.append((b"".join(cur), len(cur)))
    return batches


_NUM = re.compile(rb'key\\*"\s*:\s*"?(\d+)')


def event_numbers(line: bytes) -> int | None:
    """The unique event number carried by a stored line (largest ``key`` in it), or None.

    Works for the book's log.txt lines, rsyslog's lines and NDJSON events that
    keep the packet text (escaped once or twice): the log packet's own ``key``
    is 0, the request's ``key`` is the event number.
    """
    nums = _NUM.findall(line)
    return max(int(x) for x in nums) if nums else None


class _Conn(threading.Thread):
    def __init__(self, host: str, port: int, batches: list[tuple[bytes, int]],
                 barrier: threading.Barrier, connect_timeout: float,
                 reconnect_timeout: float, deadline: float, rate: float = 0.0,
                 stall_timeout: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.addr = (host, port)
        self.batches = batches
        self.barrier = barrier
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.deadline = deadline
        self.rate = rate  # events/s for this connection, 0 = unpaced
        self.stall_timeout = stall_timeout
        self.t_start = 0.0
        self.sock: socket.socket | None = None
        self.sent = 0
        self.failed = 0
        self.unsent = 0
        self.bytes = 0
        self.reconnects = 0
        self.error: str | None = None
        self.t_end = 0.0

    def _connect(self, timeout: float) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=timeout)
        s.settimeout(self.stall_timeout)  # a batch not taken in this time: the connection is dead
        return s

    def connect(self) -> None:
        end = time.monotonic() + self.connect_timeout
        while True:
            try:
                self.sock = self._connect(self.connect_timeout)
                return
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def _reconnect(self) -> bool:
        end = min(time.monotonic() + self.reconnect_timeout, self.deadline)
        while time.monotonic() < end:
            try:
                self.sock = self._connect(1.0)
                self.reconnects += 1
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def run(self) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.unsent = sum(n for _, n in self.batches)
            return
        self.t_start = time.monotonic()
        i = 0
        done = 0
        while i < len(self.batches):
            data, n = self.batches[i]
            i += 1
            if self.rate:
                wait = self.t_start + done / self.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            done += n
            if time.monotonic() > self.deadline:
                self.unsent += n + sum(k for _, k in self.batches[i:])
                self.error = "deadline reached"
                break
            try:
                assert self.sock is not None
                self.sock.sendall(data)
                self.sent += n
                self.bytes += len(data)
            except OSError as exc:
                self.sent += n
                self.failed += n
                self.error = f"{type(exc).__name__}: {exc}"
                self._close()
                if not self._reconnect():
                    self.unsent += sum(k for _, k in self.batches[i:])
                    break
        self.t_end = time.monotonic()
        self._close(graceful=True)

    def _close(self, graceful: bool = False) -> None:
        s, self.sock = self.sock, None
        if s is None:
            return
        try:
            if graceful:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        s.close()


def run(host: str, port: int, connections: int, events: int, *, lines: bool = False,
        syslog: bool = False,
        first: int = 0, batch_bytes: int = 64 * 1024, seed: int = 1,
        connect_timeout: float = 10.0, reconnect_timeout: float = 10.0,
        timeout: float = 600.0, rate: float = 0.0, stall_timeout: float = 5.0) -> dict:
    """Send ``events`` events over ``connections`` connections; return the summary dict."""
    t0 = time.monotonic()
    share, extra = divmod(events, connections)
    plans: list[list[tuple[bytes, int]]] = []
    start = first
    for k in range(connections):
        cnt = share + (1 if k < extra else 0)
        plans.append(build_batches(start, cnt, lines=lines, batch_bytes=batch_bytes, seed=seed,
                                   syslog=syslog))
        start += cnt
    total_bytes = sum(len(b) for p in plans for b, _ in p)
    build_s = time.monotonic() - t0

    barrier = threading.Barrier(connections + 1)
    deadline = time.monotonic() + timeout
    conns = [_Conn(host, port, p, barrier, connect_timeout, reconnect_timeout, deadline,
                   rate / connections, stall_timeout)
             for p in plans]
    try:
        for c in conns:
            c.connect()
    except OSError as exc:
        barrier.abort()
        for c in conns:
            c._close()
        raise SystemExit(f"loadgen: cannot connect to {host}:{port}: {exc}") from exc
    for c in conns:
        c.start()
    barrier.wait()
    t_start = time.monotonic()
    for c in conns:
        c.join(max(0.0, deadline - time.monotonic()) + 5.0)
    t_end = max([c.t_end for c in conns if c.t_end] or [time.monotonic()])
    secs = max(t_end - t_start, 1e-9)
    sent = sum(c.sent for c in conns)
    errors = sorted({c.error for c in conns if c.error})
    return {
        "events": events,
        "sent": sent,
        "failed_events": sum(c.failed for c in conns),
        "unsent": events - sent,
        "reconnects": sum(c.reconnects for c in conns),
        "connections": connections,
        "bytes": total_bytes,
        "mean_event_bytes": round(total_bytes / events, 1) if events else 0,
        "seconds": round(secs, 6),
        "events_per_s": round(sent / secs, 1),
        "mb_per_s": round(sum(c.bytes for c in conns) / secs / 1e6, 1),
        "build_seconds": round(build_s, 3),
        "t_start": t_start,
        "t_end": t_end,
        "rate": rate,
        "first": first,
        "lines": lines,
        "errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9040)
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("-n", "--events", type=int, default=300_000)
    ap.add_argument("--lines", action="store_true", help="terminate packets with \\n, not ¶")
    ap.add_argument("--syslog", action="store_true", help="RFC 5424 syslog lines, not book packets")
    ap.add_argument("--first", type=int, default=0, help="number of the first event")
    ap.add_argument("--batch-bytes", type=int, default=0,
                    help="bytes handed to each sendall, whole events (default 64 KiB, 4 KiB with --rate)")
    ap.add_argument("--rate", type=float, default=0.0, help="total events/s (default: unpaced)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--reconnect-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=600.0, help="bound on the sending")
    ap.add_argument("--stall-timeout", type=float, default=5.0,
                    help="a batch not accepted within this many seconds breaks the connection")
    ap.add_argument("--dump", action="store_true",
                    help="write the byte stream of one connection to stdout instead of sending")
    a = ap.parse_args(argv)
    if a.connections < 1 or a.events < 0:
        ap.error("need --connections >= 1 and --events >= 0")
    batch_bytes = a.batch_bytes or (4096 if a.rate else 64 * 1024)
    if a.dump:
        for data, _ in build_batches(a.first, a.events, lines=a.lines,
                                     batch_bytes=batch_bytes, seed=a.seed, syslog=a.syslog):
            sys.stdout.buffer.write(data)
        return 0
    res = run(a.host, a.port, a.connections, a.events, lines=a.lines, syslog=a.syslog, first=a.first,
              batch_bytes=batch_bytes, seed=a.seed, connect_timeout=a.connect_timeout,
              reconnect_timeout=a.reconnect_timeout, timeout=a.timeout, rate=a.rate,
              stall_timeout=a.stall_timeout)
    print(json.dumps(res))
    return 0 if res["unsent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
