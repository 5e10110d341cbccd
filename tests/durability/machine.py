"""The durability machine, without hypothesis: actions on one real logs service, a model of
what every event sent to it may become, and the invariants.

test_store_machine.py drives it with hypothesis' ``RuleBasedStateMachine`` (bounded, for
CI); bench/torture.py drives it with a seeded ``random.Random`` for as long as it is told.

The model: each event carries a unique marker and is, once sent,

* ``acked``   -- a 200 ``{"accepted": n}`` (its line not in ``errors``) or a TCP
  ``{"errorcode":0,"acked":N}``: it must be returned by search exactly once, and be on
  disk exactly once; unless its own bytes were overwritten (``damaged``). Retention keeps
  an event a retention after it was stored, so an ``old`` one (stamped 30 days ago) stays
  too under ``--retention 7d``;
* ``maybe``   -- fire-and-forget book packets, and acked ingest that got no answer: at
  most once;
* ``refused`` -- named as rejected, or its whole request refused: never stored.

Problems of behaviour (an acked ingest left unanswered, SIGTERM ignored, the service not
coming back after the disk is freed) are collected with the step that showed them and
reported by the next :meth:`DurabilityMachine.check`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logmesh.protocol import encode
from tests.durability.harness import (
    REPLY_TIMEOUT,
    SMALL_SEGMENTS,
    LogsService,
    NoReply,
    active_segments,
    book_frame,
    compacted,
    damage,
    file_markers,
    new_run_id,
    parquet_markers,
    request_text,
    scan_disk,
)
from tests.support.waiting import wait_for

DAY_MS = 86_400_000
OLD_MS = 30 * DAY_MS  # "old" events are this old: past RETENTION
RETENTION = "7d"
TMPFS_BYTES = 64 * 1024 * 1024
COMPACTION_TIMEOUT = 40.0
RESUME_TIMEOUT = 30.0  # after the disk is freed, an acked POST must succeed within this
HUGE_EVENTS, HUGE_PAD = 600, 1900  # a batch of ~1.2 MiB of ordinary events

# Hostile values mixed into batches: each may be refused, none may take anything else down.
HOSTILE_HTTP = ("ts_1e300", "num_1e999", "deep", "bad_utf8")
HOSTILE_TCP = ("ts_1e20", "num_1e999", "deep", "bad_utf8")
HOSTILE_BOOK = ("ts_1e20",)
DEEP = 1000
DAMAGE_FILLS = (b"\0", b"\xff", b"}{\n")


class ServiceDown(AssertionError):
    """The service is not running and answering, or does not start again."""


def tmpfs_unavailable() -> str | None:
    """Why a small tmpfs cannot be mounted here (None: it can)."""
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@contextlib.contextmanager
def small_tmpfs(path: Path, size: int) -> Any:
    """A tmpfs of ``size`` bytes mounted at ``path`` (made) while inside, for a disk that
    really fills; pytest.skip when it cannot be mounted here."""
    import pytest

    why = tmpfs_unavailable()
    if why:
        pytest.skip(f"a full disk needs a small tmpfs: {why}")
    path.mkdir(exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"a full disk needs a small tmpfs: mount failed: {res.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@dataclass
class Sent:
    how: str  # http | tcp | book
    kind: str  # plain | old | huge | a hostile kind
    state: str  # acked | maybe | refused
    damaged: bool = False
    lost: bool = False  # reported lost once (torture counts every loss once)
    duplicated: bool = False


@dataclass
class Report:
    acked: int = 0
    stored: int = 0  # acked and found exactly once (damaged ones found included)
    damaged: int = 0  # acked, own bytes overwritten, not found
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)

    def summary(self) -> str:
        return (f"acked {self.acked} / stored {self.stored} / damaged {self.damaged} / "
                f"lost {len(self.lost)} / duplicated {len(self.duplicated)}")

    def describe(self) -> str:
        lines = [self.summary()]
        if self.lost:
            lines.append(f"lost ({len(self.lost)}): {', '.join(self.lost[:12])}")
        if self.duplicated:
            lines.append(f"duplicated ({len(self.duplicated)}): {', '.join(self.duplicated[:12])}")
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)


class DurabilityMachine:
    def __init__(self, workdir: Path, *, tmpfs: bool = True, echo: Any = None,
                 evidence: bool = False) -> None:
        self.workdir = Path(workdir)
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.echo = echo  # print-like: each step as it runs (torture)
        self.evidence = evidence  # copy the data dir beside the logs when an event is lost
        self.mounted = False
        self.no_tmpfs = "not asked for" if not tmpfs else tmpfs_unavailable()
        if self.no_tmpfs is None:
            res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs",
                                  str(self.data)], capture_output=True, text=True)
            self.mounted = res.returncode == 0
            if not self.mounted:
                self.no_tmpfs = f"mount -t tmpfs failed: {res.stderr.strip()[:200]}"
        self.svc = LogsService(self.workdir, self.data, *SMALL_SEGMENTS)
        self.run = new_run_id()
        self.instance = f"dur-{self.run}"
        self.count = self.key = self.tcp_n = 0
        self.sent: dict[str, Sent] = {}
        # Events whose segment lines damage_file overwrote. /api/v1/stats reads the counts the
        # writer kept (a sealed segment's index, the active one's counts file), not the lines:
        # it counts such events until compaction or recovery reads those lines again.
        self.overwritten_lines = 0
        self.retention = False
        self.problems: list[str] = []
        self.notes: list[str] = []  # worth a look, not a broken promise
        self.steps: list[str] = []
        self.context = ""  # prefixes the steps a step makes of its own (disk_full's ingest)
        self.top = "start"  # the step being run (not one of its own)
        self.svc.start()

    # -- bookkeeping ---------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        if not self.context:
            self.top = f"step {len(self.steps) + 1}: {text}"
        text = self.context + text
        self.steps.append(text)
        if self.echo is not None:
            self.echo(f"  step {len(self.steps)}: {text}")

    def problem(self, text: str) -> None:
        self.problems.append(f"[{self.top}] {text}")

    def mark(self, how: str, kind: str) -> str:
        self.count += 1
        m = f"dm{self.run}n{self.count}"
        self.sent[m] = Sent(how, kind, "maybe")
        return m

    def settle(self, markers: list[str], state: str) -> None:
        for m in markers:
            self.sent[m].state = state

    def start(self, *extra: str) -> None:
        try:
            self.svc.start(*extra)
        except AssertionError as exc:
            first, _, log = str(exc).partition("\n")
            raise ServiceDown(f"the service does not start again: {first}\n...{log[-1500:]}") from None

    def stop(self) -> None:
        try:
            self.svc.stop()
        except AssertionError as exc:
            self.problem(str(exc).splitlines()[0] + " (killed)")

    def close(self) -> None:
        self.svc.close()
        if self.mounted:
            if subprocess.run(["umount", str(self.data)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.data)], capture_output=True)
            self.mounted = False

    # -- acked ingest ---------------------------------------------------------------------------------
    def ingest_http(self, count: int, hostile: tuple[str, ...] = (), old: bool = False,
                    huge: bool = False) -> None:
        self.step(f"ingest_http(count={count}, hostile={hostile}, old={old}, huge={huge})")
        now = int(time.time() * 1000)
        items: list[tuple[str, bytes]] = []
        for _ in range(count):
            m = self.mark("http", "old" if old else "plain")
            ev: dict[str, Any] = {"message": f"{m} http event", "service.name": "dur"}
            if old:
                ev["@timestamp"] = now - OLD_MS
            items.append((m, orjson.dumps(ev)))
        if huge:
            for _ in range(HUGE_EVENTS):
                m = self.mark("http", "huge")
                items.append((m, orjson.dumps({"message": f"{m} " + "x" * HUGE_PAD, "service.name": "dur"})))
        for i, kind in enumerate(hostile):
            m = self.mark("http", kind)
            items.insert((i + 1) * len(items) // (len(hostile) + 1), (m, hostile_http_line(kind, m)))
        markers = [m for m, _ in items]
        try:
            status, body = self.svc.post([line for _, line in items])
        except NoReply as exc:
            self.problem(f"{exc} ({len(items)} events, hostile {hostile}, huge {huge})")
            return  # all stay "maybe"
        except OSError as exc:
            self.problem(f"POST /api/v1/logs failed: {exc!r}")
            return
        if status != 200:
            self.settle(markers, "refused")
            if status >= 500 and status not in (503, 507):
                self.problem(f"POST answered {status}: {str(body)[:200]}")
            return
        rejected = {e["line"] for e in body.get("errors", [])}
        for no, m in enumerate(markers, 1):
            self.sent[m].state = "refused" if no in rejected else "acked"
        accepted = sum(1 for no in range(1, len(markers) + 1) if no not in rejected)
        if body.get("accepted") != accepted:
            self.problem(f"POST said accepted {body.get('accepted')}, but {len(rejected)} of "
                         f"{len(markers)} lines are named as rejected: {str(body)[:300]}")

    def ingest_tcp(self, count: int, hostile: tuple[str, ...] = (), old: bool = False,
                   huge: bool = False) -> None:
        self.step(f"ingest_tcp(count={count}, hostile={hostile}, old={old}, huge={huge})")
        now = int(time.time() * 1000)
        events: list[list] = []
        markers: list[str] = []

        def add(m: str, ts: Any, raw: str) -> None:
            self.tcp_n += 1
            events.append([self.tcp_n, ts, raw, None])
            markers.append(m)

        for _ in range(count):
            m = self.mark("tcp", "old" if old else "plain")
            add(m, now - OLD_MS if old else now, request_text(m))
        if huge:
            for _ in range(HUGE_EVENTS):
                m = self.mark("tcp", "huge")
                add(m, now, request_text(m, pad="x" * HUGE_PAD))
        for i, kind in enumerate(hostile):
            m = self.mark("tcp", kind)
            ts, raw = hostile_tcp_event(kind, m, now)
            self.tcp_n += 1
            pos = (i + 1) * len(events) // (len(hostile) + 1)
            events.insert(pos, [self.tcp_n, ts, raw, None])
            markers.insert(pos, m)
        self.key += 1
        packet = tcp_packet(self.key, self.instance, events)
        try:
            reply = self.svc.tcp_batch(events, key=self.key, instance=self.instance, packet=packet)
        except NoReply as exc:
            self.problem(f"{exc} ({len(events)} events, {len(packet)} bytes, hostile {hostile})")
            return
        except OSError as exc:
            self.problem(f"TCP batch failed: {exc!r}")
            return
        if reply.get("key") != self.key:
            self.problem(f"TCP reply for another key: {reply}")
            return
        if reply.get("errorcode") in (503, 507):
            return  # not durable yet: buffered events are written when the disk has room, or not
            # (a shipper resends, and the store drops the copy): all stay "maybe"
        if reply.get("errorcode") != 0:
            self.settle(markers, "refused")  # the whole batch refused: the shipper may resend it
            return
        named = _named_rejections(reply, events)
        for (n, *_), m in zip(events, markers, strict=True):
            self.sent[m].state = "refused" if n in named else "acked"
        if reply.get("acked") != len(events) - len(named):
            self.problem(f"TCP reply acked {reply.get('acked')} of {len(events)} events, "
                         f"{len(named)} named as rejected: {str(reply)[:300]}")

    # -- fire and forget ------------------------------------------------------------------------------
    def ingest_book(self, count: int, hostile: tuple[str, ...] = ()) -> None:
        self.step(f"ingest_book(count={count}, hostile={hostile})")
        frames = []
        for _ in range(count):
            frames.append(book_frame(request_text(self.mark("book", "plain"))))
        for i, kind in enumerate(hostile):
            m = self.mark("book", kind)
            frames.insert((i + 1) * len(frames) // (len(hostile) + 1), hostile_book_frame(kind, m))
        try:
            self.svc.book(frames)
        except OSError as exc:
            self.problem(f"book packets could not be sent: {exc!r}")

    # -- process life ---------------------------------------------------------------------------------
    def restart(self) -> None:
        self.step("restart()  # SIGTERM, then start")
        self.stop()
        self.start()

    def kill9(self, torn: bool = False, mid_stream: float = 0.0) -> None:
        """kill -9, then start. ``mid_stream`` > 0: while acked HTTP batches stream in, that many
        seconds after the stream began (what was acked before the kill must survive it)."""
        self.step(f"kill9(torn={torn}, mid_stream={mid_stream:.2f})  # then start")
        stream = None
        if mid_stream:
            stop = threading.Event()
            stream = threading.Thread(target=self._stream, args=(stop,), daemon=True)
            stream.start()
            time.sleep(mid_stream)
        self.svc.kill9()
        if stream is not None:
            stop.set()
            stream.join(REPLY_TIMEOUT + 5)
        if torn:  # what a crash in the middle of a write leaves: half a record at the end
            for seg in active_segments(self.data)[-1:]:
                with open(seg, "ab") as f:
                    f.write(b'{"seq":1,"@timestamp":17,"message":"torn in the mid')
        self.start()

    def _stream(self, stop: threading.Event) -> None:
        """Acked HTTP batches of 20, ~50 a second, until ``stop`` or the process is gone."""
        svc = self.svc
        while not stop.wait(0.02):
            markers = [self.mark("http", "plain") for _ in range(20)]
            try:
                status, body = svc.post([orjson.dumps({"message": f"{m} streamed"}) for m in markers])
            except (NoReply, OSError):
                return  # killed meanwhile: these stay "maybe"
            if status == 200 and not body.get("errors"):
                self.settle(markers, "acked")
            else:
                return

    def compact(self, seal_first: bool = False) -> None:
        """Wait until every sealed segment is compacted to Parquet (a restart seals the active one)."""
        self.step(f"compact(seal_first={seal_first})")
        if seal_first:
            self.stop()
            self.start()
        try:
            wait_for(lambda: compacted(self.data), COMPACTION_TIMEOUT, "compaction")
        except AssertionError:
            # Not an invariant (nothing is lost while a segment waits): compaction retries a
            # failed segment a minute later, e.g. after a full disk. Shown by torture.
            left = [p.name for p in (self.data / "segments").glob("*.idx.json")]
            self.notes.append(f"[{self.top}] sealed segments not compacted after "
                              f"{COMPACTION_TIMEOUT:.0f}s: {left[:5]}")

    def enable_retention(self) -> None:
        """Restart with --retention: old events (stamped 30 days ago) must stay, as they were
        stored less than a retention ago (events stamped 1970 went within seconds once)."""
        self.step(f"enable_retention()  # restart with --retention {RETENTION}")
        self.stop()
        if not self.retention:
            self.retention = True
            self.svc.args += ["--retention", RETENTION]
        self.start()

    def damage_file(self, pick: float, where: float, length: int, fill: bytes) -> None:
        """With the service stopped, overwrite a byte range of one store file, then start."""
        self.step(f"damage_file(pick={pick:.3f}, where={where:.3f}, length={length}, fill={fill!r})")
        self.stop()
        files = sorted([p for p in (self.data / "segments").glob("*") if p.suffix == ".ndjson"
                        or p.name.endswith(".idx.json")]
                       + [p for p in (self.data / "parquet").glob("*")
                          if p.suffix == ".parquet" or p.name.endswith(".blocks.json")])
        files = [p for p in files if p.stat().st_size > 0]
        if files:
            target = files[min(int(pick * len(files)), len(files) - 1)]
            size = target.stat().st_size
            offset = min(int(where * size), size - 1)
            length = min(length, size - offset)
            hit: set[str] = set()
            if target.suffix == ".ndjson":
                for start, end, markers in file_markers(target):
                    if start < offset + length and end > offset:
                        hit |= markers
                        self.overwritten_lines += 1
            elif target.suffix == ".parquet":
                hit = parquet_markers(target)  # a Parquet file is read whole or not at all
            for m in hit:
                if m in self.sent:
                    self.sent[m].damaged = True
            damage(target, offset, length, fill)
            self.steps[-1] += f"  # {target.parent.name}/{target.name} [{offset}, {offset + length}) " \
                              f"of {size} bytes: {len(hit)} event(s) hit"
        self.start()

    def disk_full(self, stop_while_full: bool = False) -> None:
        """Fill the tmpfs data dir, ingest (acked), maybe SIGTERM, free it: the service resumes."""
        self.step(f"disk_full(stop_while_full={stop_while_full})")
        assert self.mounted, self.no_tmpfs
        junk = self.data / "junk.fill"
        fill_disk(junk)
        self.context = "  disk full: "
        try:
            self.ingest_http(3)
            self.ingest_tcp(3)
        finally:
            self.context = ""
        try:
            self.svc.request("GET", "/healthz", timeout=5.0)
        except OSError as exc:
            self.problem(f"/healthz does not answer while the disk is full: {exc!r}")
        if stop_while_full:
            self.stop()
            junk.unlink()
            self.start()
        else:
            junk.unlink()
        # What a client does: retry what the service turns away for now (503/507) until it is
        # stored; the service must take it within RESUME_TIMEOUT of the space coming back.
        probe = self.mark("http", "plain")
        deadline = time.monotonic() + RESUME_TIMEOUT
        while True:
            try:
                status, body = self.svc.post([orjson.dumps({"message": f"{probe} after the disk was freed"})])
            except (NoReply, OSError) as exc:
                self.problem(f"after the disk was freed: {exc}")
                return
            if status == 200 and body.get("accepted") == 1:
                self.sent[probe].state = "acked"
                return
            if status not in (503, 507) or time.monotonic() > deadline:
                self.sent[probe].state = "refused"
                self.problem(f"POST {RESUME_TIMEOUT:.0f}s after the disk was freed: {status} {str(body)[:200]}")
                return
            time.sleep(0.5)

    # -- the invariants -------------------------------------------------------------------------------
    def _stats_agree(self, counted: object, on_disk: int) -> bool:
        """Stats count every readable event, plus at most the lines this machine overwrote."""
        return isinstance(counted, int) and on_disk <= counted <= on_disk + self.overwritten_lines

    def check(self) -> Report:
        """The service answers; every acked event is found once; stats count what is on disk."""
        report = Report(problems=self.problems)
        self.problems = []
        if not self.svc.running:
            raise ServiceDown(f"the service is not running\n{self.svc.log_tail()}")
        try:
            wait_for(self.svc.healthy, 5.0, "/healthz")
        except AssertionError as exc:
            raise ServiceDown(f"/healthz does not answer: {exc}\n{self.svc.log_tail()}") from None
        time.sleep(0.1)  # the engine reuses a snapshot up to 50 ms old
        found = Counter()
        try:
            for ev in self.svc.search_all(f"dm{self.run}*"):
                found.update(set(_markers(ev.get("message"))))
        except (AssertionError, OSError) as exc:
            raise ServiceDown(f"search fails: {str(exc)[:600]}\n{self.svc.log_tail()}") from None
        disk = scan_disk(self.data)
        stats: dict = {}
        for _ in range(20):  # fire-and-forget packets may still be arriving: let it settle
            try:
                stats = self.svc.stats()
            except (AssertionError, OSError) as exc:
                raise ServiceDown(f"/api/v1/stats fails: {str(exc)[:600]}") from None
            if self._stats_agree(stats.get("events"), disk.events):
                break
            time.sleep(0.1)
            disk = scan_disk(self.data)
        if not self._stats_agree(stats.get("events"), disk.events):
            report.problems.append(f"stats counts {stats.get('events')} events, the disk holds "
                                   f"{disk.events} (+{disk.bad_lines} unreadable lines; "
                                   f"{self.overwritten_lines} stored line(s) overwritten)")
        if disk.bad_files:
            report.problems.append(f"Parquet files no reader can read, left in the store (not quarantined): {disk.bad_files[:3]}")
        for m, s in self.sent.items():
            n_search, n_disk = found[m], disk.markers[m]
            if s.state == "acked":
                report.acked += 1
                needed = not s.damaged
                if n_search == 1 or (n_disk == 1 and s.kind in HOSTILE_ALL):
                    report.stored += 1
                elif s.damaged:
                    report.damaged += 1
                elif needed and not s.lost:
                    s.lost = True
                    report.lost.append(f"{m} ({s.how}, {s.kind}: search {n_search}, disk {n_disk})")
                if needed and n_search == 1 and n_disk != 1 and s.kind not in HOSTILE_ALL:
                    report.problems.append(f"{m}: search finds it, the disk holds it {n_disk} times")
            elif s.state == "refused" and n_disk:
                report.problems.append(f"{m} ({s.how}, {s.kind}) was refused but is stored")
            if (n_search > 1 or n_disk > 1) and not s.duplicated:
                s.duplicated = True
                report.duplicated.append(f"{m} ({s.how}, {s.kind}, {s.state}: search {n_search}, "
                                         f"disk {n_disk})")
        if self.evidence and (report.lost or report.duplicated):
            where = self.workdir / f"evidence-step{len(self.steps)}"
            shutil.copytree(self.data, where, ignore=shutil.ignore_patterns("*.fill"),
                            dirs_exist_ok=True)
            (where / "report.txt").write_text(report.describe() + "\n" + "\n".join(
                f"lost {m}" for m in report.lost) + "\n")
        return report


HOSTILE_ALL = set(HOSTILE_HTTP) | set(HOSTILE_TCP) | set(HOSTILE_BOOK)


def _markers(message: Any) -> list[str]:
    from tests.durability.harness import MARK_RE

    return MARK_RE.findall(message) if isinstance(message, str) else []


def _named_rejections(reply: dict, events: list[list]) -> set[int]:
    """The event numbers (``n``) a TCP reply names as rejected: ``"rejected": [[index in the
    batch, reason], ...]`` (logs/ingest/tcp.py)."""
    named: set[int] = set()
    for entry in reply.get("rejected") or []:
        i = entry[0] if isinstance(entry, list) and entry else entry
        if isinstance(i, int) and 0 <= i < len(events):
            named.add(events[i][0])
    return named


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def hostile_http_line(kind: str, m: str) -> bytes:
    if kind == "ts_1e300":
        return b'{"@timestamp":1e300,"message":"%s ts_1e300"}' % m.encode()
    if kind == "num_1e999":
        return b'{"message":"%s num_1e999","params":{"x":1e999}}' % m.encode()
    if kind == "deep":
        return b'{"message":"%s deep","params":%s}' % (m.encode(), _deep(DEEP).encode())
    if kind == "bad_utf8":
        return b'{"message":"%s bad \xff\xfe utf8"}' % m.encode()
    raise ValueError(kind)


def hostile_tcp_event(kind: str, m: str, now: int) -> tuple[Any, str]:
    """(ts, raw) of a hostile batch event; bad_utf8's raw holds a placeholder for tcp_packet."""
    if kind == "ts_1e20":
        return 10**20, request_text(m)
    if kind == "num_1e999":
        return now, f'{{"uri":"/d/{m}","method":"POST","params":{{"m":"{m}","x":1e999}}}}'
    if kind == "deep":
        return now, f'{{"uri":"/d/{m}","method":"POST","params":{{"m":"{m}","x":{_deep(DEEP)}}}}}'
    if kind == "bad_utf8":
        return now, f'{{"uri":"/d/{m}","method":"POST","params":{{"m":"{m} {BAD_UTF8_SLOT}"}}}}'
    raise ValueError(kind)


