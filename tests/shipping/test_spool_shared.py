"""Two processes given one spool directory (two instances of a service on one host, with the
default ``DATA_DIR/spool/NAME``; a script's ``LogHandler`` run twice at once).

Each appended to the same files and each deleted the files it had read past: a file the other
was still appending to was unlinked under it, and what it spooled after that went into the
deleted file, never sent (found from outside: ``logmesh service goods --port 9010`` and
``--port 9012`` share ``data/spool/goods``). Each process now has a spool of its own in that
directory, held under ``flock``; a reopen in the same process is the same spool.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from logmesh.shipping.spool import Spool

# A second process with the spool: puts records, waits for a line on stdin, puts more, takes
# everything it can and prints the numbers it took.
OTHER = r"""
import sys, orjson
from logmesh.shipping.spool import Spool

def recs(start, count):
    return [["inst-b", n, 1_795_626_000_000 + n, f"GET /goods {n}", None]
            for n in range(start, start + count)]

s = Spool(sys.argv[1], file_bytes=300)
s.put(recs(1, 2))
print("put", flush=True)
sys.stdin.readline()
s.put(recs(3, 2))
got, _ = s.take(100)
print(orjson.dumps([r[1] for r in got]).decode(), flush=True)
"""


def records(instance: str, start: int, count: int) -> list[list]:
    return [[instance, n, 1_795_626_000_000 + n, f"GET /goods {n}" + "x" * 40, None]
            for n in range(start, start + count)]


def test_two_processes_on_one_spool_directory_lose_nothing(tmp_path: Path):
    spool_dir = tmp_path / "spool"
    other = subprocess.Popen([sys.executable, "-c", OTHER, str(spool_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert other.stdout.readline().strip() == "put"
        mine = Spool(spool_dir, file_bytes=300)
        mine.put(records("inst-a", 1, 20))  # past file_bytes: files roll
        taken, pos = mine.take(100)
        mine.commit(pos)  # acknowledged: the files read past are deleted
        other.stdin.write("go\n")
        other.stdin.flush()
        theirs = [int(n) for n in other.stdout.readline().strip("[]\n").split(",") if n]
        assert other.wait(30) == 0
    finally:
        other.kill()
        other.wait()
    sent_b = {r[1] for r in taken if r[0] == "inst-b"} | set(theirs)
    assert sent_b == {1, 2, 3, 4}, "every record the other process spooled is sent by one of them"
    assert [r[1] for r in taken if r[0] == "inst-a"] == list(range(1, 21))
    mine.close()


def test_a_second_process_uses_its_own_spool_and_a_later_start_sends_it(tmp_path: Path):
    spool_dir = tmp_path / "spool"
    script = OTHER.replace("sys.stdin.readline()", "pass")
    mine = Spool(spool_dir)
    mine.put(records("inst-a", 1, 3))
    out = subprocess.run([sys.executable, "-c", script, str(spool_dir)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.splitlines()[-1] == "[1,2,3,4]", "its own records, none of this one's"
    # that process ended with its records taken, never acknowledged: a process that starts
    # while this one still runs gets that spool, with them
    again = subprocess.run([sys.executable, "-c", script.replace("s.put(recs(1, 2))", "pass")
                            .replace("s.put(recs(3, 2))", "pass"), str(spool_dir)],
                           capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).parents[2], check=True)
    assert again.stdout.splitlines()[-1] == "[1,2,3,4]"
    assert [r[1] for r in Spool(spool_dir).take(10)[0]] == [1, 2, 3], "a reopen here: the same spool"
    mine.close()


def test_a_closed_spool_lets_another_process_have_the_directory(tmp_path: Path):
    spool_dir = tmp_path / "spool"
    mine = Spool(spool_dir)
    mine.put(records("inst-a", 1, 3))
    mine.close()
    script = OTHER.replace("sys.stdin.readline()", "pass").replace("s.put(recs(1, 2))", "pass")
    out = subprocess.run([sys.executable, "-c", script, str(spool_dir)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.splitlines()[-1] == "[1,2,3,3,4]", "this process's records, then its own"
    assert not (spool_dir / "slot-1").exists()


def test_a_process_that_starts_alone_sends_what_a_second_one_left(tmp_path: Path):
    spool_dir = tmp_path / "spool"
    mine = Spool(spool_dir)
    mine.put(records("inst-a", 1, 3))
    taken, pos = mine.take(10)
    mine.commit(pos)  # all of this one's sent
    script = OTHER.replace("sys.stdin.readline()", "pass")
    out = subprocess.run([sys.executable, "-c", script, str(spool_dir)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.splitlines()[-1] == "[1,2,3,4]"  # in slot-1, taken, never acknowledged
    mine.close()
    alone = subprocess.run([sys.executable, "-c", script.replace("s.put(recs(1, 2))", "pass")
                            .replace("s.put(recs(3, 2))", "pass"), str(spool_dir)],
                           capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).parents[2], check=True)
    assert alone.stdout.splitlines()[-1] == "[1,2,3,4]", "the second instance's records are sent"
