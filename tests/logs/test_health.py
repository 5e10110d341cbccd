"""Health per instance (logmesh/logs/health.py): the state rules, the linking of shipping
instances to nodes, and the tracker's changes, each at a time given by a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from logmesh.logs.health import (
    DOWN,
    DOWN_AFTER_MS,
    FORGET_AFTER_MS,
    LINK_GRACE_MS,
    SILENT,
    SILENT_AFTER_MS,
    SLOW,
    UNREGISTERED,
    UP,
    HealthTracker,
    Listed,
    Seen,
    Verdict,
    instance_verdict,
    latency_outliers,
    link,
    merge,
    node_verdict,
)
from logmesh.protocol import Node

T = 1_000_000_000  # the fake clock's "now", epoch ms
S = 1000

GOODS = Listed("goods", "127.0.0.1", 9010, ("GET/goods",), True, T - 60 * S)
LEFT = replace(GOODS, listed=False)
# A shipper with heartbeats, connected, heard 1 s ago.
LIVE = Seen("goods-a", "goods", ("127.0.0.1", 9010), "127.0.0.1", first_seen_ms=T - 60 * S,
            heard_ms=T - S, last_seen_ms=T - S, heartbeat_s=5.0, connections=1)


# -- the rules, one row at a time ------------------------------------------------------------

NODE_CASES = [
    # (what, node, its newest shipping instance, gateway timeouts, state)
    ("listed and heard 1 s ago", GOODS, LIVE, 0, UP),
    ("listed, no logmesh shipper (a book service): cannot be told silent", GOODS, None, 0, UP),
    ("heard 14 s ago: still up", GOODS, replace(LIVE, heard_ms=T - 14 * S), 0, UP),
    ("no event and no heartbeat for 15 s, connection open", GOODS,
     replace(LIVE, heard_ms=T - SILENT_AFTER_MS), 0, SILENT),
    ("a slow heartbeat (10 s) gets three of them", GOODS,
     replace(LIVE, heard_ms=T - 20 * S, heartbeat_s=10.0), 0, UP),
    ("an old shipper without heartbeats, quiet for a minute: idle, not silent", GOODS,
     replace(LIVE, heard_ms=T - 60 * S, heartbeat_s=0.0), 0, UP),
    ("gateway timeouts not answered since", GOODS, LIVE, 3, SLOW),
    ("silent wins over slow (it does not even beat)", GOODS,
     replace(LIVE, heard_ms=T - 20 * S), 3, SILENT),
    ("a book service charged timeouts", GOODS, None, 1, SLOW),
    ("left the list 4 s ago: still up (a distributor restart)", replace(LEFT, left_ms=T - 4 * S),
     LIVE, 0, UP),
    ("left the list 5 s ago", replace(LEFT, left_ms=T - DOWN_AFTER_MS), LIVE, 0, DOWN),
    ("left the list, no shipper", replace(LEFT, left_ms=T - 6 * S), None, 0, DOWN),
    ("down wins over slow", replace(LEFT, left_ms=T - 6 * S), None, 2, DOWN),
    ("its connection closed 5 s ago, nothing came back", GOODS,
     replace(LIVE, connections=0, dropped_ms=T - DOWN_AFTER_MS), 0, DOWN),
    ("its connection closed 2 s ago: it may reconnect", GOODS,
     replace(LIVE, connections=0, dropped_ms=T - 2 * S), 0, UP),
    ("closed once but connected again", GOODS, replace(LIVE, dropped_ms=T - 30 * S), 0, UP),
]


@pytest.mark.parametrize("what,node,current,timeouts,state", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_node_states(what, node, current, timeouts, state):
    verdict = node_verdict(node, current, timeouts, T)
    assert verdict.state == state, verdict
    assert (verdict.reason == "") == (state == UP)


UNLINKED = replace(LIVE, node=None)
INSTANCE_CASES = [
    ("alive, no node of the list", UNLINKED, UNREGISTERED),
    ("quiet 15 s with heartbeats promised", replace(UNLINKED, heard_ms=T - 15 * S), SILENT),
    ("connection closed 5 s ago", replace(UNLINKED, connections=0, dropped_ms=T - 5 * S), DOWN),
    ("connection closed 1 s ago", replace(UNLINKED, connections=0, dropped_ms=T - S), UNREGISTERED),
]


@pytest.mark.parametrize("what,seen,state", INSTANCE_CASES, ids=[c[0] for c in INSTANCE_CASES])
def test_unregistered_instance_states(what, seen, state):
    assert instance_verdict(seen, T).state == state


# -- which instance is which node ------------------------------------------------------------

GATEWAY = Listed("gateway", "127.0.0.1", 8000, (), True, T - 60 * S)
MEMBERS = Listed("members", "127.0.0.1", 9020, ("GET/members",), True, T - 60 * S)


def _linked(nodes, seen):
    linked, unlinked = link(nodes, seen)
    return ({k[0]: sorted(s.instance for s in v) for k, v in linked.items()},
            sorted(s.instance for s in unlinked))


LINK_CASES = [
    ("the node it names", [GOODS, MEMBERS], [LIVE], {"goods": ["goods-a"]}, []),
    ("a wildcard host: the node at its port",
     [GOODS], [replace(LIVE, node=("0.0.0.0", 9010))], {"goods": ["goods-a"]}, []),
    ("a host the distributor saw otherwise: the one its connection comes from",
     [replace(GOODS, host="10.0.0.5")], [replace(LIVE, node=("goods.local", 9010), source="10.0.0.5")],
     {"goods": ["goods-a"]}, []),
    ("a port nobody listed", [GOODS], [replace(LIVE, node=("127.0.0.1", 9999))], {}, ["goods-a"]),
    ("names none (the gateway's shipper): the one node of its name at its host",
     [GOODS, GATEWAY], [Seen("gateway-x", "gateway", None, "127.0.0.1")], {"gateway": ["gateway-x"]}, []),
    ("names none, two nodes of its name: which is unknown",
     [GOODS, replace(GOODS, port=9011)], [replace(LIVE, node=None)], {}, ["goods-a"]),
    ("names none, its node has an instance that names it: another process (a script)",
     [GOODS], [LIVE, Seen("goods-script", "goods", None, "127.0.0.1")], {"goods": ["goods-a"]},
     ["goods-script"]),
    ("a restart: both instances on one address",
     [GOODS], [LIVE, replace(LIVE, instance="goods-b", first_seen_ms=T - 5 * S)],
     {"goods": ["goods-a", "goods-b"]}, []),
]


@pytest.mark.parametrize("what,nodes,seen,linked,unlinked", LINK_CASES, ids=[c[0] for c in LINK_CASES])
def test_link(what, nodes, seen, linked, unlinked):
    assert _linked(nodes, seen) == (linked, unlinked)


def test_merge_adds_connections_and_errors_and_keeps_the_last_heard():
    w0 = {"instance": "goods-a", "service": "goods", "node": ["127.0.0.1", 9010], "heard_ms": T - 9 * S,
          "first_seen_ms": T - 60 * S, "connections": 0, "dropped_ms": T - 9 * S, "events": 10,
          "errors": 1, "missing": 2, "heartbeat_s": 5.0}
    w1 = {"instance": "goods-a", "service": "goods", "node": ["127.0.0.1", 9010], "heard_ms": T - S,
          "first_seen_ms": T - 9 * S, "connections": 1, "events": 15, "errors": 2, "missing": 0,
          "heartbeat_s": 5.0}
    (m,) = merge([[w0], [w1]])
    assert (m.connections, m.errors, m.events, m.missing) == (1, 3, 15, 0)
    assert (m.heard_ms, m.first_seen_ms, m.dropped_ms) == (T - S, T - 60 * S, T - 9 * S)
    assert m.node == ("127.0.0.1", 9010)


# -- the tracker, over time -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __iadd__(self, ms: int) -> Clock:
        self.now += ms
        return self


def _node(name: str = "goods", port: int = 9010) -> Node:
    return Node(name, "127.0.0.1", port, (f"GET/{name}",))


def test_a_frozen_service_goes_silent_then_up_and_each_change_is_told_once():
    clock, tracker = Clock(), HealthTracker()
    seen = replace(LIVE, first_seen_ms=T, heard_ms=T, last_seen_ms=T)
    tracker.observe_nodes([_node()], clock.now)
    [change] = tracker.update([seen], {}, clock.now)
    assert (change.previous, change.row["state"], change.row["instance"]) == (None, UP, "goods-a")
    for _ in range(14):  # a frozen process: nothing heard for 14 s
        clock += S
        tracker.observe_nodes([_node()], clock.now)
        assert tracker.update([seen], {}, clock.now) == []
    clock += S
    [change] = tracker.update([seen], {}, clock.now)
    assert (change.previous, change.row["state"]) == (UP, SILENT)
    assert change.row["since_ms"] == clock.now and change.row["last_seen_ms"] == T
    clock += 3 * S
    assert tracker.update([seen], {}, clock.now) == []
    assert tracker.table[0]["since_ms"] == clock.now - 3 * S, "since stays while the state does"
    clock += S  # SIGCONT: its heartbeat arrives
    [change] = tracker.update([replace(seen, heard_ms=clock.now)], {}, clock.now)
    assert (change.previous, change.row["state"]) == (SILENT, UP)


def test_a_restart_on_the_same_address_is_counted_and_told():
    clock, tracker = Clock(), HealthTracker()
    old = replace(LIVE, first_seen_ms=T, heard_ms=T)
    tracker.observe_nodes([_node()], clock.now)
    tracker.update([old], {}, clock.now)
    clock += 2 * S  # killed; its supervisor starts it again at once, on the same port
    gone = replace(old, connections=0, dropped_ms=clock.now)
    new = replace(LIVE, instance="goods-b", first_seen_ms=clock.now, heard_ms=clock.now)
    [change] = tracker.update([gone, new], {}, clock.now)
    assert change.restarted and change.previous == UP and change.row["state"] == UP
    row = change.row
    assert (row["instance"], row["instances"], row["restarts"]) == ("goods-b", ["goods-a", "goods-b"], 1)
    assert row["first_seen_ms"] == clock.now
    clock += 10 * S
    assert tracker.update([gone, replace(new, heard_ms=clock.now)], {}, clock.now) == [], \
        "the old instance's closed connection is not the row's"


def test_a_killed_service_is_down_and_forgotten_after_a_while():
    clock, tracker = Clock(), HealthTracker()
    seen = replace(LIVE, first_seen_ms=T, heard_ms=T, last_seen_ms=T)
    tracker.observe_nodes([_node(), _node("members", 9020)], clock.now)
    tracker.update([seen], {}, clock.now)
    clock += S  # killed: it leaves the list and its shipper's connection closes
    gone = replace(seen, connections=0, dropped_ms=clock.now)
    tracker.observe_nodes([_node("members", 9020)], clock.now)
    assert tracker.update([gone], {}, clock.now) == []
    clock += DOWN_AFTER_MS
    tracker.observe_nodes([_node("members", 9020)], clock.now)
    [change] = tracker.update([gone], {}, clock.now)
    assert (change.row["name"], change.previous, change.row["state"]) == ("goods", UP, DOWN)
    assert change.row["registered"] is False
    clock += FORGET_AFTER_MS
    tracker.observe_nodes([_node("members", 9020)], clock.now)
    tracker.update([gone], {}, clock.now)
    assert [r["name"] for r in tracker.table] == ["members"]


def test_a_node_that_said_goodbye_is_gone_at_once_with_its_shipping_instance():
    """A clean stop unregisters (the distributor's list names it in ``left``): no down row for
    10 minutes, neither the node's nor its shipper's closed connection's; listed again, it is
    a row again; a node that left the same tick without a goodbye is still down."""
    clock, tracker = Clock(), HealthTracker()
    seen = replace(LIVE, first_seen_ms=T, heard_ms=T, last_seen_ms=T)
    tracker.observe_nodes([_node(), _node("members", 9020)], clock.now)
    tracker.update([seen], {}, clock.now)
    clock += S  # goods stops cleanly, members is killed
    gone = replace(seen, connections=0, dropped_ms=clock.now)
    tracker.observe_nodes([], clock.now, left=[("127.0.0.1", 9010)])
    tracker.update([gone], {}, clock.now)
    assert [r["name"] for r in tracker.table] == ["members"]
    clock += DOWN_AFTER_MS
    tracker.observe_nodes([], clock.now)  # the goodbye is out of the distributor's lists now
    [change] = tracker.update([gone], {}, clock.now)
    assert (change.row["name"], change.row["state"]) == ("members", DOWN)
    assert [r["name"] for r in tracker.table] == ["members"]
    clock += S  # goods starts again on its address: a row again, up
    tracker.observe_nodes([_node()], clock.now)
    again = replace(LIVE, instance="goods-b", first_seen_ms=clock.now, heard_ms=clock.now)
    tracker.update([gone, again], {}, clock.now)
    assert {r["name"]: (r["state"], r["instance"]) for r in tracker.table} == \
        {"goods": (UP, "goods-b"), "members": (DOWN, None)}


def test_an_instance_naming_no_listed_node_waits_for_the_list_then_is_unregistered():
    clock, tracker = Clock(), HealthTracker()
    script = Seen("billing-1", "billing", None, "127.0.0.1", first_seen_ms=T, heard_ms=T,
                  heartbeat_s=5.0, connections=1, events=3)
    assert tracker.update([script], {}, clock.now) == []
    clock += LINK_GRACE_MS
    [change] = tracker.update([replace(script, heard_ms=clock.now)], {}, clock.now)
    row = change.row
    assert (row["name"], row["state"], row["address"], row["registered"], row["events"]) == \
        ("billing", UNREGISTERED, None, False, 3)


def test_slow_comes_from_the_gateways_timeouts_by_address():
    clock, tracker = Clock(), HealthTracker()
    seen = replace(LIVE, first_seen_ms=T, heard_ms=T, last_seen_ms=T)
    tracker.observe_nodes([_node()], clock.now)
    tracker.update([seen], {}, clock.now)
    clock += S
    [change] = tracker.update([replace(seen, heard_ms=clock.now)], {"127.0.0.1:9010": 2}, clock.now)
    assert (change.previous, change.row["state"], change.row["timeouts"]) == (UP, SLOW, 2)
    clock += S
    [change] = tracker.update([replace(seen, heard_ms=clock.now)], {}, clock.now)
    assert change.row["state"] == UP



def test_replies_begun_and_never_ended_are_named_in_the_slow_row():
    """A service that starts a reply and never ends it with ¶ showed as slow with N gateway
    timeouts; the row says how many of them were unended replies (the gateway's 504 names
    them), in ``unended`` and at the head of its reason."""
    clock, tracker = Clock(), HealthTracker()
    seen = replace(LIVE, first_seen_ms=T, heard_ms=T, last_seen_ms=T)
    tracker.observe_nodes([_node()], clock.now)
    tracker.update([seen], {}, clock.now)
    clock += S
    [change] = tracker.update([replace(seen, heard_ms=clock.now)], {"127.0.0.1:9010": 3}, clock.now,
                              unended={"127.0.0.1:9010": 2, "127.0.0.1:9999": 5})
    row = change.row
    assert (row["state"], row["timeouts"], row["unended"]) == (SLOW, 3, 2)
    assert row["reason"].startswith("unended replies: 2 "), row["reason"]
    clock += S  # answered since: no timeouts, so no unended replies either
    [change] = tracker.update([replace(seen, heard_ms=clock.now)], {}, clock.now,
                              unended={"127.0.0.1:9010": 2})
    assert (change.row["state"], change.row["unended"]) == (UP, 0)


NORM = {"GET /goods": (600, 12.0), "POST /goods": (10, 15.0), "GET /members": (300, 0.4)}


@pytest.mark.parametrize("recent, want", [
    # 10x its route's usual median, 108 ms above it, over 8 requests: slow
    ({"a:1": [("GET /goods", 8, 120.0)]}, {"a:1"}),
    # as usual, or above it but under 5x / under 50 ms more: not news
    ({"a:1": [("GET /goods", 8, 14.0)], "b:2": [("GET /goods", 9, 59.0)]}, set()),
    ({"a:1": [("GET /members", 50, 40.0)]}, set()),  # 100x a tiny norm, only 40 ms more
    # too few requests of its own, or too few behind the norm, or no norm or no duration
    ({"a:1": [("GET /goods", 4, 900.0)]}, set()),
    ({"a:1": [("POST /goods", 40, 900.0)]}, set()),
    ({"a:1": [("DELETE /goods", 40, 900.0), ("GET /goods", 40, None)]}, set()),
    # one slow route among normal ones is enough
    ({"a:1": [("GET /members", 30, 0.5), ("GET /goods", 30, 400.0)]}, {"a:1"}),
])
def test_latency_far_above_the_routes_norm_is_slow(recent, want):
    got = latency_outliers(recent, NORM)
    assert set(got) == want
    for reason in got.values():
        assert "GET /goods" in reason and "usual 12 ms" in reason


def test_a_node_whose_latency_is_far_above_the_norm_is_slow_and_says_why():
    why = "GET /goods: median 120 ms over 8 request(s) in the last minute, 10x its usual 12 ms"
    assert node_verdict(GOODS, None, 0, T, why) == Verdict(SLOW, why)
    assert node_verdict(GOODS, None, 0, T, None).state == UP
    assert node_verdict(replace(GOODS, listed=False, left_ms=T - 60 * S), None, 0, T, why).state == DOWN
