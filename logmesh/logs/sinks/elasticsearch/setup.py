"""Getting a cluster ready for documents: which product it is, then policy, template and target.

The sink (sink.py) runs these until they succeed, backing off in between;
each is one pass through the client libraries (client.py). They raise
NotElasticsearch, RequestFailed or ValueError (e.g. OpenSearch with an API
key) for the sink to retry.
"""

from __future__ import annotations

import logging
from typing import Any

from .client import Backend, NotElasticsearch, OpenSearchBackend, is_opensearch
from .config import ElasticsearchConfig
from .template import has_policy, index_template, lifecycle_policy, policy_name, template_name

log = logging.getLogger("logmesh.sinks.elasticsearch")


async def identify(cfg: ElasticsearchConfig, backend: Backend, name: str) -> tuple[Backend, Any]:
    """``GET /``: (backend, its answer); (an OpenSearch backend, None) when the server turned
    out to be OpenSearch: ask again with that one (``backend`` is closed)."""
    try:
        return backend, await backend.info()
    except NotElasticsearch as exc:
        if not is_opensearch(exc.body) or backend.flavor == "opensearch":
            raise
        log.info("%s: the server is OpenSearch; using opensearch-py", name)
        await backend.close()
        return OpenSearchBackend(cfg), None


async def install(cfg: ElasticsearchConfig, backend: Backend, info: Any, name: str) -> None:
    """The ILM policy and the index template (unless told not to), then the data stream or index."""
    flavor = backend.flavor
    if cfg.install_template:
        if has_policy(cfg, flavor):  # before the template that names it
            await backend.put_policy(policy_name(cfg), lifecycle_policy(cfg))
        await backend.put_template(template_name(cfg), index_template(cfg, flavor))
    await backend.create_target(cfg.target, cfg.is_data_stream)
    version = info.get("version", {}).get("number", "?") if isinstance(info, dict) else "?"
    log.info("%s: connected to %s %s; documents go to %s %s", name, flavor, version,
             "data stream" if cfg.is_data_stream else "index", cfg.target)
