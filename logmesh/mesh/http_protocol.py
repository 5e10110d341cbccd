"""One HTTP/1.1 connection of the gateway: httptools' parser, and the request handed to the
site's handler from the parser's callbacks, answered from the handler's callback.

Why not uvicorn's protocol any more: ASGI costs a task, a scope, a request-response cycle and
their header checks per request, ~40% of the gateway's ~40 µs of Python per request
(``bench/gateway_path.py``). The gateway needs none of it: it reads a whole (small) body and
answers once. Parsing stays httptools' (llhttp); what is ours is the little HTTP/1.1 around it,
each part tested with real sockets (tests/mesh/test_http_protocol.py):

- keep-alive, HTTP/1.0 and ``Connection: close`` (``should_keep_alive``; HTTP/1.0 is answered
  and closed, as uvicorn did);
- pipelining: each request gets a slot at its head, answers leave in the slots' order; more
  than ``MAX_PIPELINED`` unanswered pauses reading;
- HEAD: the answer's head with the length of the body it leaves out;
- ``Expect: 100-continue``: ``100 Continue`` once the request is next in line;
- flow control: reading pauses while the transport's write buffer is over its high-water mark;
- a body over the limit (declared, or as it grows) and a body that stops half-way (the site's
  sweep, ``body_since``) are handed to the handler with their ``problem`` (413, 408), answered,
  and the connection closed; a bad or oversize head is a 400 and closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

import httptools
import orjson

log = logging.getLogger("logmesh.http")

MAX_LINE_BYTES = 8190  # the request line and each header, as aiohttp's server allowed
MAX_HEADERS = 128
MAX_PIPELINED = 32  # unanswered requests of one connection before it stops being read


@dataclass(slots=True)
class HttpRequest:
    """A request whose head and body have arrived (or whose body will not: ``problem``)."""

    method: str
    path: str
    query: bytes
    headers: dict[str, str]  # lower-case names; the first of a repeated header
    body: bytes = b""
    problem: tuple[int, str] | None = None  # (413 or 408, why): the body was not read


@dataclass(slots=True)
class Response:
    """An answer: the protocol adds the status line, Date, Content-Length and Connection.
    ``headers`` are the other header lines as they go out (``b"name: value\r\n"`` each):
    the gateway renders its three with one format, not a list of pairs joined per answer."""

    status: int
    body: bytes
    headers: bytes = b""


def error_response(status: int, message: str) -> Response:
    """An answer of the protocol's own, in the gateway's (the book's) JSON error shape: every
    answer a client of the gateway reads is JSON, a malformed request's too."""
    return Response(status, orjson.dumps({"errorcode": status, "errormessage": message}),
                    b"content-type: application/json\r\n")


Respond = Callable[[Response], None]
Handler = Callable[[HttpRequest, Respond], None]

_STATUS_LINES: dict[int, bytes] = {}
# status line, Date, the response's own headers, Content-Length, Connection, body
_ANSWER = b"%s%s%scontent-length: %d\r\n%s\r\n%s"
_CLOSE = b"connection: close\r\n"
# header names as clients spell them -> the lower-case str the request's dict is keyed by: a
# lookup instead of a decode and a lower() per header
_NAMES = {spelt.encode(): spelt.lower() for name in (
    "host", "content-type", "content-length", "user-agent", "accept", "accept-encoding",
    "connection", "x-request-id", "expect", "authorization", "transfer-encoding")
    for spelt in (name, name.title(), name.upper())}


# Set in a request's headers (a name no header can have: it holds a space) when Authorization
# came twice with different values: a handler that reads it answers 400, never picks one.
AUTHORIZATION_TWICE = "authorization twice"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode())
    return line


class Site(Protocol):
    """What a connection needs of its site (http_server.HttpSite)."""

    handler: Handler
    loop: asyncio.AbstractEventLoop
    max_body: int
    stopping: bool
    date_header: bytes  # b"date: ...\r\n", or b""
    counters: Any  # security_http.HttpCounters
    log: Any  # a rate-limited logger

    def forget(self, protocol: HttpProtocol) -> None: ...


