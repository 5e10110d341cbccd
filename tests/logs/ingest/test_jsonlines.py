"""JSON lines over TCP on --jsonl-port, as Vector's socket sink and Logstash's json_lines send:
each line read by the NDJSON path's decoder; bad lines counted, their neighbours stored."""

from __future__ import annotations

import json

from tests.logs.ingest.sockets_support import ingest_errors, ingest_events, logmesh_query
from tests.support.logs import RawClient, stored, wait_until


async def test_lines_are_stored_as_the_ndjson_path_stores_them(start_logs):
    srv = await start_logs(jsonl_port=0)
    client = await RawClient.connect(srv.listeners.bound["jsonl"])
    vector = {"message": "GET /cart 200", "service.name": "nginx", "log.level": "info",
              "http.response.status_code": 200, "url.path": "/cart", "@timestamp": "2026-11-29T10:00:00Z",
              "host": "web-1"}
    logstash = {"message": "slow query", "service.name": "postgres", "log.level": "warning",
                "@timestamp": 1_795_950_000_123, "duration_ms": 812}
    data = (json.dumps(vector) + "\n" + json.dumps(logstash) + "\r\n").encode()
    await client.send(data[:30])
    await client.send(data[30:])  # a line split across reads
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="2 events")
    [nginx] = await logmesh_query(srv, "service.name:nginx and http.response.status_code:200",
                                  "--from", "2026-11-29T00:00:00Z")
    assert nginx["@timestamp"] == 1_795_946_400_000 and nginx["url.path"] == "/cart"
    assert nginx["labels"] == {"host": "web-1"} and nginx["source.port"] == client.local_port
    [pg] = await logmesh_query(srv, "service.name:postgres and duration_ms:812",
                               "--from", "2026-11-29T00:00:00Z")
    assert pg["log.level"] == "warning" and pg["@timestamp"] == 1_795_950_000_123
    assert await ingest_events(srv, "jsonl") == 2
    await client.close()


async def test_bad_lines_are_counted_by_reason_and_the_connection_goes_on(start_logs):
    srv = await start_logs(jsonl_port=0, max_frame_bytes=1024)
    client = await RawClient.connect(srv.listeners.bound["jsonl"])
    await client.send(b'{"message": "one"}\n'
                      b'not json\n'
                      b'[1, 2]\n'
                      b'{"message": "bad time", "@timestamp": "tuesday"}\n'
                      b'{"message": "' + b"x" * 2000 + b'"}\n'
                      b'{"message": "two"}\n')
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="the good lines")
    await client.send(b'{"message": "three"}\n')
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="a later line")
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["one", "two", "three"]
    assert await ingest_errors(srv, "jsonl") == {"bad_json": 1, "not_object": 1, "bad_timestamp": 1,
                                                 "too_large": 1}
    assert not client.eof
    await client.close()


async def test_the_last_line_before_the_sender_closes_needs_no_newline(start_logs):
    """`printf '%s' "$json" | nc -q1 host port` ends the stream without a newline; the line
    was dropped without a count (found from outside). Syslog's port alike: `logger` and
    rsyslog end every line, a program's last write may not."""
    srv = await start_logs(jsonl_port=0, syslog_port=0)
    for port, payload in ((srv.listeners.bound["jsonl"], b'{"message": "a"}\n{"message": "last"}'),
                          (srv.listeners.bound["syslog"], b"<14>1 2026-11-29T10:00:00Z h cron - - - "
                                                          b"first\n<14>1 2026-11-29T10:00:01Z h cron - "
                                                          b"- - unterminated")):
        client = await RawClient.connect(port)
        await client.send(payload)
        client.writer.write_eof()  # a half-close: what nc -q1 and a closing program send
        assert await client.read_for(5) == b"" and client.eof  # the service closes its side too
        await client.close()
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 4, what="4 events")
    assert sorted(e["message"] for e in stored(srv.config.data_dir)) == [
        "a", "first", "last", "unterminated"]
    assert await ingest_errors(srv, "jsonl") == {} and await ingest_errors(srv, "syslog") == {}
