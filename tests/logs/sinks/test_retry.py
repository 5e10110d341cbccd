"""retry.classify / classify_response against _bulk answers in Elasticsearch 8's own shapes.

data/*.json are answers as Elasticsearch 8.x gives them (bulk items of a data
stream, the 409 of a repeated ``create``, the 400 ``document_parsing_exception``
of a mapping conflict, 429 rejections and the flood-stage block, 401/403 of
the security layer, a whole-request 503 with no master), so the table below
is the contract: what the sink does with each.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logmesh.logs.sinks.elasticsearch.retry import (
    DeadLetter,
    Done,
    Retry,
    Split,
    backoff,
    classify,
    classify_response,
)

DATA = Path(__file__).parent / "data"


def load(name: str):
    return orjson.loads((DATA / name).read_bytes())


def items(name: str) -> dict[str, dict]:
    """_id -> the item object under its op name."""
    return {next(iter(i.values()))["_id"]: next(iter(i.values())) for i in load(name)["items"]}


def f(item: dict):
    return classify(item["status"], item)


def test_created_items_are_done():
    got = items("bulk_created.json")
    assert [f(i) for i in got.values()] == [Done("created"), Done("created")]


@pytest.mark.parametrize(("doc_id", "kind", "words"), [
    ("64", Done, "created"),
    ("128", DeadLetter, "error type: document_parsing_exception, reason: [1:11] failed to parse field "
                        "[http.response.status_code] of type [long]"),
    ("192", Done, "already indexed"),  # a resend after a lost answer: not a duplicate, not an error
    ("256", Retry, "429 too many requests: error type: es_rejected_execution_exception"),
    ("320", Retry, "disk usage exceeded flood-stage watermark"),  # a full disk is weather: wait
    ("384", Retry, "503: error type: unavailable_shards_exception"),
    ("448", Retry, "404 index not found"),  # the data stream was deleted: set up again, resend
    ("512", Retry, "403 forbidden: error type: security_exception"),  # privileges get fixed
    ("576", DeadLetter, "exceeds the maximum depth limit of [20]"),
    ("640", DeadLetter, "object mapping for [service] tried to parse field [service] as object"),
])
def test_mixed_bulk_items(doc_id, kind, words):
    verdict = f(items("bulk_mixed.json")[doc_id])
    assert isinstance(verdict, kind)
    assert words in verdict.reason


def test_dead_letter_reason_keeps_the_cause():
    verdict = f(items("bulk_mixed.json")["128"])
    assert verdict.reason.endswith('(caused by illegal_argument_exception: For input string: "many")')


@pytest.mark.parametrize(("status", "name", "kind", "words"), [
    (503, "response_503.json", Retry, "503: error type: cluster_block_exception, reason: blocked by: "
                                      "[SERVICE_UNAVAILABLE/2/no master];"),
    (429, "response_429.json", Retry, "too many requests: error type: circuit_breaking_exception"),
    (401, "response_401.json", Retry, "unauthorized (check --es-api-key"),
    (400, "response_400.json", Split, "400 bad request: error type: x_content_parse_exception"),
])
def test_whole_request_failures(status, name, kind, words):
    verdict = classify_response(status, load(name))
    assert isinstance(verdict, kind)
    assert words in verdict.reason


@pytest.mark.parametrize(("status", "body", "kind"), [
    (0, "ConnectionError: Cannot connect to host 127.0.0.1:9200", Retry),  # refused/reset/timeout
    (413, "", Split),  # http.max_content_length: Elasticsearch answers 413 with no body
    (502, "<html>Bad Gateway</html>", Retry),  # a proxy in front
    (504, None, Retry),
    (403, None, Retry),
    (404, None, Retry),
    (200, "not json", Retry),
    (418, None, Retry),  # unknown: never drop
])
def test_whole_request_table(status, body, kind):
    assert isinstance(classify_response(status, body), kind)


def test_item_without_error_object_still_classified():
    assert classify(500, {"_id": "1", "status": 500}) == Retry("500")
    assert classify(400, {"_id": "1", "status": 400}) == DeadLetter("status 400")
    assert classify(0, None) == Retry("0")


def test_backoff_doubles_caps_and_jitters():
    low = [backoff(a, 0.5, 60.0, lambda lo, hi: lo) for a in range(10)]
    high = [backoff(a, 0.5, 60.0, lambda lo, hi: hi) for a in range(10)]
    assert low[:4] == [0.25, 0.5, 1.0, 2.0]
    assert high[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(high) == 60.0 and max(low) == 30.0  # capped; never below half the step
    assert backoff(10_000, 0.5, 60.0) <= 60.0  # no overflow for very long outages
