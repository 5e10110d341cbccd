"""The query API's parameters: read from the URL or from a POST's JSON body, checked, and
turned into what the engine takes. A bad one raises :class:`BadRequest`, whose message
says what to send instead (http/query_api.py answers it 400).

``q`` is also refused up front when it would cost too much to run (kql.cost: too many
terms, or too many that scan every event), and marked heavy past HEAVY_SCAN_TERMS scans,
for the admission (http/slots.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from ..query import kql, token_need
from ..query.timerange import TimeRangeError, parse_duration, parse_range

MAX_QUERY_CHARS = 10_000  # longer q is refused (400)
MAX_QUERY_BODY_BYTES = 64 * 1024  # a POST's JSON parameters: q (<= 40 KB of UTF-8) and the rest
MAX_QUERY_TERMS = 1_000  # kql.cost().terms past this: 400
MAX_SCAN_TERMS = 64  # kql.cost().scans past this: 400 (64 scans over 1M events ~ 4 s of a core)
HEAVY_SCAN_TERMS = 8  # more scans than this: a heavy query (at most QUERY_THREADS - 1 of them run)


class BadRequest(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


class PayloadTooLarge(Exception):
    pass


# Per request: the parameters (from the URL or a POST's JSON body), whether the query is heavy
# (kql.cost), and its deadline (time.monotonic(); set by its first engine call).
PARAMS = web.RequestKey("logmesh.params", dict)
HEAVY = web.RequestKey("logmesh.heavy", bool)
DEADLINE = web.RequestKey("logmesh.deadline", float)


def parameters(request: web.Request) -> Mapping[str, str]:
    """The request's parameters: a POST's (read_post_params), else the URL's."""
    return request.get(PARAMS, request.query)


# Names clients send that the API does not take, and what to send instead. An unknown
# parameter is a 400 naming the ones the route takes (as Elasticsearch's "contains
# unrecognized parameter" and Loki's): ignored, since=1h answered the default last 15
# minutes and fields=a,b whole events, with nothing to say the parameter was not read.
INSTEAD = {
    "since": "from=now-1h (a start relative to now)",
    "start": "from=", "end": "to=", "until": "to=",
    "query": "q=", "size": "limit=", "sort": "order=asc or order=desc",
    "page": "cursor= (the next_cursor of the previous answer)", "offset": "cursor= (the next_cursor of the previous answer)",
    "fields": "no field list: each event comes whole; GET /api/v1/export?format=csv&columns=a,b picks fields",
    "_source": "no field list: each event comes whole; GET /api/v1/export?format=csv&columns=a,b picks fields",
}


def check_names(request: web.Request, path: str, accepted: frozenset[str]) -> None:
    """Refuse (400) any parameter ``path`` does not take, naming the ones it does."""
    params = parameters(request)
    unknown = sorted(set(params) - accepted)
    if not unknown:
        refuse_repeated(request)
        return
    takes = ", ".join(sorted(accepted)) if accepted else "no parameters"
    named = ", ".join(repr(n[:40]) for n in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    hints = "; ".join(f"for {n} send {INSTEAD[n]}" for n in unknown if n in INSTEAD)
    raise BadRequest(f"unknown parameter{'s' if len(unknown) > 1 else ''} {named}: {path} takes {takes}"
                     + (f" ({hints})" if hints else ""),
                     unknown=[n[:40] for n in unknown[:20]], accepted=sorted(accepted))


def refuse_repeated(request: web.Request) -> None:
    """Refuse (400) a URL that names a parameter twice: q=a&q=b was answered for a, b unread
    (a GET's, and a POST's URL, whose parameters its JSON body's join). ``_`` (a cache
    buster some clients add) may repeat."""
    query = request.query
    if len(query) > len(set(query)):
        twice = sorted({n for n in query if n != "_" and len(query.getall(n)) > 1})
        if twice:
            raise BadRequest(f"parameter{'s' if len(twice) > 1 else ''} "
                             f"{', '.join(repr(n[:40]) for n in twice[:5])} given more than once: "
                             "send each once (one value is read)", repeated=twice[:20])


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = parameters(request).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def query_param(request: web.Request) -> kql.Node:
    """``q`` parsed, and refused up front when it would cost too much to run (see kql.Cost)."""
    text = parameters(request).get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    try:
        node = kql.parse(text)
    except kql.KQLSyntaxError as exc:
        raise BadRequest(f"bad query: {exc.message}", position=exc.position) from None
    cost = kql.cost(node, token_need.need)  # words the block index narrows are no full scans
    if cost.terms > MAX_QUERY_TERMS:
        raise BadRequest(f"the query has {cost.terms} terms; at most {MAX_QUERY_TERMS}: "
                         "split it into several queries", terms=cost.terms)
    if cost.scans > MAX_SCAN_TERMS:
        raise BadRequest(
            f"the query has {cost.scans} terms that search inside every event's text or JSON "
            f"(words, phrases, *leading wildcards, params./labels. keys); at most {MAX_SCAN_TERMS}, "
            "as each is read for every event in the range: use exact field:value terms "
            "(e.g. service.name:goods, url.path:/goods*) or split the query", scans=cost.scans)
    request[HEAVY] = cost.scans > HEAVY_SCAN_TERMS
    return node


def range_param(request: web.Request, clock: Callable[[], float]) -> tuple[int, int]:
    params = parameters(request)
    try:
        return parse_range(params.get("from") or None, params.get("to") or None, clock=clock)
    except TimeRangeError as exc:
        raise BadRequest(str(exc)) from None


def interval_param(request: web.Request) -> int | None:
    """``interval`` (e.g. 1m) in ms; None when absent (the engine chooses from the range)."""
    raw = parameters(request).get("interval")
    if not raw:
        return None
    try:
        return parse_duration(raw)
    except TimeRangeError as exc:
        raise BadRequest(str(exc)) from None


def order_param(request: web.Request) -> str:
    order = parameters(request).get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be desc (newest first) or asc, got {order[:40]!r}")
    return order


async def read_small_body(request: web.Request) -> bytes:
    """The body, at most MAX_QUERY_BODY_BYTES (else PayloadTooLarge, a 413), as it arrives."""
    if request.content_length is not None and request.content_length > MAX_QUERY_BODY_BYTES:
        raise PayloadTooLarge()
    body = bytearray()
    while chunk := await request.content.read(65536):
        body += chunk
        if len(body) > MAX_QUERY_BODY_BYTES:
            raise PayloadTooLarge()
    return bytes(body)


async def read_post_params(request: web.Request) -> dict[str, str]:
    """A POST's JSON object of parameters, as the strings a query string would carry.

    The URL's own parameters are read too; the body's win. Numbers become their text,
    null and absent are the same; nested values are refused.
    """
    refuse_repeated(request)  # dict() below would keep the first silently
    body = await read_small_body(request)
    params = dict(request.query)
    if not body.strip():
        return params
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body must be a JSON object of parameters, e.g. "
                         f'{{"q": "service.name:goods", "from": "now-1h"}}: {exc}') from None
    if not isinstance(obj, dict):
        raise BadRequest('the body must be a JSON object of parameters, e.g. {"q": "error"}')
    for name, value in obj.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(f"{name[:40]!r} must be a string or a number, got {type(value).__name__}")
        params[name] = value if isinstance(value, str) else str(value)
    return params


def describe(node: kql.Node) -> dict:
    """The query as the answer repeats it: its KQL ("" for everything) and a sentence."""
    return {"kql": "" if isinstance(node, kql.MatchAll) else node.to_kql(), "sentence": node.sentence()}
