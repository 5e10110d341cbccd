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
@supervise_option
def gateway(host: str, port: int, distributor: str, timeout: float, supervise: bool) -> None:
    """Run the HTTP gateway that routes requests to services."""
    if supervise:
        supervised("gateway")
    from .mesh.gateway import Gateway

    serve(lambda: Gateway(host, port, distributor=parse_addr(distributor, 9000),
                          timeout=timeout).serve_forever())


@cli.command()
@click.argument("name", type=click.Choice(["goods", "members", "purchases"]))
@host_option
@click.option("--port", type=int, default=None, help="TCP port [default: goods 9010, members 9020, purchases 9030].")
@distributor_option
@data_dir_option
@supervise_option
def service(name: str, host: str, port: int | None, distributor: str, data_dir: Path,
            supervise: bool) -> None:
    """Run one of the example services (goods, members, purchases)."""
    if supervise:
        supervised(name)
    from .examples.resource import make_service

    svc = make_service(name, data_dir, port=port, host=host,
                       distributor=parse_addr(distributor, 9000))
    serve(svc.serve_forever)


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
    """Run the whole mesh: distributor, gateway, example services (and traffic)."""
    common = ["--no-supervise"]
    specs = [ChildSpec("distributor", logmesh_argv("distributor", "--host", host, *common))]
    specs.append(ChildSpec("gateway", logmesh_argv("gateway", "--host", host, *common)))
    for name in ("goods", "members", "purchases"):
        specs.append(ChildSpec(name, logmesh_argv("service", name, "--host", host,
                                                  "--data-dir", str(data_dir), *common)))
    if with_traffic:
        specs.append(ChildSpec("traffic", logmesh_argv("traffic", "--rate", str(rate), *common)))
    click.echo(
        "logmesh is starting:\n"
        f"  gateway      http://{host}:8000   try: curl http://{host}:8000/goods\n"
        f"  distributor  {host}:9000\n"
        "Stop with Ctrl-C.", err=True)
    sys.exit(Supervisor(specs).run())


def main() -> None:
    cli(prog_name="logmesh")
