"""Issue 17, item 1, with real processes: what the gateway answers and what its access log stores.

distributor, logs, one goods service and the gateway, each a ``python -m logmesh`` process.
``DELETE /goods`` with no id is goods' errorcode 400: the gateway answers 400 and the logs
service stores its access log as a 400 warning that names goods; once the only goods process
is killed, ``GET /goods`` answers 503 naming the route (not the 404 of a route never served),
stored as an error.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import orjson
import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes


def call(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())
    except OSError:
        return 0, None


def search(http_port: int, q: str) -> list[dict]:
    query = urllib.parse.urlencode({"q": q, "from": "now-1h", "to": "now+1m"})
    status, body = call("GET", f"http://{HOST}:{http_port}/api/v1/search?{query}")
    assert status == 200, body
    return body["events"]


def test_a_killed_only_instance_is_a_503_and_an_application_error_a_stored_400(procs, tmp_path):
    _, dist = procs.distributor()
    _, _, logs_http = procs.logs(tmp_path / "logs-data", distributor=dist)
    goods, goods_port = procs.service("goods", dist, tmp_path / "svc-data")
    _, gw = procs.gateway(dist)
    base = f"http://{HOST}:{gw}"
    run = uuid.uuid4().hex[:8]

    wait_for(lambda: call("GET", f"{base}/goods")[0] == 200, 20, "the gateway to route GET /goods")
    status, body = call("DELETE", f"{base}/goods", {"X-Request-Id": f"{run}-delete"})
    assert status == 400, body
    assert body["errorcode"] == 400 and body["errormessage"] == "DELETE needs an id"

    goods.kill9()
    wait_for(lambda: call("GET", f"{base}/goods", {"X-Request-Id": f"{run}-gone"})[0] == 503, 15,
             "GET /goods to answer 503 once goods is gone")
    status, body = call("GET", f"{base}/goods")
    assert status == 503
    assert body["errorcode"] == 503 and "GET /goods" in body["errormessage"]
    assert "no instance of goods is up" in body["errormessage"]
    status, body = call("GET", f"{base}/never-served")
    assert status == 404 and body["errorcode"] == 404

    # what the logs service stored, found as an on-call engineer would look for it
    q = f'service.name:gateway and labels.errorcode:400 and trace.id:"{run}-delete"'
    [stored] = wait_for(lambda: search(logs_http, q), 15, "the DELETE's access log")
    assert stored["http.request.method"] == "DELETE" and stored["url.path"] == "/goods"
    assert stored["http.response.status_code"] == 400 and stored["log.level"] == "warning"
    labels = stored["labels"]
    assert labels["errorcode"] == 400
    assert labels["upstream"] == "goods" and labels["upstream.address"] == f"{HOST}:{goods_port}"
    assert labels["event.duration_ms"] >= 0
    q = f'labels.errorcode >= 400 and labels.upstream:goods and trace.id:{run}*'  # README's query
    assert [e["seq"] for e in search(logs_http, q)] == [stored["seq"]]

    q = f'service.name:gateway and http.response.status_code:503 and trace.id:"{run}-gone"'
    gone = wait_for(lambda: search(logs_http, q), 15, "the 503's access log")
    assert all(e["log.level"] == "error" and e["url.path"] == "/goods" for e in gone)
    assert all(e["labels"]["errorcode"] == 503 and "upstream" not in e["labels"] for e in gone)
