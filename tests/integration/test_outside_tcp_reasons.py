"""The book port's counters name the fault a frame was dropped for.

A fire-and-forget frame whose bytes are not UTF-8 is stored with U+FFFD for them; one that
is not JSON even then was counted ``bad_utf8``, though its bytes were not why it was
dropped (the same frame in UTF-8 is dropped as ``bad_json``). Found from outside: a
syntax error with one latin-1 byte in it showed in /metrics as bad UTF-8.
"""

from __future__ import annotations

import re
import socket
import urllib.request

from tests.support.procs import HOST, store_events
from tests.support.waiting import wait_for

DELIM = "¶".encode()


def bad_frames(http_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r'^logmesh_bad_frames_total{reason="(\w+)",worker="\d+"} (\S+)$', text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def test_a_syntax_error_is_bad_json_with_or_without_bad_bytes_beside_it(procs, tmp_path):
    _, port, http_port = procs.logs(tmp_path / "data")
    with socket.create_connection((HOST, port), timeout=30) as sock:
        for frame in (b'{"uri":"/logs","method":"POST","key":0,"params":"caf\xe9",,}',  # both faults
                      b'{"uri":"/logs","method":"POST","key":0,"params":"cafe",,}',  # the syntax alone
                      b"\xff\xfe not even JSON",
                      b'{"uri":"/logs","method":"POST","key":0,"params":"caf\xe9 kept"}'):  # stored
            sock.sendall(frame + DELIM)
        # an acked batch with bad bytes is refused for them: that one is bad_utf8
        sock.sendall(b'{"uri":"/lo\xe9gs","method":"POST","key":4,"ack":true,'
                     b'"params":{"events":[[1,1,"x"]]}}' + DELIM)
        reply = b""
        while DELIM not in reply:
            chunk = sock.recv(4096)
            assert chunk
            reply += chunk
        assert b'"errorcode":400' in reply and b"bad_utf8" in reply
    wait_for(lambda: sum(bad_frames(http_port).values()) >= 4, 30, "four bad frames counted")
    assert bad_frames(http_port) == {"bad_json": 3, "bad_utf8": 1}
    wait_for(lambda: [e["message"] for e in store_events(tmp_path / "data")] == ["caf\ufffd kept"], 30,
             "the frame with bad bytes alone stored")
