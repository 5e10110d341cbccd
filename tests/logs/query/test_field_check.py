"""Fields a query names that no event has (issue 17 item 5): warned about, with a guess."""

from __future__ import annotations

import aiohttp
import pytest

from logmesh.logs.query import kql
from logmesh.logs.query.engine import Engine
from logmesh.logs.query.field_check import FieldCheck, named_fields, suggest
from tests.support.logs import HOST
from tests.support.store import HOUR, T0, event, write_store

LO, HI = T0 - HOUR, T0 + HOUR


@pytest.fixture
async def engine(tmp_path):
    writer = await write_store(tmp_path, [[
        event(T0, service="gateway", status=404, labels={"errorcode": 404, "upstream": "goods"}),
        event(T0 + 1, service="goods", params={"id": 7, "item": {"name": "pen"}}),
        event(T0 + 2, service="goods", message="plain"),
    ]])
    eng = Engine(tmp_path)
    yield eng
    eng.close()
    await writer.close()


def test_named_fields_in_order_once():
    q = kql.parse('statuss >= 500 and (service.name:goods or not labels.x:*) and url.path:(a or b) '
                  'and word and statuss:1')
    assert named_fields(q) == ["statuss", "service.name", "labels.x", "url.path"]
    assert named_fields(kql.parse("just words")) == [] and named_fields(None) == []


@pytest.mark.parametrize("name, known, want", [
    ("statuss", ["http.response.status_code", "service.name"], "http.response.status_code"),
    ("status", ["http.response.status_code", "service.name"], "http.response.status_code"),
    # a mesh's state events have labels.state, one letter nearer by difflib than status_code;
    # a name that begins a field's last part is the user's abbreviation of it
    ("status", ["http.response.status_code", "labels.state", "service.name"],
     "http.response.status_code"),
    ("response.status", ["http.response.status_code", "labels.state"], "http.response.status_code"),
    ("servce.name", ["service.name", "service.instance"], "service.name"),
    ("upstrem", ["labels.upstream", "url.path"], "labels.upstream"),
    ("params.idd", ["params.id", "params.item"], "params.id"),
    ("zzzz", ["service.name"], None),
])
def test_suggest(name, known, want):
    assert suggest(name, known) == want


async def test_an_unknown_field_is_warned_about_with_a_guess(engine):
    check = FieldCheck(engine)
    [w] = check.warnings(kql.parse("statuss >= 500"), LO, HI)
    assert w == "field statuss is unknown: no event in the range has it; did you mean http.response.status_code?"
    [w] = check.warnings(kql.parse("service.name:goods and labels.upstrem:goods"), LO, HI)
    assert w.startswith("field labels.upstrem is unknown") and w.endswith("did you mean labels.upstream?")
    [w] = check.warnings(kql.parse("params.idd:7"), LO, HI)
    assert w.endswith("did you mean params.id?")
    [w] = check.warnings(kql.parse("qqqqqq:1"), LO, HI)
    assert w == "field qqqqqq is unknown: no event in the range has it (/api/v1/fields lists the fields there are)"
    assert check.warnings(None, LO, HI, also=("labels.nope",))[0].startswith("field labels.nope is unknown")


async def test_known_fields_are_not(engine):
    check = FieldCheck(engine)
    for q in ("service.name:goods", "http.response.status_code >= 500", "errorcode >= 400",
              "labels.upstream:goods", "upstream:*", "params.id:7", "params.item.name:pen", "words only",
              "trace.id:x and log.logger:y"):  # columns are known even when no event has them
        assert check.warnings(kql.parse(q), LO, HI) == [], q


async def test_a_range_without_events_warns_about_nothing(engine):
    assert FieldCheck(engine).warnings(kql.parse("statuss >= 500"), T0 + 2 * HOUR, T0 + 3 * HOUR) == []


