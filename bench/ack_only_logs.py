"""A stand-in logs node for bench/mesh.py's ``logmesh-acker`` mesh: it registers as ``logs``
with the distributor and acknowledges every acked batch as it arrives, storing nothing.

    python bench/ack_only_logs.py --port P --distributor HOST:PORT

A diagnostic, not a logs service: with it the shippers do all their work (build, queue,
encode, send, read the ack, free) while the node they ship to takes next to no CPU, so the
mesh's cost of shipping splits into the shippers' own and the logs service's on the same two
cores. Only a frame's head is read (its key, and whether it asks for an ack).
"""

from __future__ import annotations

import argparse
import asyncio
import re

from logmesh.mesh.registry import RegistryLink
from logmesh.protocol import DELIMITER, encode

_KEY = re.compile(rb'"key":(\d+)')


class _Acker(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        start, acks = 0, []
        while (end := self.buf.find(DELIMITER, start)) >= 0:
            head = bytes(self.buf[start:min(end, start + 200)])
            if b'"ack":true' in head and (m := _KEY.search(head)):
                acks.append(encode({"key": int(m.group(1)), "errorcode": 0}))
            start = end + len(DELIMITER)
        del self.buf[:start]
        if acks:
            self.transport.write(b"".join(acks))  # type: ignore[attr-defined]


async def serve(port: int, distributor: str) -> None:
    host, dport = distributor.rsplit(":", 1)
    await asyncio.get_running_loop().create_server(_Acker, "127.0.0.1", port)
    RegistryLink(host, int(dport), name="logs", node_port=lambda: port, urls=lambda: []).start()
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--distributor", required=True, metavar="HOST:PORT")
    args = ap.parse_args()
    asyncio.run(serve(args.port, args.distributor))


if __name__ == "__main__":
    main()
