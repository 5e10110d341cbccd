"""``logmesh``: run the mesh, its parts, and the log tools.

Every option has a ``LOGMESH_<NAME>`` environment variable and the book's
default. Servers bind 127.0.0.1 unless ``--host`` says otherwise, and refuse
any other address without a token (docs/security.md).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, cli_client
from .cli_options import (
    DURATION,
    PORT,
    SIZE,
    SecurityArgs,
    SpoolArgs,
    config_option,
    data_dir_option,
    distributor_option,
    host_option,
    metrics_port_option,
    packet_size,
    security_options,
    spool_options,
    supervise_option,
)
from .logs.store.layout import MAX_WORKERS
from .supervisor import EXIT_NO_RESTART, ChildSpec, Supervisor, busy_port, logmesh_argv
from .terminal import SafeFormatter

if TYPE_CHECKING:
    from .security import ServerSecurity
    from .shipping.shipper import Shipper

EXIT_STARTUP_FAILURE = 3
CONTEXT = {"auto_envvar_prefix": "LOGMESH", "help_option_names": ["-h", "--help"],
           "show_default": True}


def setup_logging(verbose: bool = False) -> None:
    """Log lines on stderr; a peer's text in them (a node's name, a path) is shown, not obeyed
    by the terminal (terminal.SafeFormatter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def serve(make: Callable[[], Awaitable[object]], *, fast_loop: bool = False) -> None:
    """Run an async server until SIGTERM/SIGINT, then let it stop cleanly.

    ``fast_loop``: on uvloop's event loop (the mesh's request path: gateway, services,
    distributor; bench/notes/mesh.md says what it bought).

    Only the first signal stops it: a supervisor forwards SIGTERM to each worker and a
    ``kill`` of the process group reaches it too, and a second cancel would cut the
    stop short (the store's last flush and seal, the metrics' last publish).
    """

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for sig in (signal.SIGTERM, signal.SIGINT):  # ignored until the process ends: one
                loop.remove_signal_handler(sig)  # after the loop closed would kill it mid-exit
                signal.signal(sig, signal.SIG_IGN)
            task.cancel()  # type: ignore[union-attr]

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await make()
        except asyncio.CancelledError:
            pass

    factory = None
    if fast_loop:
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    except OSError as exc:
        click.echo(f"error: {bind_error(exc)}", err=True)
        sys.exit(EXIT_STARTUP_FAILURE)


# asyncio's words for a failed bind: "error while attempting to bind on address ('h', p): ..."
_BIND_ADDRESS = re.compile(r"bind on address \('?([^',]*)'?, (\d+)")


def bind_error(exc: OSError) -> str:
    """An OSError of a server's start as a line that says what to do: a port another process
    holds (found from outside: Python's "[Errno 98] error while attempting to bind on address
    ('127.0.0.1', 9000)", again at each restart) names the address, the likely holder and the
    way out; anything else as it is."""
    m = _BIND_ADDRESS.search(str(exc))
    if exc.errno != errno.EADDRINUSE or m is None:
        return str(exc)
    return (f"cannot listen on {m.group(1)}:{m.group(2)}: the address is in use by another "
            "process (this command already running, or a mesh under `logmesh up`?). Stop it, or "
            "give this command another port: --port, or the option of that port (--help); 0 "
            "picks a free one.")


def supervised(name: str) -> None:
    """Re-run this very command as a supervised child (``--no-supervise``)."""
    argv = logmesh_argv(*sys.argv[1:], "--no-supervise")
    sys.exit(Supervisor([ChildSpec(name, argv)]).run())


# --workers of the mesh's parts (gateway, services): the book's `cluster`.
mesh_workers_option = click.option(
    "--workers", default=1, type=click.IntRange(1, MAX_WORKERS),
    help="Processes sharing the port (SO_REUSEPORT), like the book's cluster; any worker's "
         "/metrics shows every worker's requests.")
worker_id_option = click.option("--worker-id", default=0, type=int, hidden=True)
metrics_dir_option = click.option("--metrics-dir", type=click.Path(path_type=Path), default=None,
                                  hidden=True, help="Where the workers' metrics files meet.")


def metrics_directory(name: str) -> Path:
    """A new directory for ``name``'s workers' metrics files, after removing those whose
    supervisor is gone: it removes its own only when it ends cleanly, so each kill -9 of a
    ``--workers`` gateway or service left one in the temp directory for ever."""
    from .metrics import pid_running

    for old in Path(tempfile.gettempdir()).glob("logmesh-*-metrics-*-*"):
        pid = old.name.split("-metrics-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and old.is_dir() and old.stat().st_uid == os.getuid() and not pid_running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"logmesh-{name}-metrics-{os.getpid()}-"))


def run_workers(name: str, workers: int, metrics_dir: Path | None) -> None:
    """Re-run this command as ``workers`` supervised children sharing its ports, whose metrics
    meet in ``metrics_dir`` (a temporary directory, removed at the end, unless given)."""
    owned = metrics_dir is None
    directory = metrics_directory(name) if owned else metrics_dir
    specs = [ChildSpec(f"{name}-w{i}", logmesh_argv(*sys.argv[1:], "--worker-id", str(i),
                                                    "--metrics-dir", str(directory),
                                                    "--no-supervise"))
             for i in range(workers)]
    try:
        code = Supervisor(specs).run()
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)
    sys.exit(code)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="logmesh")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """A microservice mesh whose log service keeps every request.

    Start everything with `logmesh up`, then open the printed URL.

    \b
    Exit codes:
      0   done; a server stopped by SIGTERM or Ctrl-C; query, tail, stats whose
          reader stopped early (`| head`)
      1   query, tail, stats: the logs service could not be reached, or failed (5xx)
      2   a usage error (an option or its environment variable; a supervisor
          does not restart it), or a request the logs service refused (4xx)
      3   a server could not start: its port is taken, its data directory unusable
      78  restarting cannot help: the data directory is another process's, or
          traffic reached no gateway (a supervisor does not restart it)
    """
    setup_logging(verbose)


