"""The gateway's request path in one process, without sockets: CPU per request of the Python
(and uvloop) work between an HTTP request's bytes and its answer's.

    .venv/bin/python bench/gateway_path.py [--requests 200000] [--connections 16] [--rounds 3]
    .venv/bin/python bench/gateway_path.py --code <another checkout>   # the same, its code
    .venv/bin/python bench/gateway_path.py --no-ship   # no access log built (shipping's share)
    .venv/bin/python bench/gateway_path.py --pump 500  # the shipper's whole cycle, each 500

The mesh benchmark (bench/mesh.py) times whole processes on a shared 2-core machine, where
CPU per request moves by 20-40% with the load of others (fewer requests per turn of the
loop, more wakeups): too coarse for a change of a few µs. Here the gateway's real HTTP
protocol (http_protocol.HttpProtocol on httptools' parser) is fed the bytes of
``GET /goods`` (or ``POST``) on ``--connections`` keep-alive connections whose transports are
objects in memory; its real client (mesh/client.py) writes each request to a connection whose
transport answers it on the next turn of the loop as goods would (its key, three rows), and
the access log goes to a real Shipper's queue (not sent; with ``--pump N`` the shipper's real
pump encodes each N queued records into a batch packet, written to memory, and each batch's ack
frees it, as in the mesh, where a 50 ms linger holds ~250-500). Each answer read makes that
connection send its next request. No syscall is on the path: what is measured is what the
gateway's own code, its HTTP protocol's and the loop's cost per request, the part a change of the
gateway's Python can move. As the real process does once it listens, the heap of the setup is
frozen and the gateway's young-collection threshold applied; each round's line says how many
collections the run made and their wall time a request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# what a logmesh logs service's acks say it reads (logmesh/access_log.py; older trees ignore it)
FEATURES = ["access_rows"]


class MemoryTransport(asyncio.Transport):
    """A transport whose writes go to ``sink``; what the protocols ask of one."""

    def __init__(self, sink, peer=("127.0.0.1", 40000)) -> None:
        super().__init__()
        self.sink, self.peer, self.closing = sink, peer, False

    def write(self, data) -> None:
        self.sink(bytes(data))

    def writelines(self, chunks) -> None:
        self.sink(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name, default=None):
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Sink:
    """The shipper's client to the logs service: connected, every batch written to memory."""

    is_connected, conn = True, None

    def write(self, data: bytes) -> None:
        pass


