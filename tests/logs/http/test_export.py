"""GET /api/v1/export (http/export.py) on a real logs service: NDJSON and CSV of a search,
the limit kept across pages, CSV cells defused against formula injection, a safe file name."""

from __future__ import annotations

import csv
import io
import json
import logging
import time

import aiohttp
import pytest

from logmesh.logs.http import export
from logmesh.logs.query.errors import QueryTimeout
from tests.support.logs import HOST

T0 = 1_795_626_000_000


@pytest.fixture
async def api(start_logs):
    server = await start_logs()
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as session:
        events = [{"@timestamp": T0 + i, "service.name": "goods" if i % 2 else "members",
                   "message": f"line {i}", "params": {"id": i, "nested": {"k": "v"}},
                   "http.response.status_code": 200} for i in range(30)]
        events.append({"@timestamp": T0 + 100, "service.name": "goods",
                       "message": "=HYPERLINK(\"http://x\")", "log.level": "+1", "url.path": "-2",
                       "trace.id": "@SUM(A1)", "labels": {"cmd": "\tx", "n.m": -5}, "http.response.status_code": 500})
        async with session.post("/api/v1/logs", data="\n".join(json.dumps(e) for e in events)) as r:
            assert r.status == 200 and (await r.json())["accepted"] == 31
        yield server, session


async def get(s, status=200, **params):
    async with s.get("/api/v1/export", params={"from": str(T0 - 1), "to": str(T0 + 1000), **params}) as r:
        body = await r.read()
        assert r.status == status, body
        return r, body


async def test_ndjson_is_every_matching_event_newest_first(api, monkeypatch):
    _, s = api
    monkeypatch.setattr(export, "PAGE_ROWS", 7)  # several pages, the limit cut inside one
    r, body = await get(s, q="service.name:goods")
    lines = [json.loads(x) for x in body.splitlines()]
    assert len(lines) == 16 and lines[0]["@timestamp"] == T0 + 100
    assert [e["@timestamp"] for e in lines] == sorted((e["@timestamp"] for e in lines), reverse=True)
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    _, body = await get(s, limit="10")
    assert len(body.splitlines()) == 10
    _, body = await get(s, limit="10", order="asc")
    assert json.loads(body.splitlines()[0])["message"] == "line 0"


async def test_small_slices_and_pages_give_the_bytes_of_one_page(api, monkeypatch):
    """Each page reads a first time slice of SLICE_PAGES pages' rows: with pages of 2 and slices
    of 2 rows (many slices a page, cursors inside equal timestamps) the file is byte for byte
    the one a single page of a search's slices gives, on unicode, big ints, nested labels and
    formula cells."""
    server, s = api
    hostile = [{"@timestamp": T0 + 50, "service.name": "goods", "message": "머그컵 \u2028 ☃ \"q\"",
                "params": {"big": 123456789012345678901234567890, "neg": -(2 ** 70), "f": 1.5e300},
                "labels": {"deep": {"a": [1, {"b": None}]}, "=x": "@y"}},
               *({"@timestamp": T0 + 60, "service.name": "members", "message": f"=same ts {i}",
                  "log.level": "-", "trace.id": "+1"} for i in range(5))]
    async with s.post("/api/v1/logs", data="\n".join(json.dumps(e) for e in hostile)) as r:
        assert r.status == 200 and (await r.json())["accepted"] == 6
    for order in ("desc", "asc"):
        for fmt in ("ndjson", "csv"):
            params = {"order": order, "format": fmt, "columns": "@timestamp,message,params,labels.deep,log.level"}
            monkeypatch.setattr(export, "PAGE_ROWS", 1000)
            monkeypatch.setattr(export, "SLICE_PAGES", 250)
            _, whole = await get(s, **params)
            monkeypatch.setattr(export, "PAGE_ROWS", 2)
            monkeypatch.setattr(export, "SLICE_PAGES", 1)
            _, paged = await get(s, **params)
            assert paged == whole and len(whole.splitlines()) == 37 + (fmt == "csv")
    assert b"123456789012345678901234567890" in whole and "머그컵".encode() in whole


