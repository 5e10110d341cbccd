"""OTLP JSON bodies of the wrong shape, found by fuzzing a real ``logmesh logs`` from outside.

A ``resourceLogs`` or ``scopeLogs`` entry that is not an object, a ``scope`` that is a string,
or an ``intValue`` of ``"Infinity"`` in a resource attribute raised AttributeError or
ValueError out of the slow path: the request was answered 500 and logged as a server failure.
Each must be a 400 (:class:`BadRequest`, counted by reason) or a refused record, and the good
records of a request whose shape is fine stay stored.
"""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.ingest.otlp import BadRequest
from logmesh.logs.ingest.otlp_json import parse_json

GOOD = {"timeUnixNano": "1796011000000000000", "body": {"stringValue": "kept"}}


def body(resource_logs: object) -> bytes:
    return orjson.dumps({"resourceLogs": resource_logs})


@pytest.mark.parametrize("resource_logs", [
    ["not an object"],
    [7],
    [{"scopeLogs": ["not an object"]}],
    [{"scopeLogs": [[]]}],
    [{"resource": {"attributes": [{"key": "n", "value": {"intValue": "Infinity"}}]},
      "scopeLogs": [{"logRecords": [GOOD]}]}],
    [{"resource": {"attributes": [{"key": "n", "value": {"kvlistValue": "x"}}]},
      "scopeLogs": [{"logRecords": [GOOD]}]}],
], ids=["resource-str", "resource-int", "scope-str", "scope-list", "resource-int-inf", "resource-kvlist-str"])
def test_a_body_of_the_wrong_shape_is_a_bad_request(resource_logs):
    with pytest.raises(BadRequest) as exc:
        parse_json(body(resource_logs), 1_796_011_000_000)
    assert exc.value.reason == "bad_json"


@pytest.mark.parametrize("scope", ["a string", ["a", "list"], 5, True])
def test_a_scope_that_is_no_object_names_no_logger(scope):
    parsed = parse_json(body([{"scopeLogs": [{"scope": scope, "logRecords": [GOOD]}]}]), 1_796_011_000_000)
    assert not parsed.rejected and parsed.block.count == 1
    (line,) = parsed.block.encode(range(1, 2)).splitlines()
    assert orjson.loads(line)["message"] == "kept" and "log.logger" not in orjson.loads(line)


@pytest.mark.parametrize("value", [{"intValue": "Infinity"}, {"intValue": "AAEC"}, {"kvlistValue": "x"},
                                   {"arrayValue": 5}])
def test_a_record_attribute_of_the_wrong_kind_refuses_that_record_only(value):
    bad = {**GOOD, "attributes": [{"key": "n", "value": value}], "body": {"kvlistValue": {"values": []}}}
    parsed = parse_json(body([{"scopeLogs": [{"logRecords": [bad, GOOD]}]}]), 1_796_011_000_000)
    assert parsed.rejected == {"bad_field": 1} and parsed.block.count == 1
