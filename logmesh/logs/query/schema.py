"""The query engine's columns: ``event.FIELD_TYPES`` as DuckDB types, and how to read NDJSON.

Times are epoch ms BIGINT; ``params`` and ``labels`` are JSON text. Column
names are ECS dotted names, so SQL always double-quotes them (``ident``).
"""

from __future__ import annotations

from ..event import FIELD_TYPES

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


def read_ndjson_sql(path: str) -> str:
    """A relation over one NDJSON file with the engine's column types.

    Lines whose values do not fit the types make DuckDB fail the whole read;
    callers then use :func:`read_ndjson_lenient_sql`, which never loses a line.
    """
    cols = "{" + ", ".join(f"{sql_str(n)}: {sql_str(t)}" for n, t in COLUMNS) + "}"
    return with_request_fields(f"read_json({sql_str(path)}, columns={cols}, "
                               "format='newline_delimited', maximum_object_size=16777216)")


def read_ndjson_lenient_sql(path: str) -> str:
    """The same relation read value by value: a value of the wrong type becomes NULL."""
    exprs = []
    for name, typ in COLUMNS:
        path_arg = sql_str('$."' + name.replace('"', '\\"') + '"')
        if typ == "JSON":
            exprs.append(f"json_extract(json, {path_arg}) AS {ident(name)}")
        else:
            exprs.append(f"TRY_CAST(json_extract_string(json, {path_arg}) AS {typ}) AS {ident(name)}")
    return with_request_fields(f"(SELECT {', '.join(exprs)} FROM read_ndjson_objects("
                               f"{sql_str(path)}, ignore_errors=true, "
                               "maximum_object_size=16777216) WHERE json IS NOT NULL)")


# The fields of the logged request packet, for lines that hold it unparsed in ``message``
# (ingest/book_block.py); event.derive_request is the same rule for Python readers.
_REQUEST_PATHS = "['$.method', '$.uri', '$.\"trace.id\"', '$.key', '$.params.key']"


def with_request_fields(relation: str) -> str:
    """``relation`` with method, path, trace id, key and params filled from ``message``.

    Only where the line has neither method nor path and ``message`` is a JSON
    object: one parse per such line, in C, at read and compaction time. The
    book's gateway keeps the key inside ``params`` (``$.params.key``).
    """
    m, p = ident("http.request.method"), ident("url.path")
    req = (f"CASE WHEN {m} IS NULL AND {p} IS NULL AND starts_with(message, '{{') "
           f"AND json_valid(message) THEN json_extract_string(message, {_REQUEST_PATHS}) END")
    return (f"(SELECT * EXCLUDE (_r) REPLACE (coalesce({m}, _r[1]) AS {m}, "
            f"coalesce({p}, _r[2]) AS {p}, coalesce({ident('trace.id')}, _r[3]) AS {ident('trace.id')}, "
            "coalesce(key, _r[4], _r[5]) AS key, coalesce(params, CASE WHEN _r IS NOT NULL "
            "THEN json_extract(message, '$.params') END) AS params) "
            f"FROM (SELECT *, {req} AS _r FROM {relation}))")


# What /mesh counts (docs/api.md): a request is an event with a method that is not a service's
# error record (those repeat a request already logged); an error is a log.level of error or worse,
# or a status code >= 500. Compaction stores these per block and service (compact.py).
_LEVEL = ident("log.level")
REQUEST_SQL = (f"{ident('http.request.method')} IS NOT NULL AND NOT ({_LEVEL} IS NOT DISTINCT FROM 'error' "
               f"AND json_extract(labels, '$.\"event.duration_ms\"') IS NULL)")
ERROR_SQL = (f"lower({_LEVEL}) IN ('error', 'critical', 'fatal', 'alert', 'emergency') "
             f"OR {ident('http.response.status_code')} >= 500")
MESH_SELECT = (f"{ident('service.name')}, count(*) FILTER (WHERE {REQUEST_SQL}), "
               f"count(*) FILTER (WHERE {ERROR_SQL}), count(*)")
