"""syslog-ng as a real client of --syslog-port: it relays what it receives to logmesh as RFC 5424
over TCP, octet-counted (its ``syslog()`` destination, each frame ending with a newline) and
LF-framed (``network()`` with ``flags(syslog-protocol)``); found again with ``logmesh query``.

Debian's syslog-ng package conflicts with rsyslog (the other relay these tests run), so
.ci/run unpacks its binary into ``.cache/syslog-ng`` of the clone without installing it;
one on PATH is used first. Skipped only when neither is there.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from tests.logs.ingest.sockets_support import (
    ingest_errors,
    ingest_events,
    logmesh_query,
    wait_listening,
)
from tests.support.logs import HOST, stored, wait_until
from tests.support.procs import ROOT, Procs, free_port

UNPACKED = ROOT / ".cache" / "syslog-ng"  # where .ci/run puts it (dpkg-deb -x)


def syslog_ng_argv() -> list[str] | None:
    """How to run syslog-ng here: installed, or unpacked with its libraries and modules."""
    installed = shutil.which("syslog-ng") or "/usr/sbin/syslog-ng"
    if Path(installed).is_file():
        return [installed]
    binary = UNPACKED / "usr" / "sbin" / "syslog-ng"
    modules = sorted((UNPACKED / "usr" / "lib" / "syslog-ng").glob("[0-9]*"))
    if not binary.is_file() or not modules:
        return None
    return ["env", f"LD_LIBRARY_PATH={UNPACKED / 'usr' / 'lib' / 'syslog-ng'}", str(binary),
            f"--module-path={modules[-1]}"]


SYSLOG_NG_CONF = """@version: 3.38
options {{ chain-hostnames(no); keep-hostname(yes); use-dns(no); dns-cache(no); stats-freq(0);
          time-reopen(1); }};
source s_in {{ network(ip("127.0.0.1") port({inport}) transport("tcp")); }};
destination d_counted {{ syslog("127.0.0.1" port({port}) transport("tcp") persist-name("counted")); }};
destination d_lines {{ network("127.0.0.1" port({port}) transport("tcp") flags(syslog-protocol)
                                 persist-name("lines")); }};
log {{ source(s_in); destination(d_counted); destination(d_lines); }};
"""


@pytest.fixture
async def syslog(start_logs):
    return await start_logs(syslog_port=0)


@pytest.mark.skipif(syslog_ng_argv() is None,
                    reason="syslog-ng not found: not installed, and not unpacked into "
                           ".cache/syslog-ng (bash .ci/run does that: apt-get download "
                           "syslog-ng-core, dpkg-deb -x)")
async def test_syslog_ng_relays_into_logmesh(syslog, tmp_path):
    port = syslog.listeners.bound["syslog"]
    inport = free_port()
    work = tmp_path / "syslog-ng"
    work.mkdir()
    conf = work / "syslog-ng.conf"
    conf.write_text(SYSLOG_NG_CONF.format(inport=inport, port=port))
    argv = [*syslog_ng_argv(), "-F", "-e", "--no-caps", f"--cfgfile={conf}",  # type: ignore[misc]
            f"--persist-file={work / 'persist'}", f"--pidfile={work / 'pid'}",
            f"--control={work / 'ctl'}"]
    procs = Procs(tmp_path)
    try:
        sng = procs.start_script("syslog-ng", argv)
        await wait_listening(inport, "syslog-ng listening")
        sent_at = time.time()
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(sent_at)).replace(" 0", "  ", 1)
        lines = [f'<165>{stamp} web-3 billing[42]: invoice {i} "paid" in café №{i}\n'
                 for i in range(5)]
        lines.append(f"<11>{stamp} web-4 cron: nightly job late\n")
        with socket.create_connection((HOST, inport)) as s:
            s.sendall("".join(lines).encode())
        await wait_until(lambda: len(stored(syslog.config.data_dir)) == 12, timeout=20,
                         what="6 messages x 2 destinations")
        invoices = await logmesh_query(syslog, "service.name:billing and host.name:web-3")
        assert sorted(e["message"] for e in invoices) == sorted(
            f'invoice {i} "paid" in café №{i}' for i in range(5) for _ in range(2))
        for e in invoices:
            assert e["log.level"] == "notice"
            labels = e["labels"]
            assert labels["log.syslog.facility.name"] == "local4" and labels["log.syslog.procid"] == "42"
            assert labels["log.syslog.priority"] == 165
            assert abs(e["@timestamp"] - sent_at * 1000) < 2000  # the second it was sent
        [cron, cron2] = await logmesh_query(syslog, "service.name:cron")
        assert cron["message"] == cron2["message"] == "nightly job late"
        assert cron["log.level"] == "error" and cron["labels"]["log.syslog.facility.name"] == "user"
        assert await ingest_events(syslog, "syslog") == 12
        assert await ingest_errors(syslog, "syslog") == {}
        assert "error" not in sng.log_text().lower(), sng.log_text()
    finally:
        procs.close()
