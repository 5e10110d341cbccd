"""The two client libraries behind one small interface; imported only when a sink starts.

Everything on the wire is the libraries' own: ``AsyncElasticsearch`` (8.x:
it talks to Elasticsearch 8 and 9) and its ``async_streaming_bulk`` helper,
or, when that client refuses the server because it is OpenSearch,
``AsyncOpenSearch`` and *its* helper. This module only turns their answers
and exceptions into plain values for retry.py:

* :meth:`Backend.bulk` takes ``(header, document bytes)`` pairs and returns one item object per action (``{"_id",
  "status", "error"?}``), in any order;
* a request that failed as a whole raises :class:`RequestFailed` with the
  HTTP status (0 when no answer arrived: refused, reset, timed out) and body.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from .config import ElasticsearchConfig

log = logging.getLogger("logmesh.sinks.elasticsearch")

INSTALL_HINT = ("the Elasticsearch sink needs the client libraries; install them with: "
                "pip install 'logmesh[elasticsearch]'")
MAX_CHUNK_BYTES = 100 * 1024 * 1024  # http.max_content_length's default; batches stay far below


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


def quiet_library_logs() -> None:
    """The libraries log every request at INFO: one line per bulk would flood the service's log."""
    for name in ("elastic_transport.transport", "opensearch"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


Action = tuple[dict[str, Any], bytes]  # (header, document JSON), as encode.py makes them


def _as_is(action: Action) -> Action:
    """The helpers' expand_action_callback: actions come ready (the document stays bytes)."""
    return action


def _item(result: dict[str, Any]) -> dict[str, Any]:
    """``{"create": {...}}`` -> ``{...}``."""
    return next(iter(result.values()))


class _Backend:
    """What both clients do alike; each subclass maps its library's errors in ``_call``."""

    client: Any

    async def _call(self, coro: Any) -> Any:
        raise NotImplementedError

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

            options["serializer"] = OrjsonSerializer()  # orjson is a logmesh dependency anyway
        except ImportError:
            pass
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
            raise RequestFailed(0, f"{type(exc).__name__}: {exc}") from None

    async def info(self) -> dict[str, Any]:
        return (await self._call(self.client.info())).body

    async def bulk(self, actions: list[Action]) -> list[dict[str, Any]]:
        from elasticsearch.helpers import async_streaming_bulk

        async def run() -> list[dict[str, Any]]:
            return [_item(result) async for _ok, result in async_streaming_bulk(
                self.client, actions, chunk_size=len(actions), max_chunk_bytes=MAX_CHUNK_BYTES,
                expand_action_callback=_as_is, raise_on_error=False, raise_on_exception=True,
                max_retries=0, yield_ok=True)]

        return await self._call(run())



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

    async def bulk(self, actions: list[Action]) -> list[dict[str, Any]]:
        from opensearchpy.helpers import async_streaming_bulk

        text = [(header, body.decode("utf-8", "replace")) for header, body in actions]

        async def run() -> list[dict[str, Any]]:  # opensearch-py's chunker measures str, not bytes
            return [_item(result) async for _ok, result in async_streaming_bulk(
                self.client, text, chunk_size=len(actions), max_chunk_bytes=MAX_CHUNK_BYTES,
                expand_action_callback=_as_is, raise_on_error=False, raise_on_exception=True,
                max_retries=0, yield_ok=True)]

        return await self._call(run())



def _already_exists(exc: RequestFailed) -> bool:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    kind = error.get("type", "") if isinstance(error, dict) else str(exc.body)
    return exc.status == 400 and "already_exists" in kind


Backend = ElasticsearchBackend | OpenSearchBackend
