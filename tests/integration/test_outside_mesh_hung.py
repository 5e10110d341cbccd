"""A hung instance behind the gateway, tried from outside with real processes.

Two goods services (``logmesh service goods``) behind one gateway; one is frozen with
SIGSTOP (its connections stay open, it answers nothing). Found by hand: the gateway kept
sending every other request to the frozen one, so half of all clients waited the whole
``--timeout`` for a 504 while the other instance was idle. After the first timeout the
gateway must send the route's requests to the instance that answers, and take the frozen
one back once it speaks again (SIGCONT: its late replies arrive).
"""

from __future__ import annotations

import re
import signal
import urllib.error
import urllib.request

import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes

METRICS = re.compile(r"metrics on http://[\d.]+:(\d+)/metrics")
REQUESTS = re.compile(r'^logmesh_service_requests_total\{service="goods"\} (\d+)', re.M)


def get_status(port: int, path: str = "/goods", timeout: float = 60) -> int:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def served(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=10) as r:
        m = REQUESTS.search(r.read().decode())
    return int(m.group(1)) if m else 0


def test_a_frozen_instance_is_passed_over_after_its_timeout_and_taken_back(procs, tmp_path):
    _, dist = procs.distributor()
    frozen, _ = procs.service("goods", dist, tmp_path / "a", "--no-ship", "--metrics-port", "0")
    frozen_metrics = int(frozen.wait_line(METRICS)[0].group(1))
    other, _ = procs.service("goods", dist, tmp_path / "b", "--no-ship", "--metrics-port", "0")
    other.wait_line(METRICS)
    gw = procs.start("gateway", "gateway", "--port", "0", "--distributor", f"{HOST}:{dist}",
                     "--timeout", "2", "--no-supervise")
    gw_port = int(gw.wait_line(r"gateway listening on http://[\d.]+:(\d+)")[0].group(1))

    def both_served() -> bool:
        get_status(gw_port)
        return served(frozen_metrics) > 0 and all(get_status(gw_port) == 200 for _ in range(4))

    wait_for(both_served, 30, "both goods instances answering through the gateway")

    frozen.signal_group(signal.SIGSTOP)
    try:
        # Round-robin over two: one of the next two requests goes to the frozen instance.
        first = [get_status(gw_port) for _ in range(2)]
        assert sorted(first) == [200, 504], first
        after = [get_status(gw_port) for _ in range(8)]
        assert after == [200] * 8, f"requests after the timeout still went to the frozen one: {after}"
    finally:
        frozen.signal_group(signal.SIGCONT)

    # Awake again: its late reply shows it answers, and it gets requests again.
    before = served(frozen_metrics)
    wait_for(lambda: get_status(gw_port) == 200 and served(frozen_metrics) > before, 30,
             "the thawed instance served again")
