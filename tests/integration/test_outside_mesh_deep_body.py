"""A JSON body nested deeper than the gateway can forward, tried from outside.

Found by hand: orjson reads JSON nested up to 1024 levels but writes at most 254, so a body
nested 255-1024 deep was taken, then failed as it was sent on: a 500 "internal error" with a
traceback in the gateway's log (and the request's reply callback left registered, to fire
at its timeout). It is the client's error: a 400 that says so; the gateway goes on serving.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes


def post(port: int, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{HOST}:{port}/goods", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_body_nested_too_deep_to_forward_is_a_400(procs, tmp_path, depth):
    _, dist = procs.distributor()
    procs.service("goods", dist, tmp_path / "svc", "--no-ship")
    gw, port = procs.gateway(dist)
    wait_for(lambda: post(port, b'{"name": "pen", "price": 1}')[0] == 200, 30, "goods through the gateway")

    status, body = post(port, b'{"name": "deep", "a": ' + b"[" * depth + b"]" * depth + b"}")
    assert status == 400, body
    assert "deep" in body["errormessage"], body
    assert post(port, b'{"name": "pen", "price": 2}')[0] == 200
    assert "Traceback" not in gw.log_text(), gw.log_text()[-3000:]
