"""docs/metrics.md lists every metric the code emits (a new one without a line fails here)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMIT = re.compile(r'ex\.add(?:_many)?\(\s*f?"(logmesh_[a-z_]+)(\{key\})?([a-z_]*)"')


def emitted() -> set[str]:
    names = set()
    for path in (ROOT / "logmesh").rglob("*.py"):
        for m in EMIT.finditer(path.read_text()):
            names.add(m.group(1) + ("{key}" if m.group(2) else "") + m.group(3))
    return names


def test_every_emitted_metric_is_documented() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    names = emitted()
    assert len(names) > 30  # the scan itself works
    missing = []
    for name in names:
        if "{key}" in name:  # one metric per key: the doc names the family by its prefix
            if name.split("{key}")[0] not in doc:
                missing.append(name)
        elif name not in doc:
            missing.append(name)
    assert not missing, f"add to docs/metrics.md: {sorted(missing)}"
