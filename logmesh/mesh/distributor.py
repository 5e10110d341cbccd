"""The distributor: the mesh's registry (DESIGN.md §1).

Nodes register with ``POST /distributes``; ``host`` is taken from the
connection. Every new connection is sent the list; every registration and
disconnect is broadcast to all registered nodes. ``GET /distributes``
answers the asker alone.

A node that stops cleanly says goodbye before it closes its connection (``DELETE
/distributes``, logmesh's own packet: the book's distributor ignores it): it leaves the list
at once, and every list sent for ``GOODBYE_KEEP_SECONDS`` after names it in ``left``, a key
beside ``params`` that the book's nodes never read. The logs service's mesh view then drops it
instead of showing it ``down`` (logs/health.py); a node that vanishes without a goodbye (a
crash, kill -9) is still down there until forgotten.

With a token, a connection hears nothing (not even the list) until it has
sent the token: in a hello, or as ``params.token`` of its registration
(convenient for a Node service written after the book). The token is never
stored in the list nor broadcast.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..guard import LISTEN_BACKLOG, ConnectionGuard
from ..hello import packet_token
from ..lifecycle import Serving
from ..protocol import encode, reply_key
from ..security import OPEN_MODE, ServerSecurity
from .connection import FramedConnection

# A registration is broadcast to every node: its strings are bounded (a 100,000-character
# name was). A name as long as a DNS name at most; urls as many as a service has routes and
# each no longer than a URL browsers and proxies take.
MAX_NAME_CHARS = 253
MAX_URLS = 1_000
MAX_URL_CHARS = 2_048
GOODBYE_KEEP_SECONDS = 60.0  # a goodbye is named in the lists sent this long after it
MAX_GOODBYES = 1_000  # goodbyes kept at most (the oldest go first)

log = logging.getLogger("logmesh.distributor")


class Distributor(Serving):
    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *,
                 security: ServerSecurity = OPEN_MODE) -> None:
        security.check_exposure("distributor", host)
        self.host, self.port = host, port
        self.connections: list[FramedConnection] = []  # in arrival order
        self.server: asyncio.AbstractServer | None = None
        self.tls = security.tls
        self.guard = ConnectionGuard("distributor", security.limits, security.guard_tokens)
        # (host, port) -> (name, loop time) of the nodes that said goodbye (DELETE /distributes)
        self.goodbyes: dict[tuple[str, int], tuple[str, float]] = {}

    def nodes(self) -> list[dict]:
        """One entry per instance (host:port), the latest connection's registration.

        The same instance may be registered from two connections at once: restarted
        quickly (its old connection not closed yet), or the book's Node service, whose
        3 s timer connects again while its first connection is being made. The book's
        distributor lists it twice (it keys by connection); a gateway would weigh it
        twice. While either connection lasts, the instance is listed.
        """
        latest: dict[tuple[str, int], dict] = {}
        for conn in self.connections:
            node = conn.state.get("node")
            if node is not None:
                latest[(node["host"], node["port"])] = node
        return list(latest.values())

    def left(self, listed: list[dict]) -> list[dict]:
        """The nodes that said goodbye in the last GOODBYE_KEEP_SECONDS and are not listed
        again (a new registration of the address ends its goodbye)."""
        now = asyncio.get_running_loop().time()
        for key in [k for k, (_, t) in self.goodbyes.items() if now - t > GOODBYE_KEEP_SECONDS]:
            del self.goodbyes[key]
        present = {(n["host"], n["port"]) for n in listed}
        return [{"name": name, "host": host, "port": port}
                for (host, port), (name, _) in self.goodbyes.items() if (host, port) not in present]

    def _list_packet(self, key: Any = 0) -> dict:
        nodes = self.nodes()
        packet = {"uri": "/distributes", "method": "GET", "key": key, "params": nodes}
        if self.goodbyes:  # only then: a mesh that never saw one sends the book's packet as is
            packet["left"] = self.left(nodes)
        return packet

    def broadcast(self) -> None:
        data = encode(self._list_packet())
        for conn in self.connections:
            if "node" in conn.state:
                conn.write(data)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.guard.factory(self._make_connection), self.host, self.port,
            ssl=self.tls.server_context(), backlog=LISTEN_BACKLOG,
            ssl_handshake_timeout=self._handshake_timeout())
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("distributor listening on %s:%d", self.host, self.port)

    def _handshake_timeout(self) -> float | None:
        return self.guard.limits.header_timeout if self.tls.serves else None

    async def stop(self) -> None:
        self.guard.close()
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self.server is not None:
            await self.server.wait_closed()


    def _make_connection(self) -> FramedConnection:
        conn = _DistributorConnection(self._on_packet, self._on_close, name="distributor",
                                      guard=self.guard, on_ready=self._on_open)
        conn.distributor = self
        return conn

    def _on_open(self, conn: FramedConnection) -> None:
        self.connections.append(conn)
        conn.send(self._list_packet())  # the current list, to the newcomer alone

    def _on_close(self, conn: FramedConnection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        if "node" in conn.state:
            node = conn.state["node"]
            log.info("node left: %s %s:%s", node.get("name"), node.get("host"), node.get("port"))
            self.broadcast()

    def _on_packet(self, conn: FramedConnection, raw: bytes, packet: dict) -> None:
        if packet.get("uri") != "/distributes":
            conn.send({"key": reply_key(packet), "errorcode": 404,
                       "errormessage": "the distributor serves POST/distributes and GET/distributes"})
            return
        method = packet.get("method")
        if method == "POST":
            params = packet.get("params")
            if not _registrable(params):  # no node could be reached at it: not broadcast to all
                conn.send({"key": reply_key(packet), "errorcode": 400,
                           "errormessage": "registration needs params {port, name, urls}: port a whole "
                                           f"number from 1 to 65535, name at most {MAX_NAME_CHARS} "
                                           f"characters, urls a list of at most {MAX_URLS} "
                                           f"\"METHOD/path\" of at most {MAX_URL_CHARS} characters"})
                return
            node = {"port": params["port"], "name": str(params.get("name", "")),
                    "urls": [u for u in params.get("urls") or [] if isinstance(u, str)],
                    "host": conn.peer[0]}
            conn.state["node"] = node
            self.goodbyes.pop((node["host"], node["port"]), None)
            log.info("node registered: %s %s:%s %s", node["name"], node["host"], node["port"], node["urls"])
            self.broadcast()
        elif method == "GET":
            conn.send({**self._list_packet(reply_key(packet)), "errorcode": 0})
        elif method == "DELETE":  # a clean stop's goodbye: its own registration only
            node = conn.state.pop("node", None)
            if node is None:
                return  # not registered on this connection: nothing to leave, nothing to say
            self.goodbyes[(node["host"], node["port"])] = (node["name"], asyncio.get_running_loop().time())
            while len(self.goodbyes) > MAX_GOODBYES:
                del self.goodbyes[next(iter(self.goodbyes))]
            log.info("node said goodbye: %s %s:%s", node["name"], node["host"], node["port"])
            self.broadcast()
        else:
            conn.send({"key": reply_key(packet), "errorcode": 405,
                       "errormessage": f"unsupported method {method!r}"})


def _registrable(params: object) -> bool:
    """A registration's params name a port a node can listen on and a list of urls (a port -5,
    0, 70000 or ``true`` was listed and broadcast; urls ``"GET/x"`` became G, E, T, /, x), and
    its name and urls are bounded (MAX_NAME_CHARS, MAX_URLS, MAX_URL_CHARS)."""
    if not isinstance(params, dict):
        return False
    port, urls = params.get("port"), params.get("urls", [])
    return (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535
            and len(str(params.get("name", ""))) <= MAX_NAME_CHARS
            and (urls is None or (isinstance(urls, list) and len(urls) <= MAX_URLS
                                  and all(len(u) <= MAX_URL_CHARS for u in urls if isinstance(u, str)))))


class _DistributorConnection(FramedConnection):
    distributor: Distributor

    def token_in(self, packet: dict) -> str | None:
        """A hello's token, or the one a registration carries in ``params.token``."""
        if packet.get("uri") == "/distributes" and packet.get("method") == "POST":
            return packet_token(packet)
        return super().token_in(packet)
