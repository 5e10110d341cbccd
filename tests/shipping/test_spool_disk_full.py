"""The shipper's spool on a disk that fills up.

Found from outside (a `LogHandler` spooling to an 8 MB tmpfs while the logs service was down,
then replaying): the shipper counted 55,462 events spooled and the file held 54,900 lines.
``os.write`` returns short, without an error, when the disk fills in the middle of a put: the
records past that point were counted spooled and never written (a promise broken: a spooled
event is never lost). The events of the puts that failed next left the queue uncounted
(neither spooled nor dropped), with a traceback at every pump. And the replay stopped after its
first acknowledged take: the head could not be saved, and the error left the take unsettled,
so the spool that filled the disk never drained to free it.

Here the disk is a wrapper around ``os.write`` (and ``write_atomic``'s file) that takes only so
many bytes, as a full filesystem does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from logmesh.shipping import spool as spool_mod
from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool
from tests.shipping.test_spool import numbers, records


class Disk:
    """``room`` bytes left for spool files: a write past it is short, the next one ENOSPC."""

    def __init__(self, monkeypatch, room: int) -> None:
        self.room = room
        real = os.write

        def write(fd: int, data) -> int:
            if not os.readlink(f"/proc/self/fd/{fd}").endswith(".ndjson"):
                return real(fd, data)
            if self.room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = real(fd, bytes(data[: self.room]))
            self.room -= n
            return n

        monkeypatch.setattr(os, "write", write)


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def test_a_put_the_disk_cuts_short_raises_and_leaves_no_part_of_it(spool_dir, monkeypatch):
    s = Spool(spool_dir)
    assert s.put(records(1, 3)) == 3
    size = (spool_dir / "spool-000000000001.ndjson").stat().st_size
    disk = Disk(monkeypatch, room=100)  # a part of the next put fits, not all of it
    with pytest.raises(OSError):
        s.put(records(4, 5))
    assert (spool_dir / "spool-000000000001.ndjson").stat().st_size == size, "cut back"
    with pytest.raises(OSError):
        s.put(records(4, 5))  # no room at all
    disk.room = 10**9  # space freed
    assert s.put(records(9, 2)) == 2
    got, _ = s.take(100)
    assert numbers(got) == [1, 2, 3, 9, 10], "what was put is read whole, nothing glued or lost"
    s.close()


def test_a_head_that_cannot_be_saved_does_not_stop_the_replay(spool_dir, monkeypatch):
    s = Spool(spool_dir, file_bytes=200)
    for start in range(1, 10, 3):
        s.put(records(start, 3))  # a file each
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(spool_mod, "write_atomic", full)
    got, pos = s.take(6)
    s.commit(pos)  # the head is not saved: no error, and finished files are deleted
    assert s.head == pos
    got2, pos2 = s.take(100)
    assert numbers(got) + numbers(got2) == list(range(1, 10))
    s.commit(pos2)
    s.close()
    again = Spool(spool_dir)  # a restart after that resends from the last saved head: more, never less
    left, _ = again.take(100)
    assert set(numbers(left)) <= set(range(1, 10))
    again.close()


async def test_events_the_spool_refuses_stay_queued_and_an_overflow_is_counted(
        spool_dir, monkeypatch) -> None:
    shipper = Shipper("svc", mode="ack", spool=Spool(spool_dir), max_queue=10)
    disk = Disk(monkeypatch, room=0)
    for i in range(6):
        shipper.ship(f"GET /goods {i}".encode())
    shipper._pump()  # not connected: spill, and the disk refuses
    assert len(shipper.queue) == 6 and shipper.stats["spooled"] == 0
    for i in range(6, 14):
        shipper.ship(f"GET /goods {i}".encode())  # over max_queue: the spool refuses the excess too
    assert len(shipper.queue) == 10 and shipper.stats["dropped"] == 4, "dropped, and counted"
    assert [e[0] for e in shipper.queue] == list(range(5, 15)), "the newest kept, in order"
    disk.room = 10**9
    shipper._pump()
    assert shipper.stats["spooled"] == 10 and not shipper.queue
    got, _ = shipper.spool.take(100)
    assert numbers(got) == list(range(5, 15))
    shipper.spool.close()


async def test_what_cannot_be_spooled_at_close_is_counted_dropped(spool_dir, monkeypatch, caplog):
    shipper = Shipper("svc", mode="ack", spool=Spool(spool_dir))
    Disk(monkeypatch, room=0)
    for i in range(3):
        shipper.ship(f"GET /goods {i}".encode())
    await shipper.close()
    assert shipper.stats["dropped"] == 3 and shipper.stats["spooled"] == 0
    assert "could not be spooled at exit" in caplog.text
