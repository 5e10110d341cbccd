"""/api/v1/stats from the writer's counts (store/live_counts.py) equals a full count of what
is stored, whatever happened: appends of several services by two workers' writers, group
commits, rotation, a kill (torn tail, damaged lines, stale counts), a graceful restart,
compaction to Parquet and retention. Checked after every step of a stateful machine."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from logmesh.logs.ingest.book_block import block_head, encode_block
from logmesh.logs.ingest.line_block import LineBlock
from logmesh.logs.query.engine import Engine
from logmesh.logs.store import catalogue, layout
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.live_counts import Counts
from logmesh.logs.store.retention import Retention
from logmesh.logs.store.segment import SegmentWriter
from tests.support.store import HOUR, T0, FakeClock, event, write_store

SERVICES = ["goods", "members", "pay", None, "서비스"]
COUNTS_INTERVAL = 0.005  # the writers' counts are saved this long after a group (idle: saved)
LO, HI = 0, layout.MAX_TIMESTAMP_MS


def truth(data: Path) -> tuple[int, dict[str, int]]:
    """Every event stored, counted from the files: each Parquet file's rows, and each line of
    the segments that have none (what every reader reads)."""
    services: Counter[str] = Counter()
    total = 0
    pq_dir = data / layout.PARQUET_DIR
    parquet = {p.name for p in pq_dir.glob("*.parquet")} if pq_dir.exists() else set()
    if parquet:
        con = duckdb.connect()
        rows = con.execute(
            f"SELECT \"service.name\", count(*) FROM read_parquet('{pq_dir}/*.parquet') GROUP BY ALL"
        ).fetchall()
        con.close()
        for svc, n in rows:
            total += n
            if svc is not None:
                services[svc] += n
    for seg in sorted((data / layout.SEGMENTS_DIR).glob("*.ndjson")):
        if layout.parquet_name(seg.name) in parquet:
            continue
        raw = seg.read_bytes()
        for line in raw[: raw.rfind(b"\n") + 1].splitlines():
            ev = orjson.loads(line)
            total += 1
            if ev.get("service.name") is not None:
                services[ev["service.name"]] += 1
    return total, dict(services)


class StatsCounts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="logmesh-stats-"))
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(T0)
        self.writers = [self._open(0), self._open(1)]
        self.engine = Engine(self.dir)
        self.ts = T0

    def _open(self, worker: int) -> SegmentWriter:
        w = SegmentWriter(self.dir, worker, fsync="off", clock=self.clock, max_segment_bytes=6000,
                          counts_interval=COUNTS_INTERVAL)

        async def start() -> None:
            w.open()  # recovery of what a killed writer left
            w.start()

        self.loop.run_until_complete(start())
        return w

    @rule(worker=st.integers(0, 1), services=st.lists(st.sampled_from(SERVICES), min_size=1, max_size=40),
          book=st.booleans())
    def append(self, worker, services, book):
        """One block (an event list, or a book block of one service), waited for: a group."""
        w = self.writers[worker]
        if book:
            svc = services[0]
            seqs = w.reserve(len(services))
            blob = encode_block([orjson.dumps('{"uri":"/x"}')] * len(services), seqs,
                                block_head(self.ts, ("127.0.0.1", 9), svc))
            last = w.append_encoded(blob, seqs[0], seqs[-1], len(services), self.ts, self.ts, self.ts,
                                    services={svc: len(services)} if svc is not None else {})
        else:
            last = w.append_events([event(self.ts + i, service=s, message="m" * (i % 7))
                                    for i, s in enumerate(services)])
        self.ts += 1000
        self.loop.run_until_complete(w.durable(last))

    @rule()
    def idle(self):
        """The writers idle a while: the counts of their last groups are saved (until then a
        reader counts those groups' lines)."""
        self.loop.run_until_complete(asyncio.sleep(COUNTS_INTERVAL * 3))

    @rule()
    def next_hour(self):
        """The clock's hour changes: the next group rotates (seals) the active segments."""
        self.clock.ms += HOUR

    @rule(worker=st.integers(0, 1))
    def restart(self, worker):
        """Graceful: the active segment is sealed with its index."""
        self.loop.run_until_complete(self.writers[worker].close())
        self.writers[worker] = self._open(worker)

    @rule(worker=st.integers(0, 1), tear=st.booleans(), damage=st.booleans(), garble=st.booleans())
    def kill(self, worker, tear, damage, garble):
        """kill -9: nothing sealed; then what a crash or a bad disk may leave (a torn last
        write, a damaged line, counts that are stale or garbage); the restart recovers."""
        w = self.writers[worker]
        if w._counts_timer is not None:  # the process is gone: nothing of it runs again
            w._counts_timer.cancel()
        w._flush_task.cancel()
        self.loop.run_until_complete(asyncio.wait([w._flush_task]))
        w._io.shutdown(wait=True)
        if w._fd is not None:
            os.close(w._fd)
        os.close(w._lock_fd)
        active = w.path if w._fd is not None else None
        if active is not None and active.exists():
            self._crash_leaves(active, tear, damage, garble)
        self.writers[worker] = self._open(worker)

    @staticmethod
    def _crash_leaves(active: Path, tear: bool, damage: bool, garble: bool) -> None:
        if damage:
            lines = active.read_bytes().splitlines(keepends=True)
            k = len(lines) // 2
            lines[k] = b"#" * (len(lines[k]) - 1) + b"\n"
            active.write_bytes(b"".join(lines))
        if tear:
            with open(active, "ab") as f:
                f.write(b'{"seq":99,"@timestamp":')
        if garble:
            active.with_name(layout.counts_name(active.name)).write_bytes(b'{"count": 10**9')

    @rule(worker=st.integers(0, 1))
    def garble_live_counts(self, worker):
        """Counts that do not match the segment (by a bug or a stray write): read from the lines."""
        w = self.writers[worker]
        if w.path is not None and w.path.exists():
            p = w.path.with_name(layout.counts_name(w.path.name))
            if p.exists():
                saved = orjson.loads(p.read_bytes())
                saved["bytes"] -= 1
                saved["count"] += 5
                p.write_bytes(orjson.dumps(saved))

    @rule()
    def compact(self):
        Compactor(self.dir, grace=0).run_once()

    @rule(part=st.sampled_from([0.0, 0.3, 0.7]))
    def retention(self, part):
        """--max-disk at ``part`` of what the store takes: the oldest sealed files go (a
        segment or a Parquet file; the active segments never)."""
        Retention(self.dir, max_bytes=max(1, int(catalogue.usage(self.dir).bytes * part))).run_once()

    @invariant()
    def stats_equal_a_full_count(self):
        total, services = truth(self.dir)
        st_ = self.engine.stats()
        assert st_["events"] == total
        assert st_["services"] == services
        assert st_["events"] == st_["parquet_events"] + st_["live_events"] + st_["cold_events"]
        self.engine.refresh()
        assert self.engine.count(None, LO, HI) == total  # and a query agrees

    def teardown(self):
        for w in self.writers:
            self.loop.run_until_complete(w.close())
        self.engine.close()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


StatsCounts.TestCase.settings = settings(
    max_examples=int(os.environ.get("STATS_EXAMPLES", "25")), stateful_step_count=25,
    deadline=None, suppress_health_check=list(HealthCheck))
test_stats_counts = StatsCounts.TestCase


async def test_stats_reads_no_line_the_writer_counted(tmp_path):
    """The defect: stats refreshed the live table first, loading every byte appended since
    the last call into DuckDB (9-11 s a call under a 64-connection flood). Now it reads the
    writers' counts: nothing is loaded, and the answer is the same."""
    names = ["goods", "members", None]
    first = [event(T0 + i, service=names[i % 3]) for i in range(3000)]
    writer = await write_store(tmp_path, [first, [event(T0 + HOUR + i, service="pay") for i in range(500)]])
    engine = Engine(tmp_path)
    try:
        st_ = engine.stats()
        assert st_["events"] == 3500 and st_["services"] == {"goods": 1000, "members": 1000, "pay": 500}
        assert (st_["from"], st_["to"]) == (T0, T0 + HOUR + 499)
        assert engine.counters["live_bytes_loaded"] == 0
    finally:
        await writer.close()
        engine.close()


def test_a_line_blocks_services_are_its_lines():
    """OTLP and Loki bodies (ingest/line_block.py) give the store their counts: a run's shared
    service, a column of them, and Events, as their stored lines say."""
    block = LineBlock()
    block.add_run([T0, T0 + 1, T0 + 2], received_at=T0, service_name="otel", message=["a", "b", "c"])
    block.add_run([T0, T0 + 1], received_at=T0, service_name=["x", None], message=["d", "e"])
    block.add_run([T0], received_at=T0, message=["f"])
    block.add_events([event(T0, service="x"), event(T0, service=None)])
    lines = [orjson.loads(line) for line in block.encode(range(block.count)).splitlines()]
    want = Counter(e["service.name"] for e in lines if "service.name" in e)
    assert block.services() == want == {"otel": 3, "x": 2}


async def test_the_counts_are_saved_on_a_timer_not_after_every_group(tmp_path, monkeypatch):
    """Saving the counts after every group cost socket ingest ~4% (review14): a run of groups
    saves none until the writer's timer, and stats counts the lines past them meanwhile; then
    one save covers them all, and sealing leaves the index alone."""
    from logmesh.logs.store import live_counts

    saves: list[int] = []
    real_save = live_counts.save
    monkeypatch.setattr(live_counts, "save", lambda path, index, last: (saves.append(index.bytes),
                                                                        real_save(path, index, last)))
    w = SegmentWriter(tmp_path, 0, fsync="off", counts_interval=3600)
    w.open()
    w.start()
    engine = Engine(tmp_path)
    try:
        for i in range(20):
            await w.durable(w.append_events([event(T0 + i, service="goods")]))
        assert saves == []
        assert engine.stats()["services"] == {"goods": 20}  # every line past no counts read
        w.counts_interval = 0.01
        w._counts_timer.cancel()
        w._counts_timer = None
        await w.durable(w.append_events([event(T0 + 20, service="pay")]))
        for _ in range(500):  # bounded poll: the timer's save
            if saves:
                break
            await asyncio.sleep(0.01)
        assert saves == [w.index.bytes]
        path = w.path.with_name(layout.counts_name(w.path.name))
        assert orjson.loads(path.read_bytes())["services"] == {"goods": 20, "pay": 1}
        await asyncio.sleep(0.05)
        assert len(saves) == 1  # idle: no timer, no save
        assert engine.stats()["services"] == {"goods": 20, "pay": 1}
    finally:
        await w.close()
        engine.close()
    assert not path.exists()
    assert len(saves) == 1


LINES = [b'{"seq":1,"@timestamp":5,"service.name":"goods"}', b'{"seq":2,"@timestamp":6}',
         b'{"seq":3,"@timestamp":7,"service.name":"\\ud800x"}',  # a lone surrogate: U+FFFD
         b'{"seq":4,"@timestamp":8,"service.name":123456789012345678901234}',  # its digits
         b'{"seq":5,"@timestamp":9,"n":123456789012345678901234,"service.name":"pay"}',
         b'{"seq":123456789012345678901234,"@timestamp":9}', b'{"seq":6,"@timestamp":-1}',
         b'{"seq":7}', b"[1]", b"#####", b'{"seq":8,"@timestamp":10,"service.name":7}']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_counted_lines_are_those_recovery_keeps(lines):
    """count_lines reads by orjson where that is recovery's reading (a chunk without a digit
    run past 64 bits, a line without a lone surrogate) and by recovery.record elsewhere: the
    counts are record's, line by line, either way."""
    from logmesh.logs.store.live_counts import count_lines
    from logmesh.logs.store.recovery import record

    want = Counts()
    for line in lines:
        rec = record(line)
        if rec is not None:
            want.add(Counts(1, rec[1], rec[1], {rec[2]: 1} if rec[2] is not None else {}))
    assert count_lines(b"".join(line + b"\n" for line in lines)) == want