async def test_csv_has_the_columns_and_defuses_formulas(api):
    _, s = api
    r, body = await get(s, format="csv", q="service.name:goods", limit="2",
                        columns="@timestamp,message,log.level,url.path,trace.id,labels.cmd,labels.n.m,"
                                "params.nested,=evil")
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["@timestamp", "message", "log.level", "url.path", "trace.id", "labels.cmd", "labels.n.m",
                       "params.nested", "'=evil"]
    assert rows[1] == ["2026-11-25T17:00:00.100Z", "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)",
                       "'\tx", "-5", "", ""]
    assert rows[2][1] == "line 29" and rows[2][7] == '{"k":"v"}'
    assert len(rows) == 3


async def test_the_file_name_is_kept_safe(api):
    _, s = api
    r, _ = await get(s, filename='<img src=x onerror=alert(1)>".csv', format="csv")
    assert r.headers["Content-Disposition"] == 'attachment; filename="img-src-x-onerror-alert-1.csv"'
    r, _ = await get(s, filename="../../etc/passwd")
    assert r.headers["Content-Disposition"] == 'attachment; filename="etc-passwd.ndjson"'
    r, _ = await get(s)
    assert r.headers["Content-Disposition"].startswith('attachment; filename="logmesh-2')


@pytest.mark.parametrize("params,says", [
    ({"format": "xlsx"}, "format must be"), ({"q": "a:("}, "bad query"), ({"limit": "0"}, "limit"),
    ({"format": "csv", "columns": ","}, "columns must be"), ({"from": "soon"}, "soon"),
])
async def test_bad_parameters_are_400_before_any_byte(api, params, says):
    _, s = api
    _, body = await get(s, 400, **params)
    assert says in json.loads(body)["error"]


async def test_a_long_export_is_not_cut_by_one_query_timeout(start_logs, monkeypatch):
    """Found from outside (outside20): an export of 1M events over a 1M store was cut after
    ~50,000 events, every time: the --query-timeout deadline was set when the first page
    was asked and never renewed, so the whole stream had one query's 10 s. Each page is a
    query of its own (docs/api.md), with its own deadline, as each poll of tail is."""
    server = await start_logs(query_timeout=1.0)
    events = [{"@timestamp": T0 + i, "service.name": "goods", "message": f"line {i}"} for i in range(12)]
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as s:
        async with s.post("/api/v1/logs", data="\n".join(json.dumps(e) for e in events)) as r:
            assert r.status == 200
        monkeypatch.setattr(export, "PAGE_ROWS", 1)  # 12 pages of 0.25 s each: 3 s, 3 timeouts
        engine = server.api.engine
        search = engine.search

        def slow_search(*args, **kwargs):
            time.sleep(0.25)
            return search(*args, **kwargs)

        monkeypatch.setattr(engine, "search", slow_search)
        _, body = await get(s)
        assert [json.loads(x)["message"] for x in body.splitlines()] == [f"line {i}" for i in range(11, -1, -1)]


async def test_an_export_cut_by_a_page_timeout_says_so_in_one_line(start_logs, monkeypatch, caplog):
    """Found from outside: an export whose page ran past --query-timeout logged a whole
    traceback for it. It is one warning line now, naming the option to change."""
    server = await start_logs(query_timeout=5.0)
    events = [{"@timestamp": T0 + i, "service.name": "goods", "message": f"line {i}"} for i in range(4)]
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as s:
        async with s.post("/api/v1/logs", data="\n".join(json.dumps(e) for e in events)) as r:
            assert r.status == 200
        monkeypatch.setattr(export, "PAGE_ROWS", 1)
        engine = server.api.engine
        search = engine.search
        pages = []

        def timing_out(*args, **kwargs):
            pages.append(1)
            if len(pages) == 3:
                raise QueryTimeout("the query ran out of time")
            return search(*args, **kwargs)

        monkeypatch.setattr(engine, "search", timing_out)
        caplog.set_level(logging.WARNING, "logmesh")
        with pytest.raises(aiohttp.ClientPayloadError):  # the unfinished chunked body
            await get(s)
    said = [r for r in caplog.records if "export stopped" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert said[0].exc_info is None and "--query-timeout" in said[0].getMessage()
    assert "after 2 events" in said[0].getMessage()
