"""What the Elasticsearch sink is told: servers, credentials, target, batching, retries.

``logmesh logs --elasticsearch URL[,URL...]`` and the ``--es-*`` options map
one-to-one onto :class:`ElasticsearchConfig` (cli.py). Validation happens
here, once, with messages that end with the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATA_STREAM = "logs-logmesh-default"  # <type>-<dataset>-<namespace>, Elastic's naming scheme
DEFAULT_BATCH_EVENTS = 5000  # events per _bulk request: ~1.5 MB of NDJSON (ES advises 5-15 MB at most)
DEFAULT_BATCH_BYTES = 5 * 1024 * 1024  # ... or this many bytes of stored lines, whichever first
DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds for one request before it counts as a connection error
DEFAULT_RETRY_INITIAL = 0.5  # first backoff (seconds); doubles per failed attempt, with jitter
DEFAULT_RETRY_MAX = 60.0  # backoff cap: with the cluster down, one attempt per minute at most
DEFAULT_RETENTION_MS = 30 * 86_400_000  # the ILM policy deletes an index this long after its rollover
DEFAULT_MAX_IN_FLIGHT = 4  # _bulk requests at once; a 429 halves it, each success adds one back
DEFAULT_SHUTDOWN_TIMEOUT = 2.0  # on stop, how long an in-flight bulk may take to finish (else resent)
# Elasticsearch's rules for index and data stream names (lowercase, no \ / * ? " < > | , # : or space)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,254}$")


def _split_urls(value: str | list[str]) -> list[str]:
    items = value if isinstance(value, list) else value.split(",")
    return [u.strip().rstrip("/") for u in items if u.strip()]


@dataclass
class ElasticsearchConfig:
    urls: list[str]
    api_key: str | None = None  # the encoded form Kibana shows ("base64 of id:key")
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # PEM bundle to trust for https URLs
    verify_certs: bool = True
    data_stream: str = DEFAULT_DATA_STREAM
    index: str | None = None  # a plain index instead of a data stream
    install_template: bool = True
    retention_ms: int | None = DEFAULT_RETENTION_MS  # None: no ILM policy (keep everything)
    batch_events: int = DEFAULT_BATCH_EVENTS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    retry_initial: float = DEFAULT_RETRY_INITIAL
    retry_max: float = DEFAULT_RETRY_MAX
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    compress: bool = True  # gzip the _bulk bodies (off by itself when the cluster refuses them)
    poll_interval: float = 1.0  # look for new events this often even without a wake-up
    extra_client_options: dict = field(default_factory=dict)  # passed to the client as is

    def __post_init__(self) -> None:
        self.urls = _split_urls(self.urls)
        if not self.urls:
            raise ValueError("--elasticsearch needs at least one URL, e.g. http://127.0.0.1:9200")
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"--elasticsearch {url!r} is not an http(s) URL; "
                                 "write it like https://es.example.com:9200")
        if self.api_key and (self.username or self.password):
            raise ValueError("give either --es-api-key or --es-user/--es-password, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("--es-user and --es-password go together; set both "
                             "(LOGMESH_ES_PASSWORD keeps the password out of `ps`)")
        for opt, name in (("--es-data-stream", self.data_stream), ("--es-index", self.index)):
            if name is not None and not _NAME_RE.match(name):
                raise ValueError(f"{opt} {name!r} is not a valid name; use lowercase letters, "
                                 "digits and - _ . + (e.g. logs-logmesh-default)")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"--es-ca-file {self.ca_file}: no such file; give the PEM file of "
                             "the CA that signed the cluster's certificate")
        if self.batch_events < 1 or self.batch_bytes < 1:
            raise ValueError("--es-batch-size must be at least 1")
        if self.retention_ms is not None and self.retention_ms < 60_000:
            raise ValueError("--es-retention must be at least 1m (or off to keep everything)")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ValueError(f"--es-retry-max must be at least {self.retry_initial} (the first wait)")
        if self.request_timeout <= 0:
            raise ValueError("--es-timeout must be more than 0 seconds")

    @property
    def target(self) -> str:
        """Where documents go: the plain index when set, else the data stream."""
        return self.index or self.data_stream

    @property
    def is_data_stream(self) -> bool:
        return self.index is None

    def redacted(self) -> str:
        auth = "api key" if self.api_key else (f"user {self.username}" if self.username else "no auth")
        return f"{','.join(self.urls)} -> {self.target} ({auth})"
