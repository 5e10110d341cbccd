"""docs/kibana and docs/elasticsearch.md can't drift from the code: every saved object parses,
its references resolve, and every field it names is one the index template maps."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from logmesh.logs.sinks.elasticsearch.template import (
    RUNTIME_FIELDS,
    SCRIPTED_FIELDS,
    mapping_properties,
)

ROOT = Path(__file__).resolve().parents[3]
KIBANA = ROOT / "docs" / "kibana"
FILES = {"elasticsearch": "logmesh.ndjson", "opensearch": "opensearch-dashboards.ndjson"}
KQL_FIELD = re.compile(r"([\w.@]+) (?::|>=|<=|>|<)")


def generator():
    spec = importlib.util.spec_from_file_location("make_saved_objects", KIBANA / "make_saved_objects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def objects(flavor: str = "elasticsearch") -> list[dict]:
    return [json.loads(line) for line in (KIBANA / FILES[flavor]).read_text().splitlines()]


def mapped(field: str, flavor: str = "elasticsearch") -> bool:
    """In the template's mapping: a property, a key under a flattened field, a runtime field
    (Elasticsearch) or the index pattern's scripted field (OpenSearch Dashboards)."""
    if field in (RUNTIME_FIELDS if flavor == "elasticsearch" else SCRIPTED_FIELDS):
        return True
    node = {"properties": mapping_properties(flavor)}
    for part in (field.split(".") if field != "@timestamp" else [field]):
        if node.get("type") in ("flattened", "flat_object"):
            return True  # labels.event.kind: a key of a free-form field
        node = node.get("properties", {}).get(part)
        if node is None:
            return False
    return "type" in node


def kql_fields(kql: str) -> list[str]:
    return [f for f in KQL_FIELD.findall(kql) if f not in ("not", "and", "or")]


def test_ndjson_is_what_the_generator_writes():
    gen = generator()
    stale = "stale; run: .venv/bin/python docs/kibana/make_saved_objects.py"
    assert (KIBANA / FILES["elasticsearch"]).read_text() == gen.render(), f"logmesh.ndjson is {stale}"
    assert (KIBANA / FILES["opensearch"]).read_text() == gen.render(gen.osd_objects()), \
        f"opensearch-dashboards.ndjson is {stale}"


@pytest.mark.parametrize("flavor", FILES)
def test_references_resolve_and_ids_are_unique(flavor):
    objs = objects(flavor)
    ids = {(o["type"], o["id"]) for o in objs}
    assert len(ids) == len(objs)
    for o in objs:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in ids, (o["id"], ref)
    dashboards = [o for o in objs if o["type"] == "dashboard"]
    assert {d["attributes"]["title"] for d in dashboards} >= {"logmesh: mesh"}
    for d in dashboards:
        panels = json.loads(d["attributes"]["panelsJSON"])
        assert {p["panelRefName"] for p in panels} == {r["name"] for r in d["references"]}
    mesh = next(d for d in dashboards if d["id"] == "logmesh-mesh-dashboard")
    assert {r["id"] for r in mesh["references"]} == {
        "logmesh-route-rate", "logmesh-route-red", "logmesh-route-latency", "logmesh-route-error-rate",
        "logmesh-errors-by-service", "logmesh-search-states"}


@pytest.mark.parametrize("flavor", FILES)
def test_searches_per_service_and_for_state_changes(flavor):
    searches = {o["id"]: o for o in objects(flavor) if o["type"] == "search"}
    assert set(searches) == {"logmesh-search-gateway", "logmesh-search-goods", "logmesh-search-members",
                             "logmesh-search-purchases", "logmesh-search-states"}
    state = json.loads(searches["logmesh-search-states"]["attributes"]["kibanaSavedObjectMeta"]
                       ["searchSourceJSON"])
    assert state["query"]["query"] == 'labels.event.kind : "state"'
    for o in searches.values():
        src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert all(mapped(f, flavor) for f in kql_fields(src["query"]["query"])), o["id"]
        assert all(mapped(f, flavor) for f in o["attributes"]["columns"]), o["id"]


def test_lens_layers_use_mapped_fields_and_reference_their_data_view():
    lenses = [o for o in objects() if o["type"] == "lens"]
    assert {o["attributes"]["visualizationType"] for o in lenses} == {"lnsXY", "lnsDatatable"}
    percentiles = set()
    for o in lenses:
        state = o["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        assert all(mapped(f) for f in kql_fields(state["query"]["query"])), o["id"]
        for layer_id, layer in layers.items():
            assert {"type": "index-pattern", "id": "logmesh-logs",
                    "name": f"indexpattern-datasource-layer-{layer_id}"} in o["references"]
            assert set(layer["columnOrder"]) == set(layer["columns"])
            for col in layer["columns"].values():
                field = col.get("sourceField")
                assert field in (None, "___records___") or mapped(field), (o["id"], field)
                if col["operationType"] == "percentile":
                    percentiles.add(col["params"]["percentile"])
                kqls = [f["input"]["query"] for f in col.get("params", {}).get("filters", [])]
                kqls += [col["filter"]["query"]] if "filter" in col else []
                for kql in kqls:
                    assert kql_fields(kql) and all(mapped(f) for f in kql_fields(kql)), (o["id"], kql)
        columns = next(iter(layers.values()))["columns"]
        vis = state["visualization"]
        if o["attributes"]["visualizationType"] == "lnsXY":
            for key in ("xAccessor", "splitAccessor"):
                assert vis["layers"][0].get(key) in (None, *columns)
            assert set(vis["layers"][0]["accessors"]) <= set(columns)
        else:
            assert [c["columnId"] for c in vis["columns"]] == next(iter(layers.values()))["columnOrder"]
    assert percentiles == {50, 95, 99}


def test_opensearch_visualizations_use_mapped_or_scripted_fields():
    objs = objects("opensearch")
    pattern = next(o for o in objs if o["type"] == "index-pattern")
    scripted = {f["name"] for f in json.loads(pattern["attributes"]["fields"]) if f["scripted"]}
    assert scripted == set(SCRIPTED_FIELDS) == set(RUNTIME_FIELDS)
    for o in objs:
        if o["type"] != "visualization":
            continue
        vis = json.loads(o["attributes"]["visState"])
        src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert src["indexRefName"] == o["references"][0]["name"]
        assert all(mapped(f, "opensearch") for f in kql_fields(src["query"]["query"])), o["id"]
        for agg in vis["aggs"]:
            field = agg["params"].get("field")
            assert field is None or mapped(field, "opensearch"), (o["id"], field)


def test_compose_file_is_the_one_in_the_guide():
    compose = (ROOT / "docs" / "elasticsearch-compose.yml").read_text()
    guide = (ROOT / "docs" / "elasticsearch.md").read_text()
    assert "```yaml\n" + compose + "```" in guide
