"""Newest (or oldest) N events for a word the token index finds in few blocks.

The usual path (engine.search) hands DuckDB one statement of a ``read_parquet`` per file
with the kept blocks as ``@timestamp`` ranges: it decodes every kept row group's
``message`` and runs the query's regex over it, then the other columns of its hits, with
a statement's and a file's fixed costs on top.

Here the kept blocks of files whose blocks are their row groups (every file compaction
writes; old, hand-copied or larger-grouped files take the usual path) are read by pyarrow
in two steps, tasks READ_THREADS at a time (pyarrow lets go of the GIL), footers read once
per file:

1. **scan**: each kept row group's ``@timestamp``, ``seq`` and ``message`` only. The rows
   whose message bytes hold the query's required words with every byte's 0x20 bit set (so
   ASCII letters in either case: a superset of the token match, which folds ASCII letters
   only) are its *candidates*, found by ``bytes.find`` over the column's data buffer: a
   tenth of the cost of ``match_substring`` on 16,384 rows. A group without a candidate
   (a Bloom filter's false positive) costs nothing more.
2. **fetch**: the other columns of the groups holding candidates, cut to those rows
   (``take``). No reader here decodes less than a column chunk (docs/benchmarks.md, "Rare
   word, fourth/fifth pass"), so a hit still costs its group's every column.

When the query is words of ``message`` alone (token_need.word_check), the candidates are
checked by pyarrow with the SQL's own RE2 regex, with the range and the cursor, sorted and
cut to N before step 2, and the events are built from the Arrow rows: no DuckDB statement.
Otherwise DuckDB runs the query's full WHERE over the candidates' columns it names
(read_by), and step 2 reads every column of the first N only.

Groups are scanned newest first in waves (FIRST_WAVE_ROWS, then 4x each) and the search
stops once the N-th event found is newer than every group not read yet.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..event import FIELD_TYPES
from ..store import layout
from ..store.blocks import ParquetFile
from ..store.columns import COLUMNS, TS, ident
from ..store.tokens import Need
from .errors import DamagedFile, FileGone
from .execution import DuckDB, event_dict, lower_priority
from .page_bytes import PAGE_BYTES
from .plan import block_mask

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

NAMES = [name for name, _ in COLUMNS]
HEAD = ["@timestamp", "seq", "message"]  # step 1's columns
REST = [n for n in NAMES if n not in HEAD]  # step 2's
MAX_GROUP_ROWS = layout.PARQUET_ROW_GROUP_ROWS  # files of larger row groups take the usual path
MAX_ROWS = 2_000_000  # kept rows past this: the usual path (it stops early for a frequent word)
FIRST_WAVE_ROWS = 250_000  # as plan.FIRST_SLICE_ROWS: rows of the first wave, x4 each
READ_THREADS = 2  # row groups decoded at once (the machine's cores; pyarrow releases the GIL)
GROUPS_PER_TASK = 4  # row groups of one file a scan reads, when a wave has many (else one)
SMALL_DICTIONARY = 4096  # compressed bytes of a column chunk's dictionary page read as a dictionary
DENSE = 8  # a word found in more than 1/DENSE of a chunk's rows: match_substring, not a find loop
MAX_FOOTERS = 64  # files whose footers stay in memory (footer)
MAX_GROUP_BYTES = PAGE_BYTES  # a file with a kept row group of more data takes the usual path (big_groups)

_pools: dict[int, ThreadPoolExecutor] = {}  # nice -> its pool
_footers: deque[ParquetFile] = deque()  # the files holding a footer, oldest first
_pool_lock = threading.Lock()
T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """A kept block of a file, which is its row group ``index``."""

    pf: ParquetFile
    index: int
    min_ts: int
    max_ts: int
    rows: int


@dataclass(frozen=True)
class Scanned:
    """Step 1 of some row groups of one file: its candidates (those ``check`` kept, if it
    ran), in file order."""

    pf: ParquetFile
    group: list[int]  # per candidate, its row group
    row: list[int]  # per candidate, its row in that group
    head: pa.Table  # per candidate, HEAD
    rest: pa.Table | None = None  # per candidate, REST, when its task fetched them (Eager)


class Eager:
    """Step 2 in step 1's task, for a query ``check`` decides alone: a task whose matches,
    with every match claimed before them in the query, are at most ``limit`` fetches their
    other columns at once, from the footer and file it holds, instead of after a barrier
    that waits for every scan of the wave. A rare word's matches are all in the answer, so
    nothing is read twice; a frequent word's tasks find more than ``limit`` and leave
    step 2 to the first ``limit`` alone. At most ``limit`` matches are fetched this way
    (some of them may end up past the first ``limit``: a bounded waste, most tasks run
    newest first)."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def claim(self, n: int) -> bool:
        with self.lock:
            if not 0 < n <= self.left:
                return False
            self.left -= n
            return True


