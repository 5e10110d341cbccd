"""``--text-log``: the chapter's tab-separated line per logged request.

``<local date>\\t<remote address>\\t<remote port>\\t<JSON of the packet>\\n`` (the
book's ``onRead``), in files rotated by the hour: ``log.txt`` becomes
``log-YYYYMMDDHH.txt``.
"""

from __future__ import annotations

import re
import time

import orjson

from logmesh.logs.sinks import booklog
from logmesh.logs.sinks.booklog import BookLog
from logmesh.protocol import encode
from tests.support.logs import RawClient, book_frame, book_packet, request_text, stored, wait_until

LINE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4})\t([\d.]+)\t(\d+)\t(.*)$")


def text_lines(directory) -> list[str]:
    return [line for f in sorted(directory.glob("log-*.txt")) for line in f.read_text("utf-8").splitlines()]


async def test_text_log_has_the_chapters_line_for_each_packet(start_logs, tmp_path):
    text_log = tmp_path / "text" / "log.txt"
    srv = await start_logs(text_log=text_log)
    book = await RawClient.connect(srv.config.port)
    texts = [request_text(i, "txt", name="상품¶") for i in range(3)]
    await book.send(b"".join(book_frame(t) for t in texts))
    shipper = await RawClient.connect(srv.config.port)  # a logmesh shipper's batch: same lines
    batch = {"uri": "/logs", "method": "POST", "key": 1, "ack": True,
             "params": {"service": "goods", "instance": "goods-1",
                        "events": [[1, 1_700_000_000_000, request_text(7, "batch")]]}}
    await shipper.send(encode(batch))
    await shipper.replies(1)
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 4)

    lines = text_lines(text_log.parent)
    assert len(lines) == 4
    today = time.localtime()
    by_port: dict[int, list[str]] = {}
    for line in lines:
        m = LINE.match(line)
        assert m, line
        assert m.group(1) == f"{today.tm_mon}/{today.tm_mday}/{today.tm_year}"  # en-US toLocaleDateString
        assert m.group(2) == "127.0.0.1"
        packet = orjson.loads(m.group(4))
        assert set(packet) == {"uri", "method", "key", "params"}
        by_port.setdefault(int(m.group(3)), []).append(packet["params"])
    assert by_port == {book.local_port: texts, shipper.local_port: [request_text(7, "batch")]}
    assert orjson.loads(LINE.match(lines[0]).group(4)) == book_packet(texts[0])
    await book.close()
    await shipper.close()


def test_text_log_files_rotate_by_the_hour(tmp_path, monkeypatch):
    clock = [time.struct_time((2026, 11, 25, 10, 59, 59, 2, 329, 0))]
    monkeypatch.setattr(booklog.time, "localtime", lambda *a: clock[0])
    log = BookLog(tmp_path / "log.txt", rotate="hour")
    log.write(("127.0.0.1", 5000), ["one"])
    clock[0] = time.struct_time((2026, 11, 25, 11, 0, 0, 2, 329, 0))
    log.write(("127.0.0.1", 5000), ["two"])
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log-2026112510.txt", "log-2026112511.txt"]
    assert (tmp_path / "log-2026112510.txt").read_text() == (
        '11/25/2026\t127.0.0.1\t5000\t{"uri":"/logs","method":"POST","key":0,"params":"one"}\n')


def test_echo_cannot_forge_the_terminal(tmp_path, capfd):
    """``--echo`` wrote the line's bytes to stdout: a logged request's C1 controls (U+009B, a
    CSI to many terminals) and bidi overrides (U+202E) pass JSON encoding unescaped, so a
    request could clear or reorder the reader's screen. Echoed, they are shown as signs of
    themselves (logmesh.terminal), one line per packet still; the file keeps them as sent."""
    sink = BookLog(tmp_path / "log.txt", echo=True)
    sink.write(("127.0.0.1", 4000), ["a-\u009b2J-\u202etxt.exe-end", "second"])
    sink.close()
    out = capfd.readouterr().out.splitlines()
    assert len(out) == 2
    assert LINE.match(out[0]).group(4).endswith('"params":"a-\\x9b2J-\\u202etxt.exe-end"}')
    assert "\u202e" in text_lines(tmp_path)[0]