@cli.command()
@host_option
@click.option("--port", default=9000, type=PORT, help="TCP port (0 picks a free one).")
@security_options()
@supervise_option
def distributor(host: str, port: int, supervise: bool, sec: SecurityArgs) -> None:
    """Run the distributor: the registry every node connects to."""
    config = sec.config("distributor", host)
    if supervise:
        supervised("distributor")
    from .mesh.distributor import Distributor

    serve(lambda: Distributor(host, port, security=config).serve_forever(), fast_loop=True)


def make_shipper(name: str, ship_mode: str, spool: SpoolArgs, data_dir: Path,
                 worker_id: int | None, config: ServerSecurity) -> Shipper:
    """The shipper of a service or the gateway: what its logs service has not acknowledged
    waits in its disk spool (none in book mode: fire and forget), across its restarts."""
    from .shipping.shipper import Shipper
    from .shipping.spool import Spool

    disk = Spool(spool.directory(data_dir, name, worker_id), spool.spool_max) \
        if ship_mode != "book" else None
    return Shipper(name, mode=ship_mode, spool=disk, max_queue=spool.log_queue,
                   token=config.token, ssl=config.tls.client_context())


ship_mode_option = click.option(
    "--ship-mode", type=click.Choice(["auto", "ack", "book"]), default="auto",
    help="auto: acknowledged batches, or the chapter's packets if the logs node never answers "
         "(the book's Node service); ack: acknowledged batches only; book: the chapter's "
         "fire-and-forget packets.")


@cli.command()
@host_option
@click.option("--port", default=8000, type=PORT, help="HTTP port.")
@distributor_option
@click.option("--timeout", default=10.0, help="Seconds to wait for a service's reply (then 504).")
@click.option("--ship/--no-ship", default=True,
              help="Ship an access log (status, errorcode, latency, upstream, trace id) per "
                   "request to the logs service.")
@ship_mode_option
@click.option("--max-body-size", type=SIZE, default="1MiB",
              help="Larger request bodies are answered 413.")
@click.option("--status-from-errorcode/--always-200", default=True,
              help="Answer a service's reply with the HTTP status its errorcode maps to (0: 200, "
                   "400-599: that status, any other: 500), or with 200 whatever it says, as the "
                   "chapter's gateway does.")
