"""docs/kibana and docs/elasticsearch.md can't drift from the code."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from logmesh.logs.sinks.elasticsearch.template import mapping_properties

ROOT = Path(__file__).resolve().parents[3]
KIBANA = ROOT / "docs" / "kibana"


def generator():
    spec = importlib.util.spec_from_file_location("make_saved_objects", KIBANA / "make_saved_objects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def objects() -> list[dict]:
    return [json.loads(line) for line in (KIBANA / "logmesh.ndjson").read_text().splitlines()]


def mapped(field: str) -> bool:
    node = {"properties": mapping_properties()}
    for part in (field.split(".") if field != "@timestamp" else [field]):
        node = node.get("properties", {}).get(part)
        if node is None:
            return False
    return "type" in node


def test_ndjson_is_what_the_generator_writes():
    assert (KIBANA / "logmesh.ndjson").read_text() == generator().render(), (
        "docs/kibana/logmesh.ndjson is stale; run: .venv/bin/python docs/kibana/make_saved_objects.py")


def test_references_resolve_and_ids_are_unique():
    objs = objects()
    ids = {(o["type"], o["id"]) for o in objs}
    assert len(ids) == len(objs)
    for o in objs:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in ids, (o["id"], ref)
    dashboard = next(o for o in objs if o["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    names = {r["name"] for r in dashboard["references"]}
    assert {p["panelRefName"] for p in panels} == names and len(panels) == 3


def test_lens_layers_use_mapped_fields_and_reference_their_data_view():
    for o in objects():
        if o["type"] != "lens":
            continue
        layers = o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        for layer_id, layer in layers.items():
            assert {"type": "index-pattern", "id": "logmesh-logs",
                    "name": f"indexpattern-datasource-layer-{layer_id}"} in o["references"]
            assert set(layer["columnOrder"]) == set(layer["columns"])
            for col in layer["columns"].values():
                field = col.get("sourceField")
                assert field in (None, "___records___") or mapped(field), (o["id"], field)
                for f in col.get("params", {}).get("filters", []):
                    for name in re.findall(r"([\w.@]+) :|([\w.@]+) >=", f["input"]["query"]):
                        assert mapped(name[0] or name[1]), (o["id"], name)
        vis_layer = o["attributes"]["state"]["visualization"]["layers"][0]
        columns = next(iter(layers.values()))["columns"]
        for key in ("xAccessor", "splitAccessor"):
            assert vis_layer.get(key) in (None, *columns)
        assert set(vis_layer["accessors"]) <= set(columns)


def test_compose_file_is_the_one_in_the_guide():
    compose = (ROOT / "docs" / "elasticsearch-compose.yml").read_text()
    guide = (ROOT / "docs" / "elasticsearch.md").read_text()
    assert "```yaml\n" + compose + "```" in guide
