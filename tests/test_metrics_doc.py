"""docs/metrics.md against what the processes show: every metric shown is listed there with its
type and labels, and every metric listed there is shown by one of them.

The pages are rendered from real objects (a logs service with an Elasticsearch sink, a service
and the gateway with their shippers), not from a scan of the source: names made up at run time
count too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.mesh.gateway import Gateway
from logmesh.mesh.service import Service
from logmesh.metrics import Exposition
from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "metrics.md"
# Labels every metric of a kind carries, said once at the top of the page, not per row.
GENERAL_LABELS = {"worker", "service", "sink"}
ROW = re.compile(r"^\| (`logmesh_[^|]*) \| (counter|gauge|histogram) \|", re.M)
NAME = re.compile(r"`(_?[a-z_]+)(?:\{([a-z_,]+)\})?`")


def documented() -> dict[str, tuple[str, set[str]]]:
    """{name: (type, labels)} of the page's tables; ``_suffix`` names extend the row's first."""
    out = {}
    for names, kind in ROW.findall(DOC.read_text()):
        found = NAME.findall(names)
        stem = "_".join(found[0][0].split("_")[:2])  # logmesh_gateway
        for name, labels in found:
            full = stem + name if name.startswith("_") else name
            out[full] = (kind, set(labels.split(",")) if labels else set())
    return out


def shown(text: str) -> dict[str, tuple[str, set[str]]]:
    """{name: (type, labels of its samples)} of a Prometheus text page."""
    out: dict[str, tuple[str, set[str]]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        out[name] = (kind, set())
    for name, labels in re.findall(r"^([a-z_]+)\{([^}]*)\} ", text, re.M):
        family = name if name in out else re.sub(r"_(bucket|sum|count)$", "", name)
        out[family][1].update(set(re.findall(r'(\w+)="', labels)) - {"le"})
    return out


@pytest.fixture
async def pages(tmp_path: Path) -> list[str]:
    sinks = {}
    try:
        from logmesh.logs.sinks.elasticsearch.client import check_installed
        from logmesh.logs.sinks.elasticsearch.config import ElasticsearchConfig

        check_installed()
        sinks["elasticsearch"] = ElasticsearchConfig(urls="http://127.0.0.1:9")
    except (ImportError, RuntimeError, SystemExit):
        pass
    logs = LogsServer(LogsConfig(host="127.0.0.1", port=0, http_port=0, distributor=None,
                                 data_dir=tmp_path / "data", extra={"sinks": sinks}))
    logs.ingest.count_bad("bad_json")  # label sets appear with their first sample
    logs.ingest.count_rejected("bad_timestamp")
    logs.ingest.count_replaced("bad_utf8")
    logs.protocol_counters.events("syslog", 1)
    logs.protocol_counters.error("syslog", "too_large")
    logs.request_seconds.labels("GET /metrics", "200").observe(0.001)
    out = [logs.exposition().render()]
    logs.query.engine.close()
    logs.prom.close()

    svc = Service("goods", 0, {"GET/goods": lambda params, packet: []}, distributor=None)
    Shipper("goods", spool=Spool(tmp_path / "spool"), logs_addr=("127.0.0.1", 9)).attach(svc)
    svc.request_seconds.labels("goods", "GET/goods", "0").observe(0.001)
    gw = Gateway("127.0.0.1", 0, distributor=("127.0.0.1", 9))
    gw.attach_shipper(Shipper("gateway", logs_addr=("127.0.0.1", 9)))
    gw.request_seconds.labels("GET /goods", "200").observe(0.001)
    gw.upstream_errors.labels("goods", "400").inc()
    for part in (svc, gw):
        ex = Exposition()
        part.collect_metrics(ex)
        out.append(ex.render())
    return out


async def test_every_metric_shown_is_documented_with_its_type_and_labels(pages) -> None:
    doc = documented()
    assert len(doc) > 60  # the page's tables were read
    wrong = []
    for page in pages:
        for name, (kind, labels) in shown(page).items():
            if name not in doc:
                wrong.append(f"{name}: not in docs/metrics.md")
            elif doc[name][0] != kind:
                wrong.append(f"{name}: a {kind}, the page says {doc[name][0]}")
            elif labels - GENERAL_LABELS != doc[name][1]:
                wrong.append(f"{name}: labels {sorted(labels - GENERAL_LABELS)}, the page says "
                             f"{sorted(doc[name][1])}")
    assert not wrong, "fix docs/metrics.md or the code:\n" + "\n".join(wrong)


async def test_every_documented_metric_is_shown(pages) -> None:
    names = set().union(*(shown(page) for page in pages))
    missing = sorted(set(documented()) - names)
    assert not missing, f"docs/metrics.md lists metrics no process shows: {missing}"
