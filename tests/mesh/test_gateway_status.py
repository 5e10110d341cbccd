"""The gateway's answers an on-call engineer can trust (issue 17, item 1), over real TCP and HTTP.

* a route the mesh served whose instances are all gone is a 503 naming the route (404 stays
  for routes no service ever served; test_gateway.py has the instance listed but unreachable);
* a reply's ``errorcode`` decides the HTTP status (0 -> 200, 400-599 -> itself, else 500),
  unless the gateway keeps the chapter's always-200 behaviour;
* every request's access log carries the status, the errorcode, the duration, the upstream
  that answered (or did not) and the trace id, at a level that follows the outcome;
* /metrics counts these outcomes, and its latency histogram is labelled by the final status.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from logmesh import access_log
from logmesh import cli as cli_module
from logmesh.access_log import EXACT_US as _EXACT_US
from logmesh.access_log import MS_FRACTIONS as _MS_FRACTIONS
from logmesh.mesh.gateway import Gateway
from logmesh.mesh.service import HandlerError
from logmesh.metrics import Exposition
from logmesh.protocol import FrameDecoder, encode
from tests.support.mesh import HOST, Peer, gateway_ready, wait_until


class CapturedShipper:
    """Stands in for the gateway's Shipper: keeps every access-log record it is handed."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def ship_record(self, message: str, extra: dict) -> None:
        self.records.append((message, extra))

    def ship_row(self, row: tuple) -> None:
        self.records.append(access_log.record(row))

    def on_nodes(self, nodes: Any) -> None:
        pass

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def collect_metrics(self, ex: Any) -> None:
        pass

    def only(self, method: str, path: str) -> dict:
        [extra] = [e for _, e in self.records
                   if e["http.request.method"] == method and e["url.path"] == path]
        return extra


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def start_gateway(mesh, **kwargs: Any) -> tuple[Gateway, CapturedShipper]:
    gw = Gateway(HOST, 0, distributor=mesh.distributor_addr, **kwargs)
    shipper = CapturedShipper()
    gw.attach_shipper(shipper)
    await mesh.add(gw)
    return gw, shipper


def url(gw: Gateway, path: str) -> str:
    return f"http://{HOST}:{gw.port}{path}"


def failing(code: Any):
    def handler(params, packet):
        raise HandlerError(f"failed with {code}", code)
    return handler


def metrics_text(gw: Gateway) -> str:
    ex = Exposition()
    gw.collect_metrics(ex)
    return ex.render()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of ``name{labels}`` on a metrics page (labels in any order), or None."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
        if m and m.group(1) == name and dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")) == labels:
            return float(m.group(3))
    return None


# -- 503: a route with no live instance ----------------------------------------------------------

async def test_a_route_whose_only_instance_stopped_is_a_503_and_a_never_served_one_a_404(mesh, http):
    await mesh.start_distributor()
    goods = await mesh.start_service("goods", {"GET/goods": lambda p, pk: []})
    gw, shipper = await start_gateway(mesh)
    await gateway_ready(gw, "GET/goods")
    async with http.get(url(gw, "/goods")) as resp:
        assert resp.status == 200
    await goods.stop()
    await wait_until(lambda: "GET/goods" not in gw.routes, 3.0, "goods' departure")

    async with http.get(url(gw, "/goods")) as resp:
        assert resp.status == 503
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["errorcode"] == 503
    assert "GET /goods" in body["errormessage"] and "no instance" in body["errormessage"]
    assert "goods" in body["errormessage"].replace("GET /goods", "")  # the service it names

    async with http.get(url(gw, "/never")) as resp:  # no service ever served it: still a 404
        assert resp.status == 404
        assert "no service serves GET /never" in (await resp.json())["errormessage"]
    async with http.post(url(gw, "/goods"), json={}) as resp:  # nor this method
        assert resp.status == 404
    assert gw.stats["no_instance"] == 1 and gw.stats["no_route"] == 2
    assert shipper.only("GET", "/never")["log.level"] == "warning"
    gone = [e for _, e in shipper.records if e["http.response.status_code"] == 503]
    assert len(gone) == 1 and gone[0]["log.level"] == "error"


# -- the reply's errorcode decides the status ----------------------------------------------------

