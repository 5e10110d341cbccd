"""Metrics through prometheus-client: counters, gauges and histograms, one registry per server.

A server makes one :class:`Metrics` and creates its counters, gauges and
histograms through it (prometheus-client's own classes, bound to that
registry); the code counts on them, and whatever shows a number -- ``/metrics``,
the stats API, the tests -- reads them back (:func:`value`), so there is one
count, not a counter and a copy. docs/metrics.md lists every metric.

The counters and latency histograms a mesh part touches on every request
(:meth:`Metrics.request_counter`, :meth:`Metrics.request_histogram`) are plain
numbers read into prometheus-client's families at scrape time: the same
samples, for ~0.1 µs an increment and ~0.3 µs an observation instead of
~0.7 and ~1.6 (prometheus-client takes a lock for each value it changes).

Some numbers do not live in metric objects; they are handed over in an
:class:`Exposition` (``ex.add(name, kind, help, value, labels)``):

* gauges computed from state (the logs service's health and writability, queue
  lengths, live segments, a sink's lag): :meth:`Metrics.publish`-ed, which sets
  them as they are now;
* a shipper's counts (a dict it keeps on every request of its service, one process
  only): added to its service's or gateway's page when it is asked for;
* numbers of the whole data directory (disk usage): added to the scrape's
  own :class:`Exposition` by whichever process answers it.

**Multiprocess mode** (``logmesh logs --workers N``): the workers share the
HTTP port, so a scrape reaches one of them. Given a directory, a
:class:`Metrics` keeps its values in memory-mapped files there, in
prometheus-client's multiprocess format (one file per process and metric type);
any worker's ``/metrics`` merges every file with ``MultiProcessCollector``.
Counters of a process add up with its siblings' of the same labels; gauges of
now use ``livesum`` (a process's files go when it stops: ``mark_process_dead``),
a maximum so far ``max`` (kept after its process stops, like a counter); files
of processes no longer running are deleted when a process starts. The
directory is chosen per registry, not by ``PROMETHEUS_MULTIPROC_DIR``: one
Python process (the tests) may run several servers, each with its own.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.utils import floatToGoString

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Exposition", "Metrics", "value"]

# No ``*_created`` series: a counter's start time is not something logmesh's pages list.
disable_created_metrics()

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Request latencies from 0.1 ms (a cached answer) to 10 s (a query at its time limit).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GAUGE_MODE = "livesum"  # multiprocess: the live processes' values of a label set, added up


def value(metric: Any) -> float:
    """The current value of a counter or gauge (a child, if it has labels).

    prometheus-client has no public getter; every read in logmesh goes through here.
    """
    if isinstance(metric, PlainCount):
        return metric.n
    return metric._value.get()


def number(x: float) -> int | float:
    """``3.0`` -> ``3``: counts read back from metrics, for JSON and comparisons."""
    return int(x) if x == int(x) else x


# -- multiprocess values -----------------------------------------------------------------

_idents = itertools.count()


def pid_running(pid: int) -> bool:
    """Is a process of this pid running (one we may not signal is)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(path: Path) -> str:
    """The process identity a multiprocess file belongs to: ``counter_1234.db`` -> ``1234``."""
    return path.stem.rsplit("_", 1)[-1]


def clean_stale(directory: Path, own: str) -> list[Path]:
    """Delete the files of processes no longer running (and any left with our identity).

    A restarted worker's counters start again from zero, as they would in one
    process: Prometheus reads that as a counter reset.
    """
    gone = []
    for path in directory.glob("*.db"):
        owner = _owner(path)
        pid = owner.split("x", 1)[0]
        if owner == own or not pid.isdigit() or not pid_running(int(pid)):
            try:
                path.unlink()
                gone.append(path)
            except FileNotFoundError:
                pass
    return gone


def _file_value_class(directory: str, ident: str) -> tuple[type, Any]:
    """A prometheus-client value class writing to ``directory``'s files for process ``ident``.

    What ``prometheus_client.values.MultiProcessValue`` does, with the directory
    and the identity given instead of read from the environment and the pid.
    """
    lock = threading.Lock()
    files: dict[str, MmapedDict] = {}
    closed = False

    class FileValue:
        _multiprocess = True

        def __init__(self, typ: str, metric_name: str, name: str, labelnames: Any,
                     labelvalues: Any, help_text: str, multiprocess_mode: str = "",
                     **kwargs: Any) -> None:
            prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
            self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
            self._value = 0.0
            with lock:
                self._file = files.get(prefix)
                if self._file is None and not closed:
                    self._file = files[prefix] = MmapedDict(
                        os.path.join(directory, f"{prefix}_{ident}.db"))
                if self._file is not None:
                    self._value = self._file.read_value(self._key)[0]

        def inc(self, amount: float) -> None:
            with lock:
                self._value += amount
                if not closed:
                    self._file.write_value(self._key, self._value, 0.0)

        def set(self, value: float, timestamp: float | None = None) -> None:
            with lock:
                self._value = value
                if not closed:
                    self._file.write_value(self._key, value, timestamp or 0.0)

        def get(self) -> float:
            return self._value

        def set_exemplar(self, exemplar: Any) -> None:
            pass

        def get_exemplar(self) -> None:
            return None

    def close() -> None:
        nonlocal closed
        with lock:
            closed = True  # values still count in memory; the files are let go
            for f in files.values():
                f.close()
            files.clear()

    return FileValue, close


