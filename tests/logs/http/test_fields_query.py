"""/api/v1/fields follows q (issue 20 item 5): the labels/params keys are sampled among the
events the query matches, so a key only one service logs shows when the query names it."""

from __future__ import annotations

import json

import aiohttp

from tests.support.logs import HOST


async def test_a_key_of_one_rare_service_is_listed_when_the_query_names_it(start_logs):
    server = await start_logs()
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as s:
        lines = [json.dumps({"service.name": "goods", "labels": {"common": i}}) for i in range(25_000)]
        lines.append(json.dumps({"service.name": "billing", "labels": {"only_billing": 1},
                                 "params": {"invoice": 7}}))
        async with s.post("/api/v1/logs", data="\n".join(lines)) as r:
            assert (await r.json())["accepted"] == 25_001

        async def names(**params):
            async with s.get("/api/v1/fields", params={"from": "now-1h", **params}) as r:
                assert r.status == 200
                return {f["name"] for f in (await r.json())["fields"]}

        billing = await names(q="service.name:billing")
        assert {"labels.only_billing", "params.invoice"} <= billing and "labels.common" not in billing
        assert "labels.common" in await names(q="service.name:goods")
        async with s.get("/api/v1/fields", params={"q": "a:("}) as r:
            assert r.status == 400