class HeadTooLarge(Exception):
    """Raised inside httptools' callbacks: answered 400, connection closed."""


class _Slot:
    """One request's place in the connection's line of answers."""

    __slots__ = ("data", "close", "head_only", "expect_continue", "protocol")

    def __init__(self, protocol: HttpProtocol, close: bool, head_only: bool,
                 expect_continue: bool) -> None:
        self.protocol = protocol
        self.data: bytes | None = None
        self.close = close
        self.head_only = head_only
        self.expect_continue = expect_continue

    def respond(self, response: Response) -> None:
        """The handler's answer; a second one, or one after the connection went, is dropped."""
        if self.data is None and not self.protocol.gone:
            self.data = self.protocol.render(response, self.close, self.head_only)
            self.protocol.flush()


class HttpProtocol(asyncio.Protocol):
    """One connection; ``site`` keeps the cap, the sweep, the Date and the handler."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.handler = site.handler
        self.loop = site.loop
        self.transport: asyncio.Transport | None = None
        self.client: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.slots: deque[_Slot] = deque()
        self.requests = 0  # request heads completed on this connection
        self.gone = False
        self.broken = False  # a 400, 408 or 413 answered or on its way: nothing more is read
        self.reading_paused = False
        self.writing_paused = False
        # When the request head now awaited began (None: none awaited), when an unfinished
        # body's head came, when the last answer left with nothing new begun (keep-alive): the
        # site's sweep closes or answers past each deadline. A sweep, not a timer per request.
        self.head_since: float | None = None
        self.body_since: float | None = None
        self.idle_since: float | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._count = 0
        self._body: list[bytes] = []
        self._size = 0
        self._slot: _Slot | None = None  # the request whose body is being read
        self._method = ""

    @property
    def idle(self) -> bool:
        """Not inside a request: none began, or every one begun was answered."""
        return not self.slots and self._slot is None

    # -- asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")
        self.head_since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.head_since = self.body_since = self.idle_since = None
        self.slots.clear()
        self.site.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # answered as plain HTTP; the rest is not ours
            self.broken = True
            if self.slots:
                self.slots[-1].close = True
            elif self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError as exc:
            if not self.broken:  # raised in a callback of ours: it says why
                cause = exc.__context__
                self._bad(str(cause) if isinstance(cause, HeadTooLarge)
                          else "Invalid HTTP request received.")

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._resume()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; answers still owed are dropped with it

    # -- httptools' callbacks --------------------------------------------------
    def on_message_begin(self) -> None:
        self.idle_since = None
        self._url = b""
        self._headers = {}
        self._count = 0
        if self.requests:  # a keep-alive connection's next request: its head has a deadline too
            self.head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE_BYTES:
            raise HeadTooLarge("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._count > MAX_HEADERS or len(name) + len(value) > MAX_LINE_BYTES:
            raise HeadTooLarge("too many or too long headers")
        key = _NAMES.get(name) or name.decode("latin-1").lower()
        headers = self._headers
        if key not in headers:  # the first of a repeated header
            headers[key] = value.decode("latin-1")
        elif key == "authorization" and headers[key] != value.decode("latin-1"):
            headers[AUTHORIZATION_TWICE] = "1"  # for a handler that reads it to refuse

    def on_headers_complete(self) -> None:
        if self.broken:  # the rest of a read after a 413: not requests of ours any more
            return
        parser = self.parser
        self.head_since = None
        self.requests += 1
        self._method = method = parser.get_method().decode("ascii")
        headers = self._headers
        # HTTP/1.0 is answered and closed: it keeps alive only with a Connection header, so
        # the version (a string built per call) is asked only then
        keep = parser.should_keep_alive() and (
            "connection" not in headers or parser.get_http_version() != "1.0")
        slot = self._slot = _Slot(self, not keep or self.site.stopping, method == "HEAD",
                                  headers.get("expect", "").lower() == "100-continue")
        self.slots.append(slot)
        self._body = []
        self._size = 0
        self.body_since = self.loop.time()
        if len(self.slots) > MAX_PIPELINED:
            self._pause()
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.site.max_body:
            self._refuse(413, f"the body is {declared} bytes; at most {self.site.max_body} are "
                              "accepted (--max-body-size)")
        elif slot.expect_continue and slot is self.slots[0]:
            self._continue(slot)

    def on_body(self, body: bytes) -> None:
        if self.broken:
            return
        self._size += len(body)
        if self._size > self.site.max_body:
            self._refuse(413, f"the body is over {self.site.max_body} bytes, the most accepted "
                              "(--max-body-size)")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.broken and self._slot is None:
            return
        self.body_since = None
        slot, self._slot = self._slot, None
        body = self._body
        self._body = []
        self._deliver(slot, None, body[0] if len(body) == 1 else b"".join(body))  # type: ignore[arg-type]

    # -- requests and answers --------------------------------------------------
    def _deliver(self, slot: _Slot, problem: tuple[int, str] | None, body: bytes = b"") -> None:
        """The request to the handler: its path decoded (and unquoted), its query raw."""
        url = self._url
        if b"?" in url or b"#" in url or not url.startswith(b"/"):
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                self.site.counters.bad_requests.inc()
                slot.close = True
                slot.respond(error_response(400, "Invalid URL"))
                return
            raw, query = parsed.path or b"/", parsed.query or b""
        else:
            raw, query = url, b""
        path = raw.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        request = HttpRequest(self._method, path, query, self._headers, body, problem)
        try:
            self.handler(request, slot.respond)
        except Exception:  # a bug of the handler's: this request's 500, the others go on
            log.exception("HTTP: the handler failed on %s %s", request.method, request.path)
            slot.respond(error_response(500, "internal error"))

    def _refuse(self, status: int, message: str) -> None:
        """A body that will not be read (too big, too slow): the handler answers it with
        ``problem`` set, then the connection closes."""
        slot, self._slot = self._slot, None
        self.broken = True
        self.body_since = None
        if slot is not None:
            slot.close = True
            self._deliver(slot, (status, message))

    def body_late(self, timeout: float) -> None:
        """The site's sweep: the body being read took more than ``timeout`` seconds."""
        self._refuse(408, f"the body took more than {timeout:.0f}s to arrive")

    def _bad(self, message: str) -> None:
        """A bad or oversize head: 400 after the answers owed, then close."""
        self.broken = True
        self.head_since = self.body_since = None
        if self._slot is not None:  # a request cut by the bad bytes: it will not be answered
            self.slots.remove(self._slot)
        self.site.counters.bad_requests.inc()
        self.site.log.warning("HTTP: %s from %s", message, self.client)
        slot = _Slot(self, True, False, False)
        self.slots.append(slot)
        self._slot = None
        slot.respond(error_response(400, message))

    def render(self, response: Response, close: bool, head_only: bool) -> bytes:
        """The answer's bytes in one format: no list of parts built and joined per answer."""
        body = response.body
        return _ANSWER % (_status_line(response.status), self.site.date_header, response.headers,
                          len(body), _CLOSE if close else b"", b"" if head_only else body)

    def flush(self) -> None:
        """Send the answers that are next in line, in one write; close after one that says so."""
        slots = self.slots
        if not slots or slots[0].data is None or self.transport is None:
            return
        out = []
        close = False
        while slots and slots[0].data is not None:
            slot = slots.popleft()
            out.append(slot.data)
            if slot.close:
                close = True
                break
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[arg-type]
        if close:
            slots.clear()
            transport.close()
            return
        if slots:
            if slots[0].expect_continue:
                self._continue(slots[0])
        elif self._slot is None and not self.broken:
            self.idle_since = self.loop.time()
        if len(slots) <= MAX_PIPELINED:
            self._resume()

    def _continue(self, slot: _Slot) -> None:
        """``100 Continue`` for the request next in line, if its body has not come yet."""
        slot.expect_continue = False
        if slot is self._slot and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _pause(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.reading_paused and not self.writing_paused and len(self.slots) <= MAX_PIPELINED \
                and self.transport is not None and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """The site stops: an idle connection closes now, a busy one after its answers."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.slots and self._slot is None:
            self.transport.close()
            return
        if self.slots:  # the requests begun are answered (a body on its way still comes)
            self.slots[-1].close = True