@data_dir_option
@spool_options
@metrics_port_option
@mesh_workers_option
@worker_id_option
@metrics_dir_option
@security_options()
@supervise_option
def gateway(host: str, port: int, distributor: tuple[str, int], timeout: float, ship: bool,
            ship_mode: str, max_body_size: int, status_from_errorcode: bool, data_dir: Path,
            metrics_port: int | None, workers: int, worker_id: int, metrics_dir: Path | None,
            supervise: bool, spool: SpoolArgs, sec: SecurityArgs) -> None:
    """Run the HTTP gateway that routes requests to services."""
    config = sec.config("gateway", host)
    if supervise:
        if workers > 1:
            run_workers("gateway", workers, metrics_dir)
        supervised("gateway")
    from .mesh.gateway import Gateway

    gw = Gateway(host, port, distributor=distributor, timeout=timeout,
                 security=config,
                 max_body_bytes=max_body_size, status_from_errorcode=status_from_errorcode,
                 reuse_port=workers > 1, metrics_dir=metrics_dir if workers > 1 else None)
    if ship:
        gw.attach_shipper(make_shipper("gateway", ship_mode, spool, data_dir,
                                       worker_id if workers > 1 else None, config))
    if metrics_port is not None:
        from .mesh.metrics_http import MetricsEndpoint

        gw.metrics = MetricsEndpoint(host, metrics_port, gw.collect_metrics, reuse_port=workers > 1)
    serve(gw.serve_forever, fast_loop=True)


@cli.command()
@click.argument("name", type=click.Choice(["goods", "members", "purchases"]))
@host_option
@click.option("--port", type=PORT, default=None, help="TCP port [default: goods 9010, members 9020, purchases 9030].")
@distributor_option
@data_dir_option
@click.option("--ship/--no-ship", default=True, help="Ship every request to the logs service.")
@click.option("--print-requests", is_flag=True,
              help="With --no-ship: print every request packet to stdout, as the book's service "
                   "does with no logs service.")
@ship_mode_option
@spool_options
@click.option("--db-sync", type=click.Choice(["normal", "full"]), default="normal",
              help="SQLite's synchronous for the grouped commits: normal: a write is answered once "
                   "it is in the WAL file (it survives the service's crash, not a power cut); "
                   "full: once the WAL is fsynced too (one fsync per group of writes).")
@metrics_port_option
@mesh_workers_option
@worker_id_option
@metrics_dir_option
@security_options()
@supervise_option
def service(name: str, host: str, port: int | None, distributor: tuple[str, int], data_dir: Path,
            ship: bool, print_requests: bool, ship_mode: str, db_sync: str,
            metrics_port: int | None, workers: int, worker_id: int, metrics_dir: Path | None,
            supervise: bool, spool: SpoolArgs, sec: SecurityArgs) -> None:
    """Run one of the example services (goods, members, purchases)."""
    config = sec.config(f"{name} service", host)
    if supervise:
        if workers > 1:
            run_workers(name, workers, metrics_dir)
        supervised(name)
    from .examples.resource import make_service

    svc = make_service(name, data_dir, port=port, host=host, distributor=distributor,
                       security=config, sync=db_sync, reuse_port=workers > 1,
                       metrics_dir=metrics_dir if workers > 1 else None)
    if ship:
        make_shipper(name, ship_mode, spool, data_dir, worker_id if workers > 1 else None,
                     config).attach(svc)
    elif print_requests:
        from .mesh.service import print_request

        svc.on_request = print_request
    if metrics_port is not None:
        from .mesh.metrics_http import MetricsEndpoint

        svc.metrics = MetricsEndpoint(host, metrics_port, svc.collect_metrics, reuse_port=workers > 1)
    serve(svc.serve_forever, fast_loop=True)


@cli.command()
@host_option
@click.option("--port", default=9040, type=PORT, help="TCP port for book log packets.")
@click.option("--http-port", default=9041, type=PORT, help="HTTP port: ingest, query API, web UI, /metrics.")
@data_dir_option
@distributor_option
@click.option("--standalone", is_flag=True, help="Do not register with a distributor.")
@click.option("--join-anyway", is_flag=True,
              help="Register even when the distributor lists another logs service and this one "
                   "has a data directory of its own (else refused: the mesh's shippers would move "
                   "here whenever that one stops, and stay). Sharing its --data-dir joins anyway.")
