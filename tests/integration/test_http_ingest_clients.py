"""Real clients of the foreign HTTP ingest protocols against a real logs process (issue 19):
the OpenTelemetry SDK's OTLP HTTP exporter through the ``logging`` bridge, the official
``elasticsearch`` client's bulk helper, and ``loki-logger-handler`` (Loki's JSON push); each
event is then found by ``logmesh query``. The service has a token: each client carries it the
way it can (a header, ``basic_auth``, ``auth``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime

import orjson
import pytest

from tests.support.procs import HOST
from tests.support.waiting import wait_for

TOKEN = "t" * 32


@pytest.fixture
def logs(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "logs", "--token", TOKEN)
    return procs, http_port


def query(procs, http_port: int, q: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "logmesh", "query", q, "--json", "--since", "1h",
                          "--url", f"http://{HOST}:{http_port}", "--token", TOKEN],
                         capture_output=True, text=True, timeout=30, env=procs.env)
    assert out.returncode == 0, out.stderr
    return [orjson.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_opentelemetry_sdk_logging_bridge(logs):
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    procs, http_port = logs
    resource = Resource.create({"service.name": "otel-shop", "service.instance.id": "pod-7"})
    provider = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=f"http://{HOST}:{http_port}/v1/logs",
                               headers={"Authorization": f"Bearer {TOKEN}"})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("otel.shop.checkout")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider(resource=resource).get_tracer("shop")
    try:
        with tracer.start_as_current_span("checkout") as span:
            logger.warning("payment slow for order %d", 42, extra={"order.total": 99.5})
        trace_id = format(span.get_span_context().trace_id, "032x")
        span_id = format(span.get_span_context().span_id, "016x")
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    [ev] = wait_for(lambda: query(procs, http_port, "service.name:otel-shop"), 10, "the OTel record")
    assert ev["message"] == "payment slow for order 42"
    assert ev["trace.id"] == trace_id  # joins the trace view like the gateway's trace ids
    assert ev["log.level"] == "warn" and ev["service.instance"] == "pod-7"
    assert ev["labels"]["span.id"] == span_id and ev["labels"]["order.total"] == 99.5
    assert query(procs, http_port, f"trace.id:{trace_id}") == [ev]


def test_elasticsearch_bulk_helper(logs):
    from elasticsearch import Elasticsearch, helpers

    procs, http_port = logs
    es = Elasticsearch(f"http://{HOST}:{http_port}", basic_auth=("elastic", TOKEN))
    assert es.info()["version"]["number"].startswith("8.")
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    docs = [{"_index": "shop-logs", "_source": {"@timestamp": now,
                                                 "message": f"order {i} shipped",
                                                 "service": {"name": "es-shop"}, "order": i}}
            for i in range(250)]
    ok, errors = helpers.bulk(es, docs, chunk_size=100)
    assert (ok, errors) == (250, [])
    # a document the store refuses is an item error; its neighbours are stored
    actions = [{"_index": "shop-logs", "_source": {"message": "good a", "service.name": "es-bad"}},
               {"_index": "shop-logs", "_source": {"message": "x", "@timestamp": "yesterday"}},
               {"_index": "shop-logs", "_source": {"message": "good b", "service.name": "es-bad"}}]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)
    assert ok == 2 and len(errors) == 1 and errors[0]["index"]["status"] == 400
    # documents with an _id: an action line each (es_bulk's one pass for differing actions)
    with_ids = [{"_index": "shop-ids", "_id": f"ship-{i}", "_source": {
        "message": f"parcel {i} left", "service.name": "es-ids"}} for i in range(40)]
    assert helpers.bulk(es, with_ids, chunk_size=40) == (40, [])
    es.close()
    found = query(procs, http_port, "service.name:es-ids")
    assert sorted(e["message"] for e in found) == sorted(f"parcel {i} left" for i in range(40))
    assert {e["labels"]["es.index"] for e in found} == {"shop-ids"}
    found = query(procs, http_port, "service.name:es-shop and order >= 0")  # 250 > the default 100
    assert len(found) == 100 and all(e["labels"]["es.index"] == "shop-logs" for e in found)
    assert len(query(procs, http_port, '"order 249 shipped"')) == 1
    assert {e["message"] for e in query(procs, http_port, "service.name:es-bad")} == {"good a", "good b"}


def test_elasticsearch_client_one_document_at_a_time(logs):
    """The official client's ``index()`` and ``create()`` (es_doc.py; they were 404): created,
    updated on a retry with the same id, ConflictError on a second create, each stored once."""
    from elasticsearch import ConflictError, Elasticsearch

    procs, http_port = logs
    es = Elasticsearch(f"http://{HOST}:{http_port}", basic_auth=("elastic", TOKEN))
    r = es.index(index="one-doc", document={"message": "auto id", "service.name": "es-one"})
    assert r["result"] == "created" and r.meta.status == 201 and r["_id"]
    assert es.index(index="one-doc", id="k-1", document={"message": "with id", "service.name": "es-one"})[
        "result"] == "created"
    again = es.index(index="one-doc", id="k-1", document={"message": "with id", "service.name": "es-one"})
    assert (again["result"], again.meta.status) == ("updated", 200)
    assert es.create(index="one-doc", id="c-1", document={"message": "created", "service.name": "es-one"})[
        "result"] == "created"
    with pytest.raises(ConflictError):
        es.create(index="one-doc", id="c-1", document={"message": "created", "service.name": "es-one"})
    es.close()
    found = query(procs, http_port, "service.name:es-one")
    assert sorted(e["message"] for e in found) == ["auto id", "created", "with id"]
    assert {e["labels"].get("es.id") for e in found} == {None, "k-1", "c-1"}


def test_loki_logger_handler(logs):
    from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

    procs, http_port = logs
    handler = LokiLoggerHandler(url=f"http://{HOST}:{http_port}/loki/api/v1/push",
                                labels={"service_name": "loki-shop", "env": "test"},
                                auth=("loki", TOKEN), timeout=0.2, enable_self_errors=True)
    logger = logging.getLogger("loki.shop")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("cart service down")
        [ev] = wait_for(lambda: query(procs, http_port, "service.name:loki-shop"), 10, "the Loki line")
    finally:
        logger.removeHandler(handler)
    assert "cart service down" in ev["message"]
    assert ev["labels"]["env"] == "test"