_SWAP = threading.Lock()


def _bound(base: type, value_class: type) -> type:
    """``base`` (Counter, Gauge, Histogram) whose values are ``value_class``'s.

    prometheus-client picks the value class from a module global when a metric
    (or a labelled child) is made; it is swapped for that moment, under a lock.
    """
    def _metric_init(self: Any) -> None:
        with _SWAP:
            saved = values.ValueClass
            values.ValueClass = value_class
            try:
                base._metric_init(self)
            finally:
                values.ValueClass = saved

    return type(base.__name__, (base,), {"_metric_init": _metric_init})


# -- plain counts on a request path -------------------------------------------------------

class PlainCount:
    """One counter's number, a plain int: ``inc`` is an addition, no lock (the counting
    thread is the event loop's; prometheus-client's ``inc`` takes a lock, ~0.7 µs)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def inc(self, amount: int = 1) -> None:
        self.n += amount


class _PlainFamily:
    """A family's children by label values, made on first use (as prometheus-client's)."""

    __slots__ = ()
    name: str
    labelnames: tuple[str, ...]
    _children: dict[tuple[str, ...], Any]

    def _child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        key = tuple(str(v) for v in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {self.labelnames}, given {key}")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._child()
        return child


class PlainCounter(PlainCount, _PlainFamily):
    """A counter family counted in :class:`PlainCount` children and read into
    prometheus-client's ``CounterMetricFamily`` at scrape time: the same samples as a
    ``Counter`` of the same name and labels. Without labels it counts itself (``inc``)."""

    __slots__ = ("name", "help_text", "labelnames", "_children")

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...]) -> None:
        super().__init__()
        self.name, self.help_text, self.labelnames = name, help_text, labelnames
        self._children: dict[tuple[str, ...], PlainCount] = {} if labelnames else {(): self}

    def _child(self) -> PlainCount:
        return PlainCount()

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.help_text, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.help_text, labels=self.labelnames)
        for key, child in list(self._children.items()):
            family.add_metric(key, float(child.n))
        yield family


class PlainTiming:
    """One histogram's buckets as plain ints: ``observe`` finds the bucket by bisection and
    adds one (prometheus-client's scans the bounds and takes two locks: ~1.6 µs)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float, _at: Any = bisect.bisect_left) -> None:
        self.counts[_at(self.bounds, amount)] += 1  # the first bound >= amount: ``le``
        self.sum += amount


class PlainHistogram(_PlainFamily):
    """A histogram family of :class:`PlainTiming` children, read into prometheus-client's
    ``HistogramMetricFamily`` at scrape time: the samples a ``Histogram`` would show."""

    __slots__ = ("name", "help_text", "labelnames", "bounds", "_children")

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...],
                 buckets: tuple[float, ...]) -> None:
        bounds = tuple(float(b) for b in buckets)
        if bounds[-1] != float("inf"):
            bounds += (float("inf"),)
        self.name, self.help_text, self.labelnames, self.bounds = name, help_text, labelnames, bounds
        self._children: dict[tuple[str, ...], PlainTiming] = {}

    def _child(self) -> PlainTiming:
        return PlainTiming(self.bounds)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.help_text, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.help_text, labels=self.labelnames)
        les = [floatToGoString(b) for b in self.bounds]
        for key, child in list(self._children.items()):
            cumulative, total = [], 0
            for le, n in zip(les, list(child.counts), strict=True):
                total += n
                cumulative.append((le, float(total)))
            family.add_metric(key, cumulative, child.sum)
        yield family


# -- the registry --------------------------------------------------------------------------

