"""The Elasticsearch sink against the fake cluster: exactly once, nothing lost, never stuck."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from logmesh.logs.sinks.cursor import Position, SinkState, cursor_path, deadletter_path
from logmesh.logs.sinks.elasticsearch.config import ElasticsearchConfig
from logmesh.logs.sinks.elasticsearch.sink import ElasticsearchSink
from logmesh.logs.store import layout
from logmesh.metrics import value
from tests.logs.sinks.fake_es import FakeElasticsearch, Faults
from tests.logs.sinks.helpers import Store, event, poison, wait_until
from tests.support.waiting import wait_while_progressing

SINK_DIR = Path(__file__).resolve().parents[3] / "logmesh" / "logs" / "sinks" / "elasticsearch"


def make_sink(url: str, data_dir: Path, store: Store | None = None, worker: int = 0,
              **options) -> ElasticsearchSink:
    config = ElasticsearchConfig(urls=url, retry_initial=0.01, retry_max=0.2, poll_interval=0.05,
                                 shutdown_timeout=1.0, **options)
    return ElasticsearchSink(config, data_dir, worker,
                             head_seq=(lambda: store.last_seq) if store is not None else None)


def delivered(sink: ElasticsearchSink, store: Store) -> bool:
    return sink.state.position.last_seq == store.last_seq


async def deliver_all(sink: ElasticsearchSink, store: Store) -> None:
    """Run the sink until it has sent everything in the store, then close it."""
    sink.start()
    try:
        await wait_until(lambda: delivered(sink, store))
    finally:
        await sink.close()


def deadletters(data_dir: Path, name: str = "elasticsearch-w00") -> list[dict]:
    path = deadletter_path(data_dir, name)
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def test_a_sink_that_sent_nothing_says_so_when_it_stops(tmp_path, caplog):
    """Its stop line read "stopped at None@0" (found from outside: no cluster to reach)."""
    sink = make_sink("http://127.0.0.1:9", tmp_path)
    with caplog.at_level("INFO", logger="logmesh"):
        sink.start()
        await sink.close()
    stops = [r.getMessage() for r in caplog.records if " stopped at " in r.getMessage()]
    assert stops and "None" not in stops[-1] and "nothing sent yet" in stops[-1], stops


async def test_installs_template_and_data_stream(tmp_path, fake_es):
    sink = make_sink(fake_es.url, tmp_path)
    sink.start()
    try:
        await wait_until(lambda: "logs-logmesh-default" in fake_es.data_streams, what="data stream")
    finally:
        await sink.close()
    tpl = fake_es.templates["logmesh-logs-logmesh-default"]
    assert tpl["index_patterns"] == ["logs-logmesh-default"] and "data_stream" in tpl
    assert tpl["priority"] > 100  # above the built-in logs-*-* template
    mappings = tpl["template"]["mappings"]
    props = mappings["properties"]
    assert mappings["dynamic"] is False  # unknown fields add no mapping: bounded field count
    assert props["@timestamp"]["type"] == "date" and "epoch_millis" in props["@timestamp"]["format"]
    assert props["service"]["properties"]["name"]["type"] == "keyword"
    assert props["http"]["properties"]["request"]["properties"]["method"]["type"] == "keyword"
    assert props["url"]["properties"]["path"]["type"] == "keyword"
    assert props["log"]["properties"]["level"]["type"] == "keyword"
    assert props["message"]["type"] == "text"
    assert props["params"]["type"] == "flattened" and props["labels"]["type"] == "flattened"
    # what the mesh's dashboards aggregate that is no field of its own (docs/kibana)
    assert set(mappings["runtime"]) == {"route", "event.duration_ms", "upstream"}
    assert mappings["runtime"]["event.duration_ms"]["type"] == "double"
    # the ILM policy, installed first, named by the template: daily rollover, deleted 30 days on
    assert tpl["template"]["settings"] == {"index.lifecycle.name": "logmesh-logs-logmesh-default"}
    phases = fake_es.policies["logmesh-logs-logmesh-default"]["phases"]
    assert phases["hot"]["actions"]["rollover"] == {"max_age": "1d", "max_primary_shard_size": "50gb"}
    assert phases["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
    paths = [r.path for r in fake_es.requests]
    assert paths.index("/_ilm/policy/logmesh-logs-logmesh-default") < paths.index(
        "/_index_template/logmesh-logs-logmesh-default")


@pytest.mark.parametrize(("flavor", "options"), [
    ("elasticsearch", {"retention_ms": None}),  # --es-retention off
    ("elasticsearch", {"index": "logmesh-events"}),  # rollover needs a data stream
    ("opensearch", {}),  # ISM, not ILM: documented, not installed
])
async def test_no_ilm_policy_where_it_does_not_apply(tmp_path, flavor, options):
    fake = await FakeElasticsearch(flavor=flavor).start()
    store = Store(tmp_path)
    store.write([event(i) for i in range(5)])
    sink = make_sink(fake.url, tmp_path, store, **options)
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert not fake.policies and len(fake.docs) == 5
    assert all("settings" not in t["template"] for t in fake.templates.values())


async def test_100k_events_with_faults_arrive_exactly_once(tmp_path):
    n = 100_000
    store = Store(tmp_path)
    poisoned = set()
    for start in range(0, n, 20_000):  # five sealed segments
        evs = [poison(i) if i % 997 == 5 else event(i) for i in range(start, start + 20_000)]
        seqs = store.write(evs)
        poisoned |= {s for s, e in zip(seqs, evs, strict=True) if "d" in e["params"]}
    all_seqs = {layout.make_seq(c, 0) for c in range(1, n + 1)}
    fake = await FakeElasticsearch(faults=Faults(request_503=0.05, request_429=0.03, drop_before=0.03,
                                                 drop_after=0.05, item_429=0.02,
                                                 drop_first_answers=1)).start()
    sink = make_sink(fake.url, tmp_path, store)
    t0 = time.perf_counter()
    sink.start()
    try:
        # bounded by progress, not wall time: 25 s for the whole failed at load 10-14
        await wait_while_progressing(lambda: delivered(sink, store),
                                     lambda: (len(fake.docs), sink.stats["deadlettered"], sink.state.position.last_seq),
                                     stall=30, what="all 100k delivered")
        took = time.perf_counter() - t0
    finally:
        await sink.close()
        await fake.stop()
    ids = {int(i) for i in fake.docs}
    assert ids == all_seqs - poisoned  # every good event, each once (by _id) ...
    assert set(fake.created.values()) == {1}  # ... and no _id ever created twice
    assert fake.index_ops == 0  # only `create`: a resend can never overwrite or duplicate
    assert fake.conflicts > 0  # resends after dropped answers happened, and were harmless
    dead = deadletters(tmp_path)
    assert sorted(d["event"]["seq"] for d in dead) == sorted(poisoned)  # each refused one, once
    assert all(d["status"] == 400 and "maximum depth limit" in d["reason"] for d in dead)
    assert sink.stats["deadlettered"] == len(poisoned)
    assert sink.stats["sent"] >= n - len(poisoned) and sink.stats["retries"] > 0
    assert sink.lag() == (0, 0.0)
    print(f"\n100k through the sink with faults: {took:.2f}s, {n / took:,.0f} events/s, "
          f"{fake.bulk_requests} bulk requests, {sink.stats['retries']} retried, "
          f"{fake.conflicts} resent-and-409")


async def test_requests_are_the_client_librarys_own(tmp_path, fake_es):
    store = Store(tmp_path)
    store.write([event(i) for i in range(10)])
    sink = make_sink(fake_es.url, tmp_path, store)
    await deliver_all(sink, store)
    bulk = next(r for r in fake_es.requests if r.path.endswith("/_bulk"))
    h = {k.lower(): v for k, v in bulk.headers.items()}
    assert h["user-agent"].startswith("elasticsearch-py/8.19.2 (")
    assert h["x-elastic-client-meta"].startswith("es=8.19.2,")  # the client's bulk API
    assert h["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    assert bulk.path == "/logs-logmesh-default/_bulk"  # the target in the path, not in each action
    assert h["content-encoding"] == "gzip" and fake_es.gzipped_bulks == 1
    lines = bulk.body.splitlines()
    assert orjson.loads(lines[0]) == {"create": {"_id": str(layout.make_seq(1, 0))}}
    assert orjson.loads(lines[1])["message"] == "request 0"
    assert len(lines) == 20 and bulk.body.endswith(b"\n")
    info = fake_es.requests[0]
    assert info.method == "GET" and info.path == "/"


def test_the_sink_builds_no_http_itself():
    """Only the client libraries talk HTTP: no HTTP module is imported in the sink package."""
    banned = {"aiohttp", "http", "urllib", "urllib3", "requests", "httpx", "socket", "asyncio.streams"}
    for path in SINK_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in banned or name == "urllib.parse", (path.name, name)


async def test_cluster_down_then_back_catches_up(tmp_path):
    fake = FakeElasticsearch()
    await fake.start()
    port = fake.port
    await fake.stop()  # down from the start: connections refused
    store = Store(tmp_path)
    seg = store.write([event(i) for i in range(3000)], seal=False)
    name = store.segments[-1]
    sink = make_sink(fake.url, tmp_path, store)
    sink.start()
    try:
        await wait_until(lambda: sink.stats["errors"] >= 3, what="failed attempts")
        more = store.append(name, [event(i) for i in range(3000, 5000)])  # ingest goes on meanwhile
        assert sink.lag()[0] == 5000 and sink.lag()[1] > 0
        assert sink.status.startswith("retrying")
        await fake.start(port=port)  # back
        await wait_until(lambda: delivered(sink, store), timeout=15, what="catch-up")
    finally:
        await sink.close()
        await fake.stop()
    assert {int(i) for i in fake.docs} == set(seg) | set(more)
    assert sink.status == "delivering" and sink.lag() == (0, 0.0)


async def test_follows_the_active_segment_and_rotation(tmp_path, fake_es):
    store = Store(tmp_path)
    first = store.write([event(i) for i in range(10)], seal=False)
    active = store.segments[-1]
    sink = make_sink(fake_es.url, tmp_path, store)
    sink.start()
    try:
        await wait_until(lambda: delivered(sink, store))
        more = store.append(active, [event(i) for i in range(10, 25)])
        sink.notify()
        await wait_until(lambda: delivered(sink, store))
        # the writer rotates: seals the active segment, opens the next one
        size = (tmp_path / layout.SEGMENTS_DIR / active).stat().st_size
        store.seal(active, first + more, [event(0)], size)
        later = store.write([event(i) for i in range(25, 40)], seal=False)
        await wait_until(lambda: delivered(sink, store), what="the next segment")
    finally:
        await sink.close()
    assert {int(i) for i in fake_es.docs} == set(first + more + later)
    assert sink.state.position.segment == store.segments[-1]


async def test_only_durable_events_are_sent(tmp_path, fake_es):
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(100)], seal=False)
    durable = {"seq": seqs[39]}
    config = ElasticsearchConfig(urls=fake_es.url, retry_initial=0.01, poll_interval=0.05)
    sink = ElasticsearchSink(config, tmp_path, 0, head_seq=lambda: store.last_seq,
                             durable_seq=lambda: durable["seq"])
    sink.start()
    try:
        await wait_until(lambda: len(fake_es.docs) == 40)
        await wait_until(lambda: sink.state.position.last_seq == seqs[39])
        assert len(fake_es.docs) == 40  # a power cut could still take the rest back
        durable["seq"] = seqs[-1]
        sink.notify()
        await wait_until(lambda: delivered(sink, store))
    finally:
        await sink.close()
    assert len(fake_es.docs) == 100


async def test_restart_resumes_from_the_cursor(tmp_path, fake_es):
    store = Store(tmp_path)
    store.write([event(i) for i in range(500)])
    sink = make_sink(fake_es.url, tmp_path, store)
    await deliver_all(sink, store)
    bulks = fake_es.bulk_requests
    cursor = orjson.loads(cursor_path(tmp_path, "elasticsearch-w00").read_bytes())
    assert cursor["last_seq"] == store.last_seq and cursor["sent"] == 500
    store.write([event(i) for i in range(500, 520)])
    sink = make_sink(fake_es.url, tmp_path, store)
    await deliver_all(sink, store)
    assert fake_es.bulk_requests == bulks + 1  # only the new events, one bulk
    assert fake_es.conflicts == 0 and len(fake_es.docs) == 520


def test_uncommitted_dead_letters_are_cut_on_start(tmp_path):
    state = SinkState(tmp_path, "elasticsearch-w00")
    state.open()
    state.commit(Position("w00-0000000000000064.ndjson", 10, 64), [b'{"n":1}'])
    committed = state.deadletter_file.stat().st_size
    with open(state.deadletter_file, "ab") as f:  # a batch wrote these, then kill -9
        f.write(b'{"n":2}\n{"n":3}\n')
    again = SinkState(tmp_path, "elasticsearch-w00")
    pos = again.open()
    assert again.deadletter_file.read_bytes() == b'{"n":1}\n'
    assert pos.deadletter_bytes == committed and pos.offset == 10


async def test_too_large_requests_are_split_and_a_lone_giant_dead_lettered(tmp_path):
    fake = await FakeElasticsearch(faults=Faults(max_content_length=60_000)).start()
    store = Store(tmp_path)
    evs = [event(i) for i in range(300)]
    evs[123]["message"] = "x" * 100_000  # larger than any request the cluster takes
    seqs = store.write(evs)
    sink = make_sink(fake.url, tmp_path, store)
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert {int(i) for i in fake.docs} == set(seqs) - {seqs[123]}
    dead = deadletters(tmp_path)
    assert [d["event"]["seq"] for d in dead] == [seqs[123]] and dead[0]["status"] == 413


async def test_non_object_params_are_wrapped_not_refused(tmp_path, fake_es):
    store = Store(tmp_path)
    seqs = store.write([event(0, params="id=7&x=1"), event(1, params=[1, 2]), event(2, labels=5)])
    sink = make_sink(fake_es.url, tmp_path, store)
    await deliver_all(sink, store)
    assert fake_es.docs[str(seqs[0])]["params"] == {"value": "id=7&x=1"}
    assert fake_es.docs[str(seqs[1])]["params"] == {"value": [1, 2]}
    assert fake_es.docs[str(seqs[2])]["labels"] == {"value": 5}
    assert not deadletters(tmp_path)


async def test_opensearch_is_reached_through_opensearch_py(tmp_path):
    fake = await FakeElasticsearch(flavor="opensearch").start()
    store = Store(tmp_path)
    store.write([event(i) for i in range(50)])
    sink = make_sink(fake.url, tmp_path, store)
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert len(fake.docs) == 50
    props = fake.templates["logmesh-logs-logmesh-default"]["template"]["mappings"]["properties"]
    assert props["params"] == {"type": "flat_object"}
    assert "runtime" not in fake.templates["logmesh-logs-logmesh-default"]["template"]["mappings"]
    bulk = next(r for r in fake.requests if r.path.endswith("/_bulk"))
    assert bulk.headers["User-Agent"].startswith("opensearch-py/3.2.0")


async def test_api_key_is_sent_and_a_bad_one_is_retried_not_dropped(tmp_path):
    fake = await FakeElasticsearch(api_key="Z29vZDprZXk=").start()
    store = Store(tmp_path)
    store.write([event(i) for i in range(20)])
    sink = make_sink(fake.url, tmp_path, store, api_key="YmFkOmtleQ==")
    sink.start()
    try:
        await wait_until(lambda: sink.stats["errors"] >= 3)
        assert "unauthorized" in sink.status and not fake.docs
    finally:
        await sink.close()
    sink = make_sink(fake.url, tmp_path, store, api_key="Z29vZDprZXk=")
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert len(fake.docs) == 20


async def test_each_worker_sends_only_its_own_segments(tmp_path, fake_es):
    stores = [Store(tmp_path, worker=w) for w in range(3)]
    for w, st in enumerate(stores):
        st.write([event(i) for i in range(100 * w, 100 * w + 100)])
    sinks = [make_sink(fake_es.url, tmp_path, st, worker=w) for w, st in enumerate(stores)]
    for s in sinks:
        s.start()
    try:
        await wait_until(lambda: all(delivered(s, st) for s, st in zip(sinks, stores, strict=True)))
    finally:
        for s in sinks:
            await s.close()
    assert len(fake_es.docs) == 300 and set(fake_es.created.values()) == {1}
    assert fake_es.conflicts == 0  # no worker ever sent another worker's event
    assert sorted(p.name for p in (tmp_path / layout.SINKS_DIR).iterdir()) == [
        "elasticsearch-w00.cursor", "elasticsearch-w01.cursor", "elasticsearch-w02.cursor"]


def test_logmesh_runs_without_the_client_libraries():
    code = ("import sys, logmesh.cli, logmesh.logs.server, logmesh.logs.sinks.elasticsearch.sink\n"
            "assert 'elasticsearch' not in sys.modules and 'opensearchpy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)


@pytest.mark.parametrize(("options", "words"), [
    ({"urls": ""}, "at least one URL"),
    ({"urls": "localhost:9200"}, "not an http(s) URL"),
    ({"urls": "http://h:9200", "api_key": "k", "username": "u", "password": "p"}, "not both"),
    ({"urls": "http://h:9200", "data_stream": "Logs"}, "not a valid name"),
    ({"urls": "http://h:9200", "ca_file": Path("/nonexistent.pem")}, "no such file"),
    ({"urls": "http://h:9200", "retention_ms": 5000}, "--es-retention must be at least 1m"),
])
def test_config_errors_say_what_to_do(options, words):
    with pytest.raises(ValueError, match=None) as err:
        ElasticsearchConfig(**options)
    assert words in str(err.value)


@pytest.mark.parametrize(("value", "words"), [("5s", "at least 1m"), ("forever", "bad duration")])
def test_es_retention_on_the_command_line(tmp_path, value, words):
    from click.testing import CliRunner

    from logmesh.cli import cli

    result = CliRunner().invoke(cli, ["logs", "--data-dir", str(tmp_path), "--elasticsearch",
                                      "http://127.0.0.1:1", "--es-retention", value])
    assert result.exit_code != 0 and words in result.output


async def test_a_plain_index_instead_of_a_data_stream(tmp_path, fake_es):
    store = Store(tmp_path)
    store.write([event(i) for i in range(30)])
    sink = make_sink(fake_es.url, tmp_path, store, index="logmesh-events")
    await deliver_all(sink, store)
    assert fake_es.indices == {"logmesh-events"} and not fake_es.data_streams
    assert len(fake_es.docs) == 30
    assert "data_stream" not in fake_es.templates["logmesh-logmesh-events"]


async def test_https_with_a_ca_file_and_basic_auth(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake = await FakeElasticsearch(ssl_context=server_ctx, basic_auth=("logmesh", "s3cret")).start()
    store = Store(tmp_path / "data")
    store.write([event(i) for i in range(25)])
    sink = make_sink(fake.url, tmp_path / "data", store, ca_file=ca_file, username="logmesh",
                     password="s3cret")
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert fake.url.startswith("https://") and len(fake.docs) == 25


async def test_https_without_the_ca_is_retried_not_dropped(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    fake = await FakeElasticsearch(ssl_context=server_ctx).start()
    store = Store(tmp_path)
    store.write([event(i) for i in range(5)])
    sink = make_sink(fake.url, tmp_path, store)  # the system CAs do not know this one
    sink.start()
    try:
        await wait_until(lambda: sink.stats["errors"] >= 2)
        assert "no response" in sink.status and not fake.docs
        assert sink.lag()[0] == 5
    finally:
        await sink.close()
        await fake.stop()


async def test_a_document_missing_from_the_answer_is_sent_again(tmp_path):
    fake = await FakeElasticsearch(faults=Faults(short_answer=0.5)).start()
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(400)])
    sink = make_sink(fake.url, tmp_path, store, batch_events=40)
    try:
        await deliver_all(sink, store)
    finally:
        await fake.stop()
    assert {int(i) for i in fake.docs} == set(seqs) and sink.stats["retries"] > 0


def test_the_cursor_follows_its_last_seq_when_recovery_rewrote_the_segment(tmp_path):
    """Recovery drops a damaged line (issue 14): later lines move to lower offsets. A cursor
    kept by offset alone then skipped events or read from mid-line."""
    seg_dir = tmp_path / layout.SEGMENTS_DIR
    seg_dir.mkdir()
    name = layout.segment_name(0, 64)
    lines = [orjson.dumps({"seq": 64 * (i + 1), "@timestamp": i, "message": f"m{i}"}) + b"\n"
             for i in range(100)]
    (seg_dir / name).write_bytes(b"".join(lines))
    state = SinkState(tmp_path, "elasticsearch-w00")
    state.open()
    sent_to = sum(len(line) for line in lines[:50])
    state.commit(Position(name, sent_to, 64 * 50), [])
    assert SinkState(tmp_path, "elasticsearch-w00").open().offset == sent_to, "unchanged: kept"

    (seg_dir / name).write_bytes(b"".join(lines[:10] + lines[11:]))  # line 11 was damaged
    pos = SinkState(tmp_path, "elasticsearch-w00").open()
    assert pos.offset == sent_to - len(lines[10]), "the next line to send is the 51st event's"


async def test_an_unreachable_cluster_is_one_warning_with_its_url_and_cause(tmp_path, caplog):
    """The client's own pool logged a line on every retry ("Node <AiohttpHttpNode(...)> has
    failed for 3 times in a row", "Resurrected node"), beside the sink's warning, which read
    "setup: no response: ConnectionError: Connection error": no URL, no cause (found from
    outside). Now the sink's line alone, rate-limited, says where and why."""
    sink = make_sink("http://127.0.0.1:9", tmp_path)
    with caplog.at_level(logging.DEBUG):
        sink.start()
        try:
            await wait_until(lambda: value(sink.errors) >= 4, what="a few retries")
        finally:
            await sink.close()
    noise = [r for r in caplog.records if r.name.startswith(("elastic_transport", "elasticsearch"))
             and r.levelno >= logging.INFO]
    assert noise == [], [r.getMessage() for r in noise]
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "logmesh.sinks.elasticsearch" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "http://127.0.0.1:9" in warnings[0] and "Connect call failed" in warnings[0], warnings
    assert "Connection error;" not in warnings[0]


