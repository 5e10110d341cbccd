"""syslog.py: RFC 5424 and RFC 3164 messages to events, as the field table of docs/ingest.md says."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.logs.event import derive_syslog_labels
from logmesh.logs.ingest.common import Rejected
from logmesh.logs.ingest.syslog import SyslogDecoder

NOW = 1_795_970_000_000  # 2026-11-29T16:33:20Z


def stored(line: bytes, received: int = NOW) -> dict:
    """The event as its stored line holds it."""
    import msgspec

    ev = SyslogDecoder().event(line, received, ("10.0.0.1", 514))
    return msgspec.json.decode(msgspec.json.encode(ev))


def decode(line: bytes, received: int = NOW) -> dict:
    """The event as readers see it: the facility and severity labels derived from the
    priority (event.derive_syslog_labels; store/columns.py in SQL)."""
    e = stored(line, received)
    if "labels" in e:
        e["labels"] = derive_syslog_labels(e["labels"])
    return e


def test_only_the_priority_is_stored_of_what_it_implies():
    e = stored(b"<165>1 2003-10-11T22:14:15.003Z h app 42 - - x")
    assert list(e["labels"]) == ["log.syslog.priority", "host.name", "log.syslog.procid"]
    assert e["labels"]["log.syslog.priority"] == 165 and e["log.level"] == "notice"
    assert list(stored(b"<34>Oct 11 22:14:15 mymachine su[99]: x")["labels"]) == [
        "log.syslog.priority", "host.name", "log.syslog.procid"]


def test_rfc5424_all_fields():
    e = decode(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 '
               b'[exampleSDID@32473 iut="3" eventSource="Appli\\"cation"][x@1 a="\\]"] '
               b'\xef\xbb\xbfAn application event log entry...')
    assert e["@timestamp"] == 1065910455003 and e["received_at"] == NOW
    assert e["service.name"] == "evntslog" and e["log.level"] == "notice"
    assert e["message"] == "An application event log entry..."
    assert e["source.address"] == "10.0.0.1" and e["source.port"] == 514
    assert e["labels"] == {
        "log.syslog.priority": 165, "log.syslog.facility.code": 20,
        "log.syslog.facility.name": "local4", "log.syslog.severity.code": 5,
        "log.syslog.severity.name": "notice", "host.name": "mymachine.example.com",
        "log.syslog.procid": "42", "log.syslog.msgid": "ID47",
        "log.syslog.structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": 'Appli"cation'},
                                       "x@1": {"a": "]"}}}


@pytest.mark.parametrize(("ts", "ms"), [
    ("1985-04-12T23:20:50.52Z", 482196050520),
    ("1985-04-12T19:20:50.52-04:00", 482196050520),
    ("2003-08-24T05:14:15.000003-07:00", 1061727255000),
    ("2026-11-29T16:45:01+01:00", 1795967101000),
])
def test_rfc5424_timestamps(ts, ms):
    assert decode(b"<13>1 %s h a - - - m" % ts.encode())["@timestamp"] == ms


@pytest.mark.parametrize("ts", ["2003-10-11T22:14:15", "yesterday", "2003-13-11T22:14:15Z",
                                "2003-10-11T22:14:15.Z"])
def test_rfc5424_bad_timestamp_keeps_the_line_with_the_time_received(ts):
    """syslog has no answer: a refused line was lost without its sender knowing (found from
    outside); rsyslog and syslog-ng keep such a message too."""
    e = decode(b"<13>1 %s h a - - - m" % ts.encode())
    assert e["message"] == "m" and e["service.name"] == "a"
    assert e["@timestamp"] == e["received_at"]
    assert e["labels"]["log.syslog.timestamp_text"] == ts
    assert e["labels"]["logmesh.replaced"] == "bad_timestamp"


@pytest.mark.parametrize("line", [b"<13>Feb 30 10:00:00 h app: m", b"<13>2026-13-45T99:00:00Z h app: m"])
def test_rfc3164_date_that_does_not_exist_keeps_the_line(line):
    e = decode(line)
    assert e["message"] == "m" and e["service.name"] == "app"
    assert e["@timestamp"] == e["received_at"] and e["labels"]["logmesh.replaced"] == "bad_timestamp"


def test_rfc5424_nil_fields_and_no_message():
    e = decode(b"<13>1 - - - - - -")
    assert e["@timestamp"] == NOW and "service.name" not in e and e["message"] == ""
    assert set(e["labels"]) == {"log.syslog.priority", "log.syslog.facility.code",
                                "log.syslog.facility.name", "log.syslog.severity.code",
                                "log.syslog.severity.name"}


def test_rfc5424_bad_structured_data_stays_in_message():
    e = decode(b"<13>1 - h a - - [unclosed x")
    assert e["message"] == "[unclosed x" and "log.syslog.structured_data" not in e["labels"]


def test_rfc3164_with_header():
    e = decode(b"<34>Oct 11 22:14:15 mymachine su[99]: 'su root' failed on /dev/pts/8")
    local = datetime(2026, 10, 11, 22, 14, 15)
    assert e["@timestamp"] == int(time.mktime(local.timetuple())) * 1000
    assert e["service.name"] == "su" and e["log.level"] == "critical"
    assert e["labels"]["host.name"] == "mymachine" and e["labels"]["log.syslog.procid"] == "99"
    assert e["labels"]["log.syslog.facility.name"] == "auth"
    assert e["message"] == "'su root' failed on /dev/pts/8"


def test_rfc3164_december_read_in_january_is_last_year():
    jan = int(time.mktime(datetime(2027, 1, 1, 0, 5).timetuple())) * 1000
    e = decode(b"<13>Dec 31 23:59:00 h t: m", received=jan)
    assert e["@timestamp"] == int(time.mktime(datetime(2026, 12, 31, 23, 59).timetuple())) * 1000


def test_python_syslog_handler_shape():
    """logging.handlers.SysLogHandler sends ``<PRI>[ident]message``, no header."""
    e = decode(b"<12>worker: disk almost full")
    assert e["service.name"] == "worker" and e["message"] == "disk almost full"
    assert e["log.level"] == "warning" and "host.name" not in e["labels"]
    e = decode(b"<11>plain message: with a colon later")
    assert "service.name" not in e and e["message"] == "plain message: with a colon later"


def test_not_syslog_is_stored_whole():
    for line in (b"hello", b"<999>x", b"<abc>x", b"<>"):
        e = decode(line)
        assert e["message"] == line.decode() and e["@timestamp"] == NOW and "labels" not in e


def test_a_pri_of_digits_int_cannot_read_is_not_syslog():
    # "¹" is a digit to str.isdigit but not to int(): it raised ValueError out of the port
    e = decode("<¹>1 2026-11-29T16:00:00Z h app - - - x".encode())
    assert e["message"] == "<¹>1 2026-11-29T16:00:00Z h app - - - x" and "labels" not in e


def test_bad_utf8_is_replaced_and_labelled():
    e = decode(b"<14>app: caf\xe9")
    assert e["message"] == "caf\ufffd" and e["labels"]["logmesh.replaced"] == "bad_utf8"


def test_rsyslog_forward_formats():
    """RSYSLOG_ForwardFormat (an RFC 3339 time in a 3164 header) and the traditional format
    of a message rsyslog got as RFC 5424 (its TAG is the APP-NAME, no colon)."""
    e = decode(b"<29>2026-11-29T16:35:33.477558+00:00 vm relayed relayed message 1")
    assert e["@timestamp"] == 1795970133477 and e["service.name"] == "relayed"
    assert e["message"] == "relayed message 1" and e["labels"]["host.name"] == "vm"
    e = decode(b"<29>Nov 29 16:35:33 vm relayed[12] relayed message 0")
    assert e["service.name"] == "relayed" and e["message"] == "relayed message 0"
    assert e["labels"]["log.syslog.procid"] == "12"


def test_octet_counted_frame_with_a_trailing_newline():
    e = decode(b"<13>1 - h app - - - message\n")
    assert e["message"] == "message"


# -- encode_block: the hot path must store exactly what the per-line path stores -----------

PLAIN = [b"<134>1 2026-11-29T16:00:00.123Z web-1 goods 1001 - - GET /goods \"q\" \\ caf\xc3\xa9",
         b"<11>1 2026-11-29T17:00:00+02:00 - - - - -",
         b"<191>1 2026-11-29T16:00:00.5Z host app - ID7 - x",
         b"<0>1 2026-11-29T16:00:00Z h a 12 m - ",
         b"<134>1 2026-11-29T16:00:00.123456Z web-1 goods 1001 - - second line of web-1",
         b"<13>1 2026-11-29T16:00:00Z h app - - - \xef\xbb\xbfBOM",  # one BOM is not MSG
         b"<13>1 2026-11-29T16:00:00Z h app - - - two\nlines",  # an octet-counted frame may hold one
         b"<13>1 2026-11-29T16:00:00.999999999-03:30 h app - - - ends with a newline\n",  # rsyslog's
         b"<13>1 2026-11-29T16:00:00z h\xc3\xa9 app - - - tab\there, NUL\x00, ESC\x1b, \xe2\x80\xa8",
         b'<13>1 2026-11-29T16:00:00Z h app - - - ","<13>1 2026-11-29T16:00:00Z h app - - - not a line',
         b"<13>1 2026-11-29T16:00:00Z h app - - - ends with a CR\r",  # kept, as event() keeps it
         b"<13>1 2026-11-29T16:00:00Z h app - - - a backslash and an n at the end \\n"]


def block(lines: list[bytes], decoder: SyslogDecoder | None = None):
    return (decoder or SyslogDecoder()).encode_block(lines, NOW, ("10.0.0.1", 514),
                                                     lambda n: range(1, 1 + n))


def per_line(lines: list[bytes]) -> list[dict]:
    """What the per-line path stores for ``lines``, as encode_block's lines would read back."""
    import msgspec

    out = []
    for seq, line in enumerate(lines, 1):
        event = msgspec.json.decode(msgspec.json.encode(
            SyslogDecoder().event(line, NOW, ("10.0.0.1", 514))))
        out.append({"seq": seq, **event})
    return out


