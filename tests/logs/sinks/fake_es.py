"""An in-process HTTP server that behaves like Elasticsearch where the sink depends on it.

No Elasticsearch can be installed where these tests run, so this stands in,
on 127.0.0.1 and a free port, answering what the official client libraries
send, in the shapes Elasticsearch 8 answers with:

* ``GET /`` with ``X-Elastic-Product: Elasticsearch`` (or, as OpenSearch,
  ``version.distribution: opensearch`` and no product header);
* ``PUT /_index_template/<name>``, ``PUT /_data_stream/<name>``, ``PUT /<index>``;
* ``POST /_bulk`` and ``/<index>/_bulk``, as strict as Elasticsearch about
  the request: a supported Content-Type, a gzip body when it says
  ``Content-Encoding: gzip``, NDJSON ending in a newline, one-key action lines
  with known parameters, an index, a non-empty ``_id`` of at most 512 bytes, a
  document after each action but ``delete`` (anything else: the whole request
  400, as ES answers it); per-item results, checking each document against the
  installed template's mapping (a ``long`` that is not a number, a
  ``flattened`` that is not an object or is too deep, a missing
  ``@timestamp`` in a data stream, a document that is not JSON are 400
  ``document_parsing_exception``), only ``create`` into a data stream,
  ``create`` of an existing ``_id`` is 409; ``filter_path``; and, by chance
  (seeded), items rejected with 429, whole requests answered 503, and
  connections dropped before or after the documents were stored.

Everything it got is kept for assertions: documents by ``_id``, how many
``create``s succeeded per ``_id``, and the headers of every request.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from aiohttp import web

from tests.logs.sinks.fake_bulk import (
    CONTENT_TYPES,
    REJECTED,
    SHARDS,
    BulkFormatError,
    Creates,
    Docs,
    Op,
    bulk_ops,
    cut,
    doc_type,
    filter_path,
    item_fields,
    look_closer,
    one_conflict,
)

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
    # The answers of the first N bulks that store documents are lost as drop_after's are: a
    # resend (409s) that does not hang on the chances, which a busy machine's few large bulks
    # may never draw.
    drop_first_answers: int = 0


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
                 basic_auth: tuple[str, str] | None = None, ssl_context: Any = None,
                 accept_gzip: bool = True) -> None:
        self.flavor = flavor
        self.accept_gzip = accept_gzip  # False: a gzipped body is read as it is (and refused)
        self.gzipped_bulks = 0
        self.basic_auth = basic_auth  # when set, requests need this user and password
        self.ssl_context = ssl_context  # serve https
        self.random = random.Random(seed)
        self.faults = faults or Faults()
        self.api_key = api_key  # when set, requests without it get 401
        self.templates: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}  # ILM, by name
        self.data_streams: dict[str, dict] = {}
        self.indices: set[str] = set()
        self.docs = Docs()  # _id -> _source
        self.created: Counter[str] = Counter()  # _id -> successful creates (must stay 1)
        self.conflicts = 0
        self.forced_drops = 0  # answers lost by Faults.drop_first_answers
        self.index_ops = 0  # `index` ops (would overwrite/duplicate): the sink must send none
        self.requests: list[Seen] = []
        self.bulk_requests = 0
        self.bulk_started = asyncio.Event()  # set when a bulk arrives (before answering)
        self.delays: dict[int, float] = {}  # bulk number (1, 2, ...) -> seconds its answer waits
        self.in_flight = self.max_in_flight = 0  # bulks being answered now, and at most
        self.hold: asyncio.Event | None = None  # when set, bulks wait for it after storing
        self.hang = False  # accept requests and never answer
        self._stopping = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._seq_no = 0
        self._field_cache: dict[int, tuple[dict[str, dict], set[str]]] = {}
        self._template_cache: dict[str, dict | None] = {}
        self._decoders: dict[tuple[int, bool], tuple[Any, Any]] = {}

    # -- running -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{HOST}:{self.port}"

    async def start(self, port: int | None = None) -> FakeElasticsearch:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # auto_decompress off: this fake reads Content-Encoding itself, to count and to refuse it
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False)
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
            return await self._bulk(request, body, parts[0] if len(parts) == 2 else None, seen)
        if parts[0] == "_index_template" and len(parts) == 2:
            if method == "PUT" or method == "POST":
                self.templates[parts[1]] = orjson.loads(body)
                self._template_cache.clear()
                self._decoders.clear()
                return self._json(request, {"acknowledged": True})
            if method == "GET" and parts[1] in self.templates:
                return self._json(request, {"index_templates": [
                    {"name": parts[1], "index_template": self.templates[parts[1]]}]})
        if parts[:2] == ["_ilm", "policy"] and len(parts) == 3 and method == "PUT":
            if self.flavor != "elasticsearch":
                return self._json(request, _error("invalid_index_name_exception",
                                                  "Invalid index name [_ilm], must not start with '_'.",
                                                  400), 400)
            policy = orjson.loads(body).get("policy")
            if not isinstance(policy, dict) or not isinstance(policy.get("phases"), dict):
                return self._json(request, _error("x_content_parse_exception",
                                                  "[1:2] [put_lifecycle_request] failed to parse", 400), 400)
            self.policies[parts[2]] = policy
            return self._json(request, {"acknowledged": True})
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
                "conflicts": self.conflicts, "index_ops": self.index_ops, "bulks": self.bulk_requests,
                "gzipped_bulks": self.gzipped_bulks,
                "id_sum": sum(map(int, filter(str.isdigit, self.docs)))}  # with docs: which ones

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

    async def _bulk(self, request: web.Request, body: bytes, path_index: str | None,
                    seen: Seen) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._bulk_answer(request, body, path_index, seen)
        finally:
            self.in_flight -= 1

    async def _bulk_answer(self, request: web.Request, body: bytes, path_index: str | None,
                           seen: Seen) -> web.StreamResponse:
        self.bulk_requests += 1
        number = self.bulk_requests
        self.bulk_started.set()
        f, rnd = self.faults, self.random
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
        content_type = request.headers.get("Content-Type", "").partition(";")[0].strip()
        if content_type not in CONTENT_TYPES:
            return self._json(request, {"error": f"Content-Type header [{content_type}] is not "
                                                 "supported", "status": 406}, 406)
        if request.headers.get("Content-Encoding", "").lower() == "gzip" and self.accept_gzip:
            try:
                body = zlib.decompress(body, 47)  # gzip or zlib, as Netty's decompressor takes
            except zlib.error as exc:
                return self._json(request, _error("illegal_argument_exception", f"bad gzip body: {exc}",
                                                  400), 400)
            self.gzipped_bulks += 1
        if self.bulk_requests <= 5:
            seen.body = body  # as read, after gzip
        if f.max_content_length and len(body) > f.max_content_length:  # as ES: decompressed bytes
            return web.Response(status=413, headers=self._headers(request))
        try:
            ops = bulk_ops(body, path_index)
        except BulkFormatError as exc:
            return self._json(request, _error(exc.kind, str(exc), 400), 400)
        if ops and rnd.random() < f.short_answer:
            ops.pop()  # a broken proxy or server: no item for the last document
        spec = request.query.get("filter_path")
        stored_before = len(self.docs)
        items = self._items(ops, item_fields(spec))
        if rnd.random() < f.drop_after:
            return await self._drop(request)
        if self.forced_drops < f.drop_first_answers and len(self.docs) > stored_before:
            self.forced_drops += 1
            return await self._drop(request)
        delay = f.bulk_delay + self.delays.get(number, 0.0)
        if delay:  # cut short by stop(), so a test's cleanup does not wait for it
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
        if self.hold is not None:
            await self.hold.wait()
        errors = any("error" in next(iter(it.values())) for it in items)
        answer = {"errors": errors, "took": int((time.perf_counter() - t0) * 1000), "items": items}
        return self._json(request, filter_path(answer, spec))

    def _items(self, ops: list[Op] | Creates, fields: set[str] | None) -> list[dict[str, Any]]:
        """Each op's result, in order, as Elasticsearch answers them (only ``fields`` of each).

        The documents are checked against the mapping by a msgspec type made from
        the template (a C pass over all of them: this fake must keep up with the
        sink in the benchmark); only when that refuses some, or the ops are not all
        plain ``create``s, does each go through :meth:`_one`, the exact per-document rules.
        """
        if not len(ops):
            return []
        if isinstance(ops, Creates):
            stream = self.data_streams.get(ops.index)
            decode, kind = self._fast_types(ops.index, stream is not None)
            if decode is not None:
                try:
                    docs = decode(b"\n".join(ops.sources))
                except (msgspec.ValidationError, msgspec.DecodeError):
                    docs = None
                if docs is not None and len(docs) == len(ops) and not look_closer(docs, kind):
                    return self._create_all(ops, self._backing(ops.index, stream), fields)
            ops = ops.ops()
        return [{op.op: cut(self._one(op.op, op.meta, op.source, op.index, n), fields)}
                for n, op in enumerate(ops)]

    def _create_all(self, ops: Creates, backing: str, fields: set[str] | None) -> list[dict[str, Any]]:
        """``create`` of documents already known to fit the mapping."""
        items = []
        item_429 = self.faults.item_429
        docs = self.docs
        short = fields is not None and {"_id", "status"} <= fields <= {"_id", "status", "error"}
        fresh: list[str] = []
        for doc_id, source in zip(ops.ids, ops.sources, strict=True):
            if item_429 and self.random.random() < item_429:
                items.append({"create": cut({"_index": backing, "_id": doc_id, **REJECTED}, fields)})
            elif doc_id in docs:
                self.conflicts += 1
                items.append({"create": cut({"_index": backing, "_id": doc_id,
                                              **one_conflict(doc_id, backing)}, fields)})
            else:
                docs[doc_id] = source
                fresh.append(doc_id)
                if short:  # what the sink asks for: _id and status
                    items.append({"create": {"_id": doc_id, "status": 201}})
                else:
                    self._seq_no += 1
                    items.append({"create": cut({
                        "_index": backing, "_id": doc_id, "_version": 1, "result": "created",
                        "_shards": SHARDS, "_seq_no": self._seq_no, "_primary_term": 1,
                        "status": 201}, fields)})
        self.created.update(fresh)  # one C call, not a Counter lookup per document
        return items

    def _backing(self, index: str, stream: dict | None) -> str:
        if stream is None:
            return index
        return f".ds-{index}-{time.strftime('%Y.%m.%d')}-{stream['generation']:06d}"

    def _fast_types(self, index: str, data_stream: bool) -> tuple[Any, Any]:
        """A msgspec decoder of the documents this index's mapping takes as they are, and its
        type; (None, None) without a template."""
        if index not in self._template_cache:
            self._template_cache[index] = self._template_for(index)
        template = self._template_cache[index]
        if template is None:
            return None, None
        key = (id(template), data_stream)
        if key not in self._decoders:
            kind = doc_type(*self._fields(template), data_stream)
            self._decoders[key] = (msgspec.json.Decoder(kind).decode_lines, kind)
        return self._decoders[key]

    def _one(self, op: str, meta: dict, source_line: bytes | None, index: str, n: int) -> dict[str, Any]:
        doc_id = meta.get("_id")
        doc_id = str(doc_id) if doc_id is not None else f"auto-{self._seq_no + 1}-{n}"
        stream = self.data_streams.get(index)
        backing = self._backing(index, stream)
        base = {"_index": backing, "_id": doc_id}
        if self.random.random() < self.faults.item_429:
            return {**base, **REJECTED}
        if op != "create":
            self.index_ops += 1
            if stream is not None:
                return {**base, "status": 400, "error": {
                    "type": "illegal_argument_exception",
                    "reason": "only write ops with an op_type of create are allowed in data streams"}}
        if op == "delete":
            found = self.docs.pop(doc_id, None) is not None
            return {**base, "result": "deleted" if found else "not_found", "status": 200 if found else 404}
        try:
            source = orjson.loads(source_line or b"")
            if not isinstance(source, dict):
                raise orjson.JSONDecodeError("not an object", "", 0)
        except orjson.JSONDecodeError as exc:
            return {**base, "status": 400, "error": {
                "type": "document_parsing_exception",
                "reason": f"[1:1] failed to parse: {exc}"}}
        if index not in self._template_cache:
            self._template_cache[index] = self._template_for(index)
        template = self._template_cache[index]
        problem = self._check(source, template, doc_id, stream is not None)
        if problem is not None:
            return {**base, "status": 400, "error": problem}
        if op == "create" and doc_id in self.docs:
            self.conflicts += 1
            return {**base, **one_conflict(doc_id, backing)}
        self.docs[doc_id] = source_line or b"{}"
        self.created[doc_id] += 1
        self._seq_no += 1
        return {**base, "_version": 1, "result": "created", "_shards": SHARDS,
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


async def _main(port: int, flavor: str, faults: Faults) -> None:
    fake = await FakeElasticsearch(flavor=flavor, faults=faults).start(port)
    print(f"fake {flavor} on {fake.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # python -m tests.logs.sinks.fake_es [port] [flavor] [faults as JSON]
    import sys

    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                      sys.argv[2] if len(sys.argv) > 2 else "elasticsearch",
                      Faults(**orjson.loads(sys.argv[3])) if len(sys.argv) > 3 else Faults()))
