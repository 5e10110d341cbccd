"""The distributor (DESIGN.md §1): registration, the list on connect, broadcasts, GET /distributes."""

from __future__ import annotations

from tests.support.mesh import HOST, Peer, names, wait_until


def registration(name: str, port: int, urls: list[str], **extra) -> dict:
    return {"uri": "/distributes", "method": "POST", "key": 0,
            "params": {"port": port, "name": name, "urls": urls, **extra}}


def is_list(packet: dict) -> bool:
    return packet.get("uri") == "/distributes" and packet.get("method") == "GET" \
        and isinstance(packet.get("params"), list)


async def test_new_connection_is_sent_the_current_list(mesh):
    dist = await mesh.start_distributor()
    first = await Peer.connect(dist.port)
    assert await first.recv() == {"uri": "/distributes", "method": "GET", "key": 0, "params": []}
    first.send(registration("goods", 9010, ["POST/goods", "GET/goods"]))
    await first.recv_until(is_list)  # its own registration's broadcast

    second = await Peer.connect(dist.port)
    hello = await second.recv()
    assert is_list(hello) and hello["key"] == 0
    assert hello["params"] == [{"port": 9010, "name": "goods", "urls": ["POST/goods", "GET/goods"],
                                "host": HOST}]
    # to the newcomer alone: the registered node hears nothing of the new connection
    assert await first.silent_for(0.2) == []
    await first.close()
    await second.close()


async def test_registration_takes_host_from_the_connection(mesh):
    dist = await mesh.start_distributor()
    peer = await Peer.connect(dist.port)
    await peer.recv()
    peer.send(registration("members", 9020, ["GET/members"], host="10.6.6.6"))
    listing = await peer.recv_until(is_list)
    assert listing["params"] == [{"port": 9020, "name": "members", "urls": ["GET/members"],
                                  "host": HOST}]
    assert dist.nodes()[0]["host"] == HOST
    await peer.close()


async def test_every_registration_and_disconnect_is_broadcast_to_registered_nodes(mesh):
    dist = await mesh.start_distributor()
    a = await Peer.connect(dist.port)
    await a.recv()
    a.send(registration("a", 1001, ["GET/a"]))
    assert names((await a.recv_until(is_list))["params"]) == ["a"]

    watcher = await Peer.connect(dist.port)  # connected, never registers
    assert names((await watcher.recv())["params"]) == ["a"]

    b = await Peer.connect(dist.port)
    assert names((await b.recv())["params"]) == ["a"]
    b.send(registration("b", 1002, ["GET/b"]))
    assert names((await a.recv_until(is_list))["params"]) == ["a", "b"]
    assert names((await b.recv_until(is_list))["params"]) == ["a", "b"]

    await b.close()
    assert names((await a.recv_until(is_list))["params"]) == ["a"]
    await wait_until(lambda: names(dist.nodes()) == ["a"], 2.0)

    # broadcasts go to registered nodes only, as in the book
    assert await watcher.silent_for(0.2) == []
    await a.close()
    await watcher.close()


async def test_get_distributes_answers_the_asker_alone(mesh):
    dist = await mesh.start_distributor()
    a = await Peer.connect(dist.port)
    await a.recv()
    a.send(registration("a", 1001, ["GET/a"]))
    await a.recv_until(is_list)

    asker = await Peer.connect(dist.port)
    await asker.recv()
    reply = await asker.request({"uri": "/distributes", "method": "GET", "params": {"key": 42}})
    assert reply["key"] == 42 and reply["errorcode"] == 0
    assert names(reply["params"]) == ["a"] and reply["params"][0]["host"] == HOST
    reply = await asker.request({"uri": "/distributes", "method": "GET", "key": 7})
    assert reply["key"] == 7 and names(reply["params"]) == ["a"]
    assert await a.silent_for(0.2) == []
    await a.close()
    await asker.close()


async def test_bad_input_gets_an_answer_and_the_connection_stays(mesh):
    dist = await mesh.start_distributor()
    peer = await Peer.connect(dist.port)
    await peer.recv()
    bad = await peer.request({"uri": "/distributes", "method": "POST", "key": 3, "params": {"name": "x"}})
    assert bad["key"] == 3 and bad["errorcode"] == 400
    other = await peer.request({"uri": "/goods", "method": "GET", "params": {"key": 4}})
    assert other["key"] == 4 and other["errorcode"] == 404
    peer.send_raw(b"garbage\xc2\xb6\xff\xfe\xc2\xb6\xc2\xb6")
    peer.send(registration("after", 1003, []))
    assert names((await peer.recv_until(is_list))["params"]) == ["after"]
    await peer.close()


