"""store/scratch.py: what a sweep removes and what it keeps."""

from __future__ import annotations

import subprocess
import sys

from logmesh.logs.store import layout
from logmesh.logs.store.scratch import Scratch, sweep


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_dead_process_directory_goes_a_live_one_stays(tmp_path):
    root = tmp_path / layout.SCRATCH_DIR
    mine = Scratch.open(tmp_path, "query")
    (mine.path / "chunk.ndjson").write_bytes(b"{}\n")
    dead = root / f"query-{dead_pid()}-abc"
    dead.mkdir()
    (dead / "chunk.ndjson").write_bytes(b"{}\n")
    (dead / ".lock").touch()
    unlocked_dead = root / f"query-{dead_pid()}-def"  # killed between mkdtemp and the lock
    unlocked_dead.mkdir()
    other = root / "not-ours"
    other.mkdir()
    assert sorted(sweep(root)) == sorted([dead, unlocked_dead])
    assert mine.path.exists() and other.exists()
    second = Scratch.open(tmp_path, "query")  # a second engine of this process keeps the first's
    assert mine.path.exists() and second.path.exists()
    mine.close()
    second.close()
    assert sorted(p.name for p in root.iterdir()) == ["not-ours"]


def test_a_locked_directory_stays_even_if_its_pid_is_gone(tmp_path):
    """Its owner lives in another pid namespace (a container sharing the volume)."""
    root = tmp_path / layout.SCRATCH_DIR
    root.mkdir()
    held = root / f"query-{dead_pid()}-xyz"
    held.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()"),
        str(held / ".lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert sweep(root) == [] and held.exists()
    finally:
        holder.stdin.close()
        holder.wait()
    assert sweep(root) == [held]


def test_no_room_in_the_data_directory_takes_the_systems_temp_directory(tmp_path):
    """A full disk (here: a file where the directory goes) must not stop the queries."""
    (tmp_path / layout.SCRATCH_DIR).write_bytes(b"")
    s = Scratch.open(tmp_path, "query")
    assert s.path.exists() and tmp_path not in s.path.parents
    s.close()
    assert not s.path.exists()
