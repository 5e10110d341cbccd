"""An access row that waited in the gateway's spool is stored as the same bytes as the row
sent at once: the spool keeps its record (``_as_record``) and its event number, and the
replay names the boot that shipped it, so its ``event.id`` and every field are the same."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool
from tests.logs.ingest.test_shipped import _encoded, _envelope, _rows, _store


@settings(max_examples=100, deadline=None)
@given(st.lists(_rows, min_size=1, max_size=8))
def test_a_spooled_row_is_stored_as_the_bytes_of_the_row_sent_at_once(rows: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shipper = Shipper("gateway", spool=Spool(Path(tmp)))
        for row in rows:
            shipper.ship_row(tuple(row))
        queued = [list(e) for e in shipper.queue]
        assert shipper._spill()  # what close() and a full queue do
        records, _ = Spool(Path(tmp)).take(len(rows))
    replayed = [[r[1], r[2], r[3], r[4], r[0]] for r in records]  # as the pump sends a take
    later_boot = f"gateway-{'0' * 12}"  # the restarted gateway replays it
    want = _encoded(_store([_envelope("gateway", shipper.instance, queued)])[1])
    assert len(want) == len(rows)
    assert _encoded(_store([_envelope("gateway", later_boot, replayed)])[1]) == want
    assert _encoded(_store([_envelope("gateway", later_boot, replayed)], fast=False)[1]) == want