async def test_registered_service_hears_the_list(mesh):
    await mesh.start_distributor()
    one = await mesh.start_service("one", {"GET/one": lambda p, pk: 1})
    await wait_until(lambda: names(one.nodes) == ["one"], 3.0, "one's own registration")
    two = await mesh.start_service("two", {"GET/two": lambda p, pk: 2})
    await wait_until(lambda: names(one.nodes) == ["one", "two"], 3.0, "broadcast of two")
    node = one.nodes[1]
    assert node == {"port": two.port, "name": "two", "urls": ["GET/two"], "host": HOST}
    await two.stop()
    await wait_until(lambda: names(one.nodes) == ["one"], 3.0, "broadcast of two's departure")


async def test_a_registration_no_node_can_be_reached_at_is_refused_and_not_broadcast(mesh):
    """Found from outside: ports -5, 0, 70000, true and urls given as a string ("GET/x" became
    the urls G, E, T, /, x) were registered and broadcast to every node; now each is a 400
    that says what to send, and the list stays as it was."""
    dist = await mesh.start_distributor()
    peer = await Peer.connect(dist.port)
    await peer.recv()
    for key, params in enumerate([{"port": -5}, {"port": 0}, {"port": 70000}, {"port": True},
                                  {"port": 9010.5}, {"port": 9010, "urls": "GET/x"},
                                  {"port": 9010, "name": "n" * 100_000},  # each of these three
                                  {"port": 9010, "urls": ["GET/" + "x" * 100_000]},  # was broadcast
                                  {"port": 9010, "urls": [f"GET/{i}" for i in range(1_001)]}],
                                 start=10):
        bad = await peer.request({"uri": "/distributes", "method": "POST", "key": key,
                                  "params": {"name": "bad", "urls": [], **params}})
        assert bad["key"] == key and bad["errorcode"] == 400, (params, bad)
        assert "port" in bad["errormessage"] and "urls" in bad["errormessage"]
    listed = await peer.request({"uri": "/distributes", "method": "GET", "key": 99})
    assert listed["params"] == []
    peer.send(registration("good", 65535, ["GET/x"]))
    assert names((await peer.recv_until(is_list))["params"]) == ["good"]
    await peer.close()


async def registered(port: int, name: str, node_port: int) -> Peer:
    """A bare peer registered as ``name`` at ``node_port``, its own broadcast read."""
    peer = await Peer.connect(port)
    await peer.recv()
    peer.send(registration(name, node_port, [f"GET/{name}"]))
    await peer.recv_until(lambda p: is_list(p) and name in names(p["params"]))
    return peer


async def test_a_clean_stop_says_goodbye_and_the_lists_name_it_left_until_it_registers_again(mesh):
    """A RegistryLink closed cleanly sends DELETE /distributes before its connection closes:
    the others hear a list without it that names it in ``left`` (the logs service's mesh view
    then drops it instead of showing it down); a node that only disconnects is in no ``left``
    (it may have crashed); a new registration of the address ends the goodbye."""
    from logmesh.mesh.registry import RegistryLink

    dist = await mesh.start_distributor()
    watcher = await registered(dist.port, "watcher", 1001)
    crashed = await registered(dist.port, "members", 1003)
    await crashed.close()  # no goodbye: a crash as the others see it
    listing = await watcher.recv_until(lambda p: is_list(p) and "members" not in names(p["params"]))
    assert "left" not in listing, "the book's packet as is while nobody said goodbye"

    link = RegistryLink(HOST, dist.port, name="goods", node_port=lambda: 1002, urls=lambda: ["GET/goods"])
    link.start()
    await watcher.recv_until(lambda p: is_list(p) and "goods" in names(p["params"]))
    await wait_until(lambda: link.client.is_connected)
    await link.close()
    listing = await watcher.recv_until(lambda p: is_list(p) and "goods" not in names(p["params"]))
    assert listing["left"] == [{"name": "goods", "host": HOST, "port": 1002}]
    assert await watcher.silent_for(0.3) == [], "its connection's close is not broadcast again"
    newcomer = await Peer.connect(dist.port)
    assert (await newcomer.recv())["left"] == [{"name": "goods", "host": HOST, "port": 1002}]
    # a goodbye from a connection that registered nothing: nothing to leave, nothing said
    newcomer.send({"uri": "/distributes", "method": "DELETE", "key": 0, "params": {"port": 1001}})
    assert await watcher.silent_for(0.3) == []
    assert names(dist.nodes()) == ["watcher"]
    # goods starts again on the same port: listed, and left no more
    newcomer.send(registration("goods", 1002, ["GET/goods"]))
    listing = await watcher.recv_until(lambda p: is_list(p) and "goods" in names(p["params"]))
    assert listing.get("left", []) == []
    await newcomer.close()
    await watcher.close()
