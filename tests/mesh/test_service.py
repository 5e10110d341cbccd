"""The service base (the book's tcpServer): routes, reply keys, errors that never kill a connection."""

from __future__ import annotations

import asyncio
import re

from logmesh.mesh.service import HandlerError, Later, settle_group
from logmesh.metrics import Exposition
from tests.support.mesh import Peer
from tests.support.waiting import wait_until


def echo(params, packet):
    return {"params": params}


async def start(mesh, routes, **kwargs):
    return await mesh.start_service("svc", routes, register=False, **kwargs)


async def held_posts(mesh, count: int, routes=None):
    """A service whose ``POST /later`` returns a Later it holds, ``count`` of them sent by a
    peer and taken: (service, peer, the Laters)."""
    held: list[Later] = []

    def later(params, packet):
        held.append(Later())
        return held[-1]

    svc = await start(mesh, {"POST/later": later, **(routes or {})})
    peer = await Peer.connect(svc.port)
    for key in range(1, count + 1):
        peer.send({"uri": "/later", "method": "POST", "params": {"key": key}})
    await wait_until(lambda: len(held) == count, 30, "the service took every request")
    return svc, peer, held


async def test_dispatch_by_method_and_uri(mesh):
    svc = await start(mesh, {"POST/things": lambda p, pk: "created",
                             "GET/things": lambda p, pk: ["a", "b"],
                             "GET/other": lambda p, pk: "other"})
    peer = await Peer.connect(svc.port)
    assert (await peer.request({"uri": "/things", "method": "POST", "params": {"key": 1}}))["results"] == "created"
    assert (await peer.request({"uri": "/things", "method": "GET", "params": {"key": 2}}))["results"] == ["a", "b"]
    assert (await peer.request({"uri": "/other", "method": "GET", "params": {"key": 3}}))["results"] == "other"
    assert svc.urls == ["POST/things", "GET/things", "GET/other"]
    await peer.close()


async def test_reply_shape_and_key_from_params_key_else_top_level(mesh):
    svc = await start(mesh, {"GET/echo": echo})
    peer = await Peer.connect(svc.port)
    # the book's gateway: key inside params, none at the top level
    reply = await peer.request({"uri": "/echo", "method": "GET", "params": {"key": 5, "q": "x"}})
    assert reply == {"key": 5, "errorcode": 0, "errormessage": "success",
                     "results": {"params": {"key": 5, "q": "x"}}}
    # both present: params.key wins (that is where the book's gateway looks)
    reply = await peer.request({"uri": "/echo", "method": "GET", "key": 9, "params": {"key": 6}})
    assert reply["key"] == 6
    # logmesh clients and the distributor style: top-level key
    reply = await peer.request({"uri": "/echo", "method": "GET", "key": 7, "params": {"q": 1}})
    assert reply["key"] == 7
    reply = await peer.request({"uri": "/echo", "method": "GET", "key": "k-8", "params": "text"})
    assert reply["key"] == "k-8" and reply["results"] == {"params": "text"}
    await peer.close()


async def test_unknown_route_gets_an_error_reply_and_the_connection_stays(mesh):
    svc = await start(mesh, {"GET/echo": echo})
    peer = await Peer.connect(svc.port)
    reply = await peer.request({"uri": "/nope", "method": "GET", "params": {"key": 1}})
    assert reply["key"] == 1 and reply["errorcode"] == 404
    assert "GET/nope" in reply["errormessage"]
    reply = await peer.request({"uri": "/echo", "method": "DELETE", "key": 2})
    assert reply["key"] == 2 and reply["errorcode"] == 404
    reply = await peer.request({"uri": "/echo", "method": "GET", "params": {"key": 3}})
    assert reply["key"] == 3 and reply["errorcode"] == 0
    assert svc.stats["unknown_routes"] == 2
    await peer.close()


