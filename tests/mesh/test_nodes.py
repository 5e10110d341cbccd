"""The distributor's list is read once (protocol.parse_nodes) for every reader of it.

The book's Node distributor relays whatever a registration held, so one bad
entry must cost that entry only, not the whole list for the gateway, the
shippers and the logs service.
"""

from __future__ import annotations

from logmesh.mesh.gateway import Gateway
from logmesh.protocol import Node, parse_nodes
from logmesh.shipping.shipper import Shipper

GOOD = {"name": "goods", "host": "127.0.0.1", "port": 9010, "urls": ["GET/goods", "POST/goods"]}
BAD = [
    {"name": "evil", "port": "abc", "urls": ["GET/evil"]},
    {"name": "evil", "port": None, "urls": ["GET/evil"]},
    {"name": "evil", "port": 70000, "urls": ["GET/evil"]},
    {"name": "evil", "port": True, "urls": ["GET/evil"]},
    "not an object",
    None,
]


def test_parse_nodes_keeps_good_entries_and_skips_unusable_ones():
    nodes = parse_nodes([*BAD, GOOD, {"name": "logs", "port": "9040", "urls": "POST/logs"}, {"port": 1}])
    assert nodes == [Node("goods", "127.0.0.1", 9010, ("GET/goods", "POST/goods")),
                     Node("logs", "127.0.0.1", 9040, ()),
                     Node("", "127.0.0.1", 1, ())]
    assert parse_nodes({"not": "a list"}) == []


def test_urls_that_are_not_strings_are_left_out():
    (node,) = parse_nodes([{**GOOD, "urls": ["GET/goods", 5, {"x": 1}, None]}])
    assert node.urls == ("GET/goods",)


async def test_one_bad_registration_does_not_hide_the_other_routes_from_the_gateway():
    gw = Gateway("127.0.0.1", 0)
    try:
        gw.registry._on_packet({"uri": "/distributes", "method": "GET", "params": [*BAD, GOOD]})
        assert gw.routes == {"GET/goods": [("127.0.0.1", 9010)], "POST/goods": [("127.0.0.1", 9010)]}
    finally:
        for client in gw.clients.values():
            client.abort()


def test_a_shipper_follows_the_logs_node_past_bad_entries():
    shipper = Shipper("goods")
    shipper._connect = lambda addr: None  # no socket: only the choice of node is under test
    shipper.on_nodes(parse_nodes([*BAD, GOOD, {"name": "logs", "port": 9040, "urls": ["POST/logs"]}]))
    assert shipper.logs_nodes == [("127.0.0.1", 9040)]
