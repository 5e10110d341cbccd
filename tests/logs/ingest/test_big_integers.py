"""An integer past 64 bits in an ingested document keeps its exact digits (as a string).

orjson reads such an integer as a float (123456789012345678901234567890 became
1.2345678901234568e+29: an acked value changed) and cannot write one back, so
every ingest path reads JSON through :func:`logmesh.protocol.loads_exact`, which
gives the integer's digits as a string, as VictoriaLogs keeps every value's text
(docs/api.md).
"""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from logmesh.logs.ingest.jsonlines import line_event
from logmesh.protocol import encode, loads, loads_exact, parse_frame, wide_digits
from tests.support.logs import HOST, RawClient, stored, wait_until

BIG = "123456789012345678901234567890"


@pytest.mark.parametrize(("text", "want"), [
    (b'{"k":%s}' % BIG.encode(), {"k": BIG}),
    (b'{"k":-%s}' % BIG.encode(), {"k": "-" + BIG}),
    (b'{"k":[1,{"j":18446744073709551616}]}', {"k": [1, {"j": "18446744073709551616"}]}),
    (b'{"k":18446744073709551615,"m":-9223372036854775808}',  # the widest orjson keeps
     {"k": 18446744073709551615, "m": -9223372036854775808}),
    (b'{"k":-9223372036854775809}', {"k": "-9223372036854775809"}),
    (b'{"k":1.5e300,"s":"%s","f":%s.0}' % (BIG.encode(), BIG.encode()),  # floats stay floats
     {"k": 1.5e300, "s": BIG, "f": float(BIG)}),
])
def test_loads_exact_keeps_the_digits(text, want):
    assert loads_exact(text) == want
    assert loads(text) == want
    assert loads_exact(text.decode()) == want


def test_only_integers_that_can_be_past_64_bits_take_the_exact_read():
    # a timestamp in nanoseconds (19 digits) is in every OTLP record and many loggers' lines:
    # such bodies keep orjson's speed (the screen flagged them all at first)
    assert not wide_digits(b'{"ts":1732963200123456789,"id":"9223372036854775807"}')
    assert not wide_digits(b'{"k":9999999999999999999,"m":-922337203685477580}')
    assert wide_digits(b'{"k":18446744073709551616}') and wide_digits("[-9223372036854775809]")
    assert wide_digits(b'{"s":"00000000000000000000"}')  # in a string too: only slower


def test_loads_keeps_the_digits_past_a_lone_surrogate():
    assert loads(b'{"k":%s,"u":"\\ud800"}' % BIG.encode()) == {"k": BIG, "u": "\ufffd"}


def test_loads_exact_still_refuses_what_orjson_refuses():
    for bad in (b'{"k":%s' % BIG.encode(), b'{"k":NaN,"b":%s}' % BIG.encode()):
        with pytest.raises(orjson.JSONDecodeError):
            loads_exact(bad)


def test_socket_packets_and_json_lines_keep_the_digits():
    frame = parse_frame(b'{"uri":"/logs","key":%s,"params":"x"}' % BIG.encode())
    assert frame["key"] == BIG
    ev = line_event(b'{"message":"x","key":%s}' % BIG.encode(), 1, None)
    assert ev.labels == {"key": BIG}


async def _post(srv, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{HOST}:{srv.config.http_port}{path}", data=body,
                                headers={"Content-Type": content_type}) as resp:
            return resp.status, await resp.json()


async def test_http_paths_store_the_exact_digits(start_logs):
    srv = await start_logs()
    one = b'{"message":"ndjson","key":%s}\n' % BIG.encode()
    status, answer = await _post(srv, "/api/v1/logs", one, "application/x-ndjson")
    assert status == 200 and answer["accepted"] == 1, answer
    status, answer = await _post(srv, "/api/v1/logs", b'[{"message":"array","key":%s}]' % BIG.encode(),
                                 "application/json")
    assert status == 200 and answer["accepted"] == 1, answer
    bulk = b'{"create":{}}\n{"message":"bulk","key":%s}\n' % BIG.encode()
    status, answer = await _post(srv, "/app/_bulk", bulk, "application/x-ndjson")
    assert status == 200 and answer["errors"] is False, answer
    events = stored(srv.config.data_dir)
    assert [e["message"] for e in events] == ["ndjson", "array", "bulk"]
    assert [e["labels"]["key"] for e in events] == [BIG] * 3


def test_an_otlp_int_value_past_int64_is_refused_not_kept_wider():
    from logmesh.logs.ingest.otlp_json import _json_value
    assert _json_value({"intValue": "9223372036854775807"}) == 2 ** 63 - 1
    with pytest.raises(ValueError, match="past int64"):
        _json_value({"intValue": BIG})


async def test_a_book_packets_params_are_stored_as_sent_and_answered_with_the_exact_digits(start_logs):
    """The book's path stores a logged request's params as their text (the digits exact on
    disk); a search answer read them with orjson, so it showed 1.2345678901234568e+29."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    text = '{"uri":"/goods","method":"GET","key":1,"params":{"n":' + BIG + '}}'
    await client.send(encode({"uri": "/logs", "method": "POST", "key": 0, "params": text}))
    await wait_until(lambda: stored(srv.config.data_dir), what="the event stored")
    await client.close()
    async with aiohttp.ClientSession() as session:
        url = f"http://{HOST}:{srv.config.http_port}/api/v1/search"
        async with session.get(url, params={"from": "now-1h"}) as resp:
            answer = await resp.json()
    [event] = answer["events"]
    assert event["params"] == {"n": BIG}
