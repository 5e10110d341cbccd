"""An in-process HTTP server that behaves like Elasticsearch where the sink depends on it.

No Elasticsearch can be installed where these tests run, so this stands in,
on 127.0.0.1 and a free port, answering what the official client libraries
send, in the shapes Elasticsearch 8 answers with:

* ``GET /`` with ``X-Elastic-Product: Elasticsearch`` (or, as OpenSearch,
  ``version.distribution: opensearch`` and no product header);
* ``PUT /_index_template/<name>``, ``PUT /_data_stream/<name>``, ``PUT /<index>``;
* ``POST /_bulk``: per-item results, checking each document against the
  installed template's mapping (a ``long`` that is not a number, a
  ``flattened`` that is not an object or is too deep, a missing
  ``@timestamp`` in a data stream are 400 ``document_parsing_exception``),
  ``create`` of an existing ``_id`` is 409, and, by chance (seeded), items
  rejected with 429, whole requests answered 503, and connections dropped
  before or after the documents were stored.

Everything it got is kept for assertions: documents by ``_id``, how many
``create``s succeeded per ``_id``, and the headers of every request.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

HOST = "127.0.0.1"
ES_VERSION = "8.19.2"
OS_VERSION = "2.19.1"


@dataclass
class Faults:
    """Chances per request (``request_*``, ``drop_*``) or per document (``item_429``)."""

    request_503: float = 0.0
    request_429: float = 0.0
    drop_before: float = 0.0  # connection closed before anything is stored
    drop_after: float = 0.0  # documents stored, then the connection closed: the answer is lost
    item_429: float = 0.0
    bulk_delay: float = 0.0  # seconds to wait (after storing) before answering a bulk
    max_content_length: int = 0  # when set, larger bulk bodies get 413 with no body, as ES does
    short_answer: float = 0.0  # an answer whose last item is missing (that document not stored)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None  # kept for the first few bulks only


def _error(kind: str, reason: str, status: int, **extra: Any) -> dict[str, Any]:
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


class FakeElasticsearch:
    def __init__(self, *, flavor: str = "elasticsearch", seed: int = 7,
                 faults: Faults | None = None, api_key: str | None = None,
                 basic_auth: tuple[str, str] | None = None, ssl_context: Any = None) -> None:
        self.flavor = flavor
        self.basic_auth = basic_auth  # when set, requests need this user and password
        self.ssl_context = ssl_context  # serve https
        self.random = random.Random(seed)
        self.faults = faults or Faults()
        self.api_key = api_key  # when set, requests without it get 401
        self.templates: dict[str, dict] = {}
        self.data_streams: dict[str, dict] = {}
        self.indices: set[str] = set()
        self.docs: dict[str, dict[str, Any]] = {}  # _id -> _source
        self.created: Counter[str] = Counter()  # _id -> successful creates (must stay 1)
        self.conflicts = 0
        self.index_ops = 0  # `index` ops (would overwrite/duplicate): the sink must send none
        self.requests: list[Seen] = []
        self.bulk_requests = 0
        self.bulk_started = asyncio.Event()  # set when a bulk arrives (before answering)
        self.hold: asyncio.Event | None = None  # when set, bulks wait for it after storing
        self.hang = False  # accept requests and never answer
        self._stopping = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._seq_no = 0
        self._field_cache: dict[int, tuple[dict[str, dict], set[str]]] = {}
        self._template_cache: dict[str, dict | None] = {}

    # -- running -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{HOST}:{self.port}"

    async def start(self, port: int | None = None) -> FakeElasticsearch:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, HOST, self.port if port is None else port,
                                 reuse_address=True, ssl_context=self.ssl_context)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection: the cluster is down."""
        self._stopping.set()  # hanging handlers end, so cleanup does not wait for them
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._stopping = asyncio.Event()
            self._runner = self._site = None

    # -- answers ---------------------------------------------------------------------
    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = {}
        if self.flavor == "elasticsearch":
            headers["X-Elastic-Product"] = "Elasticsearch"
            accept = request.headers.get("Accept", "")
            headers["Content-Type"] = ("application/vnd.elasticsearch+json;compatible-with=8"
                                       if "compatible-with" in accept else "application/json")
        else:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        return headers

    def _json(self, request: web.Request, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, headers=self._headers(request))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.hang:
            await self._stopping.wait()
            return web.Response(status=503)
        body = await request.read()
        path = request.path
        seen = Seen(request.method, path, dict(request.headers))
        self.requests.append(seen)
        if self.api_key is not None and request.headers.get("Authorization") != f"ApiKey {self.api_key}":
            return self._json(request, _error("security_exception", "missing authentication "
                                              "credentials for REST request [" + path + "]", 401), 401)
        if self.basic_auth is not None:
            want = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if request.headers.get("Authorization") != want:
                return self._json(request, _error("security_exception", "unable to authenticate user "
                                                  f"for REST request [{path}]", 401), 401)
        parts = [p for p in path.split("/") if p]
        method = request.method
        if parts == ["_fake", "stats"]:  # for tests that run the fake in its own process
            return self._json(request, self.summary())
        if not parts and method in ("GET", "HEAD"):
            return self._json(request, self._info())
        if parts[-1] == "_bulk" and method in ("POST", "PUT"):
            if self.bulk_requests < 5:
                seen.body = body
            return await self._bulk(request, body, parts[0] if len(parts) == 2 else None)
        if parts[0] == "_index_template" and len(parts) == 2:
            if method == "PUT" or method == "POST":
                self.templates[parts[1]] = orjson.loads(body)
                self._template_cache.clear()
                return self._json(request, {"acknowledged": True})
            if method == "GET" and parts[1] in self.templates:
                return self._json(request, {"index_templates": [
                    {"name": parts[1], "index_template": self.templates[parts[1]]}]})
        if parts[0] == "_data_stream" and len(parts) == 2:
            name = parts[1]
            if method == "PUT":
                if name in self.data_streams:
                    return self._json(request, _error("resource_already_exists_exception",
                                                      f"data_stream [{name}] already exists", 400), 400)
                if self._template_for(name, data_stream=True) is None:
                    return self._json(request, _error(
                        "illegal_argument_exception",
                        f"no matching index template found for data stream [{name}]", 400), 400)
                self.data_streams[name] = {"name": name, "generation": 1}
                return self._json(request, {"acknowledged": True})
            if method == "GET" and name in self.data_streams:
                return self._json(request, {"data_streams": [self.data_streams[name]]})
        if len(parts) == 1 and method == "PUT" and not parts[0].startswith("_"):
            if parts[0] in self.indices:
                return self._json(request, _error("resource_already_exists_exception",
                                                  f"index [{parts[0]}/x] already exists", 400), 400)
            self.indices.add(parts[0])
            return self._json(request, {"acknowledged": True, "shards_acknowledged": True,
                                        "index": parts[0]})
        return self._json(request, _error("index_not_found_exception",
                                          f"no such index [{parts[0] if parts else ''}]", 404), 404)

    def summary(self) -> dict[str, Any]:
        return {"docs": len(self.docs), "created_max": max(self.created.values(), default=0),
                "conflicts": self.conflicts, "index_ops": self.index_ops, "bulks": self.bulk_requests}

    def _info(self) -> dict[str, Any]:
        if self.flavor == "opensearch":
            return {"name": "fake", "cluster_name": "fake", "cluster_uuid": "f4ke",
                    "version": {"distribution": "opensearch", "number": OS_VERSION,
                                "lucene_version": "9.12.1", "minimum_wire_compatibility_version": "7.10.0",
                                "minimum_index_compatibility_version": "7.0.0"},
                    "tagline": "The OpenSearch Project: https://opensearch.org/"}
        return {"name": "fake", "cluster_name": "fake", "cluster_uuid": "f4ke",
                "version": {"number": ES_VERSION, "build_flavor": "default", "build_type": "docker",
                            "lucene_version": "9.12.2", "minimum_wire_compatibility_version": "7.17.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "You Know, for Search"}

    def _template_for(self, name: str, data_stream: bool | None = None) -> dict | None:
        for tpl in sorted(self.templates.values(), key=lambda t: -t.get("priority", 0)):
            for pattern in tpl.get("index_patterns", []):
                if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                    if data_stream is None or ("data_stream" in tpl) == data_stream:
                        return tpl
        return None

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0)
        return web.Response(status=500)  # never reaches the client

    async def _bulk(self, request: web.Request, body: bytes, path_index: str | None) -> web.StreamResponse:
        self.bulk_requests += 1
        self.bulk_started.set()
        f, rnd = self.faults, self.random
        if f.max_content_length and len(body) > f.max_content_length:
            return web.Response(status=413, headers=self._headers(request))
        if rnd.random() < f.drop_before:
            return await self._drop(request)
        if rnd.random() < f.request_503:
            return self._json(request, _error("cluster_block_exception",
                                              "blocked by: [SERVICE_UNAVAILABLE/2/no master];", 503), 503)
        if rnd.random() < f.request_429:
            return self._json(request, _error(
                "circuit_breaking_exception", "[parent] Data too large, data for [<http_request>] "
                "would be [1031809024/984mb], which is larger than the limit of [986061209/940.3mb]",
                429, bytes_wanted=1031809024, bytes_limit=986061209, durability="TRANSIENT"), 429)
        t0 = time.perf_counter()
        lines = body.split(b"\n")
        items: list[dict[str, Any]] = []
        i = 0
        try:
            while i < len(lines):
                if not lines[i].strip():
                    i += 1
                    continue
                header = orjson.loads(lines[i])
                (op, meta), = header.items()
                source = orjson.loads(lines[i + 1]) if op != "delete" else None
                i += 2
                if i >= len(lines) - 1 and rnd.random() < f.short_answer:
                    break  # a broken proxy or server: no item for the last document
                items.append({op: self._one(op, meta, source, path_index)})
        except (orjson.JSONDecodeError, ValueError, IndexError) as exc:
            return self._json(request, _error(
                "illegal_argument_exception", f"Malformed action/metadata line [{i + 1}], {exc}", 400), 400)
        if rnd.random() < f.drop_after:
            return await self._drop(request)
        if f.bulk_delay:
            await asyncio.sleep(f.bulk_delay)
        if self.hold is not None:
            await self.hold.wait()
        errors = any("error" in next(iter(it.values())) for it in items)
        return self._json(request, {"errors": errors, "took": int((time.perf_counter() - t0) * 1000),
                                    "items": items})

    def _one(self, op: str, meta: dict, source: dict | None, path_index: str | None) -> dict[str, Any]:
        index = meta.get("_index") or path_index or ""
        doc_id = meta.get("_id")
        backing = index
        stream = self.data_streams.get(index)
        if stream is not None:
            backing = f".ds-{index}-{time.strftime('%Y.%m.%d')}-{stream['generation']:06d}"
        base = {"_index": backing, "_id": doc_id}
        if self.random.random() < self.faults.item_429:
            return {**base, "status": 429, "error": {
                "type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
                          "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, "
                          "max_coordinating_and_primary_bytes=107374182]"}}
        if op != "create":
            self.index_ops += 1
            if stream is not None:
                return {**base, "status": 400, "error": {
                    "type": "illegal_argument_exception",
                    "reason": "only write ops with an op_type of create are allowed in data streams"}}
        if index not in self._template_cache:
            self._template_cache[index] = self._template_for(index)
        template = self._template_cache[index]
        problem = self._check(source or {}, template, doc_id, stream is not None)
        if problem is not None:
            return {**base, "status": 400, "error": problem}
        if op == "create" and doc_id in self.docs:
            self.conflicts += 1
            return {**base, "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])",
                "index_uuid": "aBcDeFgHiJkLmNoPqRsTuV", "shard": "0", "index": backing}}
        self.docs[doc_id] = source or {}
        self.created[doc_id] += 1
        self._seq_no += 1
        return {**base, "_version": 1, "result": "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": self._seq_no, "_primary_term": 1, "status": 201}

    # -- mapping checks (what makes Elasticsearch refuse a document for its content) -----
    def _check(self, source: dict, template: dict | None, doc_id: str, data_stream: bool) -> dict | None:
        if data_stream and "@timestamp" not in source:
            return {"type": "document_parsing_exception",
                    "reason": "[1:2] failed to parse: data stream timestamp field [@timestamp] is missing"}
        if template is None:
            return None
        leaves, objects = self._fields(template)
        for key, value in source.items():
            problem = self._check_value(key, value, leaves, objects, doc_id)
            if problem is not None:
                return problem
        return None

    def _fields(self, template: dict) -> tuple[dict[str, dict], set[str]]:
        """The template's mapping as {dotted leaf name: node} and the set of object names."""
        cached = self._field_cache.get(id(template))
        if cached is None:
            leaves: dict[str, dict] = {}
            objects: set[str] = set()

            def walk(props: dict, prefix: str) -> None:
                for key, node in props.items():
                    if "properties" in node:
                        objects.add(prefix + key)
                        walk(node["properties"], prefix + key + ".")
                    else:
                        leaves[prefix + key] = node

            walk(template.get("template", {}).get("mappings", {}).get("properties", {}), "")
            cached = self._field_cache[id(template)] = (leaves, objects)
        return cached

    def _check_value(self, name: str, value: Any, leaves: dict[str, dict], objects: set[str],
                     doc_id: str) -> dict | None:
        node = leaves.get(name)
        if node is None:
            if name not in objects:
                return None  # unmapped under dynamic: false: kept in _source, not indexed
            if not isinstance(value, dict):
                return {"type": "document_parsing_exception",
                        "reason": f"[1:2] object mapping for [{name}] tried to parse field [{name}] "
                                  "as object, but found a concrete value"}
            for k, v in value.items():
                problem = self._check_value(f"{name}.{k}", v, leaves, objects, doc_id)
                if problem is not None:
                    return problem
            return None
        kind = node.get("type")
        if kind in ("keyword", "text") and type(value) is str:
            return None  # the common case first
        if kind in ("long", "date") and type(value) is int:
            return None
        preview = str(value)[:40]

        def parse_error(cause: str) -> dict:
            return {"type": "document_parsing_exception",
                    "reason": f"[1:2] failed to parse field [{name}] of type [{kind}] in document "
                              f"with id '{doc_id}'. Preview of field's value: '{preview}'",
                    "caused_by": {"type": "illegal_argument_exception", "reason": cause}}

        if kind == "long":
            ok = (isinstance(value, float)) or (
                isinstance(value, str) and value.strip().lstrip("-").isdigit())
            return None if ok else parse_error(f'For input string: "{preview}"')
        if kind == "date":
            return None if isinstance(value, str) else parse_error(f"failed to parse date field [{preview}]")
        if kind in ("keyword", "text"):
            scalars = value if isinstance(value, list) else [value]
            ok = all(not isinstance(v, (dict, list)) for v in scalars)
            return None if ok else parse_error("Can't get text on a START_OBJECT")
        if kind in ("flattened", "flat_object"):
            if not isinstance(value, dict):
                return parse_error(f"[{kind}] field [{name}] expects an object")
            limit = node.get("depth_limit", 20)
            if _depth(value) > limit:
                return {"type": "document_parsing_exception",
                        "reason": f"[1:2] failed to parse field [{name}] of type [{kind}] in document "
                                  f"with id '{doc_id}'.",
                        "caused_by": {"type": "illegal_argument_exception",
                                      "reason": f"the provided [{kind}] field [{name}] exceeds the "
                                                f"maximum depth limit of [{limit}]."}}
        return None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_depth(v) for v in value), default=0)
    return 0


async def _main(port: int, flavor: str) -> None:
    fake = await FakeElasticsearch(flavor=flavor).start(port)
    print(f"fake {flavor} on {fake.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # python -m tests.logs.sinks.fake_es [port] [flavor]
    import sys

    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                      sys.argv[2] if len(sys.argv) > 2 else "elasticsearch"))