class Metrics:
    """The metric objects of one server, and what its ``/metrics`` shows.

    ``directory``: multiprocess mode, with the files of every process sharing it.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self.directory = Path(directory) if directory is not None else None
        self._published: list[Metric] = []
        self._mirrored: dict[tuple, Any] = {}
        self._close_files: Any = None
        self.ident = ""
        self._classes: dict[type, type] = {Counter: Counter, Gauge: Gauge, Histogram: Histogram}
        if self.directory is not None:
            n = next(_idents)
            self.ident = str(os.getpid()) + (f"x{n}" if n else "")
            self.directory.mkdir(parents=True, exist_ok=True)
            clean_stale(self.directory, self.ident)
            self._value_class, self._close_files = _file_value_class(str(self.directory), self.ident)
            self._classes = {k: _bound(k, self._value_class) for k in self._classes}

    @property
    def multiprocess(self) -> bool:
        return self.directory is not None

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        """``name`` with or without ``_total``: it is shown with it."""
        return self._classes[Counter](name, help_text, tuple(labels), registry=self.registry)

    def gauge(self, name: str, help_text: str, labels: Iterable[str] = (),
              mode: str = GAUGE_MODE) -> Gauge:
        """``mode``: how multiprocess mode merges the processes' values of one label set
        (prometheus-client's ``multiprocess_mode``): ``livesum`` for a gauge of now, ``max``
        for a maximum so far (kept, like a counter, after its process stops)."""
        return self._classes[Gauge](name, help_text, tuple(labels), registry=self.registry,
                                    multiprocess_mode=mode)

    def histogram(self, name: str, help_text: str, labels: Iterable[str] = (),
                  buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        return self._classes[Histogram](name, help_text, tuple(labels), registry=self.registry,
                                        buckets=tuple(buckets))

    def request_counter(self, name: str, help_text: str,
                        labels: Iterable[str] = ()) -> PlainCounter | Counter:
        """A counter counted on every request (a mesh part's request path): plain numbers
        read at scrape time; in multiprocess mode prometheus-client's (the numbers must
        reach the shared files)."""
        if self.directory is not None:
            return self.counter(name, help_text, labels)
        counter = PlainCounter(name, help_text, tuple(labels))
        self.registry.register(counter)  # type: ignore[arg-type]
        return counter

    def request_histogram(self, name: str, help_text: str, labels: Iterable[str] = (),
                          buckets: Iterable[float] = LATENCY_BUCKETS) -> PlainHistogram | Histogram:
        """A histogram observed on every request: as :meth:`request_counter`."""
        if self.directory is not None:
            return self.histogram(name, help_text, labels, buckets)
        histogram = PlainHistogram(name, help_text, tuple(labels), tuple(buckets))
        self.registry.register(histogram)  # type: ignore[arg-type]
        return histogram

    def publish(self, ex: Exposition) -> None:
        """Show ``ex``'s numbers (kept elsewhere, or computed now) until the next publish.

        In multiprocess mode they are written to this process's files, so every
        sibling's scrape sees them too.
        """
        if self.directory is None:
            self._published = ex.families()
            return
        for name, kind, help_text, labels, val in ex.samples():
            key = (name, kind, tuple(sorted(labels.items())))
            v = self._mirrored.get(key)
            if v is None:
                family = name[: -len("_total")] if kind == "counter" else name
                names = tuple(sorted(labels))
                v = self._mirrored[key] = self._value_class(
                    kind, family, name, names, tuple(labels[k] for k in names), help_text,
                    multiprocess_mode=GAUGE_MODE)
            v.set(float(val))

    def collect(self) -> Iterator[Metric]:
        """Every family: this registry's metrics and what was published; in multiprocess
        mode those of every process sharing the directory."""
        if self.directory is None:
            yield from self.registry.collect()
            yield from self._published
            return
        for attempt in range(3):
            try:  # a starting sibling may delete a dead process's file between glob and read
                merged = list(MultiProcessCollector(None, path=str(self.directory)).collect())
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        yield from merged

    def close(self) -> None:
        """This process stops: its gauges go from the merged view (its counters stay)."""
        if self.directory is not None and self._close_files is not None:
            self._close_files()
            self._close_files = None
            mark_process_dead(self.ident, str(self.directory))


# -- one scrape ----------------------------------------------------------------------------

_INTEGRAL = re.compile(r"^([^#\n][^\n]* -?\d+)\.0$", re.M)


class Exposition:
    """Numbers by name (``add``), and whole :class:`Metrics` (``include``), rendered together.

    ``add`` is for numbers that do not live in metric objects (module docstring);
    one name is one family, with the same label names on every sample.
    """

    def __init__(self) -> None:
        self._added: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]] = {}
        self._included: list[Metrics] = []

    def add(self, name: str, kind: str, help_text: str, value: float,
            labels: dict[str, str] | None = None) -> None:
        entry = self._added.setdefault(name, (kind, help_text, []))
        entry[2].append(({k: str(v) for k, v in (labels or {}).items()}, value))

    def add_many(self, name: str, kind: str, help_text: str,
                 samples: Iterable[tuple[dict[str, str], float]]) -> None:
        for labels, val in samples:
            self.add(name, kind, help_text, val, labels)

    def include(self, metrics: Metrics) -> None:
        self._included.append(metrics)

    def samples(self) -> Iterator[tuple[str, str, str, dict[str, str], float]]:
        """``(name, kind, help, labels, value)`` of every added sample."""
        for name, (kind, help_text, samples) in self._added.items():
            for labels, val in samples:
                yield name, kind, help_text, labels, val

    def families(self) -> list[Metric]:
        out: list[Metric] = []
        for name, (kind, help_text, samples) in self._added.items():
            names = sorted(samples[0][0])
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = cls(name, help_text, labels=names)
            for labels, val in samples:
                family.add_metric([labels[k] for k in names], float(val))
            out.append(family)
        return out

    def collect(self) -> Iterator[Metric]:
        for metrics in self._included:
            yield from metrics.collect()
        yield from self.families()

    def render(self) -> str:
        """Prometheus text format (prometheus-client's ``generate_latest``), whole numbers
        without ``.0`` as the Go and Node clients print them."""
        return _INTEGRAL.sub(r"\1", generate_latest(self).decode())  # type: ignore[arg-type]