async def test_a_refusing_cluster_is_named_in_the_warning(tmp_path, fake_es, caplog):
    fake_es.faults = Faults(request_429=1.0)
    store = Store(tmp_path)
    store.write([event(i) for i in range(3)])
    sink = make_sink(fake_es.url, tmp_path, store)
    with caplog.at_level(logging.WARNING):
        sink.start()
        try:
            await wait_until(lambda: value(sink.errors) >= 3, what="a few 429s")
        finally:
            await sink.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "logmesh.sinks.elasticsearch"]
    assert len(warnings) == 1 and fake_es.url in warnings[0] and "429" in warnings[0], warnings


@pytest.mark.parametrize("damage", [
    b"[1]", b"null", b'"cursor"', b"7",                           # JSON, but no object
    b'{"version": 1, "offset": "abc", "segment": "w00-0000000000000001.ndjson"}',
    b'{"version": 1, "segment": 5}',
    b'{"version": 1, "segment": "../../../etc/passwd"}',
    b'{"version": 1, "segment": "w00-0000000000000001.ndjson", "offset": -5, "last_seq": 3}',
    b'{"version": 1, "last_seq": true}',
    b'{"version": 1, "deadletter_bytes": 1.5}',
])
async def test_a_cursor_damaged_into_other_json_stops_the_sink_alone(tmp_path, damage, caplog):
    """Damage that left the cursor JSON of another shape was no RuntimeError: ``[1]`` raised
    AttributeError out of the sink's start, and the logs worker died at every start, restarted
    for ever by its supervisor: no ingest at all (found from outside, a real process). A text
    offset raised TypeError the same way; a segment named ``../..`` was read. Now each is
    "unreadable", as bytes that are not JSON were: that sink stops, says so, the rest runs."""
    Store(tmp_path).write([event(i) for i in range(3)])
    path = cursor_path(tmp_path, "elasticsearch-w00")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    sink = make_sink("http://127.0.0.1:9", tmp_path)
    with caplog.at_level(logging.ERROR, "logmesh.sinks.elasticsearch"):
        sink.start()
    assert sink.status.startswith("stopped:") and "unreadable" in sink.status, sink.status
    assert "delete it" in sink.status and sink.stopped, "/healthz says so"
    assert any("not forwarding" in r.getMessage() for r in caplog.records)
    await sink.close()
    assert path.read_bytes() == damage, "left for the operator to look at"
