"""The catalogue of the data directory: which segments, Parquet files and quarantined
files there are, and what they take on disk.

Every walk of ``segments/``, ``parquet/`` and ``quarantine/`` is here, and every
name is parsed once, with store/layout.py: the writer's recovery, compaction,
retention, the query engine, the loss ledger and the sinks ask the catalogue
instead of listing directories with rules of their own, so a new kind of file,
or a name rule, changes in one place.

Listing takes no lock, like reading (store/reader.py): compaction and retention
remove files under every reader, so a file listed may be gone when it is
opened, and callers take FileNotFoundError as "moved on", never as damage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .segment_index import read_sealed


@dataclass(frozen=True)
class DataFile:
    """A segment or a Parquet file, its name parsed.

    ``worker`` and ``first_seq`` are -1 for a Parquet file whose name does not follow
    layout.py (one copied in by hand): the engine reads it all the same.
    """

    path: Path
    worker: int
    first_seq: int


@dataclass(frozen=True)
class SegmentInfo:
    path: Path
    worker: int
    first_seq: int
    index: dict | None  # None while the segment is active (or before recovery)

    @property
    def sealed(self) -> bool:
        return self.index is not None

    def overlaps(self, start_ms: int | None, end_ms: int | None) -> bool:
        """Could this segment hold events with @timestamp in [start, end]?"""
        if self.index is None:
            return True
        if start_ms is not None and self.index["max_ts"] < start_ms:
            return False
        if end_ms is not None and self.index["min_ts"] > end_ms:
            return False
        return True


@dataclass(frozen=True)
class Usage:
    """What the store's files take: the number ``--max-disk`` limits is ``bytes``."""

    files: int  # segments and Parquet files
    data_bytes: int  # their bytes
    index_bytes: int  # their .idx.json, .counts.json, .blocks.json and .red files' bytes

    @property
    def bytes(self) -> int:
        return self.data_bytes + self.index_bytes


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _data_files(directory: Path, names: list[str], suffix: str, worker: int | None,
                unnamed: bool) -> list[DataFile]:
    """``names`` ending in ``suffix`` as DataFiles, by name (= by worker, then first seq:
    both are zero-padded); ``unnamed``: keep the names layout.py cannot parse too."""
    out = []
    for name in sorted(names):
        if not name.endswith(suffix):
            continue
        parsed = layout.parse_name(name, suffix)
        if parsed is None and not unnamed:
            continue
        w, first = parsed if parsed is not None else (-1, -1)
        if worker is None or w == worker:
            out.append(DataFile(directory / name, w, first))
    return out


def segment_files(data_dir: Path, worker: int | None = None) -> list[DataFile]:
    """Every segment (of ``worker`` only, if given), by worker and first seq; indexes unread."""
    seg_dir = Path(data_dir) / layout.SEGMENTS_DIR
    return _data_files(seg_dir, _names(seg_dir), layout.SEGMENT_SUFFIX, worker, unnamed=False)


def list_segments(data_dir: Path) -> list[SegmentInfo]:
    """Every segment of every worker with its index, by worker and first seq."""
    seg_dir = Path(data_dir) / layout.SEGMENTS_DIR
    names = _names(seg_dir)
    present = set(names)
    out = []
    for f in _data_files(seg_dir, names, layout.SEGMENT_SUFFIX, None, unnamed=False):
        idx_name = layout.index_name(f.path.name)
        index = None
        if idx_name in present:
            try:
                index = read_sealed((seg_dir / idx_name).read_bytes())
            except (OSError, ValueError):  # recovery rebuilds it at the next start
                index = None
        out.append(SegmentInfo(f.path, f.worker, f.first_seq, index))
    return out


def parquet_names(data_dir: Path) -> set[str]:
    """The names of the Parquet files, unparsed: the engine's refresh lists them before every
    query and parses only the new ones (thousands of files are a month of hourly segments)."""
    return {n for n in _names(Path(data_dir) / layout.PARQUET_DIR)
            if n.endswith(layout.PARQUET_SUFFIX)}


def parquet_files(data_dir: Path, worker: int | None = None) -> list[DataFile]:
    """Every Parquet file (of ``worker`` only, if given), by name."""
    pq_dir = Path(data_dir) / layout.PARQUET_DIR
    return _data_files(pq_dir, _names(pq_dir), layout.PARQUET_SUFFIX, worker,
                       unnamed=worker is None)


