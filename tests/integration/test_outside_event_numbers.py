"""An acked batch's event numbers below 1 are refused by name, not acked and dropped.

The loss ledger counts each shipper instance's numbers from 1 (every n <= its watermark,
0 at first, is a resend): an event numbered 0 or less was answered as acked, counted as a
duplicate, and never stored. logmesh's shippers number from 1, but the batch is a protocol
any client may speak; found from outside by a load generator numbering from 0.
"""

from __future__ import annotations

import json
import socket
import time

from tests.support.procs import HOST, http_json

DELIM = "¶".encode()


def send_batch(port: int, key: int, instance: str, events: list[list]) -> dict:
    packet = {"uri": "/logs", "method": "POST", "key": key, "ack": True,
              "params": {"service": "gen", "instance": instance, "events": events}}
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(json.dumps(packet).encode() + DELIM)
        reply = b""
        while DELIM not in reply:
            chunk = sock.recv(4096)
            assert chunk, "closed before the reply"
            reply += chunk
    return json.loads(reply.split(DELIM)[0])


def test_event_numbers_below_one_are_refused_by_name(procs, tmp_path):
    _, port, http_port = procs.logs(tmp_path / "data")
    now = int(time.time() * 1000)
    # plain text (the per-event path) and request packets (the mesh's usual shape, shipped.py)
    shapes = {"text": lambda n: f"numbered text n{n}",
              "packet": lambda n: json.dumps({"uri": f"/numbered/n{n}", "method": "GET", "params": {}})}
    for key, (shape, raw) in enumerate(shapes.items(), 1):
        reply = send_batch(port, key, f"gen-{shape}", [[n, now, raw(n)] for n in (0, 1, 2, -5)])
        assert reply["errorcode"] == 0, reply
        assert reply["acked"] == 2 and reply["rejected"] == [[0, "bad_event"], [3, "bad_event"]], reply
    events = http_json(http_port, "/api/v1/search", q="numbered or url.path:/numbered*", limit="100")["events"]
    assert sorted(e["event.id"] for e in events) == ["gen-packet:1", "gen-packet:2", "gen-text:1", "gen-text:2"]