@click.option("--fsync", type=click.Choice(["always", "batch", "off"]), default="batch",
              help="always: fsync every group; batch: at most every --fsync-interval; off: leave it to the OS.")
@click.option("--fsync-interval", default=0.05, help="Seconds between group commits with --fsync batch.")
@click.option("--rotate", type=click.Choice(["hour", "day"]), default="hour",
              help="Start a new segment file every hour or day.")
@config_option("--max-segment-size", "max_segment_bytes", type=SIZE, default="256MB",
               help="Start a new segment past this size.")
@config_option("--max-packet-size", "max_frame_bytes", type=SIZE, default="1MiB",
               callback=packet_size,
               help="Larger packets are skipped and counted (TCP, syslog, JSON lines, forward); "
                    "at most 10MiB.")
@click.option("--text-log", type=click.Path(path_type=Path), default=None,
              help="Also append the chapter's tab-separated line per packet to this file (rotated).")
@click.option("--echo", is_flag=True, help="Print the chapter's line for every packet.")
@click.option("--syslog-port", type=PORT, default=None,
              help="Take syslog (RFC 5424/3164) on this TCP and UDP port [default: off].")
@click.option("--forward-port", type=PORT, default=None,
              help="Take Fluent's forward protocol (Fluentd, Fluent Bit) on this port [default: off].")
@click.option("--jsonl-port", type=PORT, default=None,
              help="Take JSON lines over TCP (Vector, Logstash) on this port [default: off].")
@click.option("--workers", default=1, type=click.IntRange(1, MAX_WORKERS),
              help="Ingest processes sharing the ports (SO_REUSEPORT; give fixed ports, not 0).")
@click.option("--balance/--no-balance", default=True,
              help="With --workers: a worker holding more ingest connections than another hands "
                   "it each new one (else the kernel's SO_REUSEPORT hash alone places them).")
@click.option("--worker-id", default=None, type=int, hidden=True)
@config_option("--retention", "retention_ms", type=DURATION, default=None, metavar="DURATION",
              help="Delete sealed segments and Parquet files whose newest event is older than "
                   "this and that were written longer ago than this, e.g. 7d (units s m h d w): "
                   "an event stays at least this long after it arrived, a backfill too (one "
                   "stamped over a day after its file was written counts as stamped then). The "
                   "active segment is never touched. [default: none, nothing is deleted by age]")
@config_option("--max-disk", "max_disk_bytes", type=SIZE, default=None, metavar="SIZE",
              help="Delete the oldest sealed segments and Parquet files while the store is "
                   "larger than this, e.g. 10GB. Segments waiting for compaction count at "
                   "their compacted size, so a backlog does not push out compacted events. "
                   "[default: none: the store grows until the disk is full, docs/durability.md]")
@config_option("--block-rows", "block_rows", type=click.IntRange(1024, 65536), default=16384,
               show_default=True, metavar="N",
               help="Rows per Parquet row group and index block of compacted files. Smaller "
                    "finds a rare word faster and makes scans slower (4096: a rare word ~3x less "
                    "CPU, scans ~2.5x more; docs/benchmarks.md, 'Rare word, fourth pass'). "
                    "Files already written keep theirs.")
@click.option("--compact/--no-compact", default=True,
              help="Each worker compacts its sealed segments into Parquet files (fast queries; with their indexes "
                   "7-12% of the NDJSON size, docs/benchmarks.md).")
@click.option("--elasticsearch", "es_urls", default=None, metavar="URL[,URL...]",
              envvar="LOGMESH_ELASTICSEARCH",
              help="Also forward every stored event to Elasticsearch 8/9 or OpenSearch "
                   "(docs/elasticsearch.md).")
@click.option("--es-api-key", default=None, envvar="LOGMESH_ES_API_KEY",
              help="API key (encoded form); better set LOGMESH_ES_API_KEY than pass it here.")
@click.option("--es-user", default=None, envvar="LOGMESH_ES_USER", help="User for basic auth.")
@click.option("--es-password", default=None, envvar="LOGMESH_ES_PASSWORD",
              help="Password for --es-user; better set LOGMESH_ES_PASSWORD.")
@click.option("--es-ca-file", type=click.Path(path_type=Path), default=None,
              help="PEM file of the CA that signed the cluster's certificate (https URLs).")
