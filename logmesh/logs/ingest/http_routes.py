"""The foreign HTTP ingest protocols on the logs service's HTTP port: OTLP, Elasticsearch
(bulk, and one document at a time: es_doc.py), Loki.

Each handler reads the body (gzip or deflate undone by :func:`read_whole`, within
``--max-body-size``), hands it to its sans-I/O parser (``otlp.py``,
``es_bulk.py``, ``loki.py``), stores the good events as ``POST /api/v1/logs``
does -- one block, answered only once durable by the ``--fsync`` policy,
withdrawn if the disk refuses it, so a client's retry stores nothing twice --
and answers in the protocol's own form. Whatever is refused is counted in
``logmesh_ingest_rejected_total{protocol,reason}``. The write token is the
bearer middleware's (Bearer, or Basic/ApiKey carrying it: ``security.bearer_token``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from aiohttp import hdrs, web

from ...security_http import BODY_GRACE, BODY_MIN_RATE, BODY_TIMEOUT
from ..event import Event
from ..store.segment import LineTooLong, SegmentWriter, StoreUnavailable
from . import content_coding, es_bulk, es_doc, loki, otlp, otlp_json
from .common import now_ms
from .es_ids import BulkIds
from .line_block import LineBlock

_seq_of = attrgetter("seq")

RETRY_AFTER_SECONDS = 5
WRITE_PIECE = 256 * 1024  # a large answer goes out in pieces of this size (write_in_pieces)
PROTOBUF = "application/x-protobuf"
ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}  # the official clients check it on every 2xx


class BodyTimeout(Exception):
    pass


def _rpc_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) in protobuf, OTLP's error body."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    text = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


async def read_whole(request: web.Request) -> bytes:
    """``request.read()`` with one copy of the body where aiohttp makes three: ``readany``
    joins the pieces buffered, ``read`` extends a bytearray with them and then copies that
    into bytes, 8 MB each time for a bulk body (~3% of the server's CPU under
    bench/ingest_http.py). ``iter_chunks`` hands over the pieces as received, joined once
    here. The same limit (``client_max_size``, answered 413) and the same larger buffer.
    Its ``Content-Encoding`` is undone here, whole or refused (content_coding.py: the server
    runs aiohttp with ``auto_decompress=False``)."""
    limit = request.client_max_size
    content = request.content
    if limit:
        content.set_read_chunk_size(limit)
    chunks: list[bytes] = []
    size = 0
    # A request without a body has aiohttp's one shared EmptyStreamReader, whose iter_chunks
    # ends only the first time it is read (aiohttp issues 7616, 11397): the next bodiless
    # request spun here for ever and the whole service stopped answering.
    if request.body_exists:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # A body keeps up BODY_MIN_RATE after BODY_GRACE, or TimeoutError (the callers' 408)
        async with asyncio.timeout_at(start + BODY_GRACE) as slow:
            async for chunk, _ in content.iter_chunks():
                size += len(chunk)
                if limit and size > limit:
                    raise web.HTTPRequestEntityTooLarge(limit, size)
                chunks.append(chunk)
                slow.reschedule(start + BODY_GRACE + size / BODY_MIN_RATE)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # none: b""
    # Every Content-Encoding header, as one list: the first alone stored a gzip body sent with
    # "Content-Encoding: identity" and "Content-Encoding: gzip" unread (found from outside).
    coding = ", ".join(request.headers.getall(hdrs.CONTENT_ENCODING, ()))
    if not coding:
        return body
    try:
        return content_coding.decode(body, coding, limit)
    except content_coding.CodingError as exc:
        raise _coding_error(exc) from None


def _coding_error(exc: content_coding.CodingError) -> web.HTTPException:
    if exc.status == 413:
        return web.HTTPRequestEntityTooLarge(0, 0, text=str(exc))
    if exc.status == 415:
        return web.HTTPUnsupportedMediaType(text=str(exc))
    return web.HTTPBadRequest(text=str(exc))


class HttpSources:
    """``POST /v1/logs``, ``POST /_bulk`` (+ ``/{index}/_bulk`` and the probes), ``POST
    /loki/api/v1/push``, storing through ``writer``; ``received`` counts the events stored."""

    def __init__(self, writer: SegmentWriter, *, received: Any, metrics: Any, worker: str,
                 bulk_ids: BulkIds | None = None) -> None:
        """``bulk_ids``: the window of stored ``_id`` (es_ids.py, opened by the server); None:
        a bulk ``_id`` is kept as a label and not looked up."""
        self.writer = writer
        self.bulk_ids = bulk_ids
        self.received = received
        self.worker = worker
        self._rejected = metrics.counter(
            "logmesh_ingest_rejected_total", "Events, items or requests refused at ingest "
            "(NDJSON, OTLP, Elasticsearch bulk, Loki, the socket ports), by protocol and reason.",
            ["worker", "protocol", "reason"])
        self._children: dict[tuple[str, str], Any] = {}
        # (protocol, n): events stored, by protocol (counting.ProtocolCounters.events, set by the server)
        self.stored: Callable[[str, int], None] = lambda protocol, n: None

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/logs", self.otlp_logs)
        r.add_post("/loki/api/v1/push", self.loki_push)
        r.add_post("/_bulk", self.es_bulk)
        r.add_put("/_bulk", self.es_bulk)
        r.add_post("/{index}/_bulk", self.es_bulk)
        r.add_put("/{index}/_bulk", self.es_bulk)
        r.add_post("/{index}/_doc", self.es_doc)  # one document at a time (es_doc.py)
        for path in ("/{index}/_doc/{id}", "/{index}/_create/{id}"):
            r.add_post(path, self.es_doc)
            r.add_put(path, self.es_doc)
        r.add_get("/_license", self.es_static(es_bulk.license_body))
        r.add_get("/_xpack", self.es_static(lambda: {"features": {}, "license": es_bulk.license_body()["license"]}))
        r.add_get("/_nodes", self.es_static(es_bulk.nodes_body))
        r.add_get("/_nodes/{what:.*}", self.es_static(es_bulk.nodes_body))
        r.add_get("/_cluster/health", self.es_static(lambda: {"cluster_name": "logmesh", "status": "green"}))
        for kind in ("_index_template", "_template", "_ilm/policy", "_ingest/pipeline"):
            r.add_get(f"/{kind}/{{name}}", self.es_template)  # HEAD too: aiohttp adds it for GET
            r.add_put(f"/{kind}/{{name}}", self.es_static(lambda: {"acknowledged": True}))

    # -- shared -------------------------------------------------------------------
    def count(self, protocol: str, reasons: dict[str, int]) -> None:
        for reason, n in reasons.items():
            child = self._children.get((protocol, reason))
            if child is None:
                child = self._children[(protocol, reason)] = self._rejected.labels(
                    self.worker, protocol, reason)
            child.inc(n)

    async def read_body(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(BODY_TIMEOUT):  # a slow body must not hold the slot
                return await read_whole(request)
        except TimeoutError:
            raise BodyTimeout(f"the body took more than {BODY_TIMEOUT:.0f}s to arrive") from None

    async def store(self, protocol: str, events: Sequence[Event],
                    appended: Callable[[], None] | None = None) -> str | None:
        """Append ``events`` as one block and wait until durable; the reason it failed, or None.
        Raises LineTooLong, storing none, when one would be a line longer than the store takes.
        ``appended``: called once they have seqs, before the store can write them."""
        if not events:
            return None
        if self.writer.failure is not None:
            return self.writer.failure
        events = list(events)
        last = self.writer.append_events(events)
        if appended is not None:
            appended()
        try:  # answered once stored: a success means it is on disk
            await self.writer.durable(last, on_failure="withdraw", first=events[0].seq)
        except StoreUnavailable as exc:
            return str(exc)
        self.received.inc(len(events))
        self.stored(protocol, len(events))
        return None

    async def store_block(self, protocol: str, block: LineBlock) -> str | None:
        """:meth:`store` for a body's lines as columns (line_block.py): seqs given here."""
        if not block.count:
            return None
        if self.writer.failure is not None:
            return self.writer.failure
        seqs = self.writer.reserve(block.count)
        last = self.writer.append_encoded(block.encode(seqs), seqs[0], seqs[-1], block.count,
                                          block.min_ts, block.max_ts, block.first_ts,
                                          services=block.services())
        try:
            await self.writer.durable(last, on_failure="withdraw", first=seqs[0])
        except StoreUnavailable as exc:
            return str(exc)
        self.received.inc(block.count)
        self.stored(protocol, block.count)
        return None

    # -- OTLP ---------------------------------------------------------------------
    async def otlp_logs(self, request: web.Request) -> web.Response:
        protobuf = request.content_type != "application/json"
        ctype = PROTOBUF if protobuf else "application/json"

        def error(status: int, code: int, message: str) -> web.Response:
            body = _rpc_status(code, message) if protobuf else \
                otlp.orjson.dumps({"code": code, "message": message})
            return web.Response(status=status, body=body, content_type=ctype)

        try:
            body = await self.read_body(request)
        except BodyTimeout as exc:
            self.count("otlp", {"body_timeout": 1})
            return error(408, 4, str(exc))
        if request.content_type not in (PROTOBUF, "application/json", "application/protobuf"):
            self.count("otlp", {"bad_content_type": 1})
            return error(415, 3, f"Content-Type {request.content_type!r}: send {PROTOBUF} or "
                                 "application/json")
        try:
            parsed = (otlp.parse_protobuf if protobuf else otlp_json.parse_json)(body, now_ms())
        except otlp.BadRequest as exc:
            self.count("otlp", {exc.reason: 1})
            return error(400, 3, str(exc))  # 3: INVALID_ARGUMENT
        self.count("otlp", parsed.rejected)
        try:
            failure = await self.store_block("otlp", parsed.block)
        except LineTooLong as exc:
            self.count("otlp", {"too_large": len(exc.lines)})
            return error(413, 3, f"nothing stored: {exc}")
        if failure is not None:
            resp = error(503, 14, f"not stored, retry later: {failure}")  # 14: UNAVAILABLE
            resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return resp
        return web.Response(body=otlp.response_body(parsed, protobuf), content_type=ctype)

    # -- Elasticsearch ------------------------------------------------------------
    def es_json(self, obj: Any, status: int = 200) -> web.Response:
        return web.Response(body=es_bulk.orjson.dumps(obj), status=status,
                            content_type="application/json", headers=ES_HEADERS)

    def es_error(self, status: int, kind: str, reason: str) -> web.Response:
        """A request refused as a whole, in Elasticsearch's error shape."""
        return web.Response(body=es_bulk.error_body(status, kind, reason), status=status,
                            content_type="application/json", headers=ES_HEADERS)

    def es_static(self, make: Callable[[], Any]) -> Callable:
        async def handler(request: web.Request) -> web.Response:
            return self.es_json(make())
        handler.shipper_probe = True  # type: ignore[attr-defined]  # security_http.bearer_middleware
        return handler

    async def es_template(self, request: web.Request) -> web.Response:
        """Every template and policy "exists", so a shipper does not try to install its own."""
        name = request.match_info["name"]
        return self.es_json({"index_templates": [{"name": name, "index_template": {
            "index_patterns": [f"{name}*"], "template": {}}}], name: {}})

    es_template.shipper_probe = True  # type: ignore[attr-defined]

    async def es_bulk(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        error = self.es_error
        try:
            body = await self.read_body(request)
        except BodyTimeout as exc:
            self.count("elasticsearch", {"body_timeout": 1})
            return error(408, "timeout_exception", str(exc))
        parsed = es_bulk.parse_bulk(body, request.match_info.get("index"), now_ms())
        self.count("elasticsearch", parsed.rejected)
        if not parsed.items and parsed.uniform is None:
            self.count("elasticsearch", {"empty_body": 1})
            return error(400, "action_request_validation_exception",
                         "Validation Failed: 1: no requests added;")
        refused = await self.store_bulk(parsed)
        if refused is not None:
            return refused
        if parsed.uniform is not None and parsed.events and parsed.ids is None:  # one block: one reserve
            first, last, n = parsed.events[0].seq, parsed.events[-1].seq, len(parsed.events)
            parsed.seqs = range(first, last + 1, (last - first) // (n - 1) if n > 1 else 1)
        took = int((time.perf_counter() - t0) * 1000)
        answer = es_bulk.bulk_response(parsed, took, es_param(request, "filter_path"))
        if len(answer) <= WRITE_PIECE:
            return web.Response(body=answer, content_type="application/json", headers=ES_HEADERS)
        return await self.write_in_pieces(request, answer)

    async def store_bulk(self, parsed: es_bulk.BulkParse) -> web.Response | None:
        """Store a parsed bulk body's events (once per ``_id`` within the window, es_ids.py);
        the refusal to answer when nothing was stored, else None."""
        try:
            if parsed.ids is not None and self.bulk_ids is not None:
                failure = await self.bulk_ids.run(lambda ids: self.store_once(parsed, ids))
            else:
                failure = await self.store("elasticsearch", parsed.events)
        except LineTooLong as exc:
            self.count("elasticsearch", {"too_large": len(exc.lines)})
            return self.es_error(413, "illegal_argument_exception", f"nothing stored: {exc}")
        if failure is not None:
            resp = self.es_error(503, "unavailable_shards_exception", f"not stored, retry later: {failure}")
            resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return resp
        return None

    async def es_doc(self, request: web.Request) -> web.Response:
        """One document (es_doc.py): stored as a bulk body of one action, answered as
        Elasticsearch answers ``index()`` and ``create()``."""
        t0 = time.perf_counter()
        try:
            body = await self.read_body(request)
        except BodyTimeout as exc:
            self.count("elasticsearch", {"body_timeout": 1})
            return self.es_error(408, "timeout_exception", str(exc))
        index, doc_id = request.match_info["index"], request.match_info.get("id")
        try:
            action = es_doc.action_of("/_create/" in request.path, es_param(request, "op_type"), doc_id)
            bulk = es_doc.bulk_body(action, index, doc_id, body)
        except es_doc.BadDocRequest as exc:
            self.count("elasticsearch", {exc.counted: 1})
            return self.es_error(exc.status, exc.kind, exc.reason)
        parsed = es_bulk.parse_bulk(bulk, index, now_ms())
        self.count("elasticsearch", parsed.rejected)
        refused = await self.store_bulk(parsed)
        if refused is not None:
            return refused
        took = int((time.perf_counter() - t0) * 1000)
        status, answer = es_doc.answer(es_bulk.bulk_response(parsed, took), action)
        return web.Response(body=answer, status=status, content_type="application/json",
                            headers=ES_HEADERS)

    async def store_once(self, parsed: es_bulk.BulkParse, ids: BulkIds) -> str | None:
        """:meth:`store` for a body whose actions name ``_id``, holding ``ids``' lock: an event
        whose ``_id`` its index stored before (or earlier in this body) is not stored again,
        its item answered as Elasticsearch would (``parsed.outcome``)."""
        events = parsed.events
        outcome = parsed.outcome
        again: list[tuple[int, int]] = []  # (position, position of its first copy in this body)
        keys = ids.all_new(parsed)  # every event stored, each with its id: no check per event
        positions: list[int] | None = None  # of the events claimed, when not all of them
        fresh = events
        if keys is None:
            first: dict[tuple[str, bytes], int] = {}  # (index, id) -> position stored in this body
            for pos, action, index, doc_id in parsed.with_ids():
                status = 409 if action == "create" else 200
                seq = ids.known(index, doc_id)
                if seq is not None:
                    outcome[pos] = (status, seq)
                elif (index, doc_id) in first:
                    outcome[pos] = (status, 0)
                    again.append((pos, first[(index, doc_id)]))
                else:
                    first[(index, doc_id)] = pos
            if outcome:
                fresh = [ev for pos, ev in enumerate(events) if pos not in outcome]
                self.count("elasticsearch", {"id_stored_before": len(outcome)})
            keys, positions = list(first), list(first.values())
        seqs: list[int] = []

        def claim() -> None:  # seqs given, nothing written yet: the claim goes first
            seqs.extend(map(_seq_of, events) if positions is None else [events[pos].seq for pos in positions])
            ids.claim(keys, seqs, now_ms(), keys[0][0] if positions is None else None)  # all_new's: one index

        ok = False  # an exception: the claim withdrawn, as a refusal's
        try:
            failure = await self.store("elasticsearch", fresh, claim if keys else None)
            ok = failure is None
        finally:
            if seqs:
                await ids.stored(keys, seqs, ok)
        for pos, at in again:
            outcome[pos] = (outcome[pos][0], events[at].seq)
        return failure

    async def write_in_pieces(self, request: web.Request, answer: bytes | bytearray) -> web.StreamResponse:
        """A large answer (an item per document: ~150 bytes each, MBs per body) written a
        piece at a time, each after the last has drained. Handed to asyncio whole, it sat in
        the transport's buffer, which Python 3.11 shifts down after every partial send: that
        cost as much CPU per event as the rest of the request."""
        resp = web.StreamResponse(headers=ES_HEADERS)
        resp.content_type = "application/json"
        resp.content_length = len(answer)
        await resp.prepare(request)
        view = memoryview(answer)
        for start in range(0, len(answer), WRITE_PIECE):
            await resp.write(view[start:start + WRITE_PIECE])
        await resp.write_eof()
        return resp

    # -- Loki ---------------------------------------------------------------------
    async def loki_push(self, request: web.Request) -> web.Response:
        def error(status: int, text: str) -> web.Response:
            return web.Response(status=status, text=text + "\n")

        try:
            body = await self.read_body(request)
        except BodyTimeout as exc:
            self.count("loki", {"body_timeout": 1})
            return error(408, str(exc))
        try:
            if request.content_type == "application/json":
                parsed = loki.parse_json(body, now_ms())
            else:  # Loki's default: snappy-compressed protobuf
                parsed = loki.parse_protobuf(body, now_ms(), request.client_max_size)
        except loki.BadPush as exc:
            self.count("loki", {exc.reason: 1})
            return error(413 if exc.reason == "too_large" else 400, str(exc))
        self.count("loki", parsed.rejected)
        try:
            failure = await self.store_block("loki", parsed.block)
        except LineTooLong as exc:  # 400, as Loki answers an entry over its max_line_size
            self.count("loki", {"too_large": len(exc.lines)})
            return error(400, f"nothing stored: {exc}")
        if failure is not None:
            resp = error(503, f"not stored, retry later: {failure}")
            resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return resp
        if parsed.rejected:  # Loki's rule: the good entries are stored, the push answered 400
            refused = sum(parsed.rejected.values())
            return error(400, f"{refused} entries refused, {parsed.block.count} stored; "
                              f"first: {parsed.first_error}")
        return web.Response(status=204)


def es_param(request: web.Request, name: str) -> str | None:
    """A URL parameter as Elasticsearch reads it: a repeated one (``?op_type=index&op_type=create``)
    is its last value, silently (its RestUtils.decodeQueryString puts each into one map); the
    first, which aiohttp's ``get`` gives, would mean another request than the server's."""
    values = request.query.getall(name, ())
    return values[-1] if values else None


@web.middleware
async def es_root(request: web.Request, handler: Any) -> web.StreamResponse:
    """``GET /`` is the web UI for a browser and Elasticsearch's info for a shipper's probe
    (which asks for JSON or for anything: it never sends ``text/html``)."""
    if request.path == "/" and request.method in ("GET", "HEAD") and \
            "text/html" not in request.headers.get("Accept", ""):
        return web.Response(body=es_bulk.orjson.dumps(es_bulk.info()), content_type="application/json",
                            headers=ES_HEADERS)
    return await handler(request)
