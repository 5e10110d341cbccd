"""``logmesh query``, ``logmesh tail`` and ``logmesh stats``: the logs HTTP API from a terminal.

They only talk to the API (docs/api.md), so they work against any logs
service they can reach. Output is aligned columns, coloured when stdout is a
terminal; ``--json`` prints one JSON object per line instead. cli.py adds them
to ``logmesh``.
"""

from __future__ import annotations

import functools
import http.client
import os
import re
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, TypeVar

import click
import orjson

from .terminal import shown

DEFAULT_URL = "http://127.0.0.1:9041"
EXIT_UNREACHABLE = 1
EXIT_BAD_REQUEST = 2
PAGE = 10_000  # the API's largest page
MAX_TAIL_LAST = 1_000  # the tail's largest `last`



def _http_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An http(s) address with a host; anything else was a ValueError traceback at the first
    request."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is no HTTP address; give one like {DEFAULT_URL}")
    try:
        _ = parts.port  # ValueError: not digits, or past 65535
    except ValueError:
        raise click.BadParameter(f"{value!r} has no valid port (1-65535); give an address like "
                                 f"{DEFAULT_URL}") from None
    return value


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """15m, 1h, 7d, 1d-12h (units s m h d w): else the service's error named "now-VALUE"."""
    if not _SINCE_RE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is no duration; write e.g. 15m, 1h, 7d or 1d-12h "
                                 "(units s m h d w)")
    return value


_SINCE_RE = re.compile(r"[0-9]{1,15}[smhdw](?:[+-][0-9]{1,15}[smhdw])*")

url_option = click.option("--url", default=DEFAULT_URL, envvar="LOGMESH_URL", callback=_http_url,
                          help="The logs service's HTTP address.")
token_option = click.option("--token", default=None, envvar=["LOGMESH_READ_TOKEN", "LOGMESH_TOKEN"],
                            help="A read token, when the service has one (also LOGMESH_READ_TOKEN).")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="One JSON object per line instead of a table.")


F = TypeVar("F", bound=Callable[..., Any])


def reader_may_leave(command: F) -> F:
    """A reader that stops early (``| head``) ends the command: exit 0, not a word.

    It has read what it wanted; exit 1 would say the logs service could not be reached
    (click's own handling of a closed pipe), and ``tail -f`` took the closed pipe for a
    broken stream and followed on for ever, writing to nobody.
    """
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            _reader_gone()
    return run  # type: ignore[return-value]


def _reader_gone() -> NoReturn:
    devnull = os.open(os.devnull, os.O_WRONLY)  # the interpreter's last flush must not fail again
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    sys.exit(0)