@click.option("--es-data-stream", default="logs-logmesh-default",
              help="Data stream the events go to (an index template is installed for it).")
@click.option("--es-index", default=None, help="Write to this plain index instead of a data stream.")
@click.option("--es-template/--es-no-template", default=True,
              help="Install the index template at start (turn off if an administrator manages it).")
@click.option("--es-batch-size", default=5000, help="Events per _bulk request.")
@click.option("--es-retention", default="30d", metavar="DURATION|off",
              callback=lambda ctx, p, v: None if v == "off" else DURATION.convert(v, p, ctx),
              help="Elasticsearch deletes events this long after their index rolled over (the ILM "
                   "policy installed with the template; off: keep them).")
@click.option("--es-timeout", default=30.0, help="Seconds to wait for one request's answer.")
@click.option("--es-retry-max", default=60.0,
              help="Longest wait between retries (they start at 0.5s and double, with jitter).")
@click.option("--read-token", default=None, envvar="LOGMESH_READ_TOKEN", show_envvar=True,
              help="Token for the HTTP API's reads and /metrics (--token grants reads too).")
@click.option("--write-token", default=None, envvar="LOGMESH_WRITE_TOKEN", show_envvar=True,
              help="Token for shipping: TCP ingest and POST /api/v1/logs (--token grants writes too).")
@config_option("--max-body-size", "max_body_bytes", type=SIZE, default="16MiB",
               help="Larger HTTP request bodies are answered 413.")
@click.option("--query-timeout", default=10.0, help="Seconds a query may run (then 503).")
@click.option("--max-rows", default=10_000, help="Most events one search page returns.")
@security_options()
@supervise_option
def logs(standalone: bool, join_anyway: bool, read_token: str | None, write_token: str | None,
         supervise: bool, sec: SecurityArgs, **options: Any) -> None:
    """Run the log-management service: stores every request of every service."""
    es = {name: options.pop(name) for name in list(options) if name.startswith("es_")}
    protection = sec.config("logs service", options["host"], read_token=read_token,
                            write_token=write_token)
    sinks = _sink_configs(es)  # check the options before starting any process
    if not (standalone or join_anyway) and options["worker_id"] is None:
        _refuse_a_second_store(options, protection)
    if supervise:
        argv = [a for a in sys.argv[1:]]
        specs = [ChildSpec(f"logs-w{i}", logmesh_argv(*argv, "--worker-id", str(i), "--no-supervise"))
                 for i in range(options["workers"])]
        sys.exit(Supervisor(specs).run())
    from .logs.server import LogsConfig, LogsServer
    from .logs.store.streams import StreamInUse

    if standalone:
        options["distributor"] = None
    # Every other option is named for the LogsConfig field it sets (config_option).
    config = LogsConfig(**options, security=protection, extra={"sinks": sinks})
    try:
        server = LogsServer(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except StreamInUse as exc:  # another process's data directory: restarting cannot help
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NO_RESTART)
    except OSError as exc:  # a data directory that cannot be made or written: as a busy port
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP_FAILURE)
    serve(server.serve_forever)


def _refuse_a_second_store(options: dict, protection: Any) -> None:
    """Exit (78) when the distributor already lists a logs service elsewhere and this one's data
    directory is no other live process's: registered beside it, this one would take the mesh's
    logs whenever that one stops (a restart is enough) and keep them, in another store. Found
    from outside: a ``logmesh logs`` started by hand to look at a data directory did that. A
    logs service sharing the data directory (issue #8's failover) joins; so does one told to."""
    import asyncio

    from .logs.store.streams import held_by_others
    from .mesh.registry import listed_nodes

    if held_by_others(options["data_dir"]):
        return
    d_host, d_port = options["distributor"]
    nodes = asyncio.run(listed_nodes(d_host, d_port, token=protection.token,
                                     ssl=protection.tls.client_context()))
    host = "127.0.0.1" if options["host"] in ("0.0.0.0", "::", "") else options["host"]
    others = [n for n in nodes or () if n.name == "logs" and n.addr != (host, options["port"])]
    if not others:
        return
    where = ", ".join(f"{n.host}:{n.port}" for n in others)
    click.echo(f"error: the distributor at {d_host}:{d_port} already lists a logs service at "
               f"{where}, with a data directory other than {options['data_dir']}. Registered "
               "beside it, this one would get the mesh's logs whenever that one stops, and keep "
               "them. To read or try this data directory, add --standalone; to run a second "
               "logs service of this mesh on purpose, add --join-anyway (or share its "
               "--data-dir: failover into one store).", err=True)
    sys.exit(EXIT_NO_RESTART)


