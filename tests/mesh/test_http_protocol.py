"""HTTP/1.1 as the gateway's own protocol serves it (httptools' parser, our request cycle), with
real sockets: raw requests, aiohttp's client and curl."""

from __future__ import annotations

import asyncio
import shutil

import aiohttp
import orjson
import pytest

from logmesh.mesh.http_protocol import MAX_PIPELINED, Response
from logmesh.mesh.http_server import HttpSite
from tests.support.waiting import wait_until

HOST = "127.0.0.1"


class Echo:
    """Answers ``METHOD path body`` (after ``?delay=<s>`` seconds; ``?size=<n>``: n bytes);
    remembers each request and the peer it came from."""

    def __init__(self) -> None:
        self.requests: list = []

    def __call__(self, request, respond) -> None:
        self.requests.append(request)
        query = dict(part.split("=") for part in request.query.decode().split("&") if part)
        if "size" in query:
            body = b"x" * int(query["size"])
        elif request.problem is not None:
            respond(Response(request.problem[0], request.problem[1].encode()))
            return
        else:
            body = b"%s %s %s" % (request.method.encode(), request.path.encode(), request.body)
        answer = Response(200, body, b"content-type: text/plain\r\n")
        if "delay" in query:
            asyncio.get_running_loop().call_later(float(query["delay"]), respond, answer)
        else:
            respond(answer)


