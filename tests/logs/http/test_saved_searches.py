"""Saved searches (http/saved_searches.py) on a real logs service: saved in the data directory,
listed, replaced by name, deleted; bad bodies are 400s that are counted; changes need a write
token and reading a read token; two workers (two processes' worth of writers) lose no save."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from logmesh.logs.http.saved_searches import SavedSearches, checked
from logmesh.logs.store.layout import SAVED_SEARCHES_FILE
from logmesh.security import ServerSecurity
from tests.support.logs import HOST

URL = "/api/v1/saved-searches"


@pytest.fixture
async def api(start_logs):
    server = await start_logs()
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as session:
        yield server, session


async def call(s, method, path, status, **kw):
    async with s.request(method, path, **kw) as r:
        body = await r.json()
        assert r.status == status, body
        return body


async def test_save_list_replace_delete_and_kept_on_disk(api):
    server, s = api
    assert await call(s, "GET", URL, 200) == {"saved_searches": []}
    xss = "<img src=x onerror=alert(1)>"
    first = (await call(s, "POST", URL, 201, json={
        "name": xss, "q": "service.name:goods", "from": "now-2h", "to": "now",
        "columns": ["service.name", "params.id", "service.name"], "by": "log.level"}))["saved_search"]
    assert first["name"] == xss and first["columns"] == ["service.name", "params.id"] and first["id"]
    await call(s, "POST", URL, 201, json={"name": "b errors", "q": "log.level:error"})
    again = (await call(s, "POST", URL, 200, json={"name": xss, "q": "service.name:members"}))["saved_search"]
    assert again["id"] == first["id"] and again["q"] == "service.name:members" and again["from"] == "now-15m"
    listed = (await call(s, "GET", URL, 200))["saved_searches"]
    assert [i["name"] for i in listed] == [xss, "b errors"]
    on_disk = json.loads((server.config.data_dir / SAVED_SEARCHES_FILE).read_bytes())
    assert [i["name"] for i in on_disk["saved_searches"]] == [xss, "b errors"]
    assert await call(s, "DELETE", f"{URL}/{first['id']}", 200) == {"deleted": first["id"]}
    await call(s, "DELETE", f"{URL}/{first['id']}", 404)
    assert [i["name"] for i in (await call(s, "GET", URL, 200))["saved_searches"]] == ["b errors"]


@pytest.mark.parametrize("body,says", [
    (b"not json", "must be JSON"),
    (b"[1]", "JSON object"),
    (b'{"q": "x"}', "name is required"),
    (b'{"name": "  "}', "name is required"),
    (b'{"name": 5}', "name must be a string"),
    (b'{"name": "a", "q": "a:("}', "bad query"),
    (b'{"name": "a", "from": "soon"}', "soon"),
    (b'{"name": "a", "from": "now", "to": "now-1h"}', "after"),
    (b'{"name": "a", "columns": "message"}', "columns must be a list"),
    (b'{"name": "a", "columns": [""]}', "columns must be a list"),
    (b'{"name": "' + b"n" * 201 + b'"}', "at most 200"),
    # Unknown keys were ignored: the search was saved with an empty query and range.
    (b'{"name": "a", "query": "log.level:error"}', "unknown key 'query'; the keys are name, q, from"),
    (b'{"name": "a", "q": "x", "range": "now-1h"}', "unknown key 'range'"),
    (b'{"name": "a", "Q": "x", "cols": []}', "unknown keys 'Q', 'cols'"),
])
async def test_bad_bodies_are_400_with_a_message_and_counted(api, body, says):
    server, s = api
    before = server.api.counters["bad_requests"]
    r = await call(s, "POST", URL, 400, data=body)
    assert says in r["error"], r
    assert server.api.counters["bad_requests"] == before + 1
    assert not (server.config.data_dir / SAVED_SEARCHES_FILE).exists()


async def test_a_listed_search_posted_back_is_saved(api):
    """What GET lists (id, created_at, updated_at with the rest) is no unknown key: a client
    that edits a listed search and posts it back replaces it."""
    _, s = api
    first = (await call(s, "POST", URL, 201, json={"name": "e", "q": "log.level:error"}))["saved_search"]
    again = (await call(s, "POST", URL, 200, json={**first, "q": "log.level:warn"}))["saved_search"]
    assert again["id"] == first["id"] and again["q"] == "log.level:warn"


async def test_a_body_over_64_kib_is_413(api):
    _, s = api
    await call(s, "POST", URL, 413, data=b'{"name": "' + b"x" * 70_000 + b'"}')


async def test_changes_need_a_write_token_and_listing_a_read_token(start_logs):
    server = await start_logs(security=ServerSecurity(read_token="r" * 24, write_token="w" * 24))
    read, write = ({"Authorization": "Bearer " + t * 24} for t in "rw")
    async with aiohttp.ClientSession(f"http://{HOST}:{server.config.http_port}") as s:
        await call(s, "GET", URL, 401)
        await call(s, "POST", URL, 403, json={"name": "x"}, headers=read)
        saved = (await call(s, "POST", URL, 201, json={"name": "x"}, headers=write))["saved_search"]
        await call(s, "GET", URL, 403, headers=write)
        assert len((await call(s, "GET", URL, 200, headers=read))["saved_searches"]) == 1
        await call(s, "DELETE", f"{URL}/{saved['id']}", 403, headers=read)
        await call(s, "DELETE", f"{URL}/{saved['id']}", 200, headers=write)


def test_saves_at_once_from_many_writers_lose_none(tmp_path):
    """Each writer is its own SavedSearches over the same directory, as --workers' processes
    are: the flock makes each read-change-write whole."""
    def save(i):
        SavedSearches(tmp_path).save(checked({"name": f"s{i}", "q": f"key:{i}"}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(save, range(40)))
    assert sorted(i["name"] for i in SavedSearches(tmp_path).list()) == sorted(f"s{i}" for i in range(40))


async def test_a_damaged_file_is_an_error_and_is_left_as_it_is(api):
    server, s = api
    path = server.config.data_dir / SAVED_SEARCHES_FILE
    path.write_bytes(b"{not json")
    r = await call(s, "GET", URL, 500)
    assert "cannot be read" in r["error"]
    await call(s, "POST", URL, 500, json={"name": "x"})
    assert path.read_bytes() == b"{not json"
