"""Syslog on --syslog-port with real senders: util-linux logger, Python's SysLogHandler and
rsyslog's omfwd (TCP octet-counted and LF-framed, UDP); found again with `logmesh query`.
An oversize line is skipped and counted, and the connection and its other lines survive."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.logs.ingest.sockets_support import (
    ingest_errors,
    ingest_events,
    logmesh_query,
    replaced,
    wait_listening,
)
from tests.support.logs import HOST, RawClient, stored, wait_until
from tests.support.procs import Procs, free_port


@pytest.fixture
async def syslog(start_logs):
    return await start_logs(syslog_port=0)


def port(server) -> int:
    return server.listeners.bound["syslog"]


async def logger(*args: str) -> None:
    r = await asyncio.to_thread(subprocess.run, ["logger", "-n", HOST, *args], capture_output=True,
                                text=True, timeout=10)
    assert r.returncode == 0, r.stderr


async def test_logger_rfc5424_over_tcp(syslog):
    await logger("--tcp", "-P", str(port(syslog)), "--rfc5424", "-i", "-t", "billing", "-p", "local0.err",
                 "--msgid", "INV7", "--sd-id", "order@32473", "--sd-param", 'id="42"',
                 "invoice 42 failed")
    await wait_until(lambda: stored(syslog.config.data_dir), what="the event stored")
    [e] = await logmesh_query(syslog, "service.name:billing and log.syslog.msgid:INV7")
    assert e["message"] == "invoice 42 failed" and e["log.level"] == "error"
    labels = e["labels"]
    assert labels["log.syslog.facility.name"] == "local0" and labels["log.syslog.severity.code"] == 3
    assert labels["log.syslog.structured_data"]["order@32473"] == {"id": "42"}
    assert labels["host.name"] == socket.gethostname()
    assert labels["log.syslog.procid"].isdigit()  # logger's own pid
    assert abs(e["@timestamp"] - e["received_at"]) < 5000


async def test_logger_rfc3164_over_udp_and_octet_counted_tcp(syslog):
    await logger("--udp", "-P", str(port(syslog)), "--rfc3164", "-t", "cron", "-p", "cron.warning",
                 "nightly job late")
    await logger("--tcp", "--octet-count", "-P", str(port(syslog)), "-t", "cron", "counted one")
    await wait_until(lambda: len(stored(syslog.config.data_dir)) == 2, what="2 events")
    events = {e["message"]: e for e in await logmesh_query(syslog, "service.name:cron")}
    assert set(events) == {"nightly job late", "counted one"}
    udp = events["nightly job late"]
    assert udp["log.level"] == "warning" and udp["labels"]["log.syslog.facility.name"] == "cron"
    assert udp["labels"]["host.name"] == socket.gethostname()
    assert await ingest_events(syslog, "syslog") == 2


@pytest.mark.parametrize("socktype", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
async def test_python_syslog_handler(syslog, socktype):
    handler = logging.handlers.SysLogHandler((HOST, port(syslog)), socktype=socktype,
                                             facility=logging.handlers.SysLogHandler.LOG_LOCAL5)
    handler.ident = "payments: "
    log = logging.Logger("payments")
    log.addHandler(handler)
    try:
        log.error("card declined for order %d", 7)
        log.info("retrying")  # below the logger's level? Logger() has NOTSET: sent
    finally:
        handler.close()
    await wait_until(lambda: len(stored(syslog.config.data_dir)) == 2, what="2 events")
    events = await logmesh_query(syslog, "service.name:payments and labels.log.syslog.facility.name:local5")
    assert [(e["message"], e["log.level"]) for e in events] == [
        ("card declined for order 7", "error"), ("retrying", "info")]


async def test_oversize_line_is_counted_and_the_connection_survives(start_logs):
    srv = await start_logs(syslog_port=0, max_frame_bytes=1024)
    client = await RawClient.connect(port(srv))
    await client.send(b"<14>app: before\n<14>app: " + b"x" * 5000 + b"\n<14>app: after\n")
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="the two short lines")
    await client.send(b"<14>app: later, same connection\n")
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="a line after it")
    assert not client.eof
    assert [e["message"] for e in stored(srv.config.data_dir)] == [
        "before", "after", "later, same connection"]
    assert await ingest_errors(srv, "syslog") == {"too_large": 1}
    # Over UDP: the datagram is dropped and counted too.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"<14>app: " + b"y" * 2000, (HOST, port(srv)))
        s.sendto(b"<14>app: small datagram", (HOST, port(srv)))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 4, what="the small datagram")
    assert await ingest_errors(srv, "syslog") == {"too_large": 2}
    await client.close()



async def test_interleaved_connections_keep_their_own_lines(syslog):
    """Halves of lines sent in turn on three connections, and one write of ~250 KiB (several
    reads), each come out whole, as their own connection's: each connection's partial line
    stays its own (lines.LineSplitter per connection) whatever the reads' sizes."""
    clients = [await RawClient.connect(port(syslog)) for _ in range(3)]
    want = []
    for i in range(4):
        lines = [b"<14>1 2026-11-29T10:00:%02dZ h%d app - - - conn %d line %d\n" % (i, c, c, i)
                 for c in range(len(clients))]
        want += [line[line.index(b"conn"):-1].decode() for line in lines]
        for client, line in zip(clients, lines, strict=True):
            await client.send(line[:20])
        for client, line in zip(clients, lines, strict=True):
            await client.send(line[20:])
    big = b"".join(b"<14>1 2026-11-29T10:01:00Z h0 app - - - big %05d %s\n" % (k, b"x" * 200)
                   for k in range(1000))  # ~250 KiB in one write: several reads
    await clients[0].send(big)
    await wait_until(lambda: len(stored(syslog.config.data_dir)) == len(want) + 1000,
                     what="every line")
    events = stored(syslog.config.data_dir)
    small = [e for e in events if e["message"].startswith("conn")]
    assert sorted(e["message"] for e in small) == sorted(want)
    assert all(e["labels"]["host.name"] == "h" + e["message"].split()[1] for e in small)
    assert [e["message"][:9] for e in events if e["message"].startswith("big")] == [
        f"big {k:05d}" for k in range(1000)]
    for client in clients:
        await client.close()

