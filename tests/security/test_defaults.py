"""Safe defaults (issue #9): loopback unless told otherwise; exposure needs a token or --insecure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from logmesh.cli import cli
from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.mesh.distributor import Distributor
from logmesh.mesh.gateway import Gateway
from logmesh.mesh.service import Service
from logmesh.security import (
    InsecureConfig,
    Limits,
    ServerSecurity,
    TLSOptions,
    check_exposure,
    is_loopback,
)
from tests.security.conftest import READ, TOKEN, WRITE

SERVERS = ["distributor", "gateway", "logs", "service", "up"]


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.1", False),
    ("example.com", False), (None, False),
])
def test_is_loopback(host, loopback) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_binds_loopback_by_default(name) -> None:
    host = next(p for p in cli.commands[name].params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_exposure_needs_a_token_or_insecure() -> None:
    check_exposure("x", "127.0.0.1", protected=False, insecure=False)
    check_exposure("x", "0.0.0.0", protected=True, insecure=False)
    check_exposure("x", "0.0.0.0", protected=False, insecure=True)
    with pytest.raises(InsecureConfig) as err:
        check_exposure("distributor", "0.0.0.0", protected=False, insecure=False)
    message = str(err.value)
    assert "--token" in message and "LOGMESH_TOKEN" in message and "--insecure" in message


@pytest.mark.parametrize("make", [
    lambda **kw: Distributor("0.0.0.0", 0, **kw),
    lambda **kw: Service("goods", 0, {}, host="0.0.0.0", distributor=None, **kw),
    lambda **kw: Gateway("0.0.0.0", 0, **kw),
    lambda **kw: LogsServer(LogsConfig(host="0.0.0.0", **kw)),
], ids=["distributor", "service", "gateway", "logs"])
def test_servers_refuse_exposure_without_a_token(make, tmp_path) -> None:
    with pytest.raises(InsecureConfig):
        make()


def test_logs_exposed_needs_both_sides_protected(tmp_path) -> None:
    base = {"host": "0.0.0.0", "data_dir": tmp_path}
    with pytest.raises(InsecureConfig):
        LogsServer(LogsConfig(**base,
            security=ServerSecurity(write_token=WRITE)))  # reads would be open to the network
    with pytest.raises(InsecureConfig):
        LogsServer(LogsConfig(**base, security=ServerSecurity(read_token=READ)))
    assert LogsServer(LogsConfig(**base,
        security=ServerSecurity(read_token=READ, write_token=WRITE))).access.protected
    assert LogsServer(LogsConfig(**base, security=ServerSecurity(token=TOKEN))).access.protected
    assert LogsServer(LogsConfig(**base, security=ServerSecurity(insecure=True))).access.read == ()


@pytest.mark.parametrize("argv", [
    ["distributor", "--host", "0.0.0.0", "--no-supervise"],
    ["gateway", "--host", "0.0.0.0", "--no-supervise"],
    ["service", "goods", "--host", "0.0.0.0", "--no-supervise"],
    ["logs", "--host", "0.0.0.0", "--no-supervise", "--write-token", WRITE],
    ["up", "--host", "0.0.0.0"],
])
def test_cli_refuses_exposure_and_says_how_to_fix_it(argv) -> None:
    result = CliRunner().invoke(cli, argv, env={"LOGMESH_TOKEN": "", "LOGMESH_INSECURE": ""})
    assert result.exit_code == 2, result.output
    assert "refusing to start" in result.output and "--token" in result.output
    assert "--insecure" in result.output


def test_cli_token_file(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = CliRunner().invoke(cli, ["distributor", "--no-supervise", "--token-file", str(empty)])
    assert result.exit_code == 2 and "empty" in result.output


def test_tls_and_limit_options_are_checked() -> None:
    with pytest.raises(ValueError):
        TLSOptions(key="k.pem")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Limits(max_connections=0)
    with pytest.raises(ValueError):
        Limits(header_timeout=0)
    assert TLSOptions().server_context() is None and TLSOptions().client_context() is None