def kept(db: DuckDB, files: tuple[ParquetFile, ...], start: int, end: int,
         need: Need) -> tuple[list[Group], list[ParquetFile]] | None:
    """(the kept groups of the files this path reads, the files left to the usual path), or
    None when the kept rows are too many for it (MAX_ROWS)."""
    import numpy as np
    groups: list[Group] = []
    rest: list[ParquetFile] = []
    rows = 0
    for pf in files:
        if pf.max_ts < start or pf.min_ts > end:
            continue
        if not 0 < pf.index.get("block_rows", 0) <= MAX_GROUP_ROWS:
            rest.append(pf)  # an unknown or a larger size: DuckDB skips vectors a pyarrow read decodes
            continue
        mask = block_mask(pf, need)
        if mask is None:
            rest.append(pf)  # no usable filters
            continue
        sel = np.flatnonzero(mask)
        if not len(sel):
            continue
        try:
            if not lines_up(pf) or big_groups(pf, sel.tolist()):
                rest.append(pf)
                continue
        except (OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError) or db.unreadable(pf.path):
                raise file_error(db, pf, exc) from None
            rest.append(pf)  # a footer pyarrow refuses and DuckDB reads (its ARROW:schema damaged)
            continue
        for i in sel.tolist():
            lo, hi, n = pf.blocks[i][:3]
            if hi >= start and lo <= end:
                groups.append(Group(pf, i, lo, hi, n))
                rows += n
        if rows > MAX_ROWS:
            return None
    return groups, rest


def candidates(need: Need, message: pa.ChunkedArray) -> np.ndarray:
    """The rows of ``message`` (in order) that may hold what ``need`` requires: every required
    key (a prefix key ``*abcd`` as ``abcd``) in the row's bytes, compared with each byte's
    0x20 bit set on both sides. Keys are ASCII (tokens.indexed), and a match folds ASCII
    letters only, so every matching row is among these."""
    import numpy as np

    def walk(n: Need) -> np.ndarray | None:
        if n.op == "keys":
            out = None
            for key in n.keys:
                rows = _rows_with(message, key.lstrip("*"))
                out = rows if out is None else np.intersect1d(out, rows)
            return out
        parts = [p for p in (walk(c) for c in n.children) if p is not None]
        if n.op == "or" and len(parts) < len(n.children):
            return None
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = np.intersect1d(out, p) if n.op == "and" else np.union1d(out, p)
        return out

    got = walk(need)
    return np.arange(len(message)) if got is None else got


