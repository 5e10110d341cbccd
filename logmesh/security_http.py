"""The HTTP side of :mod:`logmesh.security`: a connection-capped site, bearer tokens,
JSON errors that never leak internals. Kept apart so clients (the shipper, the
``logging`` handler) do not import aiohttp's server.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .security import DEFAULT_HTTP_IDLE_TIMEOUT, Access, Limits, Refused, bearer_token

BODY_TIMEOUT = 60.0  # seconds a request body may take to arrive (slow bodies get 408)

# -- HTTP -------------------------------------------------------------------------


class GuardedSite(web.TCPSite):
    """A ``TCPSite`` that closes connections past ``max_connections`` (aiohttp has no cap)
    and bounds the TLS handshake by the header timeout."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.limits = limits or Limits()
        self.refused = 0

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        limit = self.limits.max_connections

        def factory() -> asyncio.BaseProtocol:
            if len(server._connections) >= limit:
                self.refused += 1
                return Refused()
            return server()

        self._server = await loop.create_server(
            factory, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self.limits.header_timeout if self._ssl_context else None)
        self._bound_port = self._server.sockets[0].getsockname()[1]

    @property
    def bound_port(self) -> int:
        return self.port


def runner_kwargs(limits: Limits) -> dict:
    """aiohttp's request handler options from our limits: its keep-alive timer also
    closes a connection whose request head does not arrive in time (slowloris)."""
    return {"keepalive_timeout": min(limits.header_timeout, DEFAULT_HTTP_IDLE_TIMEOUT),
            "max_line_size": 8190, "max_field_size": 8190, "max_headers": 128}


def json_error(message: str, status: int = 400, **extra: Any) -> web.Response:
    """The one error shape of the HTTP API: ``{"ok": false, "error", "status"}``."""
    return web.json_response({"ok": False, "error": message, "status": status, **extra},
                             status=status)


def error_middleware(logger: logging.Logger) -> Any:
    """Errors as JSON; unexpected exceptions become a 500 that says nothing of the internals
    (the traceback goes to ``logger`` under an id the client is given)."""

    @web.middleware
    async def errors(request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.content_type == "application/json":
                return _as_response(exc)
            text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
            resp = json_error(text, exc.status)
            for name in ("Allow", "WWW-Authenticate", "Retry-After"):
                if name in exc.headers:
                    resp.headers[name] = exc.headers[name]
            return resp
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            error_id = os.urandom(6).hex()
            logger.exception("HTTP %s %s failed (error id %s)", request.method, request.path,
                             error_id)
            return json_error(f"internal error (id {error_id}); the details are in the service's "
                              "log", 500)
        return resp

    return errors


def _as_response(exc: web.HTTPException) -> web.Response:
    return web.Response(status=exc.status, body=exc.body, headers=exc.headers)


def bearer_middleware(access: Access, *, open_paths: Callable[[str], bool]) -> Any:
    """``Authorization: Bearer``: reads need a read token, anything else a write token."""

    @web.middleware
    async def bearer(request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.method == "OPTIONS" or open_paths(request.path):
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization"))
        reading = request.method in ("GET", "HEAD")
        if (access.may_read if reading else access.may_write)(token):
            return await handler(request)
        side = "read" if reading else "write"
        if token is not None and (access.may_write if reading else access.may_read)(token):
            return json_error(f"this token may not {side}; use a {side} token "
                              f"(--{side}-token or --token)", 403)
        why = "no token was sent" if token is None else "the token is wrong"
        resp = json_error(f"authentication required ({why}): send 'Authorization: Bearer "
                          f"<token>' with a {side} token (--token or --{side}-token)", 401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="logmesh"'
        return resp

    return bearer