def same_as_per_line(lines: list[bytes], decoder: SyslogDecoder | None = None) -> bool:
    """encode_block stored ``lines`` as the per-line path does (True), or left them to it."""
    import orjson

    got = block(lines, decoder)
    if got is None:
        return False
    blob, seqs, stamps, services = got
    assert services == {s: n for s, n in Counter(e.get("service.name") for e in per_line(lines)).items()
                        if s is not None}
    assert blob.endswith(b"}\n") and blob.count(b"\n") == len(lines)
    slow = per_line(lines)
    assert [orjson.loads(line) for line in blob.splitlines()] == slow
    # the priority first in labels, as readers' rule wants it to derive the rest from it
    assert all(b'"labels":{"log.syslog.priority":' in line for line in blob.splitlines())
    assert list(seqs) == [e["seq"] for e in slow] and stamps == [e["@timestamp"] for e in slow]
    return True


def test_encode_block_stores_what_the_per_line_path_stores():
    decoder = SyslogDecoder()
    assert same_as_per_line(PLAIN, decoder)
    assert same_as_per_line(PLAIN[::-1], decoder)  # again, from the caches
    # nothing to escape (plain text, ASCII or not)
    assert same_as_per_line([PLAIN[2], PLAIN[4], "<13>1 2026-11-29T16:00:00Z h a - - - café".encode()])
    assert block([PLAIN[2], b"<13>1 2026-11-29T16:00:00Z h a - - - caf\xe9"]) is None
    # DEL is no JSON escape; but it joins lines to trim their newlines, so with those it is left
    assert same_as_per_line([PLAIN[0], b"<13>1 2026-11-29T16:00:00Z h a - - - DEL \x7f"])
    assert block([PLAIN[7], b"<13>1 2026-11-29T16:00:00Z h a - - - DEL \x7f"]) is None


