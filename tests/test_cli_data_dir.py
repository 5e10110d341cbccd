"""A ``--data-dir`` that cannot be used, tried from outside with real processes.

Found by hand: ``logmesh up --data-dir FILE`` printed the URLs, then every child died on a
``FileExistsError``/``NotADirectoryError`` traceback and the supervisor restarted them for
ever; ``logmesh logs`` and ``logmesh service`` alone ended in a traceback. Each now says
which option and what to do, before any process starts, and exits 2 (a usage error).
(A directory without write permission cannot be made here: the tests may run as root,
whom no mode bit stops; a file where the directory should be, or under it, fails alike.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.procs import run_logmesh
from tests.test_up import free_offset

BOUND = 90.0  # seconds: a cold interpreter on a loaded machine; the old code never exited


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_logmesh(tmp_path, *args, bound=BOUND)


@pytest.mark.parametrize("where", ["file", "under-a-file"])
@pytest.mark.parametrize("command", ["up", "logs", "service"])
def test_an_unusable_data_dir_is_a_usage_error_naming_it(tmp_path, command, where):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file\n")
    data_dir = blocker if where == "file" else blocker / "data"
    args = {"up": ["up", "--no-traffic", "--port-offset", str(free_offset())],
            "logs": ["logs", "--standalone", "--port", "0", "--http-port", "0", "--no-supervise"],
            "service": ["service", "goods", "--port", "0", "--no-supervise"]}[command]
    done = run(tmp_path, *args, "--data-dir", str(data_dir))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "--data-dir" in done.stderr and str(data_dir) in done.stderr, done.stderr
    assert "logmesh is starting" not in done.stderr  # nothing was started