def _rows_with(message: pa.ChunkedArray, key: str) -> np.ndarray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from . import byte_search  # numpy and ctypes: imported at a worker's first rare word
    needle = bytes(b | 0x20 for b in key.encode("ascii"))
    out, base = [], 0
    for chunk in message.chunks:
        n = len(chunk)
        if n == 0:
            continue
        wide = pa.types.is_large_string(chunk.type)
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if wide else np.int32)[
            chunk.offset:chunk.offset + n + 1]
        hay = byte_search.haystack(int(offsets[-1] - offsets[0]))
        hay.fill_folded(chunk.buffers()[2], int(offsets[0]), int(offsets[-1]))
        at = hay.find_all(needle, n // DENSE + 1)
        if at is None:  # a frequent word: one vectorised pass instead (a superset too)
            rows = np.flatnonzero(pc.fill_null(pc.match_substring(chunk, key, ignore_case=True), False))
        else:
            rows = np.unique(np.searchsorted(offsets - offsets[0], at, side="right") - 1)
        out.append(rows + base)
        base += n
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def footer(pf: ParquetFile) -> Any:
    """The file's footer as pyarrow reads it, kept with the file (files never change once
    written) for the MAX_FOOTERS files read last: ~0.4 MB each in memory."""
    import pyarrow.parquet as pq
    md = pf.arrow_metadata
    if md is None:
        md = pf.arrow_metadata = pq.read_metadata(pf.path)
        with _pool_lock:
            _footers.append(pf)
            while len(_footers) > MAX_FOOTERS:
                _footers.popleft().arrow_metadata = None  # a reader holding it keeps its own
    return md


def lines_up(pf: ParquetFile) -> bool:
    """Are the file's index blocks its row groups (same count, same rows)?"""
    md = footer(pf)
    return md.num_row_groups == len(pf.blocks) and all(
        md.row_group(i).num_rows == b[2] for i, b in enumerate(pf.blocks))


def big_groups(pf: ParquetFile, indexes: list[int]) -> bool:
    """Does a row group of these hold more than MAX_GROUP_BYTES of data? This path reads a
    group's columns whole (a scan its messages, a fetch the rest), which the page's byte
    budget cannot cut (query/page_bytes.py): 64 events of 4 MiB made one group of 256 MiB.
    DuckDB's path reads their keys and sizes first."""
    md = footer(pf)
    return any(md.row_group(i).total_byte_size > MAX_GROUP_BYTES for i in indexes)


def small_dictionaries(md: Any, indexes: list[int]) -> list[str]:
    """The string columns whose pages are all in a small dictionary in these row groups
    (service names, levels, paths): read as dictionaries, ~30% less CPU a row group."""
    out = []
    for j in range(md.num_columns):
        chunks = [md.row_group(g).column(j) for g in indexes]
        if all(c.physical_type == "BYTE_ARRAY" and c.has_dictionary_page
               and c.data_page_offset - c.dictionary_page_offset < SMALL_DICTIONARY
               and not any(e.startswith("DELTA") for e in c.encodings) for c in chunks):
            out.append(chunks[0].path_in_schema)
    return [n for n in out if n in REST]


def scan(pf: ParquetFile, indexes: list[int], need: Need,
         check: Callable[[pa.Array], pa.Array] | None = None, eager: Eager | None = None) -> Scanned:
    """Step 1: HEAD of these row groups (in file order), cut to the candidates (and to the rows
    ``check`` keeps: in the reading threads, as DuckDB's regex runs in its own); with
    ``eager``, step 2 of those rows too when it lets this task (Eager)."""
    import numpy as np
    import pyarrow.parquet as pq
    md = footer(pf)
    table = pq.ParquetFile(pf.path, metadata=md, arrow_extensions_enabled=False).read_row_groups(
        indexes, columns=HEAD, use_threads=False)
    rows = candidates(need, table.column("message"))
    if check is not None and len(rows):
        rows = rows[np.asarray(check(table.column("message").take(rows)))]
    starts = np.cumsum([0] + [md.row_group(g).num_rows for g in indexes])
    at = np.searchsorted(starts, rows, side="right") - 1
    group, row = [indexes[k] for k in at.tolist()], (rows - starts[at]).tolist()
    head = table.take(rows)
    del table  # before the fetch: its buffers are reused by it, not new pages faulted in
    rest = fetch(pf, list(zip(group, row, strict=True)), REST) if eager is not None and eager.claim(len(rows)) else None
    return Scanned(pf, group, row, head, rest)


def fetch(pf: ParquetFile, picks: list[tuple[int, int]], columns: list[str]) -> pa.Table:
    """Step 2: these columns (of REST) of these (row group, row) of the file, in the order given."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    md = footer(pf)
    indexes = sorted({g for g, _ in picks})
    starts, at = {}, 0
    for g in indexes:
        starts[g] = at
        at += md.row_group(g).num_rows
    try:
        table = pq.ParquetFile(pf.path, metadata=md, arrow_extensions_enabled=False,
                               read_dictionary=small_dictionaries(md, indexes)).read_row_groups(
            indexes, columns=columns, use_threads=False)
    except pa.ArrowNotImplementedError:  # a page pyarrow cannot keep as a dictionary after all
        table = pq.ParquetFile(pf.path, metadata=md, arrow_extensions_enabled=False).read_row_groups(
            indexes, columns=columns, use_threads=False)
    table = table.take([starts[g] + r for g, r in picks])
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)  # DuckDB reads each column as the store's type


def pool(nice: int) -> ThreadPoolExecutor:
    """The reading threads, at the nice level of DuckDB's own (the server's HEAVY_NICE): on
    idle cores a rare word runs as fast, and under load it yields to ingest as the usual
    path's DuckDB threads do (a query must not starve the writer); one pool per level."""
    with _pool_lock:
        if nice not in _pools:
            _pools[nice] = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="rare-read",
                                              initializer=lower_priority, initargs=(nice,))
        return _pools[nice]