def test_encode_block_takes_plain_structured_data():
    # logger's default, and ids, values of any text but a quote, backslash or "]"
    decoder = SyslogDecoder()
    lines = [b'<13>1 2026-11-29T16:00:00.1Z h app 7 - [timeQuality tzKnown="1" isSynced="0"] hi',
             b'<13>1 2026-11-29T16:00:00.2Z h app 7 - [timeQuality tzKnown="1" isSynced="0"] yo',
             b'<13>1 2026-11-29T16:00:00Z h app - - [a@1 x="caf\xc3\xa9 (1)" y=""][b][a@1 z="2"]',
             b'<13>1 2026-11-29T16:00:00Z h app - - [a] \xef\xbb\xbf[not sd] "q"',
             PLAIN[0]]
    assert same_as_per_line(lines, decoder)
    assert same_as_per_line(lines[::-1], decoder)  # from the caches
    sd = per_line(lines)[2]["labels"]["log.syslog.structured_data"]
    assert sd == {"a@1": {"x": "caf\u00e9 (1)", "y": "", "z": "2"}, "b": {}}


def test_structured_data_that_varies_is_left_to_the_per_line_path():
    # an id in every line's structured data: a head a line would cost more than the per-line
    # path and fill the caches; a few distinct ones in a read are cached
    decoder = SyslogDecoder()
    varied = [b'<13>1 2026-11-29T16:00:00Z h app - - [req@1 id="%d"] m' % i for i in range(40)]
    assert block(varied, decoder) is None
    assert decoder._sd_heads == 0
    assert same_as_per_line(varied[:8] * 5, decoder) and decoder._sd_heads == 8


