"""The log-reading commands piped into a reader that stops early (``| head``), tried from
outside with real processes.

Found by hand: ``logmesh tail -f | head -1`` never ended: the closed pipe was a
BrokenPipeError, an OSError, which the follow loop took for a broken stream, so it said
"stream ended ([Errno 32] Broken pipe); reconnecting" and followed on for ever, writing to
nobody. ``logmesh query ... | head`` ended with exit 1, the code that means the logs service
could not be reached. A reader that has read enough is no failure: exit 0, not a word on
stderr, as ripgrep does.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.procs import HOST, free_port, http_json, post_ndjson, wait_for

pytestmark = pytest.mark.slow  # real processes

EVENTS = 4000  # ~600 kB of table: far more than a pipe's buffer
BOUND = 60.0


def post(http_port: int, events: list[dict]) -> None:
    assert post_ndjson(http_port, events)["accepted"] == len(events)


@pytest.fixture
def filled(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "logs")
    now = int(time.time() * 1000)
    post(http_port, [{"@timestamp": now - i, "service.name": "piped",
                      "message": f"event {i} " + "x" * 100} for i in range(EVENTS)])
    wait_for(lambda: http_json(http_port, "/api/v1/histogram", q="service.name:piped",
                               **{"from": "now-1h"})["total"] == EVENTS, 60, "the events searchable")
    return http_port


def read_one_line_and_leave(args: list[str], after=lambda: None) -> tuple[int | None, str]:
    """Run ``logmesh ARGS`` into a pipe, read one line, close the pipe (as ``head -1`` does);
    its exit code (None: still running after BOUND seconds) and its stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "logmesh", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        proc.stdout.close()
        after()
        try:
            code: int | None = proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.stderr is not None
    return code, proc.stderr.read().decode("utf-8", "replace")


@pytest.mark.parametrize("args", [
    ["query", "service.name:piped", "--limit", str(EVENTS)],
    ["query", "service.name:piped", "--limit", str(EVENTS), "--json"],
    ["tail", "service.name:piped", "-n", "1000"],
    ["stats"],
], ids=["query", "query-json", "tail", "stats"])
def test_a_reader_that_leaves_early_ends_the_command_quietly(filled, args):
    code, err = read_one_line_and_leave([*args, "--url", f"http://{HOST}:{filled}"])
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "Broken pipe" not in err, err[-3000:]


def test_tail_follow_ends_when_its_reader_leaves(filled):
    def more() -> None:  # so it writes again even if the first lines fit in the pipe
        post(filled, [{"service.name": "piped", "message": "after the reader left"}])

    code, err = read_one_line_and_leave(
        ["tail", "-f", "service.name:piped", "-n", "1000", "--url", f"http://{HOST}:{filled}"],
        after=more)
    assert code == 0, f"still following after its reader left: {err[-3000:]}"
    assert "Traceback" not in err and "reconnecting" not in err, err[-3000:]


def test_a_service_that_is_down_is_exit_1_with_a_sentence(tmp_path):
    done = subprocess.run([sys.executable, "-m", "logmesh", "query", "x", "--url",
                           f"http://{HOST}:{free_port()}"], capture_output=True, text=True,
                          timeout=BOUND, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert "cannot reach the logs service" in done.stderr and "Traceback" not in done.stderr