def waves(groups: list[Group], desc: bool) -> list[list[Group]]:
    """The groups newest (oldest) first, cut into waves of FIRST_WAVE_ROWS rows, x4 each."""
    order = sorted(groups, key=(lambda g: -g.max_ts) if desc else (lambda g: g.min_ts))
    out: list[list[Group]] = []
    budget, acc = FIRST_WAVE_ROWS, 0
    for g in order:
        if not out or acc >= budget:
            if out:
                budget *= 4
            out.append([])
            acc = 0
        out[-1].append(g)
        acc += g.rows
    return out


def on_files(db: DuckDB, tasks: Iterable[tuple[ParquetFile, Any]],
             fn: Callable[[ParquetFile, Any], T]) -> list[T]:
    """``fn(file, arg)`` of each task, READ_THREADS at once; a file's read error said as the
    query's (file_error)."""
    def run(task: tuple[ParquetFile, Any]) -> T:
        pf, arg = task
        try:
            return fn(pf, arg)
        except (OSError, ValueError) as exc:  # pyarrow's errors are OSErrors and ValueErrors
            raise file_error(db, pf, exc) from None

    return list(pool(db.nice).map(run, list(tasks)))


def scan_wave(db: DuckDB, wave: list[Group], need: Need,
              check: Callable[[pa.Array], pa.Array] | None, eager: Eager | None = None) -> list[Scanned]:
    """Step 1 of each file's groups of the wave, GROUPS_PER_TASK a call (one a call while
    their fetches would run in the tasks, Eager, measured: ~10% more CPU for 'deadlock' and
    no less wall)."""
    by_file: dict[int, tuple[ParquetFile, list[int]]] = {}
    for g in wave:
        by_file.setdefault(id(g.pf), (g.pf, []))[1].append(g.index)
    per = GROUPS_PER_TASK if len(wave) >= 4 * READ_THREADS * GROUPS_PER_TASK else 1  # few: even threads
    tasks = [(pf, sorted(ix)[i:i + per]) for pf, ix in by_file.values() for i in range(0, len(ix), per)]
    return on_files(db, tasks, lambda pf, ix: scan(pf, ix, need, check, eager))