CODES = {"/ok": (None, 200), "/bad": (400, 400), "/missing": (404, 404), "/broken": (500, 500),
         "/unavailable": (503, 503), "/edge": (599, 599), "/one": (1, 500), "/odd": (399, 500), "/big": (600, 500),
         "/minus": (-1, 500)}


async def start_coded(mesh) -> Any:
    routes = {f"GET{path}": (lambda p, pk: "fine") if code is None else failing(code)
              for path, (code, _) in CODES.items()}
    return await mesh.start_service("coded", routes)


async def test_the_replys_errorcode_decides_the_http_status_and_the_body_is_the_reply(mesh, http):
    await mesh.start_distributor()
    await start_coded(mesh)
    gw, shipper = await start_gateway(mesh)
    await gateway_ready(gw, "GET/ok")
    for path, (code, status) in CODES.items():
        async with http.get(url(gw, path)) as resp:
            assert resp.status == status, path
            assert resp.content_type == "application/json"
            body = await resp.json()
        if code is None:
            assert body == {"key": body["key"], "errorcode": 0, "errormessage": "success",
                            "results": "fine"}
        else:  # the book's reply, unchanged
            assert body == {"key": body["key"], "errorcode": code,
                            "errormessage": f"failed with {code}"}, path
        logged = shipper.only("GET", path)
        assert logged["http.response.status_code"] == status
        assert logged["errorcode"] == (code or 0)
        assert logged["log.level"] == ("error" if status >= 500 else
                                       "warning" if status >= 400 else "info")
    text = metrics_text(gw)
    for path, (_, status) in CODES.items():  # the latency histogram: by the final status
        assert sample(text, "logmesh_request_duration_seconds_count", route=f"GET {path}",
                      status=str(status)) == 1, path
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="coded",
                  status="500") == 5  # 500, 1, 399, 600, -1
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="coded",
                  status="400") == 1
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="coded",
                  status="200") is None


async def test_always_200_keeps_the_chapters_behaviour(mesh, http):
    await mesh.start_distributor()
    await start_coded(mesh)
    gw, shipper = await start_gateway(mesh, status_from_errorcode=False)
    await gateway_ready(gw, "GET/ok")
    for path, (code, status) in CODES.items():
        async with http.get(url(gw, path)) as resp:
            assert resp.status == 200, path
            body = await resp.json()
        assert body["errorcode"] == (code or 0)
        logged = shipper.only("GET", path)
        assert logged["http.response.status_code"] == 200  # what the client got
        assert logged["errorcode"] == (code or 0)  # what happened
        assert logged["log.level"] == ("error" if status >= 500 else
                                       "warning" if status >= 400 else "info")
    text = metrics_text(gw)
    assert sample(text, "logmesh_request_duration_seconds_count", route="GET /bad",
                  status="200") == 1
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="coded",
                  status="400") == 1
    # the gateway's own answers are not the services' replies: they keep their status
    async with http.get(url(gw, "/never")) as resp:
        assert resp.status == 404


