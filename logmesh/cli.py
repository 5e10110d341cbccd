"""``logmesh``: run the mesh, its parts, and the log tools.

Every option has a ``LOGMESH_<NAME>`` environment variable and the book's
default. Servers bind 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from . import __version__
from .logs.query import commands as query_commands
from .supervisor import ChildSpec, Supervisor, logmesh_argv

EXIT_STARTUP_FAILURE = 3
CONTEXT = {"auto_envvar_prefix": "LOGMESH", "help_option_names": ["-h", "--help"],
           "show_default": True}


def parse_addr(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value or "127.0.0.1", default_port
    try:
        return host, int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (for example 127.0.0.1:9000)") from None


_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(value: str) -> int:
    """'256MB' -> 256000000; '1GiB' -> 1073741824; plain numbers are bytes."""
    text = value.strip().upper().replace(" ", "")
    num = text.rstrip("KMGTIB")
    unit = text[len(num):]
    try:
        return int(float(num) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise click.BadParameter(f"{value!r} is not a size; write e.g. 500MB, 10GB or 1GiB") from None


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def serve(make: Callable[[], Awaitable[object]]) -> None:
    """Run an async server until SIGTERM/SIGINT, then let it stop cleanly."""

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        try:
            await make()
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STARTUP_FAILURE)


def supervised(name: str) -> None:
    """Re-run this very command as a supervised child (``--no-supervise``)."""
    argv = logmesh_argv(*sys.argv[1:], "--no-supervise")
    sys.exit(Supervisor([ChildSpec(name, argv)]).run())


host_option = click.option("--host", default="127.0.0.1",
                           help="Address to bind; anything but loopback exposes the mesh.")
distributor_option = click.option("--distributor", "distributor", default="127.0.0.1:9000",
                                  help="The distributor's HOST:PORT.")
supervise_option = click.option("--supervise/--no-supervise", default=True,
                                help="Run under a supervisor that restarts the process when it dies.")
data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path), default=Path("data"),
                               help="Where databases and logs are kept.")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="logmesh")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """A microservice mesh whose log service keeps every request.

    Start everything with `logmesh up`, then open the printed URL.
    """
    setup_logging(verbose)


@cli.command()
@host_option
@click.option("--port", default=9000, help="TCP port (0 picks a free one).")
@supervise_option
def distributor(host: str, port: int, supervise: bool) -> None:
    """Run the distributor: the registry every node connects to."""
    if supervise:
        supervised("distributor")
    from .mesh.distributor import Distributor

    serve(lambda: Distributor(host, port).serve_forever())


@cli.command()
@host_option
@click.option("--port", default=8000, help="HTTP port.")
@distributor_option
@click.option("--timeout", default=10.0, help="Seconds to wait for a service's reply (then 504).")
@click.option("--ship/--no-ship", default=True,
              help="Ship an access log (status, latency) per request to the logs service.")
@supervise_option
def gateway(host: str, port: int, distributor: str, timeout: float, ship: bool,
            supervise: bool) -> None:
    """Run the HTTP gateway that routes requests to services."""
    if supervise:
        supervised("gateway")
    from .mesh.gateway import Gateway
    from .shipper import Shipper

    gw = Gateway(host, port, distributor=parse_addr(distributor, 9000), timeout=timeout)
    if ship:
        gw.attach_shipper(Shipper("gateway"))
    serve(gw.serve_forever)


@cli.command()
@click.argument("name", type=click.Choice(["goods", "members", "purchases"]))
@host_option
@click.option("--port", type=int, default=None, help="TCP port [default: goods 9010, members 9020, purchases 9030].")
@distributor_option
@data_dir_option
@click.option("--ship/--no-ship", default=True, help="Ship every request to the logs service.")
@click.option("--ship-mode", type=click.Choice(["ack", "book"]), default="ack",
              help="ack: acknowledged batches (logmesh); book: the chapter's fire-and-forget packets.")
@click.option("--spool-dir", type=click.Path(path_type=Path), default=None,
              help="Spool undelivered logs here [default: DATA_DIR/spool/NAME].")
@click.option("--spool-max", default="1GB", help="Spool size limit; past it the oldest are dropped.")
@click.option("--log-queue", default=100_000, help="Log events held in memory before spooling.")
@supervise_option
def service(name: str, host: str, port: int | None, distributor: str, data_dir: Path,
            ship: bool, ship_mode: str, spool_dir: Path | None, spool_max: str, log_queue: int,
            supervise: bool) -> None:
    """Run one of the example services (goods, members, purchases)."""
    if supervise:
        supervised(name)
    from .examples.resource import make_service
    from .shipper import Shipper
    from .spool import Spool

    svc = make_service(name, data_dir, port=port, host=host,
                       distributor=parse_addr(distributor, 9000))
    if ship:
        spool = Spool(spool_dir or data_dir / "spool" / name, parse_size(spool_max)) \
            if ship_mode == "ack" else None
        Shipper(name, mode=ship_mode, spool=spool, max_queue=log_queue).attach(svc)
    serve(svc.serve_forever)


@cli.command()
@host_option
@click.option("--port", default=9040, help="TCP port for book log packets.")
@click.option("--http-port", default=9041, help="HTTP port: ingest, query API, web UI, /metrics.")
@data_dir_option
@distributor_option
@click.option("--standalone", is_flag=True, help="Do not register with a distributor.")
@click.option("--fsync", type=click.Choice(["always", "batch", "off"]), default="batch",
              help="always: fsync every group; batch: at most every --fsync-interval; off: leave it to the OS.")
@click.option("--fsync-interval", default=0.05, help="Seconds between group commits with --fsync batch.")
@click.option("--rotate", type=click.Choice(["hour", "day"]), default="hour",
              help="Start a new segment file every hour or day.")
@click.option("--max-segment-size", default="256MB", help="Start a new segment past this size.")
@click.option("--max-packet-size", default="1MiB", help="Larger packets are skipped and counted.")
@click.option("--text-log", type=click.Path(path_type=Path), default=None,
              help="Also append the chapter's tab-separated line per packet to this file (rotated).")
@click.option("--echo", is_flag=True, help="Print the chapter's line for every packet.")
@click.option("--workers", default=1, help="Ingest processes sharing the ports (SO_REUSEPORT).")
@click.option("--worker-id", default=None, type=int, hidden=True)
@click.option("--retention", default=None, metavar="DURATION",
              help="Delete sealed segments and Parquet files whose newest event is older than "
                   "this, e.g. 7d (units s m h d w). The active segment is never touched.")
@click.option("--max-disk", default=None, metavar="SIZE",
              help="Delete the oldest sealed segments and Parquet files while the store is "
                   "larger than this, e.g. 10GB.")
@click.option("--compact/--no-compact", default=True,
              help="Worker 0 compacts sealed segments into Parquet files (fast queries, ~6% of "
                   "the NDJSON size).")
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
@click.option("--es-batch-size", default=1000, help="Events per _bulk request.")
@click.option("--es-timeout", default=30.0, help="Seconds to wait for one request's answer.")
@click.option("--es-retry-max", default=60.0,
              help="Longest wait between retries (they start at 0.5s and double, with jitter).")
@supervise_option
def logs(host: str, port: int, http_port: int, data_dir: Path, distributor: str, standalone: bool,
         fsync: str, fsync_interval: float, rotate: str, max_segment_size: str,
         max_packet_size: str, text_log: Path | None, echo: bool, workers: int,
         worker_id: int | None, retention: str | None, max_disk: str | None, compact: bool,
         supervise: bool, **es: object) -> None:
    """Run the log-management service: stores every request of every service."""
    if workers < 1:
        raise click.BadParameter("--workers must be at least 1")
    retention_ms = _duration_ms(retention, "--retention") if retention else None
    max_disk_bytes = parse_size(max_disk) if max_disk else None
    sinks = _sink_configs(es)  # check the options before starting any process
    if supervise:
        argv = [a for a in sys.argv[1:]]
        specs = [ChildSpec(f"logs-w{i}", logmesh_argv(*argv, "--worker-id", str(i), "--no-supervise"))
                 for i in range(workers)]
        sys.exit(Supervisor(specs).run())
    from .logs.server import LogsConfig, LogsServer

    config = LogsConfig(host=host, port=port, http_port=http_port, data_dir=data_dir,
                        distributor=None if standalone else parse_addr(distributor, 9000),
                        worker_id=worker_id or 0, workers=workers, fsync=fsync,
                        fsync_interval=fsync_interval, rotate=rotate,
                        max_segment_bytes=parse_size(max_segment_size),
                        max_frame_bytes=parse_size(max_packet_size), text_log=text_log, echo=echo,
                        retention_ms=retention_ms, max_disk_bytes=max_disk_bytes, compact=compact,
                        extra={"sinks": sinks})
    try:
        server = LogsServer(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    serve(server.serve_forever)


def _duration_ms(value: str, option: str) -> int:
    from .logs.query.timerange import TimeRangeError, parse_duration

    try:
        return parse_duration(value)
    except TimeRangeError as exc:
        raise click.BadParameter(f"{option}: {exc}") from None


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
            request_timeout=es["es_timeout"], retry_max=es["es_retry_max"])  # type: ignore[arg-type]
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
    from .traffic import run_traffic

    serve(lambda: run_traffic(gateway_url, rate=rate, count=count))


@cli.command()
@host_option
@data_dir_option
@click.option("--traffic/--no-traffic", "with_traffic", default=True,
              help="Also send a little example traffic so there is something to see.")
@click.option("--rate", default=2.0, help="Example traffic, requests per second.")
def up(host: str, data_dir: Path, with_traffic: bool, rate: float) -> None:
    """Run the whole mesh: distributor, gateway, logs service, example services, traffic."""
    common = ["--no-supervise"]
    specs = [ChildSpec("distributor", logmesh_argv("distributor", "--host", host, *common))]
    specs.append(ChildSpec("gateway", logmesh_argv("gateway", "--host", host, *common)))
    specs.append(ChildSpec("logs", logmesh_argv("logs", "--host", host, "--data-dir", str(data_dir),
                                                *common)))
    for name in ("goods", "members", "purchases"):
        specs.append(ChildSpec(name, logmesh_argv("service", name, "--host", host,
                                                  "--data-dir", str(data_dir), *common)))
    if with_traffic:
        specs.append(ChildSpec("traffic", logmesh_argv("traffic", "--rate", str(rate), *common)))
    click.echo(
        "logmesh is starting:\n"
        f"  web UI       http://{host}:9041/   (every request of every service)\n"
        f"  gateway      http://{host}:8000   try: curl http://{host}:8000/goods\n"
        f"  distributor  {host}:9000\n"
        "Stop with Ctrl-C.", err=True)
    sys.exit(Supervisor(specs).run())


# The query tools talk to a logs service's HTTP API (logs/query/commands.py).
cli.add_command(query_commands.query)
cli.add_command(query_commands.tail)
cli.add_command(query_commands.stats)


def main() -> None:
    cli(prog_name="logmesh")