class APIError(click.ClickException):
    """``wrong_address``: what answered is no logs service (a 404 page, HTML): following it
    again cannot help, where a refused or broken connection (a restart) may."""

    def __init__(self, message: str, exit_code: int, *, wrong_address: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.wrong_address = wrong_address


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, path: str, params: dict[str, Any], accept: str = "application/json",
                 timeout: float | None = None):
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None and v != ""})
        req = urllib.request.Request(f"{self.url}{path}{'?' + query if query else ''}",
                                     headers={"Accept": accept})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, path, params) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(reason):
                plain = "http://" + self.url.split("://", 1)[1]
                raise APIError(f"{self.url} does not speak TLS ({reason}): a logs service without "
                               f"--tls-cert answers plain HTTP; try --url {plain}",
                               EXIT_UNREACHABLE) from None
            raise APIError(f"cannot reach the logs service at {self.url} ({reason}); start it with: "
                           "logmesh logs (or pass --url)", EXIT_UNREACHABLE) from None

    def _http_error(self, exc: urllib.error.HTTPError, path: str, params: dict[str, Any]) -> APIError:
        """The logs API's error answer as its sentence (a bad query with a caret under where);
        any other (``--url`` names another HTTP server: a 404 page) names the address and asks
        whether it is the logs service's. Its text is shown (logmesh.terminal): it comes from
        whatever answered."""
        try:
            body = orjson.loads(exc.read())
        except (orjson.JSONDecodeError, OSError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, str):
            return APIError(f"{self.url} answered {exc.code} {shown(exc.reason)} to {path}, not "
                            "the logs API: is --url the logs service's HTTP address (its "
                            f"--http-port, {DEFAULT_URL} by default)?", EXIT_UNREACHABLE,
                            wrong_address=True)
        message = shown(error)
        if exc.code >= 500:
            message = f"the logs service at {self.url} answered {exc.code}: {message}"
        pos = body.get("position")
        if isinstance(pos, int) and params.get("q"):
            message += f"\n  {params['q']}\n  {' ' * pos}^"
        return APIError(message, EXIT_BAD_REQUEST if 400 <= exc.code < 500 else EXIT_UNREACHABLE)

    def get(self, path: str, **params: Any) -> Any:
        """The answer's JSON; an answer cut, hung or not the API's JSON is an APIError (it was a
        traceback)."""
        with self._request(path, params) as resp:
            try:
                return orjson.loads(resp.read())
            except (OSError, http.client.HTTPException) as exc:
                raise APIError(f"the logs service at {self.url} stopped answering ({exc!r}); "
                               "try again", EXIT_UNREACHABLE) from None
            except orjson.JSONDecodeError:
                raise self._not_the_api(resp, "JSON") from None

    def _not_the_api(self, resp: Any, wanted: str) -> APIError:
        return APIError(f"{self.url} answered {shown(resp.headers.get('Content-Type') or 'something')}"
                        f", not the logs API's {wanted}: is --url the logs service's HTTP "
                        "address?", EXIT_UNREACHABLE, wrong_address=True)

    def stream(self, path: str, on_open: Callable[[Any], None] | None = None,
               **params: Any) -> Iterator[dict]:
        """The events of a Server-Sent Events stream, as they come (``on_open``: its answer)."""
        with self._request(path, params, accept="text/event-stream", timeout=3600) as resp:
            if not (resp.headers.get("Content-Type") or "").startswith("text/event-stream"):
                raise self._not_the_api(resp, "event stream")
            if on_open is not None:
                on_open(resp)
            data: list[bytes] = []
            for raw in resp:
                line = raw.rstrip(b"\r\n")
                if not line:
                    if data:
                        try:
                            yield orjson.loads(b"\n".join(data))
                        except orjson.JSONDecodeError:
                            pass
                        data = []
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip(b" "))


# -- formatting ---------------------------------------------------------------------------------

COLUMNS = [("time", 23), ("service", 12), ("level", 7), ("method", 6), ("path", 24), ("status", 6)]
LEVEL_COLOURS = {"error": "red", "critical": "red", "fatal": "red", "warning": "yellow", "warn": "yellow",
                 "debug": "bright_black"}


def fmt_time(ms: Any) -> str:
    if not isinstance(ms, int):
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _cells(ev: dict) -> list[str]:
    status = ev.get("http.response.status_code")
    return [fmt_time(ev.get("@timestamp")), shown(ev.get("service.name") or ""), shown(ev.get("log.level") or ""),
            shown(ev.get("http.request.method") or ""), shown(ev.get("url.path") or ""),
            "" if status is None else shown(status)]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _colour(ev: dict, i: int, text: str, colour: bool) -> str:
    if not colour:
        return text
    if i == 0:
        return click.style(text, dim=True)
    if i == 2:
        return click.style(text, fg=LEVEL_COLOURS.get(str(ev.get("log.level") or "").lower()))
    if i == 5:
        status = ev.get("http.response.status_code")
        if isinstance(status, int):
            return click.style(text, fg="red" if status >= 500 else "yellow" if status >= 400 else "green")
    if i == 1:
        return click.style(text, fg="cyan")
    return text


def format_table(events: list[dict], *, colour: bool, width: int | None, header: bool = True,
                 fixed: bool = False) -> list[str]:
    """Aligned columns: widths fit the rows (capped), the message takes what is left.

    ``fixed``: every column at its cap, for rows printed as they come (``tail -f``), whose
    widths cannot fit rows not seen yet.
    """
    rows = [_cells(ev) for ev in events]
    if fixed:
        widths = [cap for _, cap in COLUMNS]
    else:
        widths = [max([len(name)] + [len(r[i]) for r in rows]) if rows else len(name)
                  for i, (name, _) in enumerate(COLUMNS)]
        widths = [min(w, cap) if i else w
                  for i, (w, (_, cap)) in enumerate(zip(widths, COLUMNS, strict=True))]
    used = sum(widths) + 2 * len(widths)
    msg_width = max(20, width - used) if width else None
    out = []
    if header:
        head = "  ".join(name.upper().ljust(w) for (name, _), w in zip(COLUMNS, widths, strict=True)) + "  MESSAGE"
        out.append(click.style(head, bold=True) if colour else head)
    for ev, cells in zip(events, rows, strict=True):
        parts = []
        for i, (text, w) in enumerate(zip(cells, widths, strict=True)):
            clipped = _clip(text, w)
            pad = " " * (w - len(clipped))
            if i == 5:
                parts.append(pad + _colour(ev, i, clipped, colour))
            else:
                parts.append(_colour(ev, i, clipped, colour) + pad)
        msg = shown(ev.get("message") or "")
        parts.append(_clip(msg, msg_width) if msg_width else msg)
        out.append("  ".join(parts))
    return out


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def human_span(ms: int) -> str:
    s = ms // 1000
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h or d else []
    parts += [f"{m}m", f"{s}s"] if not d else [f"{m}m"]
    return " ".join(parts)


