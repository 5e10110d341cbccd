"""query/fields.py: a field name means the same in a KQL query as in top and histogram ``by``."""

from __future__ import annotations

import pytest

from logmesh.logs.query import kql
from logmesh.logs.query.errors import QueryError
from logmesh.logs.query.fields import Field, field_expr, resolve

EXTRACT = "json_extract_string({}, ?)"


@pytest.mark.parametrize("name, field, expr", [
    ("service.name", Field("keyword", "service.name"), ('"service.name"', [], "keyword")),
    ("http.response.status_code", Field("long", "http.response.status_code"),
     ('"http.response.status_code"', [], "long")),
    ("params.a.b", Field("json", "params", '$."a"."b"'),
     (EXTRACT.format('"params"'), ['$."a"."b"'], "keyword")),
    ('params.we"ird', Field("json", "params", '$."we\\"ird"'),
     (EXTRACT.format('"params"'), ['$."we\\"ird"'], "keyword")),
    ("labels.k.with.dots", Field("json", "labels", '$."k.with.dots"'),
     (EXTRACT.format('"labels"'), ['$."k.with.dots"'], "keyword")),
    ("upstream", Field("json", "labels", '$."upstream"'),
     (EXTRACT.format('"labels"'), ['$."upstream"'], "keyword")),
])
def test_a_name_resolves_once_for_both(name, field, expr):
    assert resolve(name) == field
    assert field_expr(name) == expr
    # the compiled query reads the same expression with the same parameters
    sql, params = kql.compile_where(kql.parse(kql.Exists(name).to_kql()), now=0)
    assert (sql, params) == (f"{expr[0]} IS NOT NULL", expr[1])


@pytest.mark.parametrize("name, error", [
    ("params.a..b", 'empty key in "params.a..b": write params.a.b'),
    ("labels.", 'expected a key after "labels."'),
    ("params.", 'expected a key after "params."'),
])
def test_names_that_cannot_be_a_field_are_refused_alike(name, error):
    with pytest.raises(ValueError, match="^" + error.replace(".", r"\.") + "$"):
        resolve(name)
    with pytest.raises(QueryError, match="^" + error.replace(".", r"\.") + "$"):
        field_expr(name)
    with pytest.raises(kql.KQLSyntaxError, match=error.replace(".", r"\.")):
        kql.parse(f"{name}:x")


@pytest.mark.parametrize("name, error", [
    ("", "give a field name"),
    ("x" * 257, "give a field name"),
    ("params", '"params" is an object: pick one of its keys'),
])
def test_top_and_by_refuse_what_they_cannot_count(name, error):
    with pytest.raises(QueryError, match=error):
        field_expr(name)


def test_only_known_columns_are_written_as_sql():
    with pytest.raises(AssertionError):
        Field("keyword", 'x"; DROP TABLE live; --').sql(lambda _: "?")
