"""Hostile input on the socket ports of a real ``logmesh logs``, found by trying it from outside.

A Fluent forward chunk whose entry time is a float infinity (msgpack carries IEEE doubles)
raised OverflowError out of ``data_received``: asyncio closed the connection, the good
entries of the same chunk were neither stored nor acked, nothing was counted, and a sender
resending the chunk met the same end forever. Each bad time must be refused by itself
(``bad_timestamp``), the rest of the chunk stored and acked.
"""

from __future__ import annotations

import re
import socket
import urllib.request

import msgpack

from tests.support.procs import HOST, store_events, wait_for

PORTS = re.compile(r"logs worker \d+: syslog [\d.]+:(\d+), jsonl [\d.]+:(\d+), forward [\d.]+:(\d+)")


def read_ack(sock: socket.socket) -> object:
    sock.settimeout(30)
    unpacker = msgpack.Unpacker()
    while True:
        data = sock.recv(4096)
        assert data, "the logs service closed the connection instead of acking the chunk"
        unpacker.feed(data)
        for obj in unpacker:
            return obj


def rejected(http_port: int, reason: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = rf'^logmesh_ingest_rejected_total{{protocol="forward",reason="{reason}",worker="\d+"}} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.M))


def test_forward_times_out_of_range_are_refused_one_by_one(procs, tmp_path):
    data = tmp_path / "data"
    proc, _, http_port = procs.logs(data, "--forward-port", "0")
    forward = int(proc.wait_line(re.compile(r"forward [\d.]+:(\d+)"))[0].group(1))
    bad_times = [float("inf"), float("-inf"), float("nan"), 1e300, -1, 2**64 - 1]
    entries = [[t, {"message": f"bad {i}"}] for i, t in enumerate(bad_times)]
    entries.insert(3, [1_700_000_000, {"message": "good 1"}])
    entries.append([1_700_000_000.5, {"message": "good 2"}])
    with socket.create_connection((HOST, forward), timeout=30) as sock:
        sock.sendall(msgpack.packb(["hostile", entries, {"chunk": "c1"}]))
        assert read_ack(sock) == {"ack": "c1"}
        # the connection goes on
        sock.sendall(msgpack.packb(["hostile", 1_700_000_001, {"message": "good 3"}, {"chunk": "c2"}]))
        assert read_ack(sock) == {"ack": "c2"}
    stored = wait_for(lambda: (lambda evs: evs if len(evs) >= 3 else None)(store_events(data)), 30,
                      "the good entries stored")
    assert sorted(e["message"] for e in stored) == ["good 1", "good 2", "good 3"]
    assert rejected(http_port, "bad_timestamp") == len(bad_times)
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=10) as resp:
        assert resp.status == 200


def test_forward_map_keys_that_are_maps_or_arrays_are_counted_not_a_traceback(procs, tmp_path):
    """A msgpack map whose key is a map or an array (found by a mutational fuzzer): the
    unpacker raised TypeError (unhashable) out of ``data_received``, logged as a traceback,
    counted nowhere. It is bytes no record can be made of: ``bad_msgpack``, the chunk
    before it acked, the connection closed, the port still serving."""
    data = tmp_path / "data"
    proc, _, http_port = procs.logs(data, "--forward-port", "0")
    forward = int(proc.wait_line(re.compile(r"forward [\d.]+:(\d+)"))[0].group(1))
    for n, key in enumerate([{"a": 1}, [1, 2]]):
        bad = b"\x81" + msgpack.packb(key) + msgpack.packb("v")  # {key: "v"}
        good = msgpack.packb(["hostile", 1_700_000_000, {"message": f"before {n}"}, {"chunk": f"k{n}"}])
        with socket.create_connection((HOST, forward), timeout=30) as sock:
            sock.sendall(good + bad)
            assert read_ack(sock) == {"ack": f"k{n}"}
            sock.settimeout(30)
            assert sock.recv(4096) == b"", "the connection is closed after the bad bytes"
    wait_for(lambda: rejected(http_port, "bad_msgpack") == 2, 30, "both counted as bad_msgpack")
    with socket.create_connection((HOST, forward), timeout=30) as sock:
        sock.sendall(msgpack.packb(["hostile", 1_700_000_001, {"message": "after"}, {"chunk": "c9"}]))
        assert read_ack(sock) == {"ack": "c9"}
    assert sorted(e["message"] for e in store_events(data)) == ["after", "before 0", "before 1"]
    assert "Traceback" not in proc.log_text()