async def test_replies_of_any_shape_from_a_raw_service(mesh, http):
    """A book-like service of our own making: a reply without errorcode is a 200, a code that is
    not a number a 500, and the label keeps what the service said."""
    answers = {"none": {}, "text": {"errorcode": "E42"}, "float": {"errorcode": 404.0},
               "true": {"errorcode": True}}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for item in decoder.feed(data):
                packet = item[1]
                reply = {"key": packet["key"], **answers[packet["params"]["a"]]}
                writer.write(encode(reply))

    server = await asyncio.start_server(serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    await mesh.start_distributor()
    gw, shipper = await start_gateway(mesh)
    node = await Peer.connect(mesh.distributor.port)
    node.send({"uri": "/distributes", "method": "POST", "key": 0,
               "params": {"port": port, "name": "raw", "urls": ["GET/raw"]}})
    await gateway_ready(gw, "GET/raw")
    try:
        for a, status, label in (("none", 200, None), ("text", 500, "E42"), ("float", 404, 404.0),
                                 ("true", 500, True)):
            async with http.get(url(gw, "/raw"), params={"a": a}) as resp:
                assert resp.status == status, a
                body = await resp.json()
            assert body == {"key": body["key"], **answers[a]}, a
            logged = shipper.records[-1][1]
            assert logged.get("errorcode") == label and logged["upstream"] == "raw", a
    finally:
        await node.close()
        server.close()


def test_the_gateway_command_takes_the_option_and_its_environment_variable(monkeypatch):
    made: list[Gateway] = []
    monkeypatch.setattr(cli_module, "serve", lambda make, **kw: made.append(make.__self__))
    runner = CliRunner()
    for args, env, expected in ((["--no-ship"], {}, True),
                                (["--no-ship", "--always-200"], {}, False),
                                (["--no-ship", "--status-from-errorcode"], {}, True),
                                (["--no-ship"], {"LOGMESH_GATEWAY_STATUS_FROM_ERRORCODE": "false"},
                                 False)):
        result = runner.invoke(cli_module.cli, ["gateway", *args, "--no-supervise"], env=env)
        assert result.exit_code == 0, result.output
        assert made.pop().status_from_errorcode is expected, (args, env)


# -- the access log -------------------------------------------------------------------------------

async def test_every_access_log_names_status_errorcode_duration_upstream_and_trace(mesh, http):
    async def sleepy(params, packet):
        await asyncio.sleep(1.0)
        return "late"

    await mesh.start_distributor()
    goods = await mesh.start_service("goods", {"GET/goods": lambda p, pk: [],
                                               "DELETE/goods": failing(400)})
    slow = await mesh.start_service("slow", {"GET/slow": sleepy})
    gw, shipper = await start_gateway(mesh, timeout=0.3)
    await gateway_ready(gw, "GET/goods")
    await gateway_ready(gw, "GET/slow")

    async with http.get(url(gw, "/goods"), headers={"X-Request-Id": "t-ok"}) as resp:
        assert resp.status == 200
    async with http.delete(url(gw, "/goods"), headers={"X-Request-Id": "t-bad"}) as resp:
        assert resp.status == 400
        assert resp.headers["X-Request-Id"] == "t-bad"
    async with http.get(url(gw, "/slow"), headers={"X-Request-Id": "t-late"}) as resp:
        assert resp.status == 504
        assert resp.headers["X-Request-Id"] == "t-late"
        message = (await resp.json())["errormessage"]
    assert "slow did not answer" in message and str(slow.port) not in message  # no address
    async with http.get(url(gw, "/nope")) as resp:
        assert resp.status == 404
        generated = resp.headers["X-Request-Id"]  # every answer carries its trace id

    ok, bad, late = (shipper.only(m, p) for m, p in
                     (("GET", "/goods"), ("DELETE", "/goods"), ("GET", "/slow")))
    nope = shipper.only("GET", "/nope")
    goods_addr, slow_addr = f"{HOST}:{goods.port}", f"{HOST}:{slow.port}"
    assert ok == {"http.request.method": "GET", "url.path": "/goods",
                  "http.response.status_code": 200, "errorcode": 0, "log.level": "info",
                  "trace.id": "t-ok", "event.duration_ms": ok["event.duration_ms"],
                  "upstream": "goods", "upstream.address": goods_addr}
    assert bad["http.response.status_code"] == 400 and bad["errorcode"] == 400
    assert bad["log.level"] == "warning" and bad["trace.id"] == "t-bad"
    assert bad["upstream"] == "goods" and bad["upstream.address"] == goods_addr
    # the timeout is charged to the service that did not answer
    assert late["http.response.status_code"] == 504 and late["errorcode"] == 504
    assert late["log.level"] == "error" and late["trace.id"] == "t-late"
    assert late["upstream"] == "slow" and late["upstream.address"] == slow_addr
    assert 250 <= late["event.duration_ms"] < 1000
    # no upstream was asked: none is named
    assert nope["http.response.status_code"] == 404 and nope["errorcode"] == 404
    assert nope["trace.id"] == generated and "upstream" not in nope
    for extra in (ok, bad, late, nope):
        assert isinstance(extra["event.duration_ms"], float) and extra["event.duration_ms"] >= 0
        took = extra["event.duration_ms"]  # ms to the µs: three decimals at most
        assert round(took, 3) == took and repr(took) == repr(round(took * 1000) / 1000)
    for message, extra in shipper.records:  # the line repeats the field's number as it is
        assert message.endswith(f" {extra['event.duration_ms']!r}ms"), message
    messages = [m for m, _ in shipper.records]  # the chapter's line: its fields are labels
    assert any(re.fullmatch(r"GET /slow 504 [\d.]+ms", m) for m in messages), messages

    text = metrics_text(gw)
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="slow", status="504") == 1
    assert sample(text, "logmesh_gateway_upstream_errors_total", upstream="goods", status="400") == 1
    assert sample(text, "logmesh_request_duration_seconds_count", route="GET /slow",
                  status="504") == 1
    assert sample(text, "logmesh_request_duration_seconds_count", route="other", status="404") == 1


