"""The example services (goods, members, purchases): CRUD through the gateway."""

from __future__ import annotations

import aiohttp

from logmesh.examples.resource import make_service
from tests.support.mesh import HOST, gateway_ready


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
