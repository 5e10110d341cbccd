"""The example services (goods, members, purchases): CRUD through the gateway."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from logmesh.examples.resource import RESOURCES, ResourceStore, make_service
from logmesh.mesh.service import HandlerError
from tests.support.mesh import HOST, Peer, gateway_ready


async def test_goods_crud_through_the_gateway(mesh, tmp_path):
    await mesh.start_distributor()
    svc = make_service("goods", tmp_path, port=0, distributor=mesh.distributor_addr)
    svc.on_request = lambda raw, packet, conn: None
    await mesh.add(svc)
    gw = await mesh.start_gateway()
    for route in ("POST/goods", "GET/goods", "DELETE/goods"):
        await gateway_ready(gw, route)
    base = f"http://{HOST}:{gw.port}/goods"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.post(base, json={"name": "pen", "category": "stationery", "price": 2.5,
                                         "description": "blue ¶ ink"}) as resp:
            created = await resp.json()
        assert resp.status == 200 and created["errorcode"] == 0
        pen_id = created["results"]["id"]
        async with http.post(base, data={"name": "cup", "price": "3"}) as resp:
            assert (await resp.json())["errorcode"] == 0

        async with http.get(base) as resp:
            rows = (await resp.json())["results"]
        assert [r["name"] for r in rows] == ["pen", "cup"]
        assert rows[0]["price"] == 2.5 and rows[0]["description"] == "blue ¶ ink"

        async with http.get(base, params={"id": str(pen_id)}) as resp:
            [pen] = (await resp.json())["results"]
        assert pen["id"] == pen_id and pen["name"] == "pen"

        async with http.post(base, json={"price": 1}) as resp:
            missing = await resp.json()
        assert missing["errorcode"] == 400 and "name" in missing["errormessage"]

        async with http.delete(base, params={"id": str(pen_id)}) as resp:
            assert (await resp.json())["results"] == {"deleted": 1}
        async with http.get(base) as resp:
            assert [r["name"] for r in (await resp.json())["results"]] == ["cup"]
        async with http.delete(base) as resp:
            assert (await resp.json())["errorcode"] == 400


async def test_all_three_services_behind_one_gateway(mesh, tmp_path):
    await mesh.start_distributor()
    for name in ("goods", "members", "purchases"):
        svc = make_service(name, tmp_path, port=0, distributor=mesh.distributor_addr)
        svc.on_request = lambda raw, packet, conn: None
        await mesh.add(svc)
    gw = await mesh.start_gateway()
    for name in ("goods", "members", "purchases"):
        await gateway_ready(gw, f"POST/{name}")
    base = f"http://{HOST}:{gw.port}"
    bodies = {"goods": {"name": "pen"}, "members": {"username": "kim"},
              "purchases": {"userid": 1, "goodsid": 1, "quantity": 2}}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for name, body in bodies.items():
            async with http.post(f"{base}/{name}", json=body) as resp:
                assert (await resp.json())["errorcode"] == 0
            async with http.get(f"{base}/{name}") as resp:
                [row] = (await resp.json())["results"]
            assert {k: row[k] for k in body} == body


# -- grouped commits ------------------------------------------------------------------------------

async def test_writes_of_one_turn_share_one_commit_and_are_answered_after_it(tmp_path):
    """Each POST used to commit (and fsync) on its own inside the event loop; now the writes of
    one turn of the loop are one transaction, and none is answered before its commit."""
    store = ResourceStore(RESOURCES["goods"], tmp_path / "goods.db")
    try:
        pending = [store.insert({"name": f"pen {i}"}, {}) for i in range(10)]
        assert not any(f.done() for f in pending)  # not answered: not committed yet
        assert store.select({}, {}) == []  # and not visible to a read either
        results = await asyncio.gather(*pending)
        assert store.commits == 1
        assert [r["id"] for r in results] == list(range(1, 11))
        assert [r["name"] for r in store.select({}, {})] == [f"pen {i}" for i in range(10)]
        deleted = await store.delete({"id": 3}, {})
        assert deleted == {"deleted": 1} and store.commits == 2
    finally:
        store.close()


async def test_a_get_of_every_row_sees_each_commit_of_any_worker(tmp_path):
    """A GET of the whole table is answered from the rows read last until a commit of any
    connection (this store's, or another worker's on the same file) changes SQLite's
    data_version."""
    path = tmp_path / "goods.db"
    one, two = ResourceStore(RESOURCES["goods"], path), ResourceStore(RESOURCES["goods"], path)
    try:
        await one.insert({"name": "pen"}, {})
        first = one.select({}, {})
        assert [r["name"] for r in first] == ["pen"]
        assert one.select({}, {}) is first, "nothing committed since: the same rows"
        await two.insert({"name": "cup"}, {})  # another worker's commit
        assert [r["name"] for r in one.select({}, {})] == ["pen", "cup"]
        await one.delete({"id": 1}, {})
        assert [r["name"] for r in one.select({}, {})] == ["cup"]
        assert [r["name"] for r in two.select({"id": 2}, {})] == ["cup"]
    finally:
        one.close()
        two.close()


async def test_the_gets_of_one_turn_ask_sqlite_s_data_version_once(tmp_path):
    """data_version is a statement per GET otherwise; a turn's GETs share it, the next turn
    asks again and sees another worker's commit."""
    path = tmp_path / "goods.db"
    one, two = ResourceStore(RESOURCES["goods"], path), ResourceStore(RESOURCES["goods"], path)
    asked: list[str] = []
    one.db.set_trace_callback(lambda sql: asked.append(sql) if "data_version" in sql else None)
    try:
        await one.insert({"name": "pen"}, {})
        for _ in range(10):
            assert [r["name"] for r in one.select({}, {})] == ["pen"]
        assert len(asked) == 1
        await two.insert({"name": "cup"}, {})  # another worker's commit, in a later turn
        assert [r["name"] for r in one.select({}, {})] == ["pen", "cup"] and len(asked) == 2
    finally:
        one.close()
        two.close()