@pytest.fixture
def serve(http_site):
    """The site (tests/mesh/conftest.py) with this module's handler unless one is given."""
    return lambda handler=None, **options: http_site(handler or Echo(), **options)


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> tuple[bytes, dict, bytes]:
    """One answer: its status line, headers (lower-case names) and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(b":", 1) for line in lines[1:] if line)}
    length = 0 if head_only else int(headers.get(b"content-length", b"0"))
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return lines[0], headers, body


async def connect(site: HttpSite):
    return await asyncio.open_connection(HOST, site.port)


async def test_keep_alive_serves_several_requests_on_one_connection(serve):
    site = await serve()
    reader, writer = await connect(site)
    for i in range(3):
        writer.write(b"GET /n%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        status, headers, body = await read_answer(reader)
        assert status == b"HTTP/1.1 200 OK" and body == b"GET /n%d " % i
        assert b"connection" not in headers and b"date" in headers
    writer.close()


async def test_pipelined_requests_are_answered_in_their_order(serve):
    """The second and third are answered by the handler before the first: they wait for it."""
    site = await serve()
    reader, writer = await connect(site)
    writer.write(b"GET /a?delay=0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /b?delay=0.1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                 b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
    bodies = [(await read_answer(reader))[2] for _ in range(3)]
    assert bodies == [b"GET /a ", b"POST /b abc", b"GET /c "]
    writer.close()


async def test_too_many_pipelined_requests_pause_reading_until_answered(serve):
    release = asyncio.Event()
    held: list = []

    def handler(request, respond):
        held.append(respond)
        if release.is_set():
            respond(Response(200, b"ok"))

    site = await serve(handler)
    reader, writer = await connect(site)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * (MAX_PIPELINED + 1))
    await wait_until(lambda: len(held) == MAX_PIPELINED + 1)
    (protocol,) = site._protocols
    assert protocol.reading_paused
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 19)  # what a read already holds is
    await asyncio.sleep(0.1)  # parsed; these come in a read that waits for the answers
    assert len(held) == MAX_PIPELINED + 1
    release.set()
    for respond in list(held):
        respond(Response(200, b"ok"))
    for _ in range(MAX_PIPELINED + 20):
        assert (await read_answer(reader))[2] == b"ok"
    assert len(held) == MAX_PIPELINED + 20
    writer.close()


async def test_a_full_write_buffer_pauses_reading_until_the_client_reads(serve):
    """Flow control: answers of 1 MB that the client does not read fill the transport's
    buffer; the connection stops being read (no more requests handled) until they drain."""
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET /big?size=1000000 HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
    (protocol,) = site._protocols
    await wait_until(lambda: protocol.writing_paused)
    assert protocol.reading_paused and len(echo.requests) == 20
    writer.write(b"GET /big?size=1000000 HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
    await asyncio.sleep(0.1)
    assert len(echo.requests) == 20  # not read while the answers wait
    count = 25
    for _ in range(count):
        assert len((await read_answer(reader))[2]) == 1_000_000
    assert len(echo.requests) == count and not protocol.reading_paused
    writer.close()


async def test_head_gets_the_head_and_the_length_of_the_body_it_leaves_out(serve):
    site = await serve()
    reader, writer = await connect(site)
    writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await read_answer(reader, head_only=True)
    assert status == b"HTTP/1.1 200 OK" and headers[b"content-length"] == b"8"  # "HEAD /h "
    assert (await read_answer(reader))[2] == b"GET /g "  # nothing of a body came between
    writer.close()


async def test_expect_100_continue_is_answered_before_the_body_comes(serve):
    site = await serve(max_body=100)
    reader, writer = await connect(site)
    writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    assert (await read_answer(reader))[2] == b"POST /p hello"
    # a body over the limit gets its 413 instead of a 100, and the connection closes
    writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500\r\n\r\n")
    status, headers, body = await read_answer(reader)
    assert status.startswith(b"HTTP/1.1 413 ") and headers[b"connection"] == b"close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.parametrize("body", [
    b"Content-Length: 101\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + b"y" * 64 + b"\r\n40\r\n" + b"y" * 64 + b"\r\n",
], ids=["declared", "chunked"])
async def test_a_body_over_the_limit_is_a_413_and_closes(serve, body):
    echo = Echo()
    site = await serve(echo, max_body=100)
    reader, writer = await connect(site)
    writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\n" + body)
    answer = await asyncio.wait_for(reader.read(), 5)  # to the end: closed
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close\r\n" in answer
    assert echo.requests[0].problem[0] == 413
    writer.close()


async def test_a_body_that_stops_half_way_is_a_408_and_closes(serve):
    echo = Echo()
    site = await serve(echo, body_timeout=0.3)
    reader, writer = await connect(site)
    writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 408 ") and answer.endswith(b"to arrive")
    assert echo.requests[0].problem == (408, "the body took more than 0s to arrive")
    writer.close()


async def test_a_chunked_body_is_read_whole(serve):
    site = await serve()
    reader, writer = await connect(site)
    writer.write(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert (await read_answer(reader))[2] == b"POST /c abcde"
    writer.close()


@pytest.mark.parametrize("head", [
    b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /x HTTP/1.0\r\n\r\n",
    b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",  # answered as uvicorn did: closed
], ids=["connection-close", "http-1.0", "http-1.0-keep-alive"])
async def test_an_answer_that_ends_the_connection_says_so_and_closes(serve, head):
    site = await serve()
    reader, writer = await connect(site)
    writer.write(head + b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"GET /x ")
    assert b"connection: close\r\n" in answer and b"/never" not in answer
    writer.close()


async def test_the_path_is_unquoted_and_the_query_kept_raw(serve):
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET /a%20b?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-Twice: 1\r\nX-Twice: 2\r\n"
                 b"X-Request-ID: a\r\nx-request-id: b\r\nACCEPT: c\r\n\r\n")
    await read_answer(reader)
    request = echo.requests[0]
    assert (request.path, request.query) == ("/a b", b"x=1&y=%20")
    assert request.headers["x-twice"] == "1" and request.headers["host"] == "x"
    # names lower-cased however spelt (a table of common ones, decoded otherwise); the first wins
    assert request.headers["x-request-id"] == "a" and request.headers["accept"] == "c"
    writer.close()


async def test_an_answer_for_a_client_gone_is_dropped(serve):
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET /slow?delay=0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_until(lambda: echo.requests)
    writer.close()
    await asyncio.sleep(0.4)  # the handler answers after the close: nothing raised, nothing kept
    assert site.in_progress() == 0 and not site._protocols
    reader, writer = await connect(site)
    writer.write(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[2] == b"GET /next "
    writer.close()


async def test_aiohttp_s_client_keeps_its_connection_across_requests(serve):
    echo = Echo()
    site = await serve(echo)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for i in range(20):
            async with session.post(f"http://{HOST}:{site.port}/r{i}", data=b"d%d" % i) as resp:
                assert resp.status == 200 and await resp.read() == b"POST /r%d d%d" % (i, i)
        async with session.head(f"http://{HOST}:{site.port}/h") as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == "8"
    assert site.counters.stats["bad_requests"] == 0
    assert len(echo.requests) == 21


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_reuses_the_connection_and_sends_a_body_after_100_continue(serve):
    site = await serve()
    base = f"http://{HOST}:{site.port}"
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-v", f"{base}/one", f"{base}/two", "--next", "-H", "Expect: 100-continue",
        "--data-binary", "payload", f"{base}/three",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err
    assert out == b"GET /one GET /two POST /three payload"
    assert err.count(b"Re-using existing connection") + err.count(b"Reusing existing") >= 2
    assert b"HTTP/1.1 100 Continue" in err


async def test_bad_bytes_after_pipelined_requests_answer_them_then_400(serve):
    """A chunked body whose framing breaks: the requests before it are answered in order, then
    the 400, then the connection closes; nothing after the bad bytes is read as a request."""
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET /first?delay=0.1 HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                 b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[2] == b"GET /first "
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest.startswith(b"HTTP/1.1 400 ") and b"/after" not in rest
    assert [r.path for r in echo.requests] == ["/first"]
    assert site.counters.stats["bad_requests"] == 1
    writer.close()


async def test_a_url_that_cannot_be_parsed_is_a_counted_400_and_closes(serve):
    """The request line's parser takes ``http://[``; the URL's parser does not: 400, counted,
    the handler never called, the connection closed after the answers owed before it."""
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET http://[ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[2] == b"GET /first "
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest.startswith(b"HTTP/1.1 400 ")
    assert rest.endswith(b'{"errorcode":400,"errormessage":"Invalid URL"}')
    assert b"connection: close\r\n" in rest
    assert [r.path for r in echo.requests] == ["/first"]
    assert site.counters.stats["bad_requests"] == 1
    writer.close()


async def test_an_absolute_form_url_is_read_as_its_path_and_query(serve):
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"GET http://x:8000/goods?id=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[2] == b"GET /goods "
    assert echo.requests[0].query == b"id=3"
    writer.close()


async def test_stop_lets_a_body_on_its_way_finish_and_answers_it(serve):
    echo = Echo()
    site = await serve(echo)
    reader, writer = await connect(site)
    writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
    await wait_until(lambda: site.in_progress() == 1)
    stopping = asyncio.create_task(site.stop(grace=3))
    await asyncio.sleep(0.1)
    writer.write(b"def")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.endswith(b"POST /p abcdef") and b"connection: close\r\n" in answer
    await stopping
    writer.close()


async def test_a_handler_that_raises_costs_its_request_a_500_and_nothing_else(serve):
    def handler(request, respond):
        if request.path == "/bug":
            raise RuntimeError("a bug")
        respond(Response(200, b"fine"))

    site = await serve(handler)
    reader, writer = await connect(site)
    writer.write(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[0] == b"HTTP/1.1 500 Internal Server Error"
    assert (await read_answer(reader))[2] == b"fine"
    writer.close()


@pytest.mark.parametrize("raw, message", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"Invalid HTTP request received."),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 70_000 + b"\r\n\r\n", b"head"),
])
async def test_the_protocols_own_answers_are_json_as_every_gateway_answer(serve, raw, message):
    """A malformed request was answered in plain text ("Invalid HTTP request received."), while
    the gateway says every answer is JSON in the book's error shape (found from outside): a
    client that reads ``errormessage`` read nothing. Now the same shape, and still counted."""
    site = await serve()
    reader, writer = await connect(site)
    writer.write(raw)
    status, headers, body = await read_answer(reader)
    assert status.startswith(b"HTTP/1.1 400 ")
    assert headers[b"content-type"] == b"application/json"
    answer = orjson.loads(body)
    assert answer["errorcode"] == 400 and message.decode() in answer["errormessage"], answer
    assert site.counters.stats["bad_requests"] == 1
    writer.close()


async def test_a_handler_that_fails_is_a_json_500(serve):
    def broken(request, respond):
        raise RuntimeError("a bug")

    site = await serve(broken)
    reader, writer = await connect(site)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await read_answer(reader)
    assert status.startswith(b"HTTP/1.1 500 ") and headers[b"content-type"] == b"application/json"
    assert orjson.loads(body) == {"errorcode": 500, "errormessage": "internal error"}
    writer.close()