async def test_handler_exception_gets_an_error_reply_without_internals(mesh):
    def boom(params, packet):
        raise RuntimeError("secret db password in /etc/app.conf")

    async def aboom(params, packet):
        await asyncio.sleep(0)
        raise KeyError("internal-detail")

    def refuse(params, packet):
        raise HandlerError("name is required", 400)

    svc = await start(mesh, {"GET/boom": boom, "GET/aboom": aboom, "GET/refuse": refuse,
                             "GET/echo": echo})
    peer = await Peer.connect(svc.port)
    for key, uri in ((1, "/boom"), (2, "/aboom")):
        reply = await peer.request({"uri": uri, "method": "GET", "params": {"key": key}})
        assert reply == {"key": key, "errorcode": 500, "errormessage": "internal error"}
    reply = await peer.request({"uri": "/refuse", "method": "GET", "params": {"key": 3}})
    assert reply == {"key": 3, "errorcode": 400, "errormessage": "name is required"}
    assert (await peer.request({"uri": "/echo", "method": "GET", "params": {"key": 4}}))["errorcode"] == 0
    assert svc.stats["errors"] == 3
    await peer.close()


async def test_result_that_cannot_be_sent_gets_an_error_reply(mesh):
    async def unsendable_async(params, packet):
        return {1, 2}

    svc = await start(mesh, {"GET/set": lambda p, pk: {1, 2}, "GET/aset": unsendable_async,
                             "GET/echo": echo})
    peer = await Peer.connect(svc.port)
    for key, uri in ((1, "/set"), (2, "/aset")):
        reply = await peer.request({"uri": uri, "method": "GET", "params": {"key": key}})
        assert reply == {"key": key, "errorcode": 500, "errormessage": "internal error"}
    assert (await peer.request({"uri": "/echo", "method": "GET", "params": {"key": 3}}))["errorcode"] == 0
    # each request timed once, by its route and its reply's errorcode (0: the result was sent)
    ex = Exposition()
    svc.collect_metrics(ex)
    counts = dict(re.findall(r'^logmesh_request_duration_seconds_count\{route="([^"]+)",'
                             r'service="svc",status="(\d+)"\} 1(?:\.0)?$', ex.render(), re.M))
    assert counts == {"GET/set": "500", "GET/aset": "500", "GET/echo": "0"}
    await peer.close()


async def test_async_handlers_answer_out_of_order_by_key(mesh):
    async def slow(params, packet):
        await asyncio.sleep(params["delay"])
        return params["delay"]

    svc = await start(mesh, {"GET/slow": slow})
    peer = await Peer.connect(svc.port)
    peer.send({"uri": "/slow", "method": "GET", "params": {"key": 1, "delay": 0.3}})
    peer.send({"uri": "/slow", "method": "GET", "params": {"key": 2, "delay": 0.0}})
    first, second = await peer.recv(), await peer.recv()
    assert (first["key"], second["key"]) == (2, 1)
    assert second["results"] == 0.3
    await peer.close()


async def test_request_hook_sees_the_raw_frame_before_the_handler(mesh):
    seen: list = []
    svc = await start(mesh, {"GET/echo": lambda p, pk: seen.append("handler")})
    svc.on_request = lambda raw, packet, conn: seen.append(raw)
    peer = await Peer.connect(svc.port)
    peer.send_raw(b'{"uri":"/echo","method":"GET","params":{"key":1,"s":"\\u00b6"}}\xc2\xb6')
    await peer.recv()
    assert seen == [b'{"uri":"/echo","method":"GET","params":{"key":1,"s":"\\u00b6"}}', "handler"]
    await peer.close()


async def test_bad_frames_are_dropped_and_counted_and_the_connection_stays(mesh):
    svc = await start(mesh, {"GET/echo": echo}, max_frame_bytes=200)
    peer = await Peer.connect(svc.port)
    peer.send_raw(b"not json\xc2\xb6" + b'{"x": "\xff"}\xc2\xb6' + b"null\xc2\xb6\xc2\xb6"
                  + b'{"big": "' + b"x" * 500 + b'"}\xc2\xb6')
    reply = await peer.request({"uri": "/echo", "method": "GET", "params": {"key": 1, "s": "a¶b"}})
    assert reply["key"] == 1 and reply["results"]["params"]["s"] == "a¶b"
    [conn] = svc.connections
    assert conn.bad_frames == 4
    assert conn.decoder.errors == {"bad_json": 1, "bad_utf8": 1, "not_object": 1, "too_large": 1}
    await peer.close()