def test_the_caches_restart_after_many_heads_with_structured_data(monkeypatch):
    from logmesh.logs.ingest import syslog

    monkeypatch.setattr(syslog, "SD_CACHE_SIZE", 10)
    decoder = SyslogDecoder()
    lines = [b'<13>1 2026-11-29T16:00:00Z h app - - [req@1 id="%d"] m' % i for i in range(24)]
    for start in (0, 8, 16, 0):
        assert same_as_per_line(lines[start:start + 8], decoder)
        assert decoder._sd_heads <= 10 + 8
    assert same_as_per_line([PLAIN[0], lines[3]], decoder)


def test_encode_block_with_a_percent_in_the_source_address():
    # the read's lines are one bytes % template: a link-local address's "%eth0" is not a format
    import orjson

    blob, _, _, _ = SyslogDecoder().encode_block(PLAIN[:2], NOW, ("fe80::1%eth0", 514),
                                              lambda n: range(1, 1 + n))
    assert [orjson.loads(line)["source.address"] for line in blob.splitlines()] == ["fe80::1%eth0"] * 2


@pytest.mark.parametrize("odd", [
    b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed",  # RFC 3164
    b'<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x@1 a="b]"] a "]" in a value',
    b'<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x@1 a="\\"b"] an escape in a value',
    b'<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x@1 a="b"]no space after it',
    b'<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x\xe2\x80\x83y a="b"] a wide space in a name',
    b"<13>1 - h app - - - no timestamp",
    b"<13>1 2026-13-45T99:00:00Z h app - - - bad time",
    b"<13>1 2026-11-29T16:00:00.1234567890Z h app - - - ten digits of fraction",
    b"<13>1 2026-11-29T16:00:00.123.5Z h app - - - two fractions",
    b"<999>1 2026-11-29T16:00:00Z h app - - - PRI out of range",
    b"<13>1 2026-11-29T16:00:00Z h app - - - caf\xe9",  # not UTF-8
    b"<13>1 2026-11-29T16:00:00Z h\"q app - - - a quote in a header field",
    b"<13>1 2026-11-29T16:00:00Z h app - - - two line ends\r\n",
    b"<13>1 2026-11-29T16:00:00Z h  app - - - an empty field",
    b"plain text",
])
def test_encode_block_leaves_any_other_read_to_the_per_line_path(odd):
    assert block([PLAIN[0], odd]) is None
    assert block([odd, PLAIN[0]]) is None


