"""lines.py: newline and octet-counted framing (RFC 6587), split reads, oversize lines skipped."""

from __future__ import annotations

import random

from logmesh.logs.ingest.lines import LineSplitter


def feed_all(splitter: LineSplitter, chunks: list[bytes]) -> tuple[list[bytes], list[str]]:
    lines, reasons = [], []
    for chunk in chunks:
        got, errors = splitter.feed(chunk)
        lines += got
        reasons += [e.reason for e in errors]
    return lines, reasons


def cut_everywhere(data: bytes, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(data):
        n = rnd.randint(1, 7)
        chunks.append(data[pos:pos + n])
        pos += n
    return chunks


def test_newline_framing_with_crlf_nul_and_empty_lines():
    lines, reasons = feed_all(LineSplitter(100), [b"<13>a\r\n\n<13>b\0<13>c\n<13>d"])
    assert lines == [b"<13>a", b"<13>b", b"<13>c"] and reasons == []


def test_octet_counting_chosen_by_the_first_byte_and_split_anywhere():
    msgs = [b"<13>1 - h a - - - one", b"<13>1 - h a - - - two\nwith a newline", b"<13>x"]
    data = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    for seed in range(20):
        lines, reasons = feed_all(LineSplitter(100), cut_everywhere(data, seed))
        assert lines == msgs and reasons == []


def test_newline_framing_split_anywhere():
    msgs = [b"<13>one", b"<14>two two", b"{\"message\": \"x\"}"]
    data = b"\n".join(msgs) + b"\n"
    for seed in range(20):
        lines, _ = feed_all(LineSplitter(100, octet_counting=False), cut_everywhere(data, seed))
        assert lines == msgs


def test_oversize_line_is_skipped_and_counted_its_neighbours_kept():
    big = b"x" * 500
    for chunks in ([b"<13>before\n" + big + b"\n<13>after\n"],
                   cut_everywhere(b"<13>before\n" + big + b"\n<13>after\n", 3),
                   [b"<13>before\n", big[:200], big[200:], b"\n<13>after\n"]):
        lines, reasons = feed_all(LineSplitter(100), chunks)
        assert lines == [b"<13>before", b"<13>after"] and reasons == ["too_large"]


def test_oversize_counted_frame_is_skipped_by_its_count():
    data = b"5 <13>a" + b"500 " + b"y" * 500 + b"5 <13>b"
    for seed in range(10):
        lines, reasons = feed_all(LineSplitter(100), cut_everywhere(data, seed))
        assert lines == [b"<13>a", b"<13>b"] and reasons == ["too_large"]


def test_a_missing_count_falls_back_to_newlines():
    lines, reasons = feed_all(LineSplitter(100), [b"5 <13>a", b"<13>no count\n<13>next\n"])
    assert lines == [b"<13>a", b"<13>no count", b"<13>next"] and reasons == ["bad_frame"]


def test_partial_line_is_held_and_reported():
    s = LineSplitter(100, octet_counting=False)
    assert s.feed(b'{"message": "x"')[0] == [] and s.buffered == 15
    assert s.feed(b"}\n")[0] == [b'{"message": "x"}'] and s.buffered == 0


def test_the_last_line_without_a_newline_is_given_at_the_end_of_the_stream():
    s = LineSplitter(1024, octet_counting=False)
    assert s.feed(b"one\ntwo") == ([b"one"], [])
    assert s.finish() == ([b"two"], [])
    assert s.finish() == ([], [])  # nothing held twice
    s = LineSplitter(1024, octet_counting=True)
    assert s.feed(b"<14>no count, newline framed\r") == ([], [])
    assert s.finish() == ([b"<14>no count, newline framed"], [])
    assert LineSplitter(1024).finish() == ([], [])  # a connection that sent nothing


def test_a_counted_frame_cut_by_the_end_of_the_stream_is_a_bad_frame():
    s = LineSplitter(1024)
    assert s.feed(b"5 hello12 cut sh") == ([b"hello"], [])
    lines, errors = s.finish()
    assert lines == [] and [e.reason for e in errors] == ["bad_frame"]
    s = LineSplitter(1024)
    assert s.feed(b"5 hello\n") == ([b"hello"], [])
    assert s.finish() == ([], [])  # a separator after the last frame is no message


def test_the_end_of_an_oversize_line_at_the_end_of_the_stream_is_not_a_line():
    s = LineSplitter(8, octet_counting=False)
    lines, errors = s.feed(b"a" * 20)
    assert lines == [] and [e.reason for e in errors] == ["too_large"]
    assert s.finish() == ([], [])
