"""The store's columns: ``event.FIELD_TYPES`` as DuckDB types, and how to read NDJSON.

Times are epoch ms BIGINT; ``params`` and ``labels`` are JSON text. Column
names are ECS dotted names, so SQL always double-quotes them (``ident``).
"""

from __future__ import annotations

import re

from ..event import (
    FIELD_TYPES,
    SYSLOG_FACILITIES,
    SYSLOG_FACILITY_CODE,
    SYSLOG_PRIORITY,
    SYSLOG_SEVERITIES,
)

DUCK_TYPES = {"long": "BIGINT", "date": "BIGINT", "keyword": "VARCHAR", "text": "VARCHAR",
              "object": "JSON"}
COLUMNS: list[tuple[str, str]] = [(name, DUCK_TYPES[kind]) for name, kind in FIELD_TYPES.items()]
TS = '"@timestamp"'


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(text: str) -> str:
    """A SQL string literal (for our own paths; user values are always ``?`` parameters)."""
    return "'" + text.replace("'", "''") + "'"


SELECT_LIST = ", ".join(ident(n) for n, _ in COLUMNS)


MAX_OBJECT_BYTES = 16 * 1024 * 1024  # the longest line a read takes (DuckDB's buffers are as large)


def read_ndjson_sql(path: str, trust_json: bool = False, max_object_bytes: int = MAX_OBJECT_BYTES) -> str:
    """A relation over one NDJSON file with the engine's column types.

    Lines whose values do not fit the types make DuckDB fail the whole read;
    callers then use :func:`read_ndjson_lenient_sql`, which never loses a line.
    ``trust_json``: see :func:`with_request_fields`. A line longer than
    ``max_object_bytes`` fails the read too (compact.py tries a smaller size first;
    store/long_lines.py gives more room).
    """
    cols = "{" + ", ".join(f"{sql_str(n)}: {sql_str(t)}" for n, t in COLUMNS) + "}"
    return with_request_fields(with_syslog_labels(
        f"read_json({sql_str(path)}, columns={cols}, format='newline_delimited', "
        f"maximum_object_size={int(max_object_bytes)})"), trust_json)


def read_ndjson_lenient_sql(path: str, max_object_bytes: int = MAX_OBJECT_BYTES) -> str:
    """The same relation read value by value: a value of the wrong type becomes NULL. A line
    longer than ``max_object_bytes`` fails the read (store/long_lines.py gives more room)."""
    exprs = []
    for name, typ in COLUMNS:
        path_arg = sql_str('$."' + name.replace('"', '\\"') + '"')
        if typ == "JSON":
            exprs.append(f"json_extract(json, {path_arg}) AS {ident(name)}")
        else:
            exprs.append(f"TRY_CAST(json_extract_string(json, {path_arg}) AS {typ}) AS {ident(name)}")
    return with_request_fields(with_syslog_labels(
        f"(SELECT {', '.join(exprs)} FROM read_ndjson_objects({sql_str(path)}, "
        f"ignore_errors=true, maximum_object_size={int(max_object_bytes)}) WHERE json IS NOT NULL)"))


# event.derive_syslog_labels in SQL: labels (as DuckDB writes JSON: compact) that begin with
# {"log.syslog.priority":P, P an integer 0-191, not followed by "log.syslog.facility.code"
# (a line stored before the four were left out), get the facility and severity labels put
# back after P. A prefix test for every row; the regex and the concatenation for syslog's alone.
_PRI_HEAD = '{"' + SYSLOG_PRIORITY + '":'
_FACILITY_HEAD = ',"' + SYSLOG_FACILITY_CODE + '":'
_PRI_DIGITS = ("nullif(regexp_extract(labels, " + sql_str("^" + re.escape(_PRI_HEAD) +
                                                       "([0-9]{1,3})[,}]") + ", 1), '')")
_REST = f"substr(labels, {len(_PRI_HEAD) + 1} + length(_sp))"
_FACILITY = "_sp::INTEGER // 8"
_SEVERITY = "_sp::INTEGER % 8"
_DERIVED = " || ".join((
    sql_str(_PRI_HEAD), "_sp", sql_str(_FACILITY_HEAD), _FACILITY,
    sql_str(',"log.syslog.facility.name":"'),
    "[" + ", ".join(map(sql_str, SYSLOG_FACILITIES)) + f"][{_FACILITY} + 1]",
    sql_str('","log.syslog.severity.code":'), _SEVERITY,
    sql_str(',"log.syslog.severity.name":"'),
    "[" + ", ".join(map(sql_str, SYSLOG_SEVERITIES)) + f"][{_SEVERITY} + 1]",
    sql_str('"'), _REST))


