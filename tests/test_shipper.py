"""The shipper's own bookkeeping: what it spools keeps each event's instance and number."""

from __future__ import annotations

from pathlib import Path

from logmesh.shipper import Shipper
from logmesh.spool import Spool


async def test_close_spools_what_is_still_queued_with_its_event_id(tmp_path: Path) -> None:
    shipper = Shipper("svc", spool=Spool(tmp_path / "spool"))  # no logs service known
    shipper.start()
    shipper.ship(b'{"uri":"/a","method":"GET"}')
    shipper.ship_record("hello", {"log.level": "info"})
    await shipper.close()  # before the linger ran: close itself must spool them
    records, _ = Spool(tmp_path / "spool").take(10)
    assert [(r[0], r[1]) for r in records] == [(shipper.instance, 1), (shipper.instance, 2)]
    assert records[0][3] == '{"uri":"/a","method":"GET"}' and records[0][4] is None
    assert records[1][3] == "hello" and records[1][4] == {"log.level": "info"}