def _tty() -> tuple[bool, int | None]:
    if sys.stdout.isatty():
        return True, shutil.get_terminal_size((120, 40)).columns
    return False, None


def _print_events(events: list[dict], as_json: bool, header: bool = True,
                  fixed: bool = False) -> None:
    if as_json:
        for ev in events:
            click.echo(orjson.dumps(ev).decode())
        return
    colour, width = _tty()
    for line in format_table(events, colour=colour, width=width, header=header, fixed=fixed):
        click.echo(line, color=colour)


def _warn(answer: dict) -> None:
    """The answer's warnings (e.g. a field no event has), on stderr, whatever the output."""
    for text in answer.get("warnings") or ():
        click.echo(f"warning: {text}", err=True)


# -- commands -----------------------------------------------------------------------------------


@click.command()
@click.argument("q", required=False, default="")
@click.option("--since", default="15m", callback=_duration,
              help="How far back: 15m, 1h, 7d (ignored with --from).")
@click.option("--from", "from_", default=None, help="Start: ISO-8601, epoch ms or now-1h.")
@click.option("--to", default=None, help="End (default now).")
@click.option("-n", "--limit", default=100, help="At most this many events (pages are followed).")
@click.option("--asc", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--brief", is_flag=True,
              help="Texts past 300 characters cut, as the web UI's list shows them (with --json: "
                   "`cut` says each one's whole length); default: events whole.")
@json_option
@click.option("--table", "as_table", is_flag=True, help="Aligned columns (the default).")
@url_option
@token_option
@reader_may_leave
def query(q: str, since: str, from_: str | None, to: str | None, limit: int, asc: bool, brief: bool,
          as_json: bool, as_table: bool, url: str, token: str | None) -> None:
    """Search the logs: `logmesh query 'service.name:goods' --since 1h`.

    Q is KQL: a field's value (`http.request.method:POST`), bare words (searched in the
    message), and/or/not, parentheses, comparisons (`http.response.status_code >= 500`),
    wildcards (`url.path:/goods*`). A name that is no column is a key of labels
    (`labels.upstream:goods`, or `upstream:goods`); one that no event in the range
    has is warned about on stderr.
    """
    if as_json and as_table:
        raise click.UsageError("pick one of --json and --table")
    if limit < 1:
        raise click.BadParameter("--limit must be at least 1")
    client = Client(url, token)
    start = from_ or f"now-{since}"
    order = "asc" if asc else "desc"
    events: list[dict] = []
    cursor = None
    took = 0.0
    sentence = ""
    while len(events) < limit:
        r = client.get("/api/v1/search", q=q, **{"from": start}, to=to, limit=min(PAGE, limit - len(events)),
                       order=order, cursor=cursor, brief=1 if brief else None)
        if cursor is None:
            _warn(r)
        events.extend(r.get("events") or [])
        took += r.get("took_ms") or 0
        sentence = (r.get("query") or {}).get("sentence", "")
        cursor = r.get("next_cursor")
        if not cursor:
            break
    _print_events(events, as_json)
    if not as_json:
        more = " (more: raise --limit)" if cursor else ""
        click.echo(f"{len(events)} event(s){more}, {took:.0f} ms; where {sentence}", err=True)


@click.command()
@click.argument("q", required=False, default="")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new matching events as they arrive.")
@click.option("-n", "--lines", default=10, help="How many of the newest events to print first.")
@json_option
@url_option
@token_option
@reader_may_leave
def tail(q: str, follow: bool, lines: int, as_json: bool, url: str, token: str | None) -> None:
    """Print the newest matching events; with -f, follow new ones like `tail -f`."""
    if not 0 <= lines <= 1000:
        raise click.BadParameter("--lines must be from 0 to 1000")
    client = Client(url, token)
    if not follow:
        r = client.get("/api/v1/search", q=q, **{"from": "0"}, to="now+1d", limit=max(lines, 1))
        _print_events(list(reversed(r.get("events") or []))[-lines:] if lines else [], as_json)
        return
    try:
        _follow(client, q, lines, as_json)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how -f ends: exit 0 without a word (click would say "Aborted!", exit 1)


