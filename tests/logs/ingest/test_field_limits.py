"""Every source's labels past field_limits' bounds are folded, alike (the rule is apply_extra's,
and Loki's streams and metadata, which do not go through it, fold the same way)."""

from __future__ import annotations

import orjson

from logmesh.logs.ingest import field_limits, loki, otlp_json
from logmesh.logs.ingest.field_limits import FOLDED_LABEL, MAX_FIELD_NAME, MAX_FIELDS, fold
from logmesh.logs.ingest.http_ndjson import parse_body

from .runs_support import lines
from .test_loki_runs import protobuf

RECEIVED = 1795626999000
NAMES = [f"k{i}" for i in range(MAX_FIELDS + 500)] + ["x" * (MAX_FIELD_NAME + 1)]


def assert_folded(labels: dict, names: list[str] = NAMES) -> None:
    assert len(labels) == MAX_FIELDS and all(len(n) <= MAX_FIELD_NAME for n in labels)
    folded = orjson.loads(labels[FOLDED_LABEL])
    assert [n for n in labels if n != FOLDED_LABEL] + list(folded) == names  # in the order sent
    assert all(folded[n] == labels.get(n, n) for n in folded if n != FOLDED_LABEL)


def test_fold_keeps_labels_within_the_limits_as_they_are():
    labels = {f"k{i}": i for i in range(MAX_FIELDS)}
    assert fold(labels) is labels
    assert fold({"a" * MAX_FIELD_NAME: 1}) == {"a" * MAX_FIELD_NAME: 1}


def test_fold_counts_and_keeps_a_senders_own_folded_label():
    before = (field_limits.Folded.events, field_limits.Folded.fields)
    out = fold({FOLDED_LABEL: "mine", **{n: n for n in NAMES}})
    folded = orjson.loads(out[FOLDED_LABEL])
    assert folded[FOLDED_LABEL] == "mine" and len(out) == MAX_FIELDS
    assert field_limits.Folded.events == before[0] + 1
    assert field_limits.Folded.fields == before[1] + len(NAMES) + 1 - (MAX_FIELDS - 1)


def test_ndjson_folds():
    events, errors = parse_body(orjson.dumps({"message": "m", **{n: n for n in NAMES}}))
    assert not errors
    assert_folded(events[0].labels)


def otlp_body(resource_attrs: list[str], record_attrs: list[str]) -> bytes:
    def attrs(names: list[str]) -> list[dict]:
        return [{"key": n, "value": {"stringValue": n}} for n in names]
    return orjson.dumps({"resourceLogs": [{"resource": {"attributes": attrs(resource_attrs)}, "scopeLogs": [
        {"scope": {"name": "s"}, "logRecords": [
            {"timeUnixNano": "1795626000000000000", "body": {"stringValue": "m"},
             "attributes": attrs(record_attrs)}]}]}]})


def test_otlp_json_folds_resource_and_record_attributes_together():
    half = len(NAMES) // 2
    for resource, record in ((NAMES, []), ([], NAMES), (NAMES[:half], NAMES[half:])):
        [line] = lines(otlp_json.parse_json(otlp_body(resource, record), RECEIVED))
        assert_folded(line["labels"])


def test_loki_folds_stream_labels_and_metadata():
    many = ", ".join(f'{n}="{n}"' for n in NAMES)
    for body in (protobuf(("{" + many + "}", [(1795626000, 0, "m", {})])),
                 protobuf(("{}", [(1795626000, 0, "m", {n: n for n in NAMES})]))):
        [line] = lines(loki.parse_protobuf(body, RECEIVED, 1 << 30))
        assert_folded(line["labels"])
    doc = {"streams": [{"stream": {n: n for n in NAMES}, "values": [["1795626000000000000", "m"]]}]}
    [line] = lines(loki.parse_json(orjson.dumps(doc), RECEIVED))
    assert_folded(line["labels"])