async def test_answers_are_kept_a_few_seconds(engine):
    now = [0.0]
    check = FieldCheck(engine, clock=lambda: now[0])
    runs = engine.counters["queries"]
    assert check.warnings(kql.parse("errorcode:404"), LO, HI) == []
    once = engine.counters["queries"] - runs
    assert check.warnings(kql.parse("errorcode:404"), LO, HI) == []
    assert engine.counters["queries"] - runs == once  # kept
    now[0] += 11
    assert check.warnings(kql.parse("errorcode:404"), LO, HI) == []
    assert engine.counters["queries"] - runs == 2 * once


async def test_the_api_answers_with_warnings(start_logs):
    server = await start_logs()
    base = f"http://{HOST}:{server.config.http_port}"
    line = '{"service.name":"gateway","http.response.status_code":500,"labels":{"upstream":"goods"}}'
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data=line) as r:
            assert (await r.json())["accepted"] == 1
        for path, params in (("/api/v1/search", {"q": "statuss >= 500"}),
                             ("/api/v1/histogram", {"q": "statuss >= 500"}),
                             ("/api/v1/top", {"q": "statuss >= 500", "field": "service.name"}),
                             ("/api/v1/top", {"field": "statuss"}),
                             ("/api/v1/histogram", {"by": "statuss"})):
            async with s.get(f"{base}{path}", params=params) as r:
                body = await r.json()
                assert r.status == 200, body
            assert body["warnings"] == ["field statuss is unknown: no event in the range has it; "
                                        "did you mean http.response.status_code?"], (path, params)
        async with s.post(f"{base}/api/v1/search", json={"q": "upstream:goods"}) as r:
            body = await r.json()
        assert body["warnings"] == [] and len(body["events"]) == 1


# The labels the mesh's own events carry (mesh/gateway.py's access log).
MESH_LABELS = {"errorcode", "event.duration_ms", "upstream", "upstream.address"}


def help_queries() -> list[tuple[str, str]]:
    """(command, KQL) of every query an example of ``--help`` shows: the quoted argument of a
    ``logmesh query|tail '...'`` and any other `snippet` that parses as KQL naming a field."""
    import re

    from logmesh.cli import cli

    out = []
    for name, cmd in [("logmesh", cli), *sorted(cli.commands.items())]:
        texts = [cmd.help or ""] + [p.help or "" for p in cmd.params if getattr(p, "help", None)]
        for snippet in re.findall(r"`([^`]+)`", " ".join(texts)):
            quoted = re.match(r"logmesh (?:query|tail)\b.*?'([^']*)'", snippet)
            try:
                node = kql.parse(quoted.group(1) if quoted else snippet)
            except kql.KQLSyntaxError:
                continue
            if quoted or named_fields(node):
                out.append((name, quoted.group(1) if quoted else snippet))
    return out


def test_every_help_example_names_real_fields():
    from logmesh.logs.event import FIELD_TYPES

    found = help_queries()
    assert any(name == "query" for name, _ in found), found
    for name, q in found:
        for f in named_fields(kql.parse(q)):
            key = f.removeprefix("labels.")
            assert f in FIELD_TYPES or key in MESH_LABELS, f"logmesh {name} --help: {q!r} names {f}, " \
                                                           "which no event of the mesh has"


async def test_logmesh_query_prints_warnings_on_stderr(start_logs):
    import asyncio

    from click.testing import CliRunner

    from logmesh.cli import cli

    server = await start_logs()
    base = f"http://{HOST}:{server.config.http_port}"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data='{"service.name":"goods","labels":{"upstream":"x"}}') as r:
            assert r.status == 200

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["query", *args, "--url", base])

    loop = asyncio.get_running_loop()
    for extra in ((), ("--json",)):
        r = await loop.run_in_executor(None, invoke, "statuss >= 500", *extra)
        assert r.exit_code == 0, r.output
        assert ("warning: field statuss is unknown: no event in the range has it; did you mean "
                "http.response.status_code?") in r.stderr
        assert "statuss" not in r.stdout
    r = await loop.run_in_executor(None, invoke, "upstream:x")
    assert r.exit_code == 0 and "warning" not in r.stderr and "goods" in r.stdout