async def run(requests: int, connections: int, method: str, ship: bool = True,
              pump: int = 0) -> float:
    import orjson

    from logmesh.lifecycle import freeze_startup_heap
    from logmesh.mesh.client import ReconnectingClient
    from logmesh.mesh.connection import FramedConnection
    from logmesh.mesh.gateway import Gateway
    from logmesh.mesh.http_server import HttpSite
    from logmesh.protocol import encode
    from logmesh.shipping.shipper import Shipper

    loop = asyncio.get_running_loop()
    gw = Gateway(port=0)
    queue: Any = []
    if ship:  # else no access log is built: the gateway's path without shipping's share
        gw.shipper = Shipper("gateway", mode="ack")  # its queue only: never started, never sent
        queue = gw.shipper.queue
    shipper = gw.shipper
    if pump:
        shipper.client, shipper.speaks = _Sink(), "ack"
    addr = ("127.0.0.1", 9010)
    gw.routes = {"GET/goods": [addr], "POST/goods": [addr]}
    gw.served = {"GET/goods": "goods", "POST/goods": "goods"}
    gw.names = {addr: "goods"}
    rows = [{"id": i, "name": "pen", "category": "office", "price": 1.5} for i in range(3)]
    client = ReconnectingClient(*addr, name="gateway->goods")

    def goods(data: bytes) -> None:  # answers every packet of a write on the next turn
        replies = []
        for frame in data.split("¶".encode())[:-1]:
            key = orjson.loads(frame)["key"]
            replies.append(encode({"key": key, "errorcode": 0, "errormessage": "success",
                                   "results": rows if method == "GET" else {"id": 4}}))
        loop.call_soon(conn.data_received, b"".join(replies))

    conn = FramedConnection(client._on_packet, name="gateway->goods")
    conn.connection_made(MemoryTransport(goods, addr))
    client.conn = conn
    gw.clients[addr] = client
    # The gateway's handler: its own HTTP protocol's (serve_http), or the ASGI app of the trees
    # that served it with uvicorn's protocol (before branch gateway4), for --code pairings
    handler = getattr(gw, "serve_http", None) or gw.asgi
    site = HttpSite(handler, "127.0.0.1", 0, limits=gw.limits, counters=gw.http_counters)
    site.loop = loop
    body = b'{"name":"pen","category":"office","price":1.5}'
    head = (b"GET /goods HTTP/1.1\r\nHost: x\r\n\r\n" if method == "GET" else
            b"POST /goods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    left = [requests]
    done = loop.create_future()
    answers = [0]

    def connection(i: int) -> None:
        protocol = site._accept()

        def answered(data: bytes) -> None:  # one answer a write (the site joins head and body)
            answers[0] += 1
            if pump and len(queue) >= pump:  # a linger's worth: encoded, sent, acked, freed
                shipper._pump()
                for key in list(shipper.inflight):
                    shipper._on_reply({"key": key, "errorcode": 0, "features": FEATURES})
            elif len(queue) >= 2_000:  # what the shipper would have sent by now (every 50 ms)
                queue.clear()
            if left[0] > 0:
                left[0] -= 1
                loop.call_soon(protocol.data_received, head)
            elif answers[0] == requests and not done.done():
                done.set_result(None)

        protocol.connection_made(MemoryTransport(answered, ("127.0.0.1", 41000 + i)))
        left[0] -= 1
        loop.call_soon(protocol.data_received, head)

    freeze_startup_heap()  # as the real process does once it listens (lifecycle.Serving),
    young = getattr(gw, "young_collection_threshold", None)  # with the gateway's threshold
    if young is not None:
        gc.set_threshold(young, *gc.get_threshold()[1:])
    pauses: list[float] = []
    started = [0.0]

    def collected(phase: str, info: dict) -> None:  # each collection's wall time
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(collected)
    t0 = time.process_time()
    for i in range(connections):
        connection(i)
    await done
    spent = time.process_time() - t0
    gc.callbacks.remove(collected)
    if pauses:
        print(f"gc: {len(pauses)} collections, {sum(pauses) * 1e6 / requests:.2f} µs a request, "
              f"longest {max(pauses) * 1e3:.2f} ms", file=sys.stderr)
    return spent / requests * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default="GET,POST")
    ap.add_argument("--code", type=Path, default=None, help="a checkout whose logmesh to run, "
                    "alternating by round with this one's")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-ship", action="store_true", help="no shipper attached: the path "
                    "without building and queueing the access log")
    ap.add_argument("--pump", type=int, default=0, metavar="N", help="the shipper's pump "
                    "encodes each N queued access logs into a batch and its ack frees it (0: the "
                    "queue is cleared unencoded every 2,000)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child's single run
    args = ap.parse_args()
    if args.one:
        import uvloop

        print(uvloop.run(run(args.requests, args.connections, args.one, not args.no_ship,
                                 args.pump)))
        return 0
    trees = [("this", ROOT)] + ([("other", args.code.resolve())] if args.code else [])
    results: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.rounds):
        for name, tree in trees if rnd % 2 == 0 else trees[::-1]:
            for method in args.methods.split(","):
                env = {**os.environ, "PYTHONPATH": str(tree)}
                out = subprocess.run([sys.executable, __file__, "--one", method, "--requests",
                                      str(args.requests), "--connections", str(args.connections),
                                      *(["--no-ship"] if args.no_ship else []),
                                      "--pump", str(args.pump)],
                                     env=env, cwd=tree, capture_output=True, text=True, check=True)
                us = float(out.stdout.split()[-1])
                results.setdefault((name, method), []).append(us)
                gc_line = [line for line in out.stderr.splitlines() if line.startswith("gc: ")]
                print(f"round {rnd} {name:5} {method:4} {us:6.2f} µs CPU a request"
                      + (f" ({gc_line[-1]})" if gc_line else ""), flush=True)
    print(f"\n{args.requests} requests, {args.connections} connections, median of {args.rounds} "
          "round(s) (min-max):")
    for (name, method), v in sorted(results.items()):
        v = sorted(v)
        print(f"  {name:5} {method:4} {v[len(v) // 2]:6.2f} µs ({v[0]:.2f}-{v[-1]:.2f})")
    if args.code:
        for method in args.methods.split(","):
            pairs = [a / b for a, b in zip(results[("this", method)], results[("other", method)],
                                           strict=True)]
            print(f"  {method}: this / other within each round: "
                  + ", ".join(f"{p:.2f}" for p in pairs))
    if args.json:
        args.json.write_text(json.dumps({"requests": args.requests, "connections": args.connections,
                                         "us_per_request": {f"{n} {m}": v for (n, m), v in results.items()}},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