def _sink_configs(es: dict) -> dict:
    """The ``--elasticsearch``/``--es-*`` options -> ``{"elasticsearch": ElasticsearchConfig}``."""
    if not es.get("es_urls"):
        return {}
    from .logs.sinks.elasticsearch.client import check_installed
    from .logs.sinks.elasticsearch.config import ElasticsearchConfig

    try:
        check_installed()
        config = ElasticsearchConfig(
            urls=str(es["es_urls"]), api_key=es["es_api_key"], username=es["es_user"],  # type: ignore[arg-type]
            password=es["es_password"], ca_file=es["es_ca_file"],  # type: ignore[arg-type]
            data_stream=es["es_data_stream"], index=es["es_index"],  # type: ignore[arg-type]
            install_template=bool(es["es_template"]), batch_events=es["es_batch_size"],  # type: ignore[arg-type]
            request_timeout=es["es_timeout"], retry_max=es["es_retry_max"],  # type: ignore[arg-type]
            retention_ms=es["es_retention"])  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return {"elasticsearch": config}


@cli.command()
@click.option("--gateway", "gateway_url", default="http://127.0.0.1:8000", help="Gateway URL.")
@click.option("--rate", default=5.0, help="Requests per second.")
@click.option("--count", default=0, help="Stop after this many requests (0: run until stopped).")
@supervise_option
def traffic(gateway_url: str, rate: float, count: int, supervise: bool) -> None:
    """Send example requests to goods, members and purchases through the gateway."""
    if supervise:
        supervised("traffic")
    from .examples.traffic import Tally, run_traffic

    tally = Tally()
    serve(lambda: run_traffic(gateway_url, rate=rate, count=count, tally=tally))
    if tally.sent and tally.failed == tally.sent:
        click.echo(f"error: {tally.failed} of {tally.sent} requests failed: no gateway answered "
                   f"at {gateway_url} (is the mesh up? see --gateway)", err=True)
        sys.exit(EXIT_NO_RESTART)  # EX_CONFIG: a supervisor running it must not loop on it


# Every port `logmesh up` binds, before --port-offset (the book's defaults; metrics: port + 1).
UP_PORTS = {"gateway": 8000, "gateway metrics": 8001, "distributor": 9000, "goods": 9010,
            "goods metrics": 9011, "members": 9020, "members metrics": 9021, "purchases": 9030,
            "purchases metrics": 9031, "logs": 9040, "logs HTTP, web UI": 9041}


def _free_offset(host: str, offset: int) -> str:
    """An offset, near ``offset``, at which every port of the mesh is free now (for the hint)."""
    for step in range(1, 21):
        candidate = offset + 100 * step
        ports = [(name, p + candidate) for name, p in UP_PORTS.items()]
        if all(p < 65536 for _, p in ports) and busy_port(host, ports) is None:
            return str(candidate)
    return "N"


@cli.command()
@host_option
@data_dir_option
@click.option("--traffic/--no-traffic", "with_traffic", default=True,
              help="Also send a little example traffic so there is something to see.")
@click.option("--rate", default=2.0, help="Example traffic, requests per second.")
@click.option("--port-offset", default=0,
              help="Add this to every port (gateway 8000+N, distributor 9000+N, web UI 9041+N, "
                   "...), e.g. to run a second mesh beside one.")