# Random lines: the hot path takes every plain one and stores what the per-line path stores;
# any line at all (a bad PRI, timestamp or field, raw bytes) is stored alike or left to it.
_FIELD = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters='"\\\x7f'),
                 min_size=1, max_size=12)
_ODD_FIELD = st.one_of(_FIELD, st.just("-"), st.text(max_size=6))
_TEXT = st.text(max_size=60).map(str.encode)
_MESSAGE = _TEXT | st.binary(max_size=40)
_ZONE = st.sampled_from(["Z", "z", "+00:00", "-03:30", "+14:00", "+05:45"])


@st.composite
def _timestamp(draw, odd: bool = False) -> str:
    when = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)))
    digits = draw(st.integers(0, 11 if odd else 9))
    frac = "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits,
                                       max_size=digits))) if digits else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + frac + draw(_ZONE)


_SD_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=' ="]\\'),
                   min_size=1, max_size=8)


@st.composite
def _plain_sd(draw) -> str:
    """Structured data encode_block takes: values with no quote, backslash or "]"."""
    value = st.text(st.characters(exclude_characters='"\\]', exclude_categories=["Cs", "Cc"]),
                    max_size=8)
    return "".join("[" + draw(_SD_NAME) + "".join(f' {draw(_SD_NAME)}="{draw(value)}"'
                                                  for _ in range(draw(st.integers(0, 3)))) + "]"
                   for _ in range(draw(st.integers(1, 3))))


@st.composite
def _any_sd(draw) -> str:
    """Any structured data, well formed or not: escapes, "]" in values, odd names."""
    name = st.text(max_size=5)
    value = st.text(st.sampled_from('ab]"\\ \u2003é'), max_size=6)
    return "".join("[" + draw(name) + "".join(f' {draw(name)}="{draw(value)}"'
                                              for _ in range(draw(st.integers(0, 2)))) +
                   draw(st.sampled_from(["]", " ]", ""]))
                   for _ in range(draw(st.integers(1, 2))))


@st.composite
def _plain_line(draw) -> bytes:
    pri = draw(st.integers(0, 191))
    host, app, procid, msgid = (draw(_FIELD | st.just("-")) for _ in range(4))
    sd = draw(st.just("-") | _plain_sd())
    head = f"<{pri}>1 {draw(_timestamp())} {host} {app} {procid} {msgid} {sd}".encode()
    msg = draw(_TEXT).replace(b"\x7f", b"").rstrip(b"\r\n")
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    end = draw(st.sampled_from([b"", b"\n"]))
    return head + (b" " + bom + msg if msg or bom or draw(st.booleans()) else b"") + end


@st.composite
def _any_line(draw) -> bytes:
    pri = draw(st.integers(0, 999).map(str) | st.text(max_size=4))
    fields = " ".join(draw(_ODD_FIELD) for _ in range(4))
    ts = draw(_timestamp(odd=True) | st.text(max_size=30))
    sd = draw(st.sampled_from(["-", "-x", '[a b="c"]', ""]) | _plain_sd() | _any_sd())
    line = f"<{pri}>1 {ts} {fields} {sd}".encode() + draw(_MESSAGE)
    return line + draw(st.sampled_from([b"", b"\n", b"\r", b"\r\n", b"\x7f", b"\n\n"]))


@given(st.lists(_plain_line(), min_size=1, max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_encode_block_takes_plain_lines_as_the_per_line_path_stores_them(lines):
    assert same_as_per_line(lines)


@given(st.lists(_plain_line() | _any_line(), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_encode_block_stores_any_lines_alike_or_leaves_them(lines):
    try:
        per_line(lines)
    except Rejected:  # the per-line path refuses one: encode_block must not have stored it
        assert block(lines) is None
        return
    same_as_per_line(lines)
