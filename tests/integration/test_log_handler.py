"""The documented LogHandler example ships records, tracebacks included, and they are searchable."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson

from tests.support.procs import HOST, ROOT, wait_for


def _search(http_port: int, q: str) -> list[dict]:
    url = f"http://{HOST}:{http_port}/api/v1/search?" + urllib.parse.urlencode({"q": q, "from": "now-1h"})
    with urllib.request.urlopen(url, timeout=5) as r:
        return orjson.loads(r.read())["events"]


def test_example_records_arrive_with_traceback_and_are_searchable(procs, tmp_path: Path) -> None:
    _, port, http_port = procs.logs(tmp_path / "logs")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "log_handler.py"), str(port)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30,
                         env={**procs.env})
    assert out.returncode == 0, out.stderr
    assert "shipped 2 record(s)" in out.stdout
    t0 = time.monotonic()
    errors = wait_for(lambda: _search(http_port, "service.name:billing and log.level:error"), 5,
                      "the error record to be searchable")
    assert time.monotonic() - t0 < 5
    (err,) = errors
    assert err["log.logger"] == "billing.invoices"
    assert err["message"] == "cannot compute the invoice total"
    assert "ZeroDivisionError" in err["error.stack_trace"]
    assert "Traceback (most recent call last)" in err["error.stack_trace"]
    (info,) = _search(http_port, 'service.name:billing and "invoice created"')
    assert info["log.level"] == "info"
    assert info["labels"]["invoice"] == 1042 and info["labels"]["customer"] == "acme"
    # bare words search the message; the traceback is a text field of its own
    assert [e["seq"] for e in _search(http_port, "error.stack_trace:ZeroDivisionError")] == [err["seq"]]