def rows_of(db: DuckDB, picks: list[tuple[Scanned, int]], columns: list[str] = REST) -> pa.Table:
    """HEAD and ``columns`` (of REST) of these candidates, in the order given (as in NAMES):
    HEAD from their scans, the others fetched (step 2), a call a row group (threads even)."""
    import pyarrow as pa
    scans: dict[int, tuple[Scanned, int]] = {}  # id -> (scan, its first row in the heads)
    by_group: dict[tuple[int, int], tuple[ParquetFile, list[tuple[int, int]]]] = {}
    fetched: dict[tuple[int, int], pa.Table] = {}  # (id of a scan, -1) -> its rest (Eager)
    head_at, rest_at, heads_rows = [], [], 0
    for s, i in picks:
        if id(s) not in scans:
            scans[id(s)] = (s, heads_rows)
            heads_rows += s.head.num_rows
        head_at.append(scans[id(s)][1] + i)
        if s.rest is not None:
            fetched[(id(s), -1)] = s.rest.select(columns)
            rest_at.append(((id(s), -1), i))
            continue
        key = (id(s.pf), s.group[i])
        wanted = by_group.setdefault(key, (s.pf, []))[1]
        rest_at.append((key, len(wanted)))
        wanted.append((s.group[i], s.row[i]))
    heads = pa.concat_tables([s.head for s, _ in scans.values()], promote_options="permissive")
    cols = {n: heads.column(n).take(head_at) for n in HEAD}
    if columns:
        fetched |= zip(by_group, on_files(db, by_group.values(), lambda pf, wanted: fetch(pf, wanted, columns)),
                       strict=True)
        base, at = {}, 0
        for key, table in fetched.items():
            base[key] = at
            at += table.num_rows
        rest = pa.concat_tables(list(fetched.values()), promote_options="permissive").take(
            [base[k] + j for k, j in rest_at])
        cols |= {n: rest.column(n) for n in columns}
    names = [n for n in NAMES if n in cols]
    return pa.table([cols[n] for n in names], names=names)


def events_of(table: pa.Table) -> list[dict]:
    """The API's events of these rows (as DuckDB's answer gives them: event_dict)."""
    names = table.column_names
    return [event_dict(names, row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True)]


def file_error(db: DuckDB, pf: ParquetFile, exc: Exception) -> Exception:
    """What a file pyarrow could not read means for the query: gone (compaction, retention),
    damaged (the engine sets it aside and asks again), or the usual path to take (UsualPath)."""
    if isinstance(exc, FileNotFoundError):
        return FileGone(str(exc))
    if db.unreadable(pf.path):
        return DamagedFile(pf.path)
    return UsualPath(str(exc))


class UsualPath(Exception):
    """A file pyarrow cannot read that DuckDB reads whole (a damaged ``ARROW:schema`` in its
    footer: DuckDB ignores that key), or an error of this path's own: the query goes the
    usual way, whose DuckDB reads every file (and says what is wrong with the query)."""


def search(db: DuckDB, files: tuple[ParquetFile, ...], need: Need, where: str, params: list[Any],
           start: int, end: int, desc: bool, limit: int,
           check: Callable[[pa.Array], pa.Array] | None = None,
           after: tuple[int, int] | None = None) -> tuple[list[dict], list[ParquetFile]] | None:
    """(the first ``limit`` events matching ``where`` in the kept groups of the files this path
    reads, the files left to the usual path); None: too many kept rows, all to the usual path.

    ``check``: ``message`` column -> does the query match each row (token_need.word_check),
    when that alone decides; then ``after`` is the cursor's (@timestamp, seq) that ``where``
    holds too."""
    picked = kept(db, files, start, end, need)
    if picked is None:
        return None
    groups, rest = picked
    cuts = waves(groups, desc)
    found: list[tuple[int, int, Scanned, int]] = []  # check's matches: (@timestamp, seq, scan, row)
    tables: list[pa.Table] = []  # without check: the candidates' columns the WHERE reads
    picks: list[tuple[Scanned, int]] = []  # ... and where they are
    eager = Eager(limit) if check is not None else None
    for n, wave in enumerate(cuts):
        scanned = scan_wave(db, wave, need, check, eager)
        if check is not None:
            found.extend(matches(scanned, start, end, desc, after, limit))
        else:
            wave_picks = [(s, i) for s in scanned for i in range(s.head.num_rows)]
            if wave_picks:
                tables.append(rows_of(db, wave_picks, read_by(where)))
                picks.extend(wave_picks)
            found = run_where(db, tables, picks, where, params, start, end, desc, limit)
        found.sort(key=lambda f: (f[0], f[1]), reverse=desc)
        del found[limit:]
        if len(found) >= limit and n + 1 < len(cuts):
            edge = cuts[n + 1][0].max_ts if desc else cuts[n + 1][0].min_ts
            last = found[-1][0]
            if (last > edge) if desc else (last < edge):
                break  # every group not read yet lies past the last event kept
    if not found:
        return [], rest
    return events_of(rows_of(db, [(s, i) for _, _, s, i in found])), rest


