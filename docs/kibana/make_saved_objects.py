#!/usr/bin/env python3
"""Writes docs/kibana/logmesh.ndjson: Kibana 8 saved objects for the logmesh data stream.

One data view (``logs-logmesh-*``, time field ``@timestamp``), three Lens
visualizations and a dashboard holding them:

* requests per service over time (stacked bars, top 10 ``service.name``);
* top paths (horizontal bars, top 15 ``url.path``);
* error rate over time (100%-stacked bars: errors vs. the rest, an error
  being ``log.level: error`` or a 5xx ``http.response.status_code``).

The file is generated so it can be reviewed as code and cannot drift:
tests/logs/sinks/test_kibana_docs.py fails when it differs from this
script's output. Regenerate with ``.venv/bin/python docs/kibana/make_saved_objects.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("logmesh.ndjson")
DATA_VIEW_ID = "logmesh-logs"
DATA_VIEW_PATTERN = "logs-logmesh-*"
ERROR_KQL = 'log.level : "error" or http.response.status_code >= 500'
CORE_VERSION = "8.8.0"  # saved-object format of Kibana 8.8+; newer Kibana (8.x, 9.x) migrates on import
LENS_VERSION = "8.9.0"
DASHBOARD_VERSION = "8.9.0"
DATA_VIEW_VERSION = "8.0.0"


def count(label: str = "Requests") -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "count",
            "isBucketed": False, "scale": "ratio", "sourceField": "___records___",
            "params": {"emptyAsNull": True}}


def date_histogram() -> dict[str, Any]:
    return {"label": "@timestamp", "dataType": "date", "operationType": "date_histogram",
            "sourceField": "@timestamp", "isBucketed": True, "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}}


def terms(field: str, size: int, order_by: str) -> dict[str, Any]:
    return {"label": f"Top {size} values of {field}", "dataType": "string", "operationType": "terms",
            "scale": "ordinal", "sourceField": field, "isBucketed": True,
            "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by},
                       "orderDirection": "desc", "otherBucket": True, "missingBucket": False,
                       "parentFormat": {"id": "terms"}, "include": [], "exclude": [],
                       "includeIsRegex": False, "excludeIsRegex": False}}


def filters(named: dict[str, str]) -> dict[str, Any]:
    return {"label": "Outcome", "customLabel": True, "dataType": "string", "operationType": "filters",
            "scale": "ordinal", "isBucketed": True,
            "params": {"filters": [{"label": label, "input": {"query": kql, "language": "kuery"}}
                                   for label, kql in named.items()]}}


def lens(obj_id: str, title: str, description: str, series: str, columns: dict[str, dict],
         x: str, y: str, split: str | None = None) -> dict[str, Any]:
    layer_id = f"{obj_id}-layer"
    layer: dict[str, Any] = {"layerId": layer_id, "layerType": "data", "seriesType": series,
                             "xAccessor": x, "accessors": [y]}
    if split:
        layer["splitAccessor"] = split
    state = {
        "datasourceStates": {"formBased": {"layers": {layer_id: {
            "columns": columns, "columnOrder": list(columns), "incompleteColumns": {}, "sampling": 1}}}},
        "visualization": {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                          "fittingFunction": "None", "preferredSeriesType": series, "layers": [layer]},
        "query": {"query": "", "language": "kuery"},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    return {"attributes": {"title": title, "description": description, "visualizationType": "lnsXY",
                           "state": state},
            "coreMigrationVersion": CORE_VERSION, "id": obj_id, "managed": False,
            "references": [{"type": "index-pattern", "id": DATA_VIEW_ID,
                            "name": f"indexpattern-datasource-layer-{layer_id}"}],
            "type": "lens", "typeMigrationVersion": LENS_VERSION}


def saved_objects() -> list[dict[str, Any]]:
    data_view = {
        "attributes": {"title": DATA_VIEW_PATTERN, "name": "logmesh logs", "timeFieldName": "@timestamp",
                       "allowHidden": False, "fields": "[]", "fieldAttrs": "{}", "fieldFormatMap": "{}",
                       "runtimeFieldMap": "{}", "sourceFilters": "[]"},
        "coreMigrationVersion": CORE_VERSION, "id": DATA_VIEW_ID, "managed": False, "references": [],
        "type": "index-pattern", "typeMigrationVersion": DATA_VIEW_VERSION}
    per_service = lens(
        "logmesh-requests-per-service", "Requests per service",
        "Events stored by logmesh per service.name over time.", "bar_stacked",
        {"ts": date_histogram(), "svc": terms("service.name", 10, "n"), "n": count()},
        x="ts", y="n", split="svc")
    top_paths = lens(
        "logmesh-top-paths", "Top paths", "The 15 url.path values with the most requests.",
        "bar_horizontal", {"path": terms("url.path", 15, "n"), "n": count()}, x="path", y="n")
    error_rate = lens(
        "logmesh-error-rate", "Error rate",
        f"Share of requests that are errors ({ERROR_KQL}) per interval.", "bar_percentage_stacked",
        {"ts": date_histogram(), "outcome": filters({"error": ERROR_KQL, "ok": f"not ({ERROR_KQL})"}),
         "n": count()},
        x="ts", y="n", split="outcome")
    grid = [(per_service, 0, 0, 48, 15), (top_paths, 0, 15, 24, 15), (error_rate, 24, 15, 24, 15)]
    panels, references = [], []
    for i, (vis, x, y, w, h) in enumerate(grid, 1):
        panel_id = f"p{i}"
        panels.append({"version": CORE_VERSION, "type": "lens", "panelIndex": panel_id,
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_id},
                       "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{panel_id}"})
        references.append({"name": f"panel_{panel_id}", "type": "lens", "id": vis["id"]})
    dashboard = {
        "attributes": {
            "title": "logmesh: requests", "version": 1, "timeRestore": True, "timeFrom": "now-1h",
            "timeTo": "now", "refreshInterval": {"pause": False, "value": 30000},
            "description": "Requests per service, top paths and error rate, from the logmesh data stream.",
            "panelsJSON": json.dumps(panels, separators=(",", ":")),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "syncCursor": True,
                                       "syncTooltips": False, "hidePanelTitles": False},
                                      separators=(",", ":")),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "kuery"}, "filter": []}, separators=(",", ":"))}},
        "coreMigrationVersion": CORE_VERSION, "id": "logmesh-dashboard", "managed": False,
        "references": references, "type": "dashboard", "typeMigrationVersion": DASHBOARD_VERSION}
    return [data_view, per_service, top_paths, error_rate, dashboard]


def render() -> str:
    return "".join(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
                   for obj in saved_objects())


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
