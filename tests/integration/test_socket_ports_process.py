"""`logmesh logs --syslog-port --forward-port --jsonl-port` as a real process, fed by real
senders (logger, fluent-logger, a JSON-lines socket), and read back with `logmesh query`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

from fluent import sender as fluent_sender

from tests.support.procs import HOST, store_events, wait_for

PORTS = re.compile(r"logs worker \d+: syslog [\d.]+:(\d+), jsonl [\d.]+:(\d+), forward [\d.]+:(\d+)")


def test_all_three_ports_of_a_logs_process(procs, tmp_path):
    data = tmp_path / "data"
    proc, _, http_port = procs.logs(data, "--syslog-port", "0", "--forward-port", "0",
                                    "--jsonl-port", "0")
    syslog, jsonl, forward = (int(p) for p in proc.wait_line(PORTS)[0].groups())
    subprocess.run(["logger", "-n", HOST, "-P", str(syslog), "--tcp", "--rfc5424", "-t", "cronjob",
                    "backup done"], check=True, timeout=10)
    subprocess.run(["logger", "-n", HOST, "-P", str(syslog), "--udp", "-t", "cronjob",
                    "backup over udp"], check=True, timeout=10)
    with socket.create_connection((HOST, jsonl)) as s:
        s.sendall(b'{"message": "from vector", "service.name": "edge"}\n')
    sender = fluent_sender.FluentSender("fluentbit", host=HOST, port=forward)
    try:
        assert sender.emit("tail", {"log": "from fluent"}), sender.last_error
    finally:
        sender.close()
    wait_for(lambda: len(store_events(data)) == 4, 15, "4 events stored")

    def query(q: str) -> list[str]:
        r = subprocess.run([sys.executable, "-m", "logmesh", "query", q, "--json", "--since", "1h",
                            "--url", f"http://{HOST}:{http_port}"], capture_output=True, text=True,
                           timeout=30, env=procs.env)
        assert r.returncode == 0, r.stderr
        return sorted(json.loads(line)["message"] for line in r.stdout.splitlines())

    assert query("service.name:cronjob") == ["backup done", "backup over udp"]
    assert query("service.name:edge") == ["from vector"]
    assert query("service.name:fluentbit.tail") == ["from fluent"]
