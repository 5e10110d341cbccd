"""logmesh/metrics.py: registries, published numbers, and multiprocess mode within one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from logmesh.metrics import LATENCY_BUCKETS, Exposition, Metrics, clean_stale, value


def page(*sources: Metrics, **added: float) -> str:
    ex = Exposition()
    for m in sources:
        ex.include(m)
    for name, v in added.items():
        ex.add(name, "gauge", "A gauge.", v)
    return ex.render()


def test_one_process_shows_its_metrics_and_what_was_published() -> None:
    m = Metrics()
    events = m.counter("logmesh_test_events_total", "Events.", ["worker"]).labels("0")
    events.inc(3)
    m.histogram("logmesh_test_seconds", "Seconds.", ["route"]).labels("GET /x").observe(0.0003)
    kept = Exposition()
    kept.add("logmesh_test_kept_total", "counter", "Kept elsewhere.", 7, {"worker": "0"})
    m.publish(kept)
    text = page(m, logmesh_test_now=2.5)
    assert 'logmesh_test_events_total{worker="0"} 3\n' in text  # whole numbers without .0
    assert "# TYPE logmesh_test_events_total counter" in text
    assert 'logmesh_test_kept_total{worker="0"} 7\n' in text
    assert "logmesh_test_now 2.5\n" in text
    assert 'logmesh_test_seconds_bucket{le="0.0005",route="GET /x"} 1\n' in text
    assert 'logmesh_test_seconds_bucket{le="0.00025",route="GET /x"} 0\n' in text
    assert "_created" not in text
    assert value(events) == 3
    assert LATENCY_BUCKETS[0] == 0.0001 and LATENCY_BUCKETS[-1] == 10.0


def test_two_registries_of_one_directory_show_each_others_numbers(tmp_path: Path) -> None:
    """As two workers do: counters add up by label set, published numbers are shared, and a
    stopped one's gauges leave while its counters stay."""
    a, b = Metrics(tmp_path), Metrics(tmp_path)
    assert a.ident != b.ident
    for m, worker, n in ((a, "0", 5), (b, "1", 2)):
        m.counter("logmesh_test_events_total", "Events.", ["worker"]).labels(worker).inc(n)
        m.gauge("logmesh_test_open", "Open.", ["worker"]).labels(worker).set(n)
        kept = Exposition()
        kept.add("logmesh_test_stored_total", "counter", "Stored.", n * 10, {"worker": worker})
        m.publish(kept)
    for m in (a, b):
        text = page(m)
        assert 'logmesh_test_events_total{worker="0"} 5\n' in text
        assert 'logmesh_test_events_total{worker="1"} 2\n' in text
        assert 'logmesh_test_stored_total{worker="1"} 20\n' in text
        assert 'logmesh_test_open{worker="0"} 5\n' in text
    a.close()
    text = page(b)
    assert 'logmesh_test_events_total{worker="0"} 5\n' in text
    assert 'logmesh_test_open{worker="0"}' not in text and 'logmesh_test_open{worker="1"} 2\n' in text
    b.close()


def test_files_of_processes_gone_are_deleted_at_start(tmp_path: Path) -> None:
    script = ("import sys; from pathlib import Path; from logmesh.metrics import Metrics; "
              "m = Metrics(Path(sys.argv[1])); "
              "m.counter('logmesh_test_total', 'T.').inc(4)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    dead = sorted(p.name for p in tmp_path.glob("*.db"))
    assert dead and all(str(os.getpid()) not in name for name in dead)
    m = Metrics(tmp_path)  # the other process is gone: its files go
    assert sorted(p.name for p in tmp_path.glob("*.db")) == []
    assert "logmesh_test_total" not in page(m)
    m.counter("logmesh_test_total", "T.").inc()
    assert clean_stale(tmp_path, "someone else") == []  # our own live files stay
    assert "logmesh_test_total 1\n" in page(m)
    m.close()


def test_request_path_counts_render_as_prometheus_clients_own() -> None:
    """The plain counters and histograms of a request path show the very page that
    prometheus-client's Counter and Histogram show for the same counts."""
    plain, prom = Metrics(), Metrics()
    for counter, histogram in ((plain.request_counter, plain.request_histogram),
                               (prom.counter, prom.histogram)):
        requests = counter("logmesh_test_requests_total", "Requests.", ["service"]).labels("goods")
        bare = counter("logmesh_test_unlabelled_total", "No labels.")
        unused = counter("logmesh_test_unused_total", "Never counted.", ["service"])
        timer = histogram("logmesh_test_seconds", "Seconds.", ["route", "status"])
        requests.inc()
        requests.inc(4)
        bare.inc()
        unused.labels("members")
        # on a bound, between bounds, under the first, over the last, and the same again
        for seconds in (0.0001, 0.0003, 0.00005, 12.0, 0.0003, 1.0, 0.0025000001):
            timer.labels("POST /goods", "0").observe(seconds)
        timer.labels("GET /goods", "404").observe(0.02)
        assert value(requests) == 5 and value(bare) == 1
    shown = page(plain)
    assert shown == page(prom)
    assert 'logmesh_test_seconds_bucket{le="0.0001",route="POST /goods",status="0"} 2\n' in shown
    assert 'logmesh_test_seconds_bucket{le="+Inf",route="POST /goods",status="0"} 7\n' in shown
    assert 'logmesh_test_requests_total{service="goods"} 5\n' in shown
    assert 'logmesh_test_unused_total{service="members"} 0\n' in shown


def test_request_path_counts_use_the_shared_files_in_multiprocess_mode(tmp_path: Path) -> None:
    a, b = Metrics(tmp_path), Metrics(tmp_path)
    try:
        a.request_counter("logmesh_test_requests_total", "Requests.", ["service"]).labels("g").inc(2)
        b.request_counter("logmesh_test_requests_total", "Requests.", ["service"]).labels("g").inc(3)
        a.request_histogram("logmesh_test_seconds", "Seconds.", ["route"]).labels("x").observe(0.001)
        text = page(b)
        assert 'logmesh_test_requests_total{service="g"} 5\n' in text
        assert 'logmesh_test_seconds_count{route="x"} 1\n' in text
    finally:
        a.close()
        b.close()
