"""Prometheus text exposition of the logs service's counters.

One place renders every counter so ``/metrics``, the stats API and the web
UI read the same numbers (docs/metrics.md lists them).
"""

from __future__ import annotations

from collections.abc import Iterable


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Collects samples then renders them, each metric with its HELP and TYPE once."""

    def __init__(self) -> None:
        self._metrics: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: float,
            labels: dict[str, str] | None = None) -> None:
        entry = self._metrics.setdefault(name, (kind, help_text, []))
        entry[2].append((labels or {}, value))

    def add_many(self, name: str, kind: str, help_text: str,
                 samples: Iterable[tuple[dict[str, str], float]]) -> None:
        for labels, value in samples:
            self.add(name, kind, help_text, value, labels)

    def render(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, samples) in self._metrics.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {value:g}" if isinstance(value, float)
                           else f"{name}{_labels(labels)} {value}")
        return "\n".join(out) + "\n"