def with_syslog_labels(relation: str) -> str:
    """``relation`` with syslog's facility and severity labels derived from its priority,
    where the stored line left them out (event.py says why; event.derive_syslog_labels is
    the same rule for Python readers)."""
    return (f"(SELECT * EXCLUDE (_sp) REPLACE (CASE WHEN _sp::INTEGER < 192 AND NOT "
            f"starts_with({_REST}, {sql_str(_FACILITY_HEAD)}) THEN ({_DERIVED})::JSON "
            f"ELSE labels END AS labels) FROM (SELECT *, CASE WHEN starts_with(labels, "
            f"{sql_str(_PRI_HEAD)}) THEN {_PRI_DIGITS} END AS _sp FROM {relation}))")


# The fields of the logged request packet, for lines that hold it unparsed in ``message``
# (ingest/book_block.py); event.derive_request is the same rule for Python readers.
_REQUEST_PATHS = "['$.method', '$.uri', '$.\"trace.id\"', '$.key', '$.params.key']"
# protocol.replace_lone_surrogates in SQL, for a message that is no JSON only for them: escaped
# backslashes and surrogate pairs are set aside (chr 1 and 2 cannot occur raw in JSON), lone
# surrogate escapes become U+FFFD, and the set-aside parts are put back.
_LONE_SURROGATES_FIXED = (
    "replace(replace(regexp_replace(regexp_replace(replace(message, '\\\\', chr(1)), "
    "'\\\\u([dD][89abAB][0-9a-fA-F]{2})\\\\u([dD][c-fC-F][0-9a-fA-F]{2})', "
    "chr(2) || '\\1' || chr(2) || '\\2', 'g'), '\\\\u[dD][89a-fA-F][0-9a-fA-F]{2}', '\\\\ufffd', 'g'), "
    "chr(2), '\\u'), chr(1), '\\\\')")


def with_request_fields(relation: str, trust_json: bool = False) -> str:
    """``relation`` with method, path, trace id, key and params filled from ``message``.

    Only where the line has neither method nor path and ``message`` is a JSON
    object: one parse per such line, in C, at read and compaction time. The
    book's gateway keeps the key inside ``params`` (``$.params.key``).
    ``trust_json``: every such ``message`` starting with ``{`` is taken for valid JSON
    without ``json_valid``: the read then fails (duckdb.Error) at one that is not, and
    the caller reads again without trust. The same rows when it succeeds, for 0.1-0.3
    CPU s per million book packets less (compact.py).
    """
    m, p = ident("http.request.method"), ident("url.path")
    packet = (f"CASE WHEN {m} IS NULL AND {p} IS NULL AND starts_with(message, '{{') THEN " + (
        "message END" if trust_json else f"CASE WHEN json_valid(message) THEN message WHEN "
        f"json_valid({_LONE_SURROGATES_FIXED}) THEN {_LONE_SURROGATES_FIXED} END END"))
    return (f"(SELECT * EXCLUDE (_j, _r) REPLACE (coalesce({m}, _r[1]) AS {m}, "
            f"coalesce({p}, _r[2]) AS {p}, coalesce({ident('trace.id')}, _r[3]) AS {ident('trace.id')}, "
            "coalesce(key, _r[4], _r[5]) AS key, coalesce(params, json_extract(_j, '$.params')) AS params) "
            f"FROM (SELECT *, json_extract_string(_j, {_REQUEST_PATHS}) AS _r "
            f"FROM (SELECT *, {packet} AS _j FROM {relation})))")


# What /mesh counts (docs/api.md): a request is an event with a method that is not a service's
# error record (those repeat a request already logged); an error is a log.level of error or worse,
# or a status code >= 500. Compaction stores these per block and service (store/compact.py).
_LEVEL = ident("log.level")
# (labels' JSON is read only for error records: CASE evaluates its THEN for those rows alone,
# where NOT (a AND b) parsed every request's labels; 0.1-0.2 CPU s per million at compaction)
REQUEST_SQL = (f"{ident('http.request.method')} IS NOT NULL AND CASE WHEN {_LEVEL} IS NOT DISTINCT FROM 'error' "
               f"THEN json_extract(labels, '$.\"event.duration_ms\"') IS NOT NULL ELSE true END")
ERROR_SQL = (f"lower({_LEVEL}) IN ('error', 'critical', 'fatal', 'alert', 'emergency') "
             f"OR {ident('http.response.status_code')} >= 500")
MESH_SELECT = (f"{ident('service.name')}, count(*) FILTER (WHERE {REQUEST_SQL}), "
               f"count(*) FILTER (WHERE {ERROR_SQL}), count(*)")