def _follow(client: Client, q: str, lines: int, as_json: bool) -> None:
    """A new stream starts at the events stored after it opens: after a broken one it also
    asks for the newest (``last``) and prints those stored since the broken one opened (by the
    service's clock, its Date header) that it has not printed; else what was stored while the
    stream was down (a restart of the service) was never printed."""
    header = True
    last = lines
    seen: set[int] = set()
    opened: list[int | None] = []  # the service's time (ms) when each stream opened
    since: int | None = None
    while True:
        try:
            batch: list[dict] = []
            on_open = lambda resp: opened.append(_served_ms(resp.headers.get("Date")))  # noqa: E731
            for ev in client.stream("/api/v1/tail", on_open, q=q, last=last):
                if since is not None and not (isinstance(ev.get("received_at"), int)
                                              and ev["received_at"] >= since):
                    continue  # from before the broken stream opened
                seq = ev.get("seq")
                if isinstance(seq, int):
                    if seq in seen:
                        continue
                    seen.add(seq)
                    if len(seen) > 100_000:
                        seen.clear()
                batch.append(ev)
                _print_events(batch, as_json, header=header, fixed=True)
                header = False
                batch = []
                sys.stdout.flush()
            last = 0
        except APIError as exc:
            if exc.exit_code != EXIT_UNREACHABLE or (exc.wrong_address and not opened):
                raise  # (an address that never answered as the logs API will not start to)
            click.echo(f"{exc.message}; retrying in 1s", err=True)
        except BrokenPipeError:
            raise  # our reader left (| head), not the stream: done (reader_may_leave)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # the stream broke: reconnect, like tail -F
            click.echo(f"stream ended ({exc}); reconnecting", err=True)
        time.sleep(1)
        if opened:  # else the first stream never opened: ask again for the newest `lines`
            since, last = opened[-1], MAX_TAIL_LAST
            if since is None:  # no Date header: only what comes from now on
                last = 0


def _served_ms(date: str | None) -> int | None:
    try:
        return int(parsedate_to_datetime(date).timestamp() * 1000) if date else None
    except (TypeError, ValueError):
        return None