async def test_a_bad_write_fails_alone_and_the_group_is_committed(tmp_path):
    store = ResourceStore(RESOURCES["goods"], tmp_path / "goods.db")
    try:
        good = store.insert({"name": "pen"}, {})
        with pytest.raises(HandlerError, match="cannot store goods"):
            store._write("INSERT INTO goods (id, name) VALUES (1, 'clash')", [],  # id 1 is taken
                         lambda cur: None)
        later = store.insert({"name": "cup"}, {})
        assert [r["id"] for r in await asyncio.gather(good, later)] == [1, 2]
        assert [r["name"] for r in store.select({}, {})] == ["pen", "cup"]
    finally:
        store.close()


@pytest.mark.parametrize("sync", ["normal", "full"])
async def test_an_answered_post_survives_the_service_being_killed(procs, tmp_path, sync):
    _, dist = procs.distributor()
    proc, port = procs.service("goods", dist, tmp_path / "data", "--no-ship", "--db-sync", sync)
    peer = await Peer.connect(port)
    replies = []
    for i in range(20):
        peer.send({"uri": "/goods", "method": "POST", "key": i, "params": {"name": f"n{i}",
                                                                          "key": i}})
    for _ in range(20):
        replies.append(await peer.recv(5.0))
    assert all(r["errorcode"] == 0 for r in replies)
    proc.kill9()
    proc, port = procs.service("goods", dist, tmp_path / "data", "--no-ship")
    peer = await Peer.connect(port)
    rows = (await peer.request({"uri": "/goods", "method": "GET", "key": 1,
                                "params": {"key": 1}}, 5.0))["results"]
    assert sorted(r["name"] for r in rows) == sorted(f"n{i}" for i in range(20))
    await peer.close()
