"""The harness's own disk scan: what it counts as a stored copy of an event."""

from __future__ import annotations

from pathlib import Path

from tests.durability.harness import scan_disk


def test_a_damaged_line_counts_no_event_even_when_its_marker_was_cut_to_another(tmp_path: Path):
    """Damage that cut `dm..n530` after `n5` left a line whose remains read as event 5's marker:
    torture reported event 5 duplicated (run seed 2869434805). An unreadable line stores no event."""
    seg = tmp_path / "segments"
    seg.mkdir(parents=True)
    (seg / "w00-0000000000000064.ndjson").write_bytes(
        b'{"seq":64,"message":"dm969494d7n5 streamed"}\n'
        b'{"seq":128,"message":"dm969494d7n5' + b"\xff" * 40 + b'\n'
        b'{"seq":192,"message":"dm969494d7n531 streamed"}\n')
    scan = scan_disk(tmp_path)
    assert scan.events == 2 and scan.bad_lines == 1
    assert scan.markers["dm969494d7n5"] == 1
    assert scan.markers["dm969494d7n531"] == 1
