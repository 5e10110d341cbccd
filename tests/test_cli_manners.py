"""The CLI's manners with values it cannot use, tried from outside with real processes.

Found by hand: ``logmesh gateway --port 99999`` listened on port 34463 (99999 mod 65536) and
said nothing of it; every port option took any integer. ``logmesh query --url notaurl``
ended in a ValueError traceback; ``--since banana`` was sent and the answer spoke of
"now-banana". Each is now a usage error naming the option (exit 2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.procs import run_logmesh

BOUND = 60.0  # a cold interpreter on a loaded machine; the old gateway never exited


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_logmesh(tmp_path, *args, bound=BOUND)


@pytest.mark.parametrize("args, option", [
    (["gateway", "--port", "99999"], "--port"),
    (["gateway", "--port", "0", "--metrics-port", "70000"], "--metrics-port"),
    (["distributor", "--port", "-1"], "--port"),
    (["logs", "--standalone", "--port", "0", "--http-port", "65536"], "--http-port"),
    (["logs", "--standalone", "--port", "0", "--http-port", "0", "--syslog-port", "100000"], "--syslog-port"),
    (["service", "goods", "--port", "123456"], "--port"),
])
def test_a_port_out_of_range_is_a_usage_error(tmp_path, args, option):
    done = run(tmp_path, *args, "--no-supervise", *(["--data-dir", str(tmp_path / "d")] if args[0] in ("logs", "service") else []))
    assert done.returncode == 2, done.stderr[-3000:]
    assert option in done.stderr and "65535" in done.stderr, done.stderr
    assert "listening" not in done.stderr


@pytest.mark.parametrize("command", ["query", "stats", "tail"])
def test_a_url_that_is_no_http_address_is_a_usage_error(tmp_path, command):
    done = run(tmp_path, command, "--url", "notaurl")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "--url" in done.stderr, done.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:9999999", "http://127.0.0.1:80x"])
def test_a_url_whose_port_is_no_port_is_a_usage_error(tmp_path, url):
    """It said "connection refused", as if a service could be started there (found from outside)."""
    done = run(tmp_path, "query", "x", "--url", url)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no valid port" in done.stderr and "refused" not in done.stderr, done.stderr


@pytest.mark.parametrize("since", ["banana", "15", "1h30"])
def test_a_since_that_is_no_duration_is_a_usage_error_before_any_request(tmp_path, since):
    # found by hand: the service's answer named "now-banana", which the user never wrote
    done = run(tmp_path, "query", "x", "--since", since, "--url", "http://127.0.0.1:1")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "--since" in done.stderr and repr(since) in done.stderr, done.stderr


def test_traffic_that_reaches_no_gateway_says_so_and_fails(tmp_path):
    """`logmesh traffic --gateway <nothing there> --count 3` exited 0 and printed nothing:
    every request's connection error was logged at debug level only."""
    from tests.support.procs import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for supervise in ("--no-supervise", "--supervise"):  # supervised: not restarted for ever
        proc = run(tmp_path, "traffic", "--gateway", url, "--count", "3", "--rate", "0",
                   supervise)
        assert proc.returncode != 0, proc.stderr
        assert "3 of 3 requests failed" in proc.stderr and url in proc.stderr


@pytest.mark.parametrize("command", [["distributor"], ["gateway"], ["service", "goods", "--no-ship"]])
def test_a_port_another_process_holds_is_named_with_what_to_do(tmp_path, command):
    """Found from outside: a part started by hand on a port that a running mesh holds printed
    Python's "[Errno 98] error while attempting to bind on address ('127.0.0.1', 9000)",
    restarted, and printed it again, saying nothing of what to do."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run(tmp_path, *command, "--port", str(port), "--no-supervise")
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in done.stderr, done.stderr[-2000:]
    assert "--port" in done.stderr and "Errno" not in done.stderr