def tmp_files(data_dir: Path, sub: str, worker: int | None = None) -> list[Path]:
    """Files still being written (``*.tmp``) in ``sub`` (of ``worker`` only, if given): once
    their writer is gone, a crash left them and the files they were to replace are intact."""
    prefixes = (f"w{worker:02d}-", f"w{worker:02d}.") if worker is not None else ("",)
    directory = Path(data_dir) / sub
    return [directory / n for n in _names(directory)
            if n.endswith(layout.TMP_SUFFIX) and n.startswith(prefixes)]


def orphans(data_dir: Path) -> list[Path]:
    """The ``.red`` summaries and ``.blocks.json`` indexes in ``parquet/`` beside no Parquet file.

    Compaction writes both before the Parquet file's rename, its commit point: a compaction that
    failed there (a full disk) or was killed left them, and once retention deleted the segment
    no later compaction replaced them. No reader opens them, but ``usage`` counted them, so
    ``--max-disk`` deleted acknowledged events for bytes it could never free (found from
    outside). Only their compactor may remove them (one of its passes may be writing them).
    """
    directory = Path(data_dir) / layout.PARQUET_DIR
    names = _names(directory)
    stems = {n[: -len(layout.PARQUET_SUFFIX)] for n in names if n.endswith(layout.PARQUET_SUFFIX)}
    out = []
    for name in names:
        for suffix in (layout.RED_SUFFIX, layout.BLOCKS_SUFFIX):
            if name.endswith(suffix) and name[: -len(suffix)] not in stems:
                out.append(directory / name)
    return out


def usage(data_dir: Path) -> Usage:
    """The segments' and Parquet files' count and bytes, with their indexes' bytes.

    What counts is what the listings above return: segments by their name, Parquet
    files by their suffix (so one copied in by hand is counted as it is read).
    """
    files = data = index = 0
    for sub, is_data, index_suffix in (
            # an unsealed segment's counts (live_counts.py) too: a worker that no longer runs
            # (--workers lowered after a crash) leaves its own until it runs again (recovery)
            (layout.SEGMENTS_DIR, lambda n: layout.parse_name(n) is not None,
             (layout.INDEX_SUFFIX, layout.COUNTS_SUFFIX)),
            (layout.PARQUET_DIR, lambda n: n.endswith(layout.PARQUET_SUFFIX),
             (layout.BLOCKS_SUFFIX, layout.RED_SUFFIX))):
        try:
            with os.scandir(Path(data_dir) / sub) as it:
                for entry in it:
                    counted_as_data = is_data(entry.name)
                    if not counted_as_data and not entry.name.endswith(index_suffix):
                        continue
                    try:
                        size = entry.stat().st_size
                    except FileNotFoundError:
                        continue  # removed by compaction or retention meanwhile
                    if counted_as_data:
                        files += 1
                        data += size
                    else:
                        index += size
        except FileNotFoundError:
            pass
    return Usage(files, data, index)


def quarantined(data_dir: Path) -> tuple[int, int]:
    """(files, bytes) in the data directory's quarantine."""
    files = size = 0
    try:
        with os.scandir(Path(data_dir) / layout.QUARANTINE_DIR) as it:
            for entry in it:
                files += 1
                size += entry.stat().st_size
    except FileNotFoundError:
        pass
    return files, size


def set_aside(path: Path) -> Path:
    """Move a whole file of ``segments/`` or ``parquet/`` that no reader can use to
    ``quarantine/<name>@0.damaged``, for a human; FileNotFoundError if it is gone already.
    The caller fsyncs the quarantine directory (the returned path's parent) if it must."""
    qdir = path.parent.parent / layout.QUARANTINE_DIR
    qdir.mkdir(exist_ok=True)
    target = qdir / f"{path.name}@0{layout.QUARANTINE_SUFFIX}"
    os.replace(path, target)
    return target


def owned_by(worker: int, workers: int) -> Callable[[int], bool]:
    """Which workers' segments the compactor of ``worker`` (of ``workers`` running) takes:
    its own; worker 0's also those of a worker that is not running (a store written with
    more workers, or a name without one: -1), which no writer seals or compacts otherwise."""
    if worker == 0:
        return lambda w: w == 0 or not 0 <= w < workers
    return lambda w: w == worker


def tmp_worker(name: str) -> int:
    """The worker of a ``wNN-...`` file being written in the Parquet directory (-1: no worker's)."""
    return int(name[1:3]) if len(name) > 3 and name[0] == "w" and name[1:3].isdigit() and name[3] == "-" else -1
