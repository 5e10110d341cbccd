"""The two client libraries behind one small interface; imported only when a sink starts.

Everything on the wire is the libraries' own: ``AsyncElasticsearch`` (8.x:
it talks to Elasticsearch 8 and 9) and its ``bulk`` API, or, when that
client refuses the server because it is OpenSearch, ``AsyncOpenSearch``'s
transport. This module only turns their answers and exceptions into plain
values for retry.py:

* :meth:`Backend.bulk` takes a ready ``_bulk`` body (bytes: encode.py builds
  it from the stored lines, gzipped when the cluster takes that) and returns
  the answer's ``errors`` flag and its items (``{"_id", "status", "error"?}``)
  in the order of the actions, as Elasticsearch answers. ``filter_path``
  keeps the answer to those fields: a few bytes per document to read back
  instead of ~200;
* a request that failed as a whole raises :class:`RequestFailed` with the
  HTTP status (0 when no answer arrived: refused, reset, timed out) and body.

Neither library's bulk helper is used: it serializes every action again in
Python, which was most of the sink's CPU (bench/notes/es_sink.md).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import msgspec
import orjson

from .config import ElasticsearchConfig

log = logging.getLogger("logmesh.sinks.elasticsearch")

INSTALL_HINT = ("the Elasticsearch sink needs the client libraries; install them with: "
                "pip install 'logmesh[elasticsearch]' (in a checkout: "
                ".venv/bin/pip install -e '.[elasticsearch]')")
BULK_FILTER = "errors,items.*._id,items.*.status,items.*.error"  # what the sink reads of an answer


class RequestFailed(Exception):
    """A whole request failed: ``status`` is its HTTP status, or 0 for no answer."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(f"{status or 'no answer'}: {str(body)[:300]}")
        self.status, self.body = status, body


class NotElasticsearch(Exception):
    """The elasticsearch client refused the server (no ``X-Elastic-Product`` header)."""

    def __init__(self, body: Any) -> None:
        super().__init__("the server is not Elasticsearch")
        self.body = body


def check_installed() -> None:
    """Raise ValueError with the install command when the extra is missing (no import)."""
    import importlib.util

    for mod in ("elasticsearch", "elastic_transport"):
        if importlib.util.find_spec(mod) is None:
            raise ValueError(INSTALL_HINT)


def is_opensearch(info: Any) -> bool:
    version = info.get("version") if isinstance(info, dict) else None
    return isinstance(version, dict) and version.get("distribution") == "opensearch"


# The libraries' own loggers, and the level below which their lines are dropped: each request
# is logged at INFO (one line per bulk would flood the service's log), and the pool of nodes
# logs a failed node on every retry at WARNING ("Node <AiohttpHttpNode(...)> has failed for 3
# times in a row, putting on 4 second timeout", "Resurrected node"), with neither the cause
# nor anything the sink's own warning (the URL, the cause, at most once per 30 s) leaves out.
_LIBRARY_LOGS = {"elastic_transport.transport": logging.WARNING,
                 "elastic_transport.node_pool": logging.ERROR,
                 "opensearch": logging.ERROR}


def quiet_library_logs() -> None:
    """The clients' own log lines off (:data:`_LIBRARY_LOGS`), unless a level was set for them."""
    for name, level in _LIBRARY_LOGS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def transport_cause(exc: Exception) -> str:
    """What went wrong on the way, in a line: elastic_transport's ``str()`` of a refused
    connection is "Connection error", the cause ("Cannot connect to host 127.0.0.1:9 ssl:default
    [Connect call failed ...]") is in its ``message``."""
    message = getattr(exc, "message", None)
    cause = str(message) if message else str(exc)
    return f"{type(exc).__name__}: {cause}"


class _Result(msgspec.Struct, gc=False):
    id: Any = msgspec.field(default=None, name="_id")
    status: Any = None
    error: Any = None

    def as_dict(self) -> dict[str, Any]:
        item = {"_id": self.id, "status": self.status}
        if self.error is not None:
            item["error"] = self.error
        return item