async def test_a_request_without_a_key_is_counted_and_neither_handled_nor_answered(mesh):
    """A reply with key null kills the book's gateway, and no caller could match it anyway."""
    handled: list = []
    svc = await start(mesh, {"POST/things": lambda p, pk: handled.append(p) or "created"})
    peer = await Peer.connect(svc.port)
    peer.send({"uri": "/things", "method": "POST", "params": [{"name": "pen"}]})  # gate + array body
    peer.send({"uri": "/things", "method": "POST", "key": None, "params": {"name": "cup"}})
    peer.send({"uri": "/nowhere", "method": "GET"})
    assert await peer.silent_for(0.3) == []
    assert handled == [] and svc.stats["keyless"] == 3
    reply = await peer.request({"uri": "/things", "method": "POST", "params": {"key": 0}})
    assert reply == {"key": 0, "errorcode": 0, "errormessage": "success", "results": "created"}
    await peer.close()


async def test_a_request_split_by_a_raw_pilcrow_is_answered_400_when_its_last_piece_comes(mesh):
    handled: list = []
    svc = await start(mesh, {"POST/things": lambda p, pk: handled.append(p) or "created"})
    peer = await Peer.connect(svc.port)
    peer.send_raw('{"uri":"/things","method":"POST","params":{"name":"a¶'.encode())
    assert await peer.silent_for(0.2) == []  # the first piece alone: nothing to answer yet
    peer.send_raw('b","key":7}}¶'.encode())
    reply = await peer.recv()
    assert reply["key"] == 7 and reply["errorcode"] == 400 and "¶" in reply["errormessage"]
    # without a key it is only counted
    peer.send_raw('{"uri":"/things","method":"POST","params":["a¶b"]}¶'.encode())
    assert await peer.silent_for(0.3) == []
    assert handled == []
    assert (svc.stats["framing_errors"], svc.stats["keyless"]) == (1, 1)
    [conn] = svc.connections
    assert conn.torn_packets == 2 and conn.decoder.errors == {"bad_json": 4}
    await peer.close()


async def test_a_later_result_is_answered_in_the_call_that_settles_it(mesh):
    """A handler may return a Later (a store's group commit settles it): the reply is written
    in ``settle``'s own call (a Future's result reached the reply a turn later, through
    call_soon); an error settles as a handler's failure; one settled before the service took it
    is answered at once."""
    def at_once(params, packet):
        done = Later()
        done.settle({"now": True})
        return done

    svc, peer, held = await held_posts(mesh, 3, {"GET/now": at_once})
    [conn] = svc.connections
    sent: list[bytes] = []
    write = conn.write
    conn.write = lambda data: (sent.append(data), write(data))  # type: ignore[method-assign]
    held[0].settle({"id": 1})
    assert len(sent) == 1, "written in settle's own call"
    held[1].settle(error=HandlerError("cannot store", 500))
    held[2].settle({"id": 3})
    held[2].settle({"id": 99})  # once
    replies = {r["key"]: r for r in [await peer.recv(5.0) for _ in range(3)]}
    assert replies[1]["results"] == {"id": 1}
    assert replies[2]["errorcode"] == 500 and replies[2]["errormessage"] == "cannot store"
    assert replies[3]["results"] == {"id": 3}
    assert (await peer.request({"uri": "/now", "method": "GET", "params": {"key": 4}}))["results"] == {"now": True}
    assert svc.stats["errors"] == 1
    assert await held[0] == {"id": 1}  # awaitable outside a service too
    await peer.close()


class RecordingTransport:
    """The connection's transport, its writes recorded."""

    def __init__(self, real) -> None:
        self.real, self.writes = real, []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.real.write(data)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


async def test_a_group_s_replies_leave_in_one_write_before_settle_group_returns(mesh):
    """A store's commit settles its group with settle_group: the group's replies reach the
    transport in that call, one write per connection, not at the end of the loop's next turn
    (a commit runs from call_soon; a write waits for the end of the turn it is made in)."""
    svc, peer, held = await held_posts(mesh, 5)
    [conn] = svc.connections
    recording = conn.transport = RecordingTransport(conn.transport)
    settle_group([(held[0], {"id": 1}), (held[1], {"id": 2}), (held[2], {"id": 3})])
    assert len(recording.writes) == 1 and recording.writes[0].count("¶".encode()) == 3
    settle_group([(held[3], None), (held[4], None)], HandlerError("cannot store goods", 500))
    assert len(recording.writes) == 2 and recording.writes[1].count("¶".encode()) == 2
    replies = {r["key"]: r for r in [await peer.recv(5.0) for _ in range(5)]}
    assert [replies[k]["results"] for k in (1, 2, 3)] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert all(replies[k]["errorcode"] == 500 and replies[k]["errormessage"] == "cannot store goods"
               for k in (4, 5))
    await peer.close()