BAD_UTF8_SLOT = "BADUTF8SLOT"


def tcp_packet(key: int, instance: str, events: list[list]) -> bytes:
    """The shipper's batch packet; stdlib json where orjson refuses (integers past 64 bits)."""
    packet = {"uri": "/logs", "method": "POST", "key": key, "ack": True,
              "params": {"service": "dur", "instance": instance, "events": events}}
    try:
        data = encode(packet)
    except TypeError:
        data = json.dumps(packet, ensure_ascii=False).encode().replace("¶".encode(), b"\\u00b6") \
            + "¶".encode()
    return data.replace(BAD_UTF8_SLOT.encode(), b"\xff\xfe")


def hostile_book_frame(kind: str, m: str) -> bytes:
    if kind == "ts_1e20":  # an extra envelope field takes it off the fast path, to the typed one
        text = json.dumps({"uri": "/logs", "method": "POST", "key": 0, "params": request_text(m),
                           "@timestamp": 10**20, "service.name": "dur"})
        return text.encode() + "¶".encode()
    raise ValueError(kind)


def fill_disk(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    chunk = b"\0" * (1024 * 1024)
    with open(path, "wb", buffering=0) as f:
        size = len(chunk)
        while size:
            try:
                f.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    with contextlib.suppress(OSError):
        os.sync()