@security_options(limits=False)
def up(host: str, data_dir: Path, with_traffic: bool, rate: float, port_offset: int,
       sec: SecurityArgs) -> None:
    """Run the whole mesh: distributor, gateway, logs service, example services, traffic.

    One --token (or LOGMESH_TOKEN) and one set of TLS options serve every part.
    Every port is checked first: when one is taken (another mesh running?) it
    says which and exits; --port-offset moves them all.

    An option of a part that up does not set (its ports and --data-dir it
    does) reaches it through its environment variable, e.g.
    LOGMESH_LOGS_RETENTION=7d or LOGMESH_ELASTICSEARCH=URL logmesh up; a part
    that refuses its options stops the mesh with its error.
    """
    sec.config("mesh", host)  # a refusal or a bad TLS combination fails here, not in six children
    port = {name: p + port_offset for name, p in UP_PORTS.items()}
    if not all(0 < p < 65536 for p in port.values()):
        raise click.BadParameter("it moves a port out of 1-65535", param_hint="--port-offset")
    busy = busy_port(host, port.items())
    if busy is not None:
        name, taken, why = busy
        click.echo(f"error: cannot use port {taken} ({name}) on {host}: {why}.\n"
                   "Is another `logmesh up` running? Stop it (Ctrl-C there), or run this mesh "
                   f"on other ports: logmesh up --port-offset {_free_offset(host, port_offset)} "
                   "(every port moves; add --data-dir to keep its data apart).", err=True)
        sys.exit(EXIT_STARTUP_FAILURE)
    env = sec.env()
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    common = ["--no-supervise"]
    joined = ["--distributor", f"{local}:{port['distributor']}", *common]
    # Its logs node is logmesh's, which acknowledges: never the book's fire-and-forget packets,
    # even when the node is too busy to answer a new connection's probe in time.
    shipping = ["--ship-mode", "ack"]
    specs = [ChildSpec("distributor", logmesh_argv("distributor", "--host", host, "--port",
                                                   str(port["distributor"]), *common), env)]
    # A gateway worker per two cores (at most 4): every request of every service passes the
    # gateway, but on two cores the services and the logs service want the second one, and
    # two workers there cost ~1.7x the CPU per request for no more requests/s
    # (bench/notes/mesh.md). A service's share is smaller and stays one process.
    gw_workers = min(4, max(1, (os.cpu_count() or 1) // 2))
    for i in range(gw_workers):
        workers = ["--workers", str(gw_workers), "--worker-id", str(i), "--metrics-dir",
                   str(data_dir / "gateway-metrics")] if gw_workers > 1 else []
        specs.append(ChildSpec(f"gateway-w{i}" if i else "gateway",
                               logmesh_argv("gateway", "--host", host, "--port",
                                            str(port["gateway"]), "--data-dir", str(data_dir),
                                            "--metrics-port",
                                            str(port["gateway metrics"]), *workers, *shipping,
                                            *joined), env))
    specs.append(ChildSpec("logs", logmesh_argv("logs", "--host", host, "--data-dir", str(data_dir),
                                                "--port", str(port["logs"]), "--http-port",
                                                str(port["logs HTTP, web UI"]), "--join-anyway",
                                                *joined), env))
    for name in ("goods", "members", "purchases"):
        specs.append(ChildSpec(name, logmesh_argv("service", name, "--host", host,
                                                  "--data-dir", str(data_dir), "--port",
                                                  str(port[name]), "--metrics-port",
                                                  str(port[f"{name} metrics"]), *shipping,
                                                  *joined), env))
    http = "https" if sec.tls_cert else "http"
    gateway_url = f"{http}://{local}:{port['gateway']}"
    if with_traffic:
        traffic_env = {"SSL_CERT_FILE": env["LOGMESH_TLS_CA"]} if "LOGMESH_TLS_CA" in env else {}
        specs.append(ChildSpec("traffic", logmesh_argv("traffic", "--rate", str(rate), "--gateway",
                                                       gateway_url, *common), traffic_env))
    auth = " (with the token: Authorization: Bearer ...)" if env.get("LOGMESH_TOKEN") else ""
    click.echo(
        "logmesh is starting:\n"
        f"  web UI       {http}://{host}:{port['logs HTTP, web UI']}/   "
        f"(every request of every service){auth}\n"
        f"  gateway      {http}://{host}:{port['gateway']}   try: curl {gateway_url}/goods\n"
        f"  distributor  {host}:{port['distributor']}\n"
        "Stop with Ctrl-C.", err=True)
    sys.exit(Supervisor(specs).run())


# The query tools talk to a logs service's HTTP API (cli_client.py).
cli.add_command(cli_client.query)
cli.add_command(cli_client.tail)
cli.add_command(cli_client.stats)


def main() -> None:
    cli(prog_name="logmesh")
