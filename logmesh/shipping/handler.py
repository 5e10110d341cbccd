"""``logmesh.LogHandler``: any Python program's ``logging`` records to the logs service.

It runs a :class:`~logmesh.shipping.shipper.Shipper` on an event loop in a daemon
thread, so a plain synchronous script ships through the same acknowledged,
spooling path as the mesh's services. ``emit`` only hands the record over.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from pathlib import Path
from typing import Any

from .shipper import Shipper
from .spool import Spool

# Attributes every LogRecord has; anything else a caller passed in ``extra=`` is a label.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                          "taskName"}


class LogHandler(logging.Handler):
    """Ship log records to the logs service at ``host:port`` (its TCP port, 9040)."""

    def __init__(self, service: str, host: str = "127.0.0.1", port: int = 9040, *,
                 spool_dir: str | Path | None = None, spool_max: int = 1024**3,
                 level: int = logging.NOTSET, token: str | None = None, ssl: Any = None,
                 node: tuple[str, int] | None = None) -> None:
        """``token``: the logs service's write token; ``ssl``: an ``SSLContext`` that verifies
        the service (``logmesh.security.client_context(cafile)``), or True for the system's CAs;
        ``node``: the ``(host, port)`` this program registered with the distributor, if it did
        (the logs service then shows its records and health under that node; without one it
        is listed as ``unregistered``). Like every shipper it sends a heartbeat when it has
        been quiet for a few seconds, so a quiet program is not taken for a dead one."""
        super().__init__(level)
        spool = Spool(Path(spool_dir), spool_max) if spool_dir is not None else None
        self.shipper = Shipper(service, logs_addr=(host, port), spool=spool, token=token, ssl=ssl,
                               node=node)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="logmesh-shipper")
        self._thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._start, ready)  # Shipper.start needs the loop running
        self._loop.run_forever()

    def _start(self, ready: threading.Event) -> None:
        try:
            self.shipper.start()
        finally:
            ready.set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            extra: dict[str, Any] = {"log.level": record.levelname.lower(), "log.logger": record.name}
            if record.exc_info:
                extra["error.stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
            elif record.stack_info:
                extra["error.stack_trace"] = record.stack_info
            for name, value in vars(record).items():
                if name not in _STANDARD:
                    extra[name] = value if isinstance(value, (str, int, float, bool, type(None))) \
                        else repr(value)
            self._loop.call_soon_threadsafe(self.shipper.ship_record, record.getMessage(), extra)
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout``) until every record so far is acknowledged."""
        if self._loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(self._drained(timeout), self._loop)
        try:
            fut.result(timeout + 1)
        except Exception:
            pass

    async def _drained(self, timeout: float) -> None:
        deadline = self._loop.time() + timeout
        while (self.shipper.queue or self.shipper.inflight) and self._loop.time() < deadline:
            if self.shipper._wake is not None:
                self.shipper._wake.set()
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if not self._loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self.shipper.close(), self._loop)
            try:
                fut.result(10)
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
        super().close()
