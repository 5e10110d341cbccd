#!/usr/bin/env python3
"""Writes docs/kibana/logmesh.ndjson (Kibana 8) and opensearch-dashboards.ndjson.

Kibana: one data view (``logs-logmesh-*``, time field ``@timestamp``), Lens
visualizations, saved searches and two dashboards:

* **logmesh: requests**: requests per service over time (stacked bars, top
  10 ``service.name``); top paths (top 15 ``url.path``); error rate over time
  (100%-stacked bars: errors vs. the rest, an error being ``log.level: error``
  or a 5xx ``http.response.status_code``);
* **logmesh: mesh**: from the gateway's access logs, RED per route: request
  rate over time, a table of requests, errors and p50/p95/p99 duration per
  route, the percentiles over time, the error share per route; errors by
  service; and the health state changes of every instance
  (``labels.event.kind : "state"``);
* a Discover search per service of the book's mesh, and one of the state changes.

``route``, ``event.duration_ms`` and ``upstream`` are the template's runtime
fields (logmesh/logs/sinks/elasticsearch/template.py). OpenSearch Dashboards
has neither Lens nor runtime fields: its file holds the same dashboards as
classic visualizations, over an index pattern with those three as scripted
fields.

The file is generated so it can be reviewed as code and cannot drift:
tests/logs/sinks/test_kibana_docs.py fails when it differs from this
script's output. Regenerate with ``.venv/bin/python docs/kibana/make_saved_objects.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from logmesh.logs.sinks.elasticsearch.template import SCRIPTED_FIELDS  # noqa: E402

OUT = Path(__file__).with_name("logmesh.ndjson")
OSD_OUT = Path(__file__).with_name("opensearch-dashboards.ndjson")
SERVICES = ("gateway", "goods", "members", "purchases")  # the book's mesh (logmesh/examples)
GATEWAY_KQL = 'service.name : "gateway"'  # its access logs: one event per HTTP request
STATE_KQL = 'labels.event.kind : "state"'  # the health monitor's state changes
ROUTE_ERROR_KQL = "http.response.status_code >= 400"  # as logs/query/red.py counts them
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


def percentile(p: int) -> dict[str, Any]:
    return {"label": f"p{p} (ms)", "customLabel": True, "dataType": "number",
            "operationType": "percentile", "sourceField": "event.duration_ms", "isBucketed": False,
            "scale": "ratio", "params": {"percentile": p}}


def filtered_count(label: str, kql: str) -> dict[str, Any]:
    return {**count(label), "filter": {"query": kql, "language": "kuery"}}


def filters(named: dict[str, str]) -> dict[str, Any]:
    return {"label": "Outcome", "customLabel": True, "dataType": "string", "operationType": "filters",
            "scale": "ordinal", "isBucketed": True,
            "params": {"filters": [{"label": label, "input": {"query": kql, "language": "kuery"}}
                                   for label, kql in named.items()]}}


def lens(obj_id: str, title: str, description: str, series: str, columns: dict[str, dict],
         x: str, y: str | list[str], split: str | None = None, query: str = "") -> dict[str, Any]:
    layer_id = f"{obj_id}-layer"
    layer: dict[str, Any] = {"layerId": layer_id, "layerType": "data", "seriesType": series,
                             "xAccessor": x, "accessors": [y] if isinstance(y, str) else y}
    if split:
        layer["splitAccessor"] = split
    visualization = {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                     "fittingFunction": "None", "preferredSeriesType": series, "layers": [layer]}
    return _lens(obj_id, title, description, "lnsXY", columns, visualization, query)


def table(obj_id: str, title: str, description: str, columns: dict[str, dict],
          query: str = "") -> dict[str, Any]:
    visualization = {"layerId": f"{obj_id}-layer", "layerType": "data",
                     "columns": [{"columnId": c} for c in columns]}
    return _lens(obj_id, title, description, "lnsDatatable", columns, visualization, query)


def _lens(obj_id: str, title: str, description: str, kind: str, columns: dict[str, dict],
          visualization: dict[str, Any], query: str) -> dict[str, Any]:
    layer_id = f"{obj_id}-layer"
    state = {
        "datasourceStates": {"formBased": {"layers": {layer_id: {
            "columns": columns, "columnOrder": list(columns), "incompleteColumns": {}, "sampling": 1}}}},
        "visualization": visualization,
        "query": {"query": query, "language": "kuery"},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    return {"attributes": {"title": title, "description": description, "visualizationType": kind,
                           "state": state},
            "coreMigrationVersion": CORE_VERSION, "id": obj_id, "managed": False,
            "references": [{"type": "index-pattern", "id": DATA_VIEW_ID,
                            "name": f"indexpattern-datasource-layer-{layer_id}"}],
            "type": "lens", "typeMigrationVersion": LENS_VERSION}


def search_source(query: str, with_index: bool = True) -> str:
    src: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        src["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.index"
    return json.dumps(src, separators=(",", ":"))


INDEX_REF = [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
              "id": DATA_VIEW_ID}]


def searches(core: dict[str, Any]) -> list[dict[str, Any]]:
    """A Discover search per service of the book's mesh, and the instances' state changes."""
    out = []
    columns = ["service.name", "log.level", "http.request.method", "url.path", "message"]
    for name in SERVICES:
        out.append(_search(f"logmesh-search-{name}", f"logmesh: {name}", f"Every event of {name}.",
                           f'service.name : "{name}"', columns, core))
    out.append(_search("logmesh-search-states", "logmesh: instance states",
                       "Each instance's change of state (up, slow, silent, down, unregistered) "
                       "as the logs service's health monitor saw it.", STATE_KQL,
                       ["service.name", "labels.state", "labels.state.previous", "labels.state.reason",
                        "message"], core))
    return out


def _search(obj_id: str, title: str, description: str, kql: str, columns: list[str],
            core: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": {"title": title, "description": description, "columns": columns,
                           "sort": [["@timestamp", "desc"]],
                           "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(kql)}},
            "id": obj_id, "references": INDEX_REF, "type": "search", **core}


def dashboard(obj_id: str, title: str, description: str, grid: list[tuple],
              core: dict[str, Any], version: str) -> dict[str, Any]:
    panels, references = [], []
    for i, (obj, x, y, w, h) in enumerate(grid, 1):
        panel_id = f"p{i}"
        panels.append({"version": version, "type": obj["type"], "panelIndex": panel_id,
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_id},
                       "embeddableConfig": {"enhancements": {}} if version == CORE_VERSION else {},
                       "panelRefName": f"panel_{panel_id}"})
        references.append({"name": f"panel_{panel_id}", "type": obj["type"], "id": obj["id"]})
    return {
        "attributes": {
            "title": title, "version": 1, "timeRestore": True, "timeFrom": "now-1h",
            "timeTo": "now", "refreshInterval": {"pause": False, "value": 30000},
            "description": description,
            "panelsJSON": json.dumps(panels, separators=(",", ":")),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "syncCursor": True,
                                       "syncTooltips": False, "hidePanelTitles": False},
                                      separators=(",", ":")),
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source("", with_index=False)}},
        "id": obj_id, "references": references, "type": "dashboard", **core}


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
    # RED per route, from the gateway's access logs
    route_rate = lens(
        "logmesh-route-rate", "Requests per route",
        "Gateway requests per route (METHOD /path) over time, top 10.", "line",
        {"ts": date_histogram(), "route": terms("route", 10, "n"), "n": count()},
        x="ts", y="n", split="route", query=GATEWAY_KQL)
    route_table = table(
        "logmesh-route-red", "Routes: requests, errors, duration",
        "Per route of the gateway: requests, errors (status >= 400), p50/p95/p99 duration in ms.",
        {"route": terms("route", 50, "n"), "n": count(), "errors": filtered_count("Errors", ROUTE_ERROR_KQL),
         "p50": percentile(50), "p95": percentile(95), "p99": percentile(99)},
        query=GATEWAY_KQL)
    latency = lens(
        "logmesh-route-latency", "Gateway duration p50/p95/p99",
        "Percentiles of the gateway's request duration (ms) over time.", "line",
        {"ts": date_histogram(), "p50": percentile(50), "p95": percentile(95), "p99": percentile(99)},
        x="ts", y=["p50", "p95", "p99"], query=GATEWAY_KQL)
    route_errors = lens(
        "logmesh-route-error-rate", "Error rate per route",
        "Share of each route's requests answered with status >= 400.", "bar_horizontal_percentage_stacked",
        {"route": terms("route", 15, "n"),
         "outcome": filters({"error": ROUTE_ERROR_KQL, "ok": f"not {ROUTE_ERROR_KQL}"}), "n": count()},
        x="route", y="n", split="outcome", query=GATEWAY_KQL)
    by_service = lens(
        "logmesh-errors-by-service", "Errors by service",
        f"Errors ({ERROR_KQL}) per service over time.", "bar_stacked",
        {"ts": date_histogram(), "svc": terms("service.name", 10, "n"),
         "n": filtered_count("Errors", ERROR_KQL)},
        x="ts", y="n", split="svc")
    core = {"coreMigrationVersion": CORE_VERSION, "managed": False, "typeMigrationVersion": "8.0.0"}
    found = searches(core)
    requests = dashboard(
        "logmesh-dashboard", "logmesh: requests",
        "Requests per service, top paths and error rate, from the logmesh data stream.",
        [(per_service, 0, 0, 48, 15), (top_paths, 0, 15, 24, 15), (error_rate, 24, 15, 24, 15)],
        {**core, "typeMigrationVersion": DASHBOARD_VERSION}, CORE_VERSION)
    mesh = dashboard(
        "logmesh-mesh-dashboard", "logmesh: mesh",
        "RED per route from the gateway's access logs, errors by service, instance states.",
        [(route_rate, 0, 0, 48, 12), (route_table, 0, 12, 48, 14), (latency, 0, 26, 24, 12),
         (route_errors, 24, 26, 24, 12), (by_service, 0, 38, 24, 12), (found[-1], 24, 38, 24, 12)],
        {**core, "typeMigrationVersion": DASHBOARD_VERSION}, CORE_VERSION)
    return [data_view, per_service, top_paths, error_rate, route_rate, route_table, latency,
            route_errors, by_service, *found, requests, mesh]


# -- OpenSearch Dashboards: classic visualizations ------------------------------------------

OSD_VERSION = "7.10.0"  # the saved-object format OpenSearch Dashboards 1.x/2.x reads and migrates


def _agg(n: int, kind: str, schema: str, **params: Any) -> dict[str, Any]:
    return {"id": str(n), "enabled": True, "type": kind, "schema": schema, "params": params}


def _xy_params(kind: str, mode: str = "normal", percentage: bool = False) -> dict[str, Any]:
    return {"type": kind, "grid": {"categoryLines": False}, "addTooltip": True, "addLegend": True,
            "legendPosition": "right", "times": [], "addTimeMarker": False,
            "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom",
                              "show": True, "scale": {"type": "linear"}, "labels": {"show": True,
                              "filter": True, "truncate": 100}, "title": {}, "style": {}}],
            "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
                           "show": True, "style": {}, "labels": {"show": True, "rotate": 0,
                           "filter": False, "truncate": 100}, "title": {"text": ""},
                           "scale": {"type": "linear", "mode": "percentage" if percentage else "normal"}}],
            "seriesParams": [{"show": True, "type": "line" if kind == "line" else "histogram",
                              "mode": mode, "data": {"label": "Count", "id": "1"},
                              "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True,
                              "showCircles": True, "lineWidth": 2}]}


def _vis(obj_id: str, title: str, kind: str, params: dict[str, Any], aggs: list[dict],
         query: str = "") -> dict[str, Any]:
    vis_state = {"title": title, "type": kind, "params": params, "aggs": aggs}
    return {"attributes": {"title": title, "description": "", "version": 1, "uiStateJSON": "{}",
                           "visState": json.dumps(vis_state, separators=(",", ":")),
                           "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(query)}},
            "id": obj_id, "migrationVersion": {"visualization": OSD_VERSION},
            "references": INDEX_REF, "type": "visualization"}


def osd_objects() -> list[dict[str, Any]]:
    fields = [{"name": name, "type": kind, "count": 0, "scripted": True, "script": script,
               "lang": "painless", "searchable": True, "aggregatable": True, "readFromDocValues": False}
              for name, (kind, script) in SCRIPTED_FIELDS.items()]
    pattern = {"attributes": {"title": DATA_VIEW_PATTERN, "timeFieldName": "@timestamp",
                              "fields": json.dumps(fields, separators=(",", ":"))},
               "id": DATA_VIEW_ID, "migrationVersion": {"index-pattern": OSD_VERSION}, "references": [],
               "type": "index-pattern"}
    date = _agg(2, "date_histogram", "segment", field="@timestamp", interval="auto",
                min_doc_count=1, extended_bounds={})
    route_rate = _vis("logmesh-route-rate", "Requests per route", "line", _xy_params("line"),
                      [_agg(1, "count", "metric"), date,
                       _agg(3, "terms", "group", field="route", size=10, order="desc", orderBy="1")],
                      GATEWAY_KQL)
    route_table = _vis("logmesh-route-red", "Routes: requests and duration (p50/p95/p99 ms)", "table",
                       {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False,
                        "showTotal": False, "totalFunc": "sum", "percentageCol": ""},
                       [_agg(1, "count", "metric"),
                        _agg(2, "percentiles", "metric", field="event.duration_ms", percents=[50, 95, 99]),
                        _agg(3, "terms", "bucket", field="route", size=50, order="desc", orderBy="1")],
                       GATEWAY_KQL)
    latency = _vis("logmesh-route-latency", "Gateway duration p50/p95/p99", "line", _xy_params("line"),
                   [_agg(1, "percentiles", "metric", field="event.duration_ms", percents=[50, 95, 99]),
                    date], GATEWAY_KQL)
    route_errors = _vis("logmesh-route-error-rate", "Error rate per route", "horizontal_bar",
                        _xy_params("histogram", "stacked", percentage=True),
                        [_agg(1, "count", "metric"),
                         _agg(2, "terms", "segment", field="route", size=15, order="desc", orderBy="1"),
                         _agg(3, "filters", "group", filters=[
                             {"input": {"query": ROUTE_ERROR_KQL, "language": "kuery"}, "label": "error"},
                             {"input": {"query": f"not {ROUTE_ERROR_KQL}", "language": "kuery"},
                              "label": "ok"}])], GATEWAY_KQL)
    by_service = _vis("logmesh-errors-by-service", "Errors by service", "histogram",
                      _xy_params("histogram", "stacked"),
                      [_agg(1, "count", "metric"), date,
                       _agg(3, "terms", "group", field="service.name", size=10, order="desc", orderBy="1")],
                      ERROR_KQL)
    core = {"migrationVersion": {"search": OSD_VERSION}}
    found = searches({})
    for obj in found:
        obj.update(core)
    mesh = dashboard("logmesh-mesh-dashboard", "logmesh: mesh",
                     "RED per route from the gateway's access logs, errors by service, instance states.",
                     [(route_rate, 0, 0, 48, 12), (route_table, 0, 12, 48, 14), (latency, 0, 26, 24, 12),
                      (route_errors, 24, 26, 24, 12), (by_service, 0, 38, 24, 12), (found[-1], 24, 38, 24, 12)],
                     {"migrationVersion": {"dashboard": OSD_VERSION}}, OSD_VERSION)
    return [pattern, route_rate, route_table, latency, route_errors, by_service, *found, mesh]


def render(objects: list[dict[str, Any]] | None = None) -> str:
    return "".join(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
                   for obj in (saved_objects() if objects is None else objects))


if __name__ == "__main__":
    OUT.write_text(render())
    OSD_OUT.write_text(render(osd_objects()))
    print(f"wrote {OUT} and {OSD_OUT}")
