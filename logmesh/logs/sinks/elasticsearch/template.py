"""The index template the sink installs: an ECS-aligned mapping with a bounded field count.

Built from :data:`logmesh.logs.event.FIELD_TYPES`, the store's own schema, so a
field added there shows up here. Two rules keep the mapping bounded whatever
services send:

* ``dynamic: false`` at the root: a field not in the schema stays in
  ``_source`` but adds no mapping;
* ``params`` and ``labels`` (anything a service chooses) are one ``flattened``
  field each (``flat_object`` on OpenSearch): any number of distinct keys
  costs one mapped field, so ``index.mapping.total_fields.limit`` is never hit.

The mesh's dashboards (docs/kibana/) need three values that are not fields
of their own: the route (``METHOD /path``), the gateway's duration and the
upstream that answered (both in ``labels``, which is flattened: keyword
values, no percentiles). On Elasticsearch they are runtime fields of the
mapping, computed when a query asks for them (:data:`RUNTIME_FIELDS`);
OpenSearch has no runtime fields, so its dashboards' index pattern carries
the same scripts as scripted fields (:data:`SCRIPTED_FIELDS`).

On Elasticsearch, a data stream's template also names an ILM policy,
:func:`lifecycle_policy`, installed just before it: roll the backing index
over daily or at 50 GB a primary shard, delete it ``--es-retention`` after.
OpenSearch has ISM instead (docs/elasticsearch.md shows the policy).
"""

from __future__ import annotations

from typing import Any

from ...event import FIELD_TYPES
from .config import ElasticsearchConfig

TEMPLATE_PRIORITY = 200  # above the built-in "logs" template (100, pattern logs-*-*)
KEYWORD_IGNORE_ABOVE = 1024  # longer keyword values are kept in _source, not indexed
FLATTENED_IGNORE_ABOVE = 8191  # a leaf longer than this is not indexed (Lucene's term limit is 32766 bytes)
FLATTENED_DEPTH_LIMIT = 20  # Elasticsearch's default; deeper params are refused (dead-lettered)
TIMESTAMP_FORMAT = "epoch_millis||strict_date_optional_time"  # the store keeps epoch ms
# Painless, emitting a value (runtime fields) or returning it (OpenSearch scripted fields).
_ROUTE = ("if (doc['http.request.method'].size() > 0 && doc['url.path'].size() > 0) "
          "{{ {out}(doc['http.request.method'].value + ' ' + doc['url.path'].value); }}")
_DURATION = ("def l = params['_source']['labels']; if (l instanceof Map) {{ def v = l['event.duration_ms']; "
             "if (v == null && l['event'] instanceof Map) {{ v = l['event']['duration_ms']; }} "
             "if (v instanceof Number) {{ {out}(((Number) v).doubleValue()); }} }}")
_UPSTREAM = ("def l = params['_source']['labels']; "
             "if (l instanceof Map && l['upstream'] instanceof String) {{ {out}((String) l['upstream']); }}")
_DERIVED = {"route": ("keyword", _ROUTE), "event.duration_ms": ("double", _DURATION),
            "upstream": ("keyword", _UPSTREAM)}
RUNTIME_FIELDS = {name: {"type": kind, "script": {"source": src.format(out="emit")}}
                  for name, (kind, src) in _DERIVED.items()}
SCRIPTED_FIELDS = {name: ("number" if kind == "double" else "string",
                          src.format(out="return") + " return null;")
                   for name, (kind, src) in _DERIVED.items()}
ROLLOVER = {"max_age": "1d", "max_primary_shard_size": "50gb"}  # Elastic's advice: shards under 50 GB


def _leaf(kind: str, flavor: str) -> dict[str, Any]:
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if kind == "date":
        return {"type": "date", "format": TIMESTAMP_FORMAT}
    if kind == "object":  # free-form: params, labels
        if flavor == "opensearch":
            return {"type": "flat_object"}
        return {"type": "flattened", "ignore_above": FLATTENED_IGNORE_ABOVE,
                "depth_limit": FLATTENED_DEPTH_LIMIT}
    return {"type": kind}  # long, text


def mapping_properties(flavor: str = "elasticsearch") -> dict[str, Any]:
    """``{"service": {"properties": {"name": {...}}}, ...}`` from the dotted schema names."""
    root: dict[str, Any] = {}
    for name, kind in FIELD_TYPES.items():
        parts = name.split(".") if name != "@timestamp" else [name]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[parts[-1]] = _leaf(kind, flavor)
    return root


def template_name(config: ElasticsearchConfig) -> str:
    return f"logmesh-{config.target}"


def policy_name(config: ElasticsearchConfig) -> str:
    return f"logmesh-{config.target}"


def has_policy(config: ElasticsearchConfig, flavor: str) -> bool:
    """ILM: Elasticsearch, a data stream (rollover needs one) and a retention."""
    return flavor == "elasticsearch" and config.is_data_stream and config.retention_ms is not None


def time_value(ms: int) -> str:
    """Milliseconds as Elasticsearch's time units: 2592000000 -> ``30d``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def lifecycle_policy(config: ElasticsearchConfig) -> dict[str, Any]:
    """The body of ``PUT _ilm/policy/<policy_name>``: roll over, then delete after the retention."""
    assert config.retention_ms is not None
    return {"policy": {
        "_meta": {"managed_by": "logmesh", "description": "logmesh events: daily rollover, "
                  f"deleted {time_value(config.retention_ms)} later"},
        "phases": {
            "hot": {"min_age": "0ms", "actions": {"rollover": dict(ROLLOVER)}},
            "delete": {"min_age": time_value(config.retention_ms), "actions": {"delete": {}}},
        }}}


def index_template(config: ElasticsearchConfig, flavor: str = "elasticsearch") -> dict[str, Any]:
    """The body of ``PUT _index_template/<template_name>``."""
    body: dict[str, Any] = {
        "index_patterns": [config.target],
        "priority": TEMPLATE_PRIORITY,
        "template": {
            "mappings": {"dynamic": False, "properties": mapping_properties(flavor)},
        },
        "_meta": {"managed_by": "logmesh", "description": "logmesh logs service events (ECS names)"},
    }
    if flavor == "elasticsearch":
        body["template"]["mappings"]["runtime"] = RUNTIME_FIELDS
    if config.is_data_stream:
        body["data_stream"] = {}
    if has_policy(config, flavor):
        body["template"]["settings"] = {"index.lifecycle.name": policy_name(config)}
    return body