async def test_a_read_of_many_lines_with_odd_ones_is_stored_in_order(syslog):
    """A write of 1,000 lines, one RFC 3164 (its read takes the per-line path) and one with a
    bad timestamp (stored with the time received, counted): every line stored once, in the
    order sent."""
    lines = [b"<14>1 2026-11-29T10:00:00.%03dZ h app - - - n %04d" % (k % 1000, k)
             for k in range(1000)]
    lines[300] = b"<14>Nov 29 10:00:00 h app: n 0300"  # RFC 3164: its read goes line by line
    lines[700] = b"<14>1 2026-13-45T99:00:00Z h app - - - n 0700"  # kept, its time replaced
    client = await RawClient.connect(port(syslog))
    await client.send(b"\n".join(lines) + b"\n")  # ~50 KiB: most often one read
    await wait_until(lambda: len(stored(syslog.config.data_dir)) == 1000, what="1000 lines")
    events = sorted(stored(syslog.config.data_dir), key=lambda e: e["seq"])
    assert [e["message"] for e in events] == [f"n {k:04d}" for k in range(1000)]
    assert [e["service.name"] for e in events] == ["app"] * 1000
    assert await ingest_errors(syslog, "syslog") == {}
    assert await replaced(syslog) == {"bad_timestamp": 1}
    await client.close()


async def test_bad_timestamp_is_stored_with_the_time_received_and_counted(syslog):
    """Refused, the line was lost without its sender knowing (syslog has no answer; found
    from outside): it is kept with the time it came, its own text in a label."""
    client = await RawClient.connect(port(syslog))
    before = int(time.time() * 1000)
    await client.send(b"<14>1 2026-13-45T99:00:00Z h app - - - bad time\n"
                      b"<14>1 2026-11-29T10:00:00Z h app - - - good time\n")
    await wait_until(lambda: len(stored(syslog.config.data_dir)) == 2, what="both lines")
    bad, good = sorted(stored(syslog.config.data_dir), key=lambda e: e["seq"])
    assert (bad["message"], good["message"]) == ("bad time", "good time")
    assert bad["@timestamp"] >= before and bad["labels"]["logmesh.replaced"] == "bad_timestamp"
    assert bad["labels"]["log.syslog.timestamp_text"] == "2026-13-45T99:00:00Z"
    assert await ingest_errors(syslog, "syslog") == {}
    assert await replaced(syslog) == {"bad_timestamp": 1}
    await client.close()


RSYSLOG_CONF = """
global(workDirectory="{work}" net.enableDNS="off" maxMessageSize="64k")
module(load="imptcp")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         template="RSYSLOG_ForwardFormat")
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp"
         template="RSYSLOG_TraditionalForwardFormat")
}}
input(type="imptcp" port="{inport}" address="127.0.0.1" ruleset="fwd")
"""


@pytest.mark.skipif(shutil.which("rsyslogd") is None and not Path("/usr/sbin/rsyslogd").exists(),
                    reason="rsyslog is not installed (.ci/run installs it)")
async def test_rsyslog_omfwd_relays_into_logmesh(syslog, tmp_path):
    """rsyslogd (unprivileged, its own config) relays what it receives to logmesh three ways:
    RFC 5424 octet-counted over TCP, RFC 3164 LF-framed over TCP, and over UDP."""
    inport = free_port()
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, port=port(syslog), inport=inport))
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    procs = Procs(tmp_path)
    try:
        procs.start_script("rsyslogd", [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")])
        await wait_listening(inport, "rsyslogd listening")
        for i in range(3):
            await logger("--tcp", "-P", str(inport), "--rfc5424", "-t", "relayed",
                         "-p", "daemon.notice", f"relayed message {i}")
        await wait_until(lambda: len(stored(syslog.config.data_dir)) == 9, timeout=15,
                         what="3 messages x 3 actions")
        events = await logmesh_query(syslog, "service.name:relayed")
        assert len(events) == 9
        for i in range(3):
            copies = [e for e in events if e["message"] == f"relayed message {i}"]
            assert len(copies) == 3, events
            for e in copies:
                assert e["log.level"] == "notice"
                assert e["labels"]["log.syslog.facility.name"] == "daemon"
                assert e["labels"]["host.name"]
    finally:
        procs.close()
