"""The CLI passes tokens and TLS through (issue #9): ``logmesh up`` hands one token to every
part in the environment, and a real mesh started with ``--token`` works end to end."""

from __future__ import annotations

import time

import aiohttp
import pytest
from click.testing import CliRunner

import logmesh.cli as cli_module
from logmesh.cli import cli
from tests.security.conftest import TOKEN
from tests.support.procs import HOST, LISTENING, Procs, store_events, wait_for


def test_up_gives_every_part_the_token_in_the_environment(monkeypatch, pki) -> None:
    seen = []

    class FakeSupervisor:
        def __init__(self, specs) -> None:
            seen.extend(specs)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(cli_module, "Supervisor", FakeSupervisor)
    # no process starts, so no port is needed: not failing while a real mesh (make run) holds 8000
    monkeypatch.setattr(cli_module, "busy_port", lambda host, ports: None)
    result = CliRunner().invoke(cli, ["up", "--token", TOKEN, "--tls-cert", str(pki.cert_file),
                                      "--tls-key", str(pki.key_file), "--tls-ca", str(pki.ca_file)])
    assert result.exit_code == 0, result.output
    parts = {s.name: s for s in seen}
    assert set(parts) >= {"distributor", "gateway", "logs", "goods", "members", "purchases"}
    for name, spec in parts.items():
        assert TOKEN not in " ".join(spec.argv), f"{name}: the token is not on a command line"
        if name != "traffic":
            assert spec.env["LOGMESH_TOKEN"] == TOKEN, name
            assert spec.env["LOGMESH_TLS_CERT"] == str(pki.cert_file.resolve()), name
    assert parts["traffic"].env == {"SSL_CERT_FILE": str(pki.ca_file.resolve())}
    assert "https://127.0.0.1:8000" in parts["traffic"].argv


@pytest.mark.slow
def test_a_mesh_of_processes_with_a_token(tmp_path) -> None:
    procs = Procs(tmp_path)
    try:
        dist = procs.start("distributor", "distributor", "--port", "0", "--no-supervise",
                           "--token", TOKEN)
        dport = int(dist.wait_line(LISTENING["distributor"])[0].group(1))
        addr = f"{HOST}:{dport}"
        logs = procs.start("logs", "logs", "--port", "0", "--http-port", "0", "--data-dir",
                           str(tmp_path / "logs"), "--distributor", addr, "--no-supervise",
                           "--no-compact", "--token", TOKEN)
        m = logs.wait_line(LISTENING["logs"])[0]
        http_port = int(m.group(3))
        procs.start("goods", "service", "goods", "--port", "0", "--distributor", addr,
                    "--data-dir", str(tmp_path / "svc"), "--no-supervise", "--token", TOKEN)
        intruder = procs.start("members", "service", "members", "--port", "0", "--distributor",
                               addr, "--data-dir", str(tmp_path / "svc2"), "--no-supervise",
                               "--token", "a-wrong-token-0000000000")
        gw = procs.start("gateway", "gateway", "--port", "0", "--distributor", addr,
                         "--no-supervise", "--token", TOKEN)
        gport = int(gw.wait_line(LISTENING["gateway"])[0].group(1))
        intruder.wait_line(r"refused us: authentication required")

        import asyncio

        async def traffic() -> list[int]:
            async with aiohttp.ClientSession() as http:
                statuses = []
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    async with http.get(f"http://{HOST}:{gport}/goods") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.2)
                for _ in range(5):
                    async with http.get(f"http://{HOST}:{gport}/goods") as r:
                        statuses.append(r.status)
                async with http.get(f"http://{HOST}:{gport}/members") as r:
                    statuses.append(r.status)  # the intruder never registered: no route
                async with http.get(f"http://{HOST}:{http_port}/api/v1/stats") as r:
                    statuses.append(r.status)
                return statuses

        assert asyncio.run(traffic()) == [200] * 5 + [404, 401]
        wait_for(lambda: sum(1 for e in store_events(tmp_path / "logs")
                             if e.get("service.name") == "goods") >= 5, 10, "goods' events stored")
        assert "members" not in dist.log_text().split("node registered")[-1]
    finally:
        procs.close()


SHORT = "x"  # a one-character token: guessed at once by anyone who can reach the port


@pytest.mark.parametrize("argv", [
    ["distributor"], ["gateway"], ["service", "goods"], ["up"],
    ["logs", "--standalone"],
    ["logs", "--standalone", "--read-token", TOKEN, "--write-token", SHORT],
], ids=["distributor", "gateway", "service", "up", "logs", "logs-write-token"])
def test_a_short_token_is_refused_on_an_exposed_bind(tmp_path, monkeypatch, argv) -> None:
    started = []  # nothing may start (and if the check is missing, nothing blocks the test)
    monkeypatch.setattr(cli_module, "serve", lambda make: started.append(make))

    class NoSupervisor:
        def __init__(self, specs) -> None:
            started.append(specs)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(cli_module, "Supervisor", NoSupervisor)
    token = [] if "--write-token" in argv else ["--token", SHORT]
    extra = {"distributor": ["--port", "0"], "gateway": ["--port", "0"], "up": [],
             "service": ["--port", "0", "--data-dir", str(tmp_path)],
             "logs": ["--port", "0", "--http-port", "0", "--data-dir", str(tmp_path)]}[argv[0]]
    result = CliRunner().invoke(cli, [*argv, "--host", "0.0.0.0", *token, *extra])
    assert result.exit_code == 2 and not started, result.output
    assert "at least 16 characters" in result.output and "secrets.token_urlsafe" in result.output


def test_a_short_token_is_only_a_warning_on_loopback_or_with_insecure() -> None:
    from logmesh.security import check_exposure

    check_exposure("x", "127.0.0.1", protected=True, insecure=False, tokens=[SHORT])
    check_exposure("x", "0.0.0.0", protected=True, insecure=True, tokens=[SHORT])
    check_exposure("x", "0.0.0.0", protected=True, insecure=False, tokens=[TOKEN, None])
