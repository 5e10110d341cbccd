"""The shipper's disk spool (logmesh/shipping/spool.py) on its own: put, take, commit, rewind, reopen.

What it promises: a record put and not committed is taken again after a
rewind or a reopen, in order, and a committed one never again; a torn last
record (a crash in the middle of a write) is skipped, not fatal; past
``max_bytes`` the oldest file goes and its records are counted as dropped;
files are deleted once the head has moved past them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from logmesh.shipping.spool import HEAD_FILE, Spool


def records(start: int, count: int, size: int = 0, extra: bool = True) -> list[list]:
    """``[instance, n, ts, raw, extra]`` as the shipper spools them (``extra`` on odd numbers;
    without it, records numbered 1-9 are all the same size)."""
    return [["inst-a", n, 1_795_626_000_000 + n, f"GET /goods {n}" + "x" * size,
             {"log.level": "info"} if extra and n % 2 else None] for n in range(start, start + count)]


def plain(start: int, count: int) -> list[list]:
    return records(start, count, extra=False)


def line_bytes(recs: list[list]) -> int:
    return sum(len(orjson.dumps(r)) + 1 for r in recs)


def numbers(recs: list[list]) -> list[int]:
    return [r[1] for r in recs]


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("spool-*.ndjson"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


# -- put, take, commit, rewind ----------------------------------------------------------


def test_records_come_back_as_they_were_put_in_order(spool_dir):
    s = Spool(spool_dir)
    assert not s and not s.has_pending and s.pending_bytes() == 0
    assert s.put([]) == 0 and not s.has_pending
    assert s.put(records(1, 3)) == 3
    assert s.put(records(4, 2)) == 2
    assert s and s.has_pending and s.pending_bytes() == line_bytes(records(1, 5))
    got, pos = s.take(10)
    assert got == records(1, 5)  # JSON round trip: lists, None and dicts as they were
    assert pos == s.read_pos and not s.has_pending and s.pending_bytes() == 0
    assert s.take(10) == ([], pos)
    s.close()


def test_take_respects_its_limit_and_goes_on_where_it_stopped(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 10))
    first, pos1 = s.take(4)
    assert numbers(first) == [1, 2, 3, 4] and s.has_pending
    assert s.pending_bytes() == line_bytes(records(5, 6))
    second, pos2 = s.take(4)
    third, pos3 = s.take(4)
    assert numbers(second) == [5, 6, 7, 8] and numbers(third) == [9, 10]
    assert pos1 < pos2 < pos3 and not s.has_pending
    s.close()


def test_rewind_gives_back_what_was_taken_but_not_committed(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 6))
    _, pos = s.take(2)
    s.commit(pos)  # 1 and 2 acknowledged
    s.take(3)  # 3, 4, 5 in flight: the connection is lost
    s.rewind()
    assert s.has_pending and s.read_pos == s.head == pos
    got, _ = s.take(10)
    assert numbers(got) == [3, 4, 5, 6], "from the durable head, nothing committed twice"
    s.close()


def test_commit_behind_the_head_changes_nothing(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 4))
    _, pos1 = s.take(2)
    _, pos2 = s.take(2)
    s.commit(pos2)
    s.commit(pos1)  # an older answer arriving late
    assert s.head == pos2
    s.rewind()
    assert s.take(10)[0] == []
    s.close()


def test_a_reopened_spool_starts_at_the_durable_head(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 5))
    _, pos = s.take(2)
    s.commit(pos)
    s.take(2)  # in flight when the process ends: not acknowledged
    s.close()
    assert orjson.loads((spool_dir / HEAD_FILE).read_bytes()) == {"file": pos[0], "offset": pos[1]}

    s2 = Spool(spool_dir)
    assert s2.head == s2.read_pos == pos and s2.has_pending
    assert s2.pending_bytes() == line_bytes(records(3, 3))
    s2.put(records(6, 2))  # a new run appends to a new file, after the old one
    got, _ = s2.take(10)
    assert numbers(got) == [3, 4, 5, 6, 7]
    s2.close()


def test_an_unreadable_head_file_starts_from_the_beginning(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 3))
    s.close()
    (spool_dir / HEAD_FILE).write_bytes(b'{"file": ')  # nothing was ever committed
    s2 = Spool(spool_dir)
    assert numbers(s2.take(10)[0]) == [1, 2, 3], "resent rather than lost"
    s2.close()


@pytest.mark.parametrize("damage", ["inside_a_record", "past_the_file", "past_every_file"])
def test_a_head_damaged_to_where_no_record_starts_resends_rather_than_skips(spool_dir, damage):
    """A digit of head.json damaged (it parses): the records it jumped over were skipped for
    good (inside a record: that one too, read as damaged; a file number past every file: all)."""
    s = Spool(spool_dir, file_bytes=line_bytes(records(1, 3)))
    s.put(records(1, 3))
    s.put(records(4, 3))  # a second file
    _, pos = s.take(1)
    s.commit(pos)
    s.close()
    head = {"inside_a_record": [pos[0], pos[1] + 7], "past_the_file": [pos[0], 10**6],
            "past_every_file": [pos[0] + 40, 0]}[damage]
    (spool_dir / HEAD_FILE).write_bytes(orjson.dumps({"file": head[0], "offset": head[1]}))
    s2 = Spool(spool_dir)
    assert numbers(s2.take(10)[0]) == [1, 2, 3, 4, 5, 6], "resent rather than lost"
    s2.close()


def test_a_head_past_a_file_commit_deleted_is_sound(spool_dir):
    s = Spool(spool_dir, file_bytes=line_bytes(records(1, 3)))
    s.put(records(1, 3))
    s.put(records(4, 3))
    _, pos = s.take(3)
    s.commit(pos)  # the first file read to its end: deleted
    s.close()
    s2 = Spool(spool_dir)
    assert numbers(s2.take(10)[0]) == [4, 5, 6]
    s2.close()


def test_a_stray_file_in_the_spool_is_left_alone(spool_dir):
    """A file named like a spool file but not numbered as put() names them (a copy a human
    made, an editor's backup) stopped the spool's process at every start (ValueError)."""
    s = Spool(spool_dir)
    s.put(records(1, 3))
    s.close()
    (spool_dir / "spool-000000000001 (copy).ndjson").write_bytes(b"kept\n")
    (spool_dir / "spool-old.ndjson").write_bytes(b"kept\n")
    s2 = Spool(spool_dir)
    assert numbers(s2.take(10)[0]) == [1, 2, 3]
    s2.close()
    assert (spool_dir / "spool-old.ndjson").read_bytes() == b"kept\n"


def test_a_torn_last_record_is_skipped(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 3))
    s.close()
    (path,) = spool_dir.glob("spool-*.ndjson")
    whole = path.read_bytes()
    torn = orjson.dumps(records(4, 1)[0])[:17]
    path.write_bytes(whole + torn)  # a crash in the middle of the fourth write

    s2 = Spool(spool_dir)
    got, pos = s2.take(10)
    assert numbers(got) == [1, 2, 3] and pos == (int(path.stem.split("-")[1]), len(whole))
    s2.put(records(5, 2))  # in a new file: nothing is ever appended to the torn bytes
    got, pos = s2.take(10)
    assert numbers(got) == [5, 6]
    s2.commit(pos)
    assert not path.exists(), "committed past: the torn file goes too"
    s2.close()


def test_a_damaged_line_in_the_middle_is_skipped_and_the_rest_read(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 3))
    s.close()
    (path,) = spool_dir.glob("spool-*.ndjson")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"\x00" * (len(lines[1]) - 1) + b"\n"  # a bad block on the disk
    path.write_bytes(b"".join(lines))
    s2 = Spool(spool_dir)
    got, pos = s2.take(10)
    assert numbers(got) == [1, 3] and pos[1] == path.stat().st_size
    s2.close()


def test_a_damaged_line_that_is_json_of_another_shape_is_skipped(spool_dir):
    """outside19: a damaged line that still parses as JSON (``[1]``, ``{}``, ``7``) was handed to
    the shipper, whose pump raised on it at every wake-up: the records taken with it were never
    sent, and after a restart the same take raised again, so the spool never drained."""
    s = Spool(spool_dir)
    s.put(records(1, 2))
    s.close()
    (path,) = spool_dir.glob("spool-*.ndjson")
    path.write_bytes(path.read_bytes() + b'[1]\n{}\n7\n["i",null,0,"m",null]\n' + orjson.dumps(records(3, 1)[0])
                     + b"\n")
    s2 = Spool(spool_dir)
    got, pos = s2.take(10)
    assert numbers(got) == [1, 2, 3] and pos[1] == path.stat().st_size
    s2.close()


def test_a_torn_tail_is_not_pending_once_everything_before_it_is_committed(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 3))
    s.close()
    (path,) = spool_dir.glob("spool-*.ndjson")
    path.write_bytes(path.read_bytes() + b'["inst-a",4,17')
    s2 = Spool(spool_dir)
    got, pos = s2.take(10)
    s2.commit(pos)
    assert numbers(got) == [1, 2, 3]
    assert s2.pending_bytes() == 0 and not s2
    s2.close()


# -- files: rolling, deleting, the size limit ---------------------------------------------------


def test_files_roll_at_file_bytes_and_are_deleted_once_committed_past(spool_dir):
    s = Spool(spool_dir, file_bytes=300)
    for n in range(1, 13, 2):
        s.put(records(n, 2))  # ~100 bytes a record: a new file every 3rd put
    assert len(files(spool_dir)) == 2
    got, pos = s.take(5)
    s.commit(pos)  # 1-5: the first file (1-6) is not read to its end
    assert len(files(spool_dir)) == 2
    got, pos = s.take(1)
    s.commit(pos)  # 6 ends the first file
    assert len(files(spool_dir)) == 1
    got, pos = s.take(100)
    assert numbers(got) == list(range(7, 13))
    s.commit(pos)
    assert len(files(spool_dir)) == 1, "the file being appended to stays, read to its end"
    s.put(records(13, 1))
    assert numbers(s.take(10)[0]) == [13]
    s.close()


def test_a_reopened_spool_deletes_the_old_file_once_committed_past(spool_dir):
    s = Spool(spool_dir)
    s.put(records(1, 2))
    _, pos = s.take(10)
    s.commit(pos)
    assert len(files(spool_dir)) == 1  # the file being appended to, read to its end
    s.close()
    s2 = Spool(spool_dir)
    assert not s2 and not s2.has_pending
    s2.put(records(3, 1))
    _, pos = s2.take(10)
    s2.commit(pos)
    assert files(spool_dir) == [f"spool-{pos[0]:012d}.ndjson"]
    s2.close()


def test_over_max_bytes_the_oldest_file_is_dropped_and_counted(spool_dir):
    one = line_bytes(plain(1, 1))
    s = Spool(spool_dir, max_bytes=one * 7, file_bytes=one * 3)  # 3 records a file, 7 in all
    s.put(plain(1, 3))
    s.put(plain(4, 3))
    assert s.dropped == 0 and len(files(spool_dir)) == 2
    s.put(plain(7, 3))  # 9 records > 7: the oldest file goes
    assert s.dropped == 3 and len(files(spool_dir)) == 2
    assert s.pending_bytes() == line_bytes(plain(4, 6))
    got, _ = s.take(100)
    assert numbers(got) == list(range(4, 10)), "the newest are kept, in order"
    s.close()
    kept = files(spool_dir)[0]
    assert s.head == (int(kept[6:18]), 0)
    assert Spool(spool_dir).head == s.head, "the head moved past the dropped file, durably"


def test_a_dropped_file_counts_only_what_was_not_committed(spool_dir):
    one = line_bytes(plain(1, 1))
    s = Spool(spool_dir, max_bytes=one * 7, file_bytes=one * 3)
    s.put(plain(1, 3))
    _, pos = s.take(2)
    s.commit(pos)  # 1 and 2 acknowledged
    s.take(1)  # 3 in flight
    s.put(plain(4, 3))
    s.put(plain(7, 3))  # 7 records on disk + 2 committed ones in the oldest file: it goes
    assert s.dropped == 1, "only 3 was lost: 1 and 2 had been acknowledged"
    assert s.read_pos == s.head and s.head[1] == 0
    assert numbers(s.take(100)[0]) == list(range(4, 10))
    s.close()


def test_the_file_being_written_is_never_dropped(spool_dir):
    s = Spool(spool_dir, max_bytes=10, file_bytes=10_000)
    s.put(records(1, 5))  # over the limit at once, but it is the only file
    assert s.dropped == 0 and numbers(s.take(10)[0]) == [1, 2, 3, 4, 5]
    s.close()


# -- the read size per take ------------------------------------------------------------------

BIG = 4 * 1024 * 1024  # take() reads at most this much of a file per call (spool.py)


def test_a_take_never_skips_records_of_a_file_larger_than_one_read(spool_dir):
    s = Spool(spool_dir, file_bytes=BIG + 512 * 1024)
    size = 2000
    per_put = 500
    n = 1
    while s.pending_bytes() < BIG + 256 * 1024:  # one file over 4 MiB ...
        s.put(records(n, per_put, size))
        n += per_put
    s.put(records(n, 10, size))  # ... and a newer file after it
    n += 10
    assert len(files(spool_dir)) == 2
    got: list[list] = []
    while True:
        batch, pos = s.take(10_000)
        if not batch:
            break
        got += batch
        s.commit(pos)
    assert numbers(got) == list(range(1, n))
    s.close()


def test_has_pending_stays_set_while_a_large_file_has_more_to_read(spool_dir):
    s = Spool(spool_dir)
    n = 1
    while s.pending_bytes() < BIG + 256 * 1024:
        s.put(records(n, 500, 2000))
        n += 500
    got, _ = s.take(2100)  # past the first 4 MiB read, not to the end
    assert len(got) == 2100 and s.pending_bytes() > 0
    assert s.has_pending, "records remain to be taken"
    got, _ = s.take(10_000)
    assert len(got) == n - 1 - 2100 and not s.has_pending
    s.close()


# -- a model of it ---------------------------------------------------------------------------


class SpoolMachine(RuleBasedStateMachine):
    """The spool against a list of records and two indexes into it: head (durable) and read.

    Small files (``file_bytes`` 400) so that rolling, deleting and reopening
    across files are exercised in a few steps; no size limit (drops are
    tested above).
    """

    positions = Bundle("positions")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.spool = self._open()
        self.model: list[list] = []
        self.head = 0  # records before this are acknowledged
        self.read = 0  # records before this were taken since the last rewind or reopen
        self.epoch = 0  # positions of an earlier epoch are forgotten (the shipper does too)
        self.next_n = 1

    def _open(self) -> Spool:
        return Spool(self.dir, file_bytes=400)

    @initialize()
    def start(self) -> None:
        assert not self.spool and self.spool.take(5) == ([], (0, 0))

    @rule(count=st.integers(0, 6), size=st.integers(0, 120))
    def put(self, count: int, size: int) -> None:
        recs = records(self.next_n, count, size)
        self.next_n += count
        assert self.spool.put(recs) == count
        self.model += recs

    @rule(target=positions, limit=st.integers(1, 8))
    def take(self, limit: int):
        got, pos = self.spool.take(limit)
        want = self.model[self.read:self.read + limit]
        assert numbers(got) == numbers(want), "taken in order, from where the last take ended"
        assert got == want
        self.read += len(got)
        return (self.epoch, pos, self.read)

    @rule(taken=consumes(positions))
    def commit(self, taken) -> None:
        epoch, pos, upto = taken
        if epoch != self.epoch:
            return  # taken before a rewind or reopen: the shipper forgot it
        self.spool.commit(pos)
        self.head = max(self.head, upto)

    @rule()
    def rewind(self) -> None:
        self.spool.rewind()
        self.read = self.head
        self.epoch += 1

    @rule()
    def reopen(self) -> None:
        self.spool.close()
        self.spool = self._open()
        self.read = self.head
        self.epoch += 1

    @precondition(lambda self: self.read < len(self.model))
    @rule()
    def take_everything_left(self) -> None:
        got, pos = self.spool.take(10_000)
        assert got == self.model[self.read:]
        self.read = len(self.model)

    @invariant()
    def pending_is_what_was_not_taken(self) -> None:
        left = self.model[self.read:]
        assert self.spool.pending_bytes() == line_bytes(left)
        assert bool(self.spool) == bool(left)
        if left:
            assert self.spool.has_pending, "has_pending may be stale only towards True"
        assert self.spool.dropped == 0

    @invariant()
    def no_file_is_kept_behind_the_head(self) -> None:
        head_file = self.spool.head[0]
        on_disk = [int(name[6:18]) for name in files(self.dir)]
        assert all(f >= head_file for f in on_disk), (on_disk, self.spool.head)
        if self.head == len(self.model):  # everything acknowledged: at most the head's file
            assert len(on_disk) <= 1

    def teardown(self) -> None:
        self.spool.close()
        try:  # what survives a reopen: exactly the records not acknowledged, in order
            again = Spool(self.dir, file_bytes=400)
            assert again.take(10_000)[0] == self.model[self.head:]
            again.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


SpoolMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_spool_model = SpoolMachine.TestCase
