"""The options the ``logmesh`` commands share, and their types.

An option's value reaches a command as its server's config takes it (bytes,
milliseconds, ``(host, port)``, one :class:`~logmesh.security.ServerSecurity`),
so a bad value is a usage error naming the option before any process starts,
and the commands in ``cli.py`` only wire servers together.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from . import security


def parse_addr(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value or "127.0.0.1", default_port
    try:
        return host, int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (for example 127.0.0.1:9000)") from None


# Option types: a command receives values as its server's config takes them (bytes, milliseconds,
# (host, port)), and a bad one is a usage error naming the option, before any process starts.


class Size(click.ParamType):
    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        return value if isinstance(value, int) else parse_size(str(value))


class Duration(click.ParamType):
    """A duration in milliseconds (``7d``, ``90m``, ``30s``)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        from .logs.query.timerange import TimeRangeError, parse_duration

        try:
            return parse_duration(str(value))
        except TimeRangeError as exc:
            self.fail(str(exc), param, ctx)


class Address(click.ParamType):
    name = "host:port"

    def __init__(self, default_port: int) -> None:
        self.default_port = default_port

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, int]:
        return value if isinstance(value, tuple) else parse_addr(str(value), self.default_port)


SIZE, DURATION = Size(), Duration()


def packet_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """``logs --max-packet-size``: at most layout.MAX_PACKET_BYTES, the most whose stored line
    fits in the store's longest (a byte can take 6 stored); a larger one failed every such
    packet later, at ingest."""
    from .logs.store.layout import MAX_PACKET_BYTES
    if value > MAX_PACKET_BYTES:
        raise click.BadParameter(f"{value} bytes: at most {MAX_PACKET_BYTES} ({MAX_PACKET_BYTES // 2**20}MiB), "
                                 "since a packet can take 6 times its size once stored; send larger "
                                 "events over HTTP (POST /api/v1/logs)")
    return value


def config_option(flag: str, field: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    """An option that sets the server config's ``field``, keeping the environment variable
    of its flag (``LOGMESH_<COMMAND>_<OPTION>``, docs in the README) though its name differs."""

    def decorate(f: Callable) -> Callable:
        envvar = f"LOGMESH_{f.__name__.upper()}_{flag.lstrip('-').upper().replace('-', '_')}"
        return click.option(flag, field, envvar=envvar, **kwargs)(f)

    return decorate


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


class Port(click.ParamType):
    """A TCP or UDP port, 0-65535 (0: any free one): a larger number was bound modulo 65536."""

    name = "port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            port = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a port (0-65535)", param, ctx)
        if not 0 <= port <= 65535:
            self.fail(f"{port} is not a port (0-65535)", param, ctx)
        return port


PORT = Port()

host_option = click.option("--host", default="127.0.0.1",
                           help="Address to bind; anything but loopback exposes the mesh.")
distributor_option = click.option("--distributor", "distributor", default="127.0.0.1:9000",
                                  type=Address(9000),
                                  help="The distributor's HOST:PORT.")
supervise_option = click.option("--supervise/--no-supervise", default=True,
                                help="Run under a supervisor that restarts the process when it dies.")
metrics_port_option = click.option(
    "--metrics-port", type=PORT, default=None,
    help="Serve Prometheus /metrics (requests; the shipper's queued, spooled, sent, acked, "
         "dropped) on this HTTP port [default: none; logmesh up: the TCP port + 1].")


def usable_dir(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """The directory, made if missing and written to once: a file in its place or a directory
    that cannot be written is a usage error now, not a traceback in every child (``up``
    restarted them for ever)."""
    try:
        value.mkdir(parents=True, exist_ok=True)
        probe = value / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise click.BadParameter(f"cannot use {str(value)!r} ({exc.strerror or exc}): give a "
                                 "directory this user can write (it is made if missing)") from None
    return value


data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path), default=Path("data"),
                               callback=usable_dir, help="Where databases and logs are kept.")

# -- a shipper's spool (a service's and the gateway's: the same options, the same defaults) -----


@dataclass
class SpoolArgs:
    """Where a shipper keeps what its logs service has not acknowledged, as given."""

    spool_dir: Path | None = None
    spool_max: int = 10**9
    log_queue: int = 100_000

    def directory(self, data_dir: Path, name: str, worker_id: int | None) -> Path:
        """``--spool-dir`` or DATA_DIR/spool/NAME, and in it ``w<id>`` for a worker of several:
        one spool per process, each its own files."""
        at = self.spool_dir or data_dir / "spool" / name
        return at if worker_id is None else at / f"w{worker_id}"


_SPOOL_OPTIONS = [
    click.option("--spool-dir", type=click.Path(path_type=Path), default=None,
                 help="Spool undelivered logs here [default: DATA_DIR/spool/NAME]."),
    click.option("--spool-max", type=SIZE, default="1GB",
                 help="Spool size limit; past it the oldest are dropped."),
    click.option("--log-queue", default=100_000, help="Log events held in memory before spooling."),
]