class _Item(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """``{"create": {...}}``: the op the action named (the sink sends only create)."""

    create: _Result | None = None
    index: _Result | None = None
    update: _Result | None = None
    delete: _Result | None = None


class _Answer(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    errors: bool
    items: list[_Item]
    took: Any = None


class _Accepted(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """An answer without errors: its items kept as bytes until someone asks for one."""

    errors: bool
    items: msgspec.Raw
    took: Any = None


_decode_answer = msgspec.json.Decoder(_Answer).decode
_decode_accepted = msgspec.json.Decoder(_Accepted).decode
_decode_items = msgspec.json.Decoder(list[_Item]).decode


def loads_answer(data: bytes) -> Any:
    """A JSON answer; a ``_bulk`` one (it starts with ``errors`` under filter_path) as
    structs the garbage collector does not track. As dicts, the 10,000 of a 5000-item
    answer, alive while the collector ran, were promoted to its oldest generation: a full
    collection every few bulks, 30-50 ms of the event loop each (bench/notes/es_sink.md).
    Without errors, the items stay bytes: BulkAnswer.accepted checks them with bytes
    operations, ~4x cheaper than reading 5000 items."""
    if data[:10] == b'{"errors":':
        try:
            return _decode_accepted(data) if data[10:16] == b"false," else _decode_answer(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # not the shape filter_path gives: read it as any answer
    return orjson.loads(data)


class BulkAnswer:
    """A ``_bulk`` answer: whether any item failed, how many items, and each on demand
    (``{"_id", "status", ...}``): an answer without errors is not looked at item by item."""

    __slots__ = ("errors", "_items", "_raw")

    def __init__(self, body: Any) -> None:
        self._raw: bytes | None = None
        if isinstance(body, _Accepted):
            self.errors, self._raw, self._items = body.errors, bytes(body.items), None
            return
        if isinstance(body, _Answer):
            self.errors, self._items = body.errors, body.items
            return
        items = body.get("items", []) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RequestFailed(200, f"unreadable bulk answer: {str(body)[:200]}")
        self.errors = body.get("errors") is not False
        self._items = items

    def _read(self) -> list[Any]:
        if self._items is None:
            self._items = _decode_items(self._raw)
        return self._items

    def accepted(self, n: int, first_id: str, last_id: str) -> bool:
        """No errors, ``n`` items, the first and last ours: the common answer, whole.
        On the bytes of the items when they are still bytes: each item has one ``_id`` key
        (filter_path keeps ``_id``, ``status`` and ``error``, and a string holds no
        unescaped quote), the first item's ends at the first ``}``, the last's starts at
        the last ``{``; anything else reads the items and answers from them."""
        if self.errors:
            return False
        raw = self._raw
        if raw is not None:
            head, tail = raw[:raw.find(b"}") + 1], raw[raw.rfind(b"{"):]
            if raw.count(b'"_id":') == n and b'"_id":"%s"' % first_id.encode() in head \
                    and b'"_id":"%s"' % last_id.encode() in tail:
                return True
        return len(self) == n and self.item(0).get("_id") == first_id and self.item(-1).get("_id") == last_id

    def __len__(self) -> int:
        return len(self._read())

    def item(self, i: int) -> dict[str, Any]:
        """``{"create": {...}}`` -> ``{...}``."""
        it = self._read()[i]
        if isinstance(it, _Item):
            result = it.create or it.index or it.update or it.delete
            return result.as_dict() if result is not None else {}
        return next(iter(it.values())) if isinstance(it, dict) and it else {}

    @property
    def items(self) -> list[dict[str, Any]]:
        return [self.item(i) for i in range(len(self))]


class _Backend:
    """What both clients do alike; each subclass maps its library's errors in ``_call``."""

    client: Any

    async def _call(self, coro: Any) -> Any:
        raise NotImplementedError

    async def put_policy(self, name: str, body: dict[str, Any]) -> None:
        """An ILM policy (Elasticsearch only)."""
        await self._call(self.client.ilm.put_lifecycle(name=name, policy=body["policy"]))

    async def put_template(self, name: str, body: dict[str, Any]) -> None:
        await self._call(self.client.indices.put_index_template(name=name, body=body))

    async def create_target(self, name: str, data_stream: bool) -> None:
        try:
            if data_stream:
                await self._call(self.client.indices.create_data_stream(name=name))
            else:
                await self._call(self.client.indices.create(index=name))
        except RequestFailed as exc:
            if not _already_exists(exc):
                raise

    async def close(self) -> None:
        await self.client.close()


class ElasticsearchBackend(_Backend):
    flavor = "elasticsearch"

    def __init__(self, config: ElasticsearchConfig) -> None:
        try:
            from elasticsearch import AsyncElasticsearch
        except ImportError:
            raise ValueError(INSTALL_HINT) from None
        options: dict[str, Any] = {
            "request_timeout": config.request_timeout,
            # Retrying is the sink's job (retry.py): it counts, backs off with jitter, never gives up.
            "max_retries": 0, "retry_on_timeout": False, "retry_on_status": (),
        }
        try:
            from elasticsearch.serializer import OrjsonSerializer

            options["serializers"] = {"application/json": _answers(OrjsonSerializer),
                                      "application/x-ndjson": _body_as_is()}
        except ImportError:
            options["serializers"] = {"application/x-ndjson": _body_as_is()}
        if config.api_key:
            options["api_key"] = config.api_key
        elif config.username:
            options["basic_auth"] = (config.username, config.password or "")
        if config.ca_file is not None:
            options["ca_certs"] = str(config.ca_file)
        if not config.verify_certs:
            options["verify_certs"] = False
        options.update(config.extra_client_options)
        self.config = config
        quiet_library_logs()
        self.client = AsyncElasticsearch(config.urls, **options)
        self._gzip_client = self.client.options(headers={"content-encoding": "gzip"})

    async def _call(self, coro: Any) -> Any:
        from elastic_transport import TransportError
        from elasticsearch import ApiError, UnsupportedProductError

        try:
            with warnings.catch_warnings():  # deprecation headers: logged by the client already
                warnings.simplefilter("ignore")
                return await coro
        except UnsupportedProductError as exc:
            raise NotElasticsearch(exc.body) from None
        except ApiError as exc:
            raise RequestFailed(exc.meta.status, exc.body) from None
        except TransportError as exc:  # refused, reset, timed out, TLS, unreadable answer
            raise RequestFailed(0, transport_cause(exc)) from None

    async def info(self) -> dict[str, Any]:
        return (await self._call(self.client.info())).body

    async def bulk(self, target: str, body: bytes, gzipped: bool = False) -> BulkAnswer:
        client = self._gzip_client if gzipped else self.client
        answer = await self._call(client.bulk(operations=body, index=target,  # type: ignore[arg-type]
                                              filter_path=BULK_FILTER))
        return BulkAnswer(answer.body)


class OpenSearchBackend(_Backend):
    flavor = "opensearch"

    def __init__(self, config: ElasticsearchConfig) -> None:
        try:
            from opensearchpy import AsyncOpenSearch
        except ImportError:
            raise ValueError(INSTALL_HINT) from None
        if config.api_key:
            raise ValueError("the server is OpenSearch, which takes --es-user/--es-password, "
                             "not --es-api-key")
        options: dict[str, Any] = {"timeout": config.request_timeout, "max_retries": 0,
                                   "retry_on_timeout": False}
        if config.username:
            options["http_auth"] = (config.username, config.password or "")
        if config.ca_file is not None:
            options["ca_certs"] = str(config.ca_file)
        if not config.verify_certs:
            options["verify_certs"] = False
            options["ssl_show_warn"] = False
        self.config = config
        quiet_library_logs()
        self.client = AsyncOpenSearch(config.urls, **options)

    async def _call(self, coro: Any) -> Any:
        from opensearchpy.exceptions import SerializationError, TransportError

        try:
            return await coro
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            raise RequestFailed(status, exc.info if status else f"{type(exc).__name__}: {exc}") from None
        except SerializationError as exc:
            raise RequestFailed(200, f"unreadable answer: {exc}") from None

    async def info(self) -> dict[str, Any]:
        return await self._call(self.client.info())

    async def bulk(self, target: str, body: bytes, gzipped: bool = False) -> BulkAnswer:
        # The transport, not client.bulk: that one appends a newline to a body not ending in one,
        # which would damage a gzipped body; its serializer passes bytes through.
        headers = {"content-type": "application/x-ndjson"}
        if gzipped:
            headers["content-encoding"] = "gzip"
        answer = await self._call(self.client.transport.perform_request(
            "POST", f"/{target}/_bulk", params={"filter_path": BULK_FILTER}, body=body,
            headers=headers))
        return BulkAnswer(answer)


def _answers(base: Any) -> Any:
    """The client's JSON serializer (orjson: a dependency anyway), reading answers with
    :func:`loads_answer`."""

    class Answers(base):  # type: ignore[misc, valid-type]
        def loads(self, data: bytes) -> Any:
            try:
                return loads_answer(data)
            except orjson.JSONDecodeError:
                return super().loads(data)  # the library's own error for an unreadable answer

    return Answers()


def _body_as_is() -> Any:
    """A serializer that sends a ready ``_bulk`` body (bytes) as it is: no copy, and no
    newline added to a gzipped one (the library's NDJSON serializer would)."""
    from elasticsearch.serializer import NdjsonSerializer

    class BodyAsIs(NdjsonSerializer):
        def dumps(self, data: Any) -> bytes:
            return data if isinstance(data, bytes) else super().dumps(data)

    return BodyAsIs()


def _already_exists(exc: RequestFailed) -> bool:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    kind = error.get("type", "") if isinstance(error, dict) else str(exc.body)
    return exc.status == 400 and "already_exists" in kind


Backend = ElasticsearchBackend | OpenSearchBackend
