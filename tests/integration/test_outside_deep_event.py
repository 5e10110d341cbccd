"""One stored event nested deeper than orjson writes, tried from outside with a real process.

Found by hand: a book packet whose params nest 600 levels (orjson reads 1024, writes 254)
was stored, and then every search whose page held it answered 500 "internal error",
``url.path:/goods`` too; the live tail and the export likewise. Such a value is now given
as the text it was stored as; the searches around it answer.
"""

from __future__ import annotations

import socket
import urllib.parse
import urllib.request

import orjson
import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes


def get(http: int, path: str, **params: str) -> tuple[int, bytes]:
    url = f"http://{HOST}:{http}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("depth", [260, 600])
def test_searches_tail_and_export_answer_around_a_deeply_nested_event(procs, tmp_path, depth):
    _, tcp, http = procs.logs(tmp_path / "data")
    deep = "[" * depth + "]" * depth
    inner = '{"uri":"/goods","method":"POST","params":{"name":"deepone","a":' + deep + ',"key":5}}'
    plain = '{"uri":"/goods","method":"GET","params":{"name":"plainone","key":6}}'
    with socket.create_connection((HOST, tcp)) as s:  # the book's packets, as a Node service ships
        for text in (plain, inner):
            s.sendall(orjson.dumps({"uri": "/logs", "method": "POST", "key": 0, "params": text})
                      + "¶".encode())

    def both() -> list[dict] | None:
        status, body = get(http, "/api/v1/search", q="url.path:/goods", **{"from": "now-1h"})
        assert status == 200, body[:500]
        events = orjson.loads(body)["events"]
        return events if len(events) == 2 else None

    events = wait_for(both, 30, "both events searchable")
    deep_ev = next(e for e in events if "deepone" in e["message"])
    assert deep_ev["params"] == orjson.loads(inner)["params"] or isinstance(deep_ev["params"], str)
    assert any(e.get("params") == {"name": "plainone", "key": 6} for e in events)

    status, body = get(http, "/api/v1/export", q="url.path:/goods", format="ndjson", **{"from": "now-1h"})
    assert status == 200 and body.count(b"\n") == 2, body[:500]
    status, body = get(http, "/api/v1/tail", q="url.path:/goods", last="5", timeout="1")
    assert status == 200 and body.count(b"\ndata: ") == 2 and b"event: error" not in body, body[:500]