@click.command()
@json_option
@url_option
@token_option
@reader_may_leave
def stats(as_json: bool, url: str, token: str | None) -> None:
    """What the logs service holds: events, disk use, time span, per-service counts."""
    client = Client(url, token)
    r = client.get("/api/v1/stats")
    # and every instance of the mesh with its state (docs/api.md, "mesh, instances")
    r["instances"] = client.get("/api/v1/mesh", **{"from": "now-1m"}).get("instances") or []
    if as_json:
        click.echo(orjson.dumps(r).decode())
        return
    colour, _ = _tty()
    bold = (lambda s: click.style(s, bold=True)) if colour else (lambda s: s)
    lo, hi = r.get("from"), r.get("to")
    span = f"{fmt_time(lo)} → {fmt_time(hi)} ({human_span(hi - lo)})" if isinstance(lo, int) and isinstance(hi, int) else "-"
    rows = [("events", f"{r.get('events', 0):,}"),
            ("disk", f"{human_bytes(r.get('bytes', 0))} in {r.get('segments', 0)} file(s)"),
            ("time span", span)]
    if "parquet_events" in r:
        parts = (f"{r['parquet_events']:,} in {r.get('parquet_files', 0)} Parquet file(s), "
                 f"{r.get('live_events', 0):,} in {r.get('live_segments', 0)} live segment(s)")
        if r.get("cold_segments"):  # sealed long ago, read from their files until compacted
            parts += (f", {r.get('cold_events', 0):,} in {r['cold_segments']} sealed segment(s) "
                      "waiting for compaction")
        rows.append(("compacted", parts))
    q = r.get("quarantine") or {}
    if q.get("files"):
        rows.append(("damaged", f"{human_bytes(q.get('bytes', 0))} in {q['files']} file(s) of quarantine/ "
                                f"({q.get('damaged_lines', 0):,} line(s) recovered around, "
                                f"{q.get('damaged_parquet_events', 0):,} event(s) in unreadable Parquet)"))
    for k, v in rows:
        click.echo(f"{bold(k.ljust(10))}  {v}", color=colour)
    services = {shown(name): n for name, n in (r.get("services") or {}).items()}
    if services:
        click.echo("", color=colour)
        w = max(len("SERVICE"), *(len(s) for s in services))
        click.echo(bold(f"{'SERVICE'.ljust(w)}  {'EVENTS':>12}"), color=colour)
        for name, n in services.items():
            click.echo(f"{name.ljust(w)}  {n:>12,}", color=colour)
        if r.get("services_left_off"):
            click.echo(f"(and {r['services_left_off']:,} less busy services)", color=colour)
    shippers = r.get("shippers") or []
    if shippers:
        click.echo("", color=colour)
        w = max(len("INSTANCE"), *(len(shown(s.get("instance"))) for s in shippers))
        click.echo(bold(f"{'INSTANCE'.ljust(w)}  {'RECEIVED':>10}  {'MISSING':>8}  {'DUPLICATES':>10}"),
                   color=colour)
        for s in shippers:
            missing = s.get("missing", 0)
            miss = f"{missing:>8,}"
            if colour and missing:
                miss = click.style(miss, fg="red")
            click.echo(f"{shown(s.get('instance')).ljust(w)}  {s.get('received', 0):>10,}  {miss}  "
                       f"{s.get('duplicates', 0):>10,}", color=colour)
    sinks = r.get("sinks") or []
    if sinks:  # how far each forwarding sink is behind the store (docs/elasticsearch.md)
        click.echo("", color=colour)
        click.echo(bold(f"{'SINK':<18}  {'BEHIND':>10}  {'SECONDS':>9}  {'SENT':>12}  {'DEAD':>6}"),
                   color=colour)
        for s in sinks:
            name = f"{s.get('sink')}-w{int(s.get('worker') or 0):02d}"
            behind = f"{s.get('lag_events', 0):>10,}"
            if colour and s.get("lag_seconds", 0) >= 60:
                behind = click.style(behind, fg="yellow")
            click.echo(f"{name:<18}  {behind}  {s.get('lag_seconds', 0):>9.1f}  {s.get('sent', 0):>12,}  "
                       f"{s.get('deadlettered', 0):>6,}", color=colour)
    if r["instances"]:
        click.echo("", color=colour)
        for line in format_instances(r["instances"], colour=colour, now_ms=int(time.time() * 1000)):
            click.echo(line, color=colour)


STATE_COLOURS = {"up": "green", "slow": "yellow", "silent": "yellow", "down": "red",
                 "unregistered": "cyan"}
INSTANCE_COLUMNS = ("SERVICE", "ADDRESS", "STATE", "SINCE", "LAST SEEN", "RESTARTS", "EVENTS",
                    "ERRORS", "MISSING", "INSTANCE")


def _age(now_ms: int, ms: Any) -> str:
    """How long ago ``ms`` was, shortly: 4s, 12m, 3h, 2d; ``-`` for none."""
    if not isinstance(ms, int):
        return "-"
    s = max(0, now_ms - ms) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def format_instances(rows: list[dict], *, colour: bool, now_ms: int) -> list[str]:
    """``/api/v1/mesh``'s instances as aligned columns: a state, how long it has held and when
    the instance was last heard, as ages."""
    cells = [[shown(i.get("name") or ""), shown(i.get("address") or "-"), shown(i.get("state") or ""),
              _age(now_ms, i.get("since_ms")), _age(now_ms, i.get("last_seen_ms")),
              f"{i.get('restarts', 0):,}", f"{i.get('events', 0):,}", f"{i.get('errors', 0):,}",
              f"{i.get('missing', 0):,}", shown(i.get("instance") or "-")] for i in rows]
    widths = [max([len(h)] + [len(c[k]) for c in cells]) for k, h in enumerate(INSTANCE_COLUMNS)]
    right = {5, 6, 7, 8}

    def line(values: list[str], state: str | None = None) -> str:
        parts = []
        for k, (v, w) in enumerate(zip(values, widths, strict=True)):
            text = v.rjust(w) if k in right else v.ljust(w)
            if colour and k == 2 and state is not None:
                text = click.style(text, fg=STATE_COLOURS.get(state))
            if colour and k == 8 and v != "0":
                text = click.style(text, fg="red")
            parts.append(text)
        return "  ".join(parts).rstrip()

    head = line(list(INSTANCE_COLUMNS))
    out = [click.style(head, bold=True) if colour else head]
    out += [line(c, c[2]) for c in cells]
    return out