async def test_a_chunked_body_over_the_limit_is_logged_and_timed_as_its_413(mesh, http):
    """aiohttp raises its 413 from request.read() for a body with no Content-Length; the
    histogram and the access log said 500 for it."""
    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": lambda p, pk: p})
    gw, shipper = await start_gateway(mesh, max_body_bytes=1024)
    await gateway_ready(gw, "POST/echo")

    async def chunks():
        for _ in range(8):
            yield b"x" * 1024

    async with http.post(url(gw, "/echo"), data=chunks()) as resp:
        assert resp.status == 413
        assert (await resp.json())["errorcode"] == 413
    logged = shipper.only("POST", "/echo")
    assert logged["http.response.status_code"] == 413 and logged["log.level"] == "warning"
    assert sample(metrics_text(gw), "logmesh_request_duration_seconds_count", route="POST /echo",
                  status="413") == 1


async def test_a_503_route_keeps_its_name_on_the_latency_histogram(mesh, http):
    await mesh.start_distributor()
    goods = await mesh.start_service("goods", {"GET/goods": lambda p, pk: []})
    gw, _ = await start_gateway(mesh)
    await gateway_ready(gw, "GET/goods")
    await goods.stop()
    await wait_until(lambda: "GET/goods" not in gw.routes, 3.0, "goods' departure")
    async with http.get(url(gw, "/goods")) as resp:
        assert resp.status == 503
    text = metrics_text(gw)
    assert sample(text, "logmesh_request_duration_seconds_count", route="GET /goods",
                  status="503") == 1
    assert sample(text, "logmesh_gateway_no_instance_total") == 1


def test_an_access_logs_fields_keep_their_order_and_levels_whatever_the_errorcode():
    """The access log's fields in one order (what the logs service stores), whatever the
    reply's errorcode (an int, a float, a bool, a string) or with no upstream; its level from
    the outcome."""
    from logmesh.mesh.gateway import Exchange
    from logmesh.mesh.http_protocol import HttpRequest

    gw = Gateway(port=0)
    gw.shipper = shipper = CapturedShipper()
    request = HttpRequest("GET", "/goods", b"", {})
    for code, outcome in ((0, 200), (0.0, 200), (True, 500), ("E1", 500), (503, 503)):
        ex = Exchange(gw, request, lambda response: None, "t", 0.0, errorcode=code,
                      outcome=outcome, upstream="goods", address="127.0.0.1:9010")
        gw._account(request, outcome, ex, 0.0012345)
    no_upstream = Exchange(gw, request, lambda response: None, "t", 0.0, errorcode=404,
                           outcome=404)
    gw._account(request, 404, no_upstream, 0.0)
    keys = ["http.request.method", "url.path", "http.response.status_code", "trace.id",
            "log.level", "event.duration_ms", "errorcode", "upstream", "upstream.address"]
    records = [extra for _, extra in shipper.records]
    assert [list(extra) for extra in records] == [keys] * 5 + [keys[:7]]
    assert [extra["errorcode"] for extra in records] == [0, 0.0, True, "E1", 503, 404]
    assert [extra["log.level"] for extra in records] == ["info", "info", "error", "error",
                                                         "error", "warning"]
    assert records[0] == {**records[1], "errorcode": 0}
    assert shipper.records[0][0] == "GET /goods 200 1.235ms"


def test_duration_text_is_the_floats_repr() -> None:
    """The access log's duration text (gateway._account) is repr(us / 1000) below _EXACT_US,
    written without the float's repr: every µs of the first half second, a spread to the bound and
    the 50,000 µs under it."""
    spread = range(0, _EXACT_US, 9_973_541)  # a prime step: every last digit and many exponents
    for us in (*range(500_000), *spread, *range(_EXACT_US - 50_000, _EXACT_US)):
        assert f"{us // 1000}{_MS_FRACTIONS[us % 1000]}" == repr(us / 1000), us

