"""The gateway's access logs wait in its disk spool while the logs service is away.

Real processes: a distributor, goods (not shipping: only the gateway's access logs are
counted here) and the gateway with a small ``--log-queue``, so that its backlog goes to the
spool while it runs, not only at exit. Every access log of the test's requests must be stored
once, by ``event.id`` and by ``trace.id``: after the gateway was stopped (SIGTERM) and
started again before any logs service came, and across a kill -9 of the logs service.
Before the gateway had ``--spool-dir``, its queue was memory only: past the limit and at
its exit the access logs were dropped.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.support.procs import HOST, Procs, store_events, wait_for

pytestmark = pytest.mark.slow  # real processes

QUEUE = 20  # --log-queue: far below the requests made, so the spool takes the backlog


def get_goods(port: int, traces: list[str]) -> None:
    """GET /goods through the gateway once per trace id; each must be answered 200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=20)
    try:
        for trace in traces:
            conn.request("GET", "/goods", headers={"X-Request-Id": trace})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, (trace, resp.status)
    finally:
        conn.close()


def wait_routes(port: int) -> None:
    def routed() -> bool:
        try:
            get_goods(port, [f"warmup-{uuid.uuid4().hex}"])
        except (OSError, AssertionError, http.client.HTTPException):
            return False
        return True

    wait_for(routed, 30, "the gateway routes GET /goods", interval=0.2)


def gateway(procs: Procs, dport: int, data: Path) -> int:
    _, port = procs.gateway(dport, "--data-dir", str(data), "--log-queue", str(QUEUE))
    wait_routes(port)
    return port


def stored_once(logs_dir: Path, traces: list[str]) -> None:
    """Every trace's access log stored, each once (by trace.id and by event.id)."""
    want = set(traces)

    def ours() -> list[dict] | None:
        events = [e for e in store_events(logs_dir) if e.get("service.name") == "gateway"
                  and e.get("trace.id") in want]
        return events if {e["trace.id"] for e in events} >= want else None

    events = wait_for(ours, 60, f"the {len(want)} access logs stored", interval=0.3)
    twice = {t: n for t, n in Counter(e["trace.id"] for e in events).items() if n > 1}
    assert not twice, f"access logs stored twice: {list(twice.items())[:5]}"
    ids = Counter(e["event.id"] for e in events)
    assert not [i for i, n in ids.items() if n > 1]


def test_access_logs_spooled_across_a_gateway_restart_reach_a_later_logs_service(procs, tmp_path):
    _, dport = procs.distributor()
    procs.service("goods", dport, tmp_path / "svc", "--no-ship")
    gw_data = tmp_path / "gw"
    first = gateway(procs, dport, gw_data)
    run = uuid.uuid4().hex[:8]
    before = [f"{run}-a{i:03d}" for i in range(150)]
    get_goods(first, before)
    procs.procs[-1].stop()  # SIGTERM: what is queued goes to the spool
    spooled = list((gw_data / "spool" / "gateway").iterdir())
    assert spooled, "the gateway's spool is DATA_DIR/spool/gateway, like a service's"

    second = gateway(procs, dport, gw_data)
    after = [f"{run}-b{i:03d}" for i in range(150)]
    get_goods(second, after)
    logs_dir = tmp_path / "logs"
    procs.logs(logs_dir, distributor=dport)
    stored_once(logs_dir, before + after)


def test_access_logs_survive_a_kill_9_of_the_logs_service(procs, tmp_path):
    _, dport = procs.distributor()
    procs.service("goods", dport, tmp_path / "svc", "--no-ship")
    logs_dir = tmp_path / "logs"
    logs, _, _ = procs.logs(logs_dir, distributor=dport)
    port = gateway(procs, dport, tmp_path / "gw")
    run = uuid.uuid4().hex[:8]
    traces = [f"{run}-{i:04d}" for i in range(600)]
    failed: list[BaseException] = []
    sender = threading.Thread(target=_keep_failure, args=(failed, port, traces))
    sender.start()
    wait_for(lambda: len([e for e in store_events(logs_dir) if e.get("service.name") == "gateway"
                          and str(e.get("trace.id", "")).startswith(run)]) >= 50,
             60, "some access logs stored before the kill")
    logs.kill9()
    sender.join(120)
    assert not sender.is_alive() and not failed, failed
    procs.logs(logs_dir, distributor=dport, name="logs-again")
    stored_once(logs_dir, traces)


def _keep_failure(failed: list[BaseException], port: int, traces: list[str]) -> None:
    """get_goods in a thread: its failure kept for the test to show."""
    try:
        get_goods(port, traces)
    except BaseException as exc:  # shown by the test's assert
        failed.append(exc)
