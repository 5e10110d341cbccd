"""Safe by default: tokens, TLS and limits, shared by every server and client.

The rules (docs/security.md has the threat model):

* Servers bind loopback unless told otherwise; a server that would listen on
  any other address without a token refuses to start (:func:`check_exposure`)
  unless ``--insecure`` says the risk is accepted.
* A token is checked once per connection, in constant time: on the ¶ protocol
  by a *hello* (``logmesh/hello.py``), the first packet, answered only when
  it fails (an error packet, then close) -- a plain book client in open mode
  never hears a byte; over HTTP by ``Authorization: Bearer <token>``.
* TLS is the standard :mod:`ssl` module: a process with ``--tls-cert`` serves
  TLS, and a process with a certificate or ``--tls-ca`` connects with TLS and
  verifies the server (a mesh is TLS throughout or not at all).
* Every listener has a ``ConnectionGuard`` (``logmesh/guard.py``) enforcing
  the :class:`Limits` given here: connections, partial packets, unsent bytes,
  header and idle timeouts.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("logmesh.security")

SHORT_TOKEN = 16  # tokens shorter than this get a warning at start-up

MiB = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 1024  # per listener; past it a new connection is closed at once
DEFAULT_MAX_CONNECTION_BUFFER = 8 * MiB  # unsent bytes for one peer that does not read
DEFAULT_MAX_BUFFERED = 64 * MiB  # partial packets held across one listener's connections
DEFAULT_HEADER_TIMEOUT = 15.0  # seconds to finish a hello, a started packet, an HTTP head
DEFAULT_IDLE_TIMEOUT = 0.0  # TCP: mesh links are idle by design, so off unless asked for
DEFAULT_HTTP_IDLE_TIMEOUT = 60.0  # HTTP keep-alive connections that stay silent this long

TOKEN_HELP = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class InsecureConfig(ValueError):
    """The configuration would expose a server without protection."""


class AuthError(Exception):
    """A peer sent no token, or a wrong one."""


# -- binding --------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """True for addresses only this machine can reach (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if not host:
        return False  # "" binds every interface
    if host.lower() in ("localhost", "ip6-localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name may resolve anywhere: treat it as exposed


def check_exposure(what: str, host: str | None, *, protected: bool, insecure: bool,
                   tokens: Iterable[str | None] = ()) -> None:
    """Refuse to listen beyond loopback without a token, or with a token shorter than
    ``SHORT_TOKEN`` (one guessed in a few tries protects nothing), unless ``--insecure``."""
    if insecure or is_loopback(host):
        return
    short = [t for t in tokens if t and len(t) < SHORT_TOKEN]
    if short:
        raise InsecureConfig(
            f"refusing to start the {what} on {host or 'every interface'} with a "
            f"{len(short[0])}-character token: anyone who can reach it could guess it. Use a "
            f"token of at least {SHORT_TOKEN} characters ({TOKEN_HELP}), bind 127.0.0.1, or "
            "pass --insecure to accept the risk.")
    if protected:
        return
    raise InsecureConfig(
        f"refusing to start the {what} on {host or 'every interface'} without a token: anyone who "
        f"can reach it could use it. Set one with --token (or LOGMESH_TOKEN, or --token-file) on "
        f"every part of the mesh ({TOKEN_HELP}), bind 127.0.0.1, or pass --insecure to accept "
        "the risk.")


# -- tokens ---------------------------------------------------------------------


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace removed); it must not be empty."""
    text = Path(path).read_text("utf-8").strip()
    if not text:
        raise ValueError(f"token file {path} is empty; put the token in it ({TOKEN_HELP})")
    return text


def resolve_token(token: str | None, token_file: str | Path | None = None) -> str | None:
    """``--token`` wins over ``--token-file``; an empty string means no token."""
    if token:
        return token
    if token_file:
        return read_token_file(token_file)
    return None


def warn_if_weak(token: str | None, what: str = "token") -> None:
    if token is not None and len(token) < SHORT_TOKEN:
        log.warning("the %s is only %d characters long; use at least %d (%s)", what, len(token),
                    SHORT_TOKEN, TOKEN_HELP)


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def token_matches(given: str | bytes | None, accepted: Iterable[bytes]) -> bool:
    """Constant-time check of ``given`` against every accepted token (all are compared)."""
    if given is None or not isinstance(given, (str, bytes)):
        return False
    g = _b(given)
    ok = False
    for t in accepted:
        ok |= hmac.compare_digest(g, t)  # no early exit: the time says nothing about which
    return ok


@dataclass(frozen=True)
class Access:
    """Who may read and who may write; a side with no token is open."""

    read: tuple[bytes, ...] = ()
    write: tuple[bytes, ...] = ()

    @classmethod
    def from_tokens(cls, token: str | None = None, read_token: str | None = None,
                    write_token: str | None = None) -> Access:
        """``token`` grants both; ``read_token``/``write_token`` one side each."""
        both = (_b(token),) if token else ()
        return cls(read=both + ((_b(read_token),) if read_token else ()),
                   write=both + ((_b(write_token),) if write_token else ()))

    @property
    def protected(self) -> bool:
        """Both sides need a token (what exposure beyond loopback requires)."""
        return bool(self.read) and bool(self.write)

    def may_read(self, token: str | None) -> bool:
        return not self.read or token_matches(token, self.read)

    def may_write(self, token: str | None) -> bool:
        return not self.write or token_matches(token, self.write)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header: ``Bearer <token>``, or the forms log shippers
    made for Elasticsearch and Loki can send: ``Basic`` with the token as the password (any
    user name) and ``ApiKey base64(<id>:<token>)`` (docs/ingest.md)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not value:
        return None
    if scheme == "bearer":
        return value
    if scheme in ("basic", "apikey"):
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        _, colon, secret = decoded.partition(":")
        return secret if colon and secret else None
    return None


# -- TLS -----------------------------------------------------------------------


@dataclass(frozen=True)
class TLSOptions:
    """``cert``/``key``: serve TLS on this process's listeners. ``ca``: the CA bundle that
    verifies the servers it connects to. A process with a certificate but no ``ca``
    verifies servers with the system's trust store."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise ValueError("--tls-key needs --tls-cert (the certificate chain, PEM)")

    @property
    def serves(self) -> bool:
        return self.cert is not None

    @property
    def connects(self) -> bool:
        return self.cert is not None or self.ca is not None

    def server_context(self) -> ssl.SSLContext | None:
        if self.cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return ctx

    def client_context(self) -> ssl.SSLContext | None:
        if not self.connects:
            return None
        return client_context(self.ca)


def client_context(ca: str | Path | None = None) -> ssl.SSLContext:
    """Verify the server (certificate chain and host name) against ``ca`` or the system store."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# -- limits -------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Per-listener limits (``--max-connections`` and friends)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connection_buffer: int = DEFAULT_MAX_CONNECTION_BUFFER
    max_buffered: int = DEFAULT_MAX_BUFFERED
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("--max-connections must be at least 1")
        if self.header_timeout <= 0:
            raise ValueError("--header-timeout must be positive (seconds)")

    @property
    def identify_timeout(self) -> float:
        """Seconds a connection may stay silent (no complete first packet) while its port is
        more than half full: a third of ``header_timeout`` (5 s by default). A real peer
        speaks at once; a flood's sockets never do."""
        return self.header_timeout / 3


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ServerSecurity:
    """One server's protection, built once from its options and handed to it whole.

    Every server of the mesh (distributor, gateway, services, logs) takes this
    one object, so the token, TLS and limit options mean the same everywhere
    and are read in one place (``cli.py``'s ``SecurityArgs``). The logs service
    alone splits the token into ``read_token``/``write_token`` sides.
    """

    token: str | None = None  # the mesh's token: required of peers, sent to servers
    insecure: bool = False  # allow a non-loopback bind without a token
    tls: TLSOptions = field(default_factory=TLSOptions)
    limits: Limits = DEFAULT_LIMITS
    read_token: str | None = None  # logs service: HTTP reads and /metrics
    write_token: str | None = None  # logs service: TCP ingest and POST /api/v1/logs

    @property
    def access(self) -> Access:
        return Access.from_tokens(self.token, self.read_token, self.write_token)

    @property
    def guard_tokens(self) -> tuple[bytes, ...]:
        """The tokens a ¶ listener of the mesh accepts in a hello."""
        return (self.token.encode(),) if self.token else ()

    def check_exposure(self, what: str, host: str | None) -> None:
        """:func:`check_exposure` with this server's tokens (raises :class:`InsecureConfig`)."""
        check_exposure(what, host, protected=self.access.protected, insecure=self.insecure,
                       tokens=(self.token, self.read_token, self.write_token))


OPEN_MODE = ServerSecurity()  # no token, no TLS, default limits: fine on loopback only
