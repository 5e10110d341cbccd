"""kql.js against query/kql.py: the filters the UI writes parse back to the field and value it
meant, and kql.js's lexer reads queries as kql.py's does. node runs kql.js (make test needs node
for tests/logs/web/js anyway); skipped without it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from logmesh.logs.query import kql

KQL_JS = Path(__file__).resolve().parents[3] / "logmesh" / "logs" / "web" / "static" / "kql.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is missing (node 20 or newer)")

ODD_NAMES = [
    "service.name", "labels.my key", "labels.a:b", 'labels.say "hi"', "labels.C:\\temp\\", "labels.f(x) <= y*?",
    "labels.tab\there", "labels.ideo\u3000space", "labels.nbsp\xa0x", "labels.bom\ufeffx", "labels.😀 x",
    'labels. :"\\*?()<>', "not", "AND", "labels.or", "params.a b", "labels.城市",
]
VALUES = ["v", 'a "quoted" \\ value', "*", "", "not", 500, -1.5, True]


def run_js(body: str, data: object) -> object:
    """The result of `body`, JS with kql.js's exports as `k` and `data` the input, through JSON."""
    script = (f"import * as k from {json.dumps(KQL_JS.as_uri())};\n"
              "import { readFileSync } from 'node:fs';\n"
              "const data = JSON.parse(readFileSync(0, 'utf8'));\n"
              f"const result = (() => {{ {body} }})();\n"
              "process.stdout.write(JSON.stringify(result));\n")
    proc = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(data),
                          capture_output=True, text=True, encoding="utf-8", timeout=30, check=True)
    return json.loads(proc.stdout)


def test_filters_on_odd_field_names_parse_back_to_the_field_and_value():
    cases = [(name, value, negate) for name in ODD_NAMES for value in VALUES for negate in (False, True)]
    out = run_js("return data.map(([f, v, neg]) => k.withFilter('', f, v, neg));", cases)
    for (name, value, negate), query in zip(cases, out, strict=True):
        node = kql.parse(query)
        if negate:
            assert isinstance(node, kql.Not), query
            node = node.child
        assert isinstance(node, kql.Match), query
        assert node.field == name, query
        assert isinstance(node.value, kql.Literal), query
        assert node.value.text == (str(value).lower() if isinstance(value, bool) else str(value)), query


def test_exists_and_without_values_on_odd_field_names():
    out = run_js("return data.map((f) => [k.withFilter('', f, null), k.withFilter('', f, null, true),"
                 " k.withoutValues('', f, ['x', 2])]);", ODD_NAMES)
    for name, (missing, present, without) in zip(ODD_NAMES, out, strict=True):
        assert kql.parse(missing) == kql.Not(kql.Exists(name)), missing
        assert kql.parse(present) == kql.Exists(name), present
        node = kql.parse(without)
        assert isinstance(node, kql.And), without
        assert [c.child.field for c in node.children] == [name, name], without


def test_kql_field_is_kql_py_escape_word():
    out = run_js("return data.map((f) => k.kqlField(f));", ODD_NAMES)
    assert out == [kql._escape_word(name) for name in ODD_NAMES]


def test_lex_reads_queries_as_kql_py_does():
    queries = [
        'not a.b:"x y" AND (c >= 5 or d<1)', r'my\ field\::\"v\\ \not "a\"b"', "a*b x\\* ?",
        'f:😀 and 😀😀:"😀"', "a\u2003b\x1fc\x85d a\ufeffb", "x<=1 y>2 z<3", "\\or:1 OR:2 a\\*b*",
    ]
    out = run_js("return data.map((q) => k.lex(q).map((t) => [t.kind, t.text, t.wild]));", queries)
    for q, tokens in zip(queries, out, strict=True):
        want = []
        for t in kql._lex(q)[:-1]:  # without EOF
            if isinstance(t.value, kql.Pattern):
                want.append([t.kind, "".join(p.value if isinstance(p, kql.Wild) else p for p in t.value.parts), True])
            else:
                want.append([t.kind, t.value.text if t.value is not None else t.text, False])
        assert tokens == want, q