def spool_options(f: Callable) -> Callable:
    """Add --spool-dir, --spool-max and --log-queue; the command receives them as ``spool``."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        spool = SpoolArgs(*(kwargs.pop(k) for k in ("spool_dir", "spool_max", "log_queue")))
        return f(*args, spool=spool, **kwargs)

    for option in reversed(_SPOOL_OPTIONS):
        command = option(command)
    return command


# -- security options (logmesh/security.py, docs/security.md) -------------------------------

_PEM = click.Path(dir_okay=False, path_type=Path)


@dataclass
class SecurityArgs:
    """The options every server shares, as given on the command line."""

    token: str | None = None
    token_file: Path | None = None
    insecure: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    max_connections: int = security.DEFAULT_MAX_CONNECTIONS
    max_connection_buffer: int = security.DEFAULT_MAX_CONNECTION_BUFFER
    max_buffered: int = security.DEFAULT_MAX_BUFFERED
    header_timeout: float = security.DEFAULT_HEADER_TIMEOUT
    idle_timeout: float = security.DEFAULT_IDLE_TIMEOUT

    def resolved_token(self) -> str | None:
        try:
            token = security.resolve_token(self.token, self.token_file)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"--token-file: {exc}") from None
        security.warn_if_weak(token)
        return token

    def tls(self) -> security.TLSOptions:
        try:
            return security.TLSOptions(self.tls_cert, self.tls_key, self.tls_ca)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

    def limits(self) -> security.Limits:
        try:
            return security.Limits(self.max_connections, self.max_connection_buffer,
                                   self.max_buffered, self.header_timeout,
                                   self.idle_timeout)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

    def config(self, what: str, host: str, *, read_token: str | None = None,
               write_token: str | None = None) -> security.ServerSecurity:
        """The one security object a server takes, checked before any process starts (a
        supervisor would restart a refusal forever)."""
        try:
            sec = security.ServerSecurity(self.resolved_token(), self.insecure, self.tls(),
                                          self.limits(), read_token, write_token)
            sec.check_exposure(what, host)
        except security.InsecureConfig as exc:
            raise click.UsageError(str(exc)) from None
        return sec

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for child processes (``logmesh up``)."""
        env = {"LOGMESH_INSECURE": "1"} if self.insecure else {}
        token = self.resolved_token()
        if token:
            env["LOGMESH_TOKEN"] = token  # in the environment, not in every child's argv
        for name in ("tls_cert", "tls_key", "tls_ca"):
            value = getattr(self, name)
            if value is not None:
                env[f"LOGMESH_{name.upper()}"] = str(Path(value).resolve())
        return env


_TOKEN_OPTIONS = [
    click.option("--token", default=None, envvar="LOGMESH_TOKEN", show_envvar=True,
                 help="Shared secret of the mesh: required of every peer that connects (and sent "
                      "to every server this process connects to); at least 16 characters on a "
                      "non-loopback --host. Prefer the environment variable or --token-file to "
                      "the command line."),
    click.option("--token-file", type=_PEM, default=None, envvar="LOGMESH_TOKEN_FILE",
                 help="Read the token from this file."),
    click.option("--insecure", is_flag=True, envvar="LOGMESH_INSECURE",
                 help="Allow binding a non-loopback --host without a token (accept the risk)."),
]
_TLS_OPTIONS = [
    click.option("--tls-cert", type=_PEM, default=None, envvar="LOGMESH_TLS_CERT",
                 help="Serve TLS with this certificate chain (PEM); this process then also "
                      "connects to others with TLS."),
    click.option("--tls-key", type=_PEM, default=None, envvar="LOGMESH_TLS_KEY",
                 help="Private key of --tls-cert (when not inside the certificate file)."),
    click.option("--tls-ca", type=_PEM, default=None, envvar="LOGMESH_TLS_CA",
                 help="Connect with TLS and verify servers against this CA bundle (PEM) "
                      "[default with --tls-cert: the system's CAs]."),
]
_LIMIT_OPTIONS = [
    click.option("--max-connections", default=security.DEFAULT_MAX_CONNECTIONS,
                 help="Connections per listening port. When full, a new connection closes the "
                      "oldest one that has sent no complete packet (HTTP: is not inside a "
                      "request); with none such, the new one is closed at once."),
    click.option("--max-connection-buffer", type=SIZE, default="8MiB",
                 help="Unsent bytes held for one peer that does not read; past it, it is cut off."),
    click.option("--max-buffered", type=SIZE, default="64MiB",
                 help="Bytes of unfinished packets held across one port's connections; a "
                      "connection growing past it is cut off."),
    click.option("--header-timeout", default=security.DEFAULT_HEADER_TIMEOUT,
                 help="Seconds to finish a started packet, an HTTP request head or (with a token) "
                      "the hello; slower peers are cut off. While a port is more than half full, "
                      "connections silent for a third of it are closed."),
    click.option("--idle-timeout", default=security.DEFAULT_IDLE_TIMEOUT,
                 help="Close TCP connections silent this long (0: never; mesh links are idle by "
                      "design)."),
]
_SECURITY_KEYS = ("token", "token_file", "insecure", "tls_cert", "tls_key", "tls_ca",
                  "max_connections", "max_connection_buffer", "max_buffered", "header_timeout",
                  "idle_timeout")


def security_options(*, limits: bool = True) -> Callable[[Callable], Callable]:
    """Add the token, TLS and limit options; the command receives them as ``sec``."""

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            sec = SecurityArgs(**{k: kwargs.pop(k) for k in _SECURITY_KEYS if k in kwargs})
            return f(*args, sec=sec, **kwargs)

        options = _TOKEN_OPTIONS + _TLS_OPTIONS + (_LIMIT_OPTIONS if limits else [])
        for option in reversed(options):
            command = option(command)
        return command

    return decorate
