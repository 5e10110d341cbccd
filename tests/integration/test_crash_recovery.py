"""Issue #4, acceptance 3: kill -9 of the logs service loses no acknowledged event.

A separate process streams 100,000 numbered events through logmesh's
acknowledging Shipper; mid-stream the logs service is killed with SIGKILL, a
torn half-record is left at the end of its active segment (what a crash in
the middle of a write leaves), and the service is restarted on the same port
and data directory. The shipper reconnects and resends what was not
acknowledged. Every event acknowledged before the crash, and in the end all
100,000, must be in the store, whose every line is whole JSON again.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, free_port, store_events, wait_for

pytestmark = pytest.mark.slow  # real processes

SCRIPT = Path(__file__).parent / "scripts" / "ack_shipper.py"
COUNT = 100_000
RATE = 10_000  # events/s: the stream lasts ~10 s, long enough to crash it in the middle


def read_progress(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def active_segment(data_dir: Path) -> Path | None:
    """The newest segment without an index: the one being written when the crash came."""
    segs = sorted((data_dir / "segments").glob("w00-*.ndjson"))
    unsealed = [p for p in segs if not p.with_name(p.name[:-len(".ndjson")] + ".idx.json").exists()]
    return unsealed[-1] if unsealed else None


def test_kill9_mid_stream_loses_no_acknowledged_event(procs, tmp_path):
    data = tmp_path / "data"
    port = free_port()
    logs, _, _ = procs.logs(data, port=port)
    progress = tmp_path / "progress.json"
    shipper = procs.start_script("shipper", [sys.executable, str(SCRIPT), HOST, str(port), str(COUNT),
                                             str(RATE), str(progress)])

    # 1. crash the logs service once a good part of the stream is acknowledged
    wait_for(lambda: read_progress(progress).get("acked", 0) >= 25_000, 30, "25,000 acks")
    logs.kill9()
    crashed_at = time.monotonic()
    acked_before_crash = read_progress(progress)["acked"]
    time.sleep(0.3)  # acks cannot arrive any more; the last progress is final for this phase
    acked_before_crash = max(acked_before_crash, read_progress(progress)["acked"])
    assert 25_000 <= acked_before_crash < COUNT, "the crash must come in the middle of the stream"

    # 2. what a crash in the middle of a write leaves: half a record at the end
    seg = active_segment(data)
    assert seg is not None, "the killed service had an active segment"
    # SIGKILL can stop a large write part-way, so the segment may already end in part of a
    # record that was never fsynced, hence never acknowledged: recovery cuts that too
    whole = seg.read_bytes()
    size_before = whole.rfind(b"\n") + 1
    with open(seg, "ab") as f:
        f.write(b'{"seq":999999999,"@timestamp":17,"message":"torn in the mid')

    # 3. restart on the same port and data directory; the shipper resends the rest
    logs2, _, _ = procs.logs(data, port=port, name="logs-restarted")
    log_text = logs2.log_text()
    assert "Traceback" not in log_text, log_text
    assert re.search(r"cut \d+ torn byte", log_text), log_text
    assert seg.stat().st_size == size_before, "the torn record is cut off back to the last whole line, nothing more"
    shipper.popen.wait(45)
    assert shipper.popen.returncode == 0, shipper.log_text()
    final = orjson.loads(shipper.log_text().strip().splitlines()[-1])
    assert final["acked"] == COUNT
    instance = final["instance"]
    resume_took = time.monotonic() - crashed_at

    # 4. every acknowledged event is stored (by event.id), all lines are whole
    events = store_events(data)
    numbers = Counter(int(e["event.id"].rpartition(":")[2]) for e in events
                      if e.get("event.id", "").startswith(instance + ":"))
    missing_before = [n for n in range(1, acked_before_crash + 1) if n not in numbers]
    assert not missing_before, f"{len(missing_before)} event(s) acknowledged before the crash lost, " \
                               f"e.g. {missing_before[:10]}"
    missing = [n for n in range(1, COUNT + 1) if n not in numbers]
    assert not missing, f"{len(missing)} acknowledged event(s) missing, e.g. {missing[:10]}"
    dupes = sum(c - 1 for c in numbers.values())
    # resends of events stored but not yet acknowledged at the crash are recognised after the
    # restart (the ledger is re-read from the store), so nothing is stored twice
    assert dupes == 0, f"{dupes} event(s) stored twice"
    assert len({e["seq"] for e in events}) == len(events), "seq numbers are unique"
    print(f"acked before crash {acked_before_crash}; all {COUNT} stored once; "
          f"crash to end {resume_took:.1f}s")