def read_by(where: str) -> list[str]:
    """The columns of REST that ``where`` reads: every column is written into SQL as its
    ``ident`` (fields.py, the one place a name becomes SQL), so one not named is not read."""
    return [n for n in REST if ident(n) in where]


def matches(scanned: list[Scanned], start: int, end: int, desc: bool, after: tuple[int, int] | None,
            limit: int) -> list[tuple[int, int, Scanned, int]]:
    """The first ``limit`` rows of these scans (``check`` ran in scan) inside [start, end] and
    past the cursor ``after``: one vectorised pass (a frequent word has thousands)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    scans = [s for s in scanned if s.head.num_rows]
    if not scans:
        return []
    head = pa.concat_tables([s.head for s in scans], promote_options="permissive")
    which = np.repeat(np.arange(len(scans)), [s.head.num_rows for s in scans])
    first = np.cumsum([0] + [s.head.num_rows for s in scans])
    ts, seq = head.column("@timestamp"), head.column("seq")
    keep = pc.and_(pc.and_(pc.greater_equal(ts, start), pc.less_equal(ts, end)), pc.is_valid(seq))
    if after is not None:  # seq is never null in the store: sorted as numbers below
        op = pc.less if desc else pc.greater
        keep = pc.and_(keep, pc.or_(op(ts, after[0]), pc.and_(pc.equal(ts, after[0]), op(seq, after[1]))))
    rows = np.flatnonzero(pc.fill_null(keep, False))
    t, q = ts.take(rows).to_numpy(), seq.take(rows).to_numpy()
    order = np.lexsort((q, t))
    order = (order[::-1] if desc else order)[:limit]
    at = rows[order]
    return [(a, b, scans[k], r) for a, b, k, r in
            zip(t[order].tolist(), q[order].tolist(), which[at].tolist(), (at - first[which[at]]).tolist(),
                strict=True)]


def run_where(db: DuckDB, tables: list[pa.Table], picks: list[tuple[Scanned, int]], where: str,
              params: list[Any], start: int, end: int, desc: bool,
              limit: int) -> list[tuple[int, int, Scanned, int]]:
    """The first ``limit`` of ``picks`` (whose columns ``tables`` hold, in order) that the
    query's full WHERE keeps, as DuckDB orders them."""
    import pyarrow as pa
    if not tables:
        return []
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.append_column("_pick", pa.array(range(len(picks)), pa.int64()))
    direction = "DESC" if desc else "ASC"
    json = ", ".join(f"CAST({ident(n)} AS JSON) AS {ident(n)}" for n, t in FIELD_TYPES.items()
                     if t == "object" and n in table.column_names)
    rows = f"SELECT * REPLACE ({json}) FROM _rare_rows" if json else "SELECT * FROM _rare_rows"
    sql = (f"SELECT {TS}, seq, _pick FROM ({rows}) WHERE {TS} BETWEEN ? AND ? "
           f"AND ({where}) ORDER BY {TS} {direction}, seq {direction} LIMIT {int(limit)}")
    _, got = db.run_on("_rare_rows", table, sql, [start, end, *params])
    return [(ts, seq, *picks[i]) for ts, seq, i in got]
