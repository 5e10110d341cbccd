"""The logs service's query language: a subset of Kibana's KQL, as a tree that
prints itself back (``to_kql``), compiles to parameterised DuckDB SQL
(``to_sql``) and describes itself for the UI (``sentence``).

    parse('service.name:goods and error').sentence()
        -> 'service.name is "goods" and message has the word "error"'
    compile_where(parse("http.response.status_code >= 500"))
        -> ('"http.response.status_code" >= ?', [500])

Grammar (keywords and/or/not are case-insensitive; precedence not > and > or)::

    query    := [or]                      empty matches everything
    or       := and ("or" and)*
    and      := not (["and"] not)*        adjacent terms are ANDed (KQL itself requires "and")
    not      := "not" not | primary
    primary  := "(" or ")" | FIELD ":" value | FIELD ":" "(" values ")"
              | FIELD ("<" | "<=" | ">" | ">=") value | value
    values   := the same and/or/not/parentheses over bare values, all for FIELD
    value    := WORD | "quoted phrase"     in a WORD, * and ? are wildcards; \\ escapes any character

What a term matches depends on the field's type in ``event.FIELD_TYPES``:

    bare word / "phrase"   message has its words, whole and in order, in any case of
                           A-Z (store/tokens.py: lock does not find deadlock); a value
                           without any word character ("--") is a substring
    text     f:v           the same on f; f:v* a word of f starts with v, f:*v one ends
                           with v, f:*v* v anywhere (only this form reads every event)
    keyword  f:v           f equals v exactly; f:v* is a LIKE pattern over the whole value
    long     f:500         numeric equality; f:5* matches the decimal text
    date     f:v           v is ISO-8601, epoch ms or now-15m (quote ISO times: they contain ":")
    object   params:v      the JSON text contains v; comparisons are refused
    f:*                    f is present (IS NOT NULL)
    f >= v                 numbers for long, times for date, strings for keyword and text
    params.a.b             json_extract_string("params", '$."a"."b"'): equality as text, or
                           numerically when v is a number; comparisons TRY_CAST to DOUBLE
    labels.k, other names  the same on "labels", with the rest of the name as one key

User text never becomes SQL text: values and JSON paths are ``?`` parameters,
and column names come only from ``FIELD_TYPES`` (a name becomes a column or a
JSON path in fields.py, as it does for the API's ``top`` and ``by``). ``not x``
compiles to ``(x) IS NOT TRUE``, so events without the field match ``not f:v``
as in Kibana.

Past 500 lines on purpose: the grammar, the tree it builds and the tree's SQL
and sentences change together (a new operator touches the lexer, the parser and
a node), and the tree's classes are the module's public names (kql.Match, ...).
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from logmesh.logs.query.fields import resolve
from logmesh.logs.query.timerange import Clock, TimeRangeError, now_ms, parse_time
from logmesh.logs.store import tokens

KEYWORDS = ("and", "or", "not")
# parentheses + "not" nested deeper than this are refused (Python recursion, DuckDB expression depth)
MAX_DEPTH = 64
_SPECIAL = '\\():<>"*?'  # characters a bare word must escape to mean themselves
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INT64_MAX = 2**63 - 1
# How words match (store/tokens.py), said where a query could not be read.
WORDS_HINT = ('a word or "phrase" matches whole words, any case (lock does not find deadlock); '
              "lock* words starting with lock; *lock* lock anywhere")


class KQLSyntaxError(ValueError):
    """A query that can't be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


# -- values ---------------------------------------------------------------------------------


class Wild(enum.Enum):
    STAR = "*"  # any run of characters (LIKE %)
    ONE = "?"  # one character (LIKE _)


def _escape_chars(text: str) -> str:
    return "".join("\\" + c if c in _SPECIAL or c.isspace() else c for c in text)


def _escape_word(text: str) -> str:
    """A bare word (or field name) that lexes back to ``text``, never as a keyword."""
    return ("\\" if text.lower() in KEYWORDS else "") + _escape_chars(text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(text: str) -> int | float | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    if "." in text or len(text) > 30:  # int() refuses > 4300 digits; floats go to inf
        return float(text)
    n = int(text)
    return n if abs(n) <= _INT64_MAX else float(n)


@dataclass(frozen=True)
class Literal:
    """A word or "quoted phrase" without wildcards; ``quoted`` only matters to ``to_kql``."""

    text: str
    quoted: bool = False

    def to_kql(self) -> str:
        return _quote(self.text) if self.quoted else _escape_word(self.text)


@dataclass(frozen=True)
class Pattern:
    """A word with wildcards: literal runs and ``Wild`` markers, runs merged."""

    parts: tuple[str | Wild, ...]

    def to_kql(self) -> str:
        return "".join(p.value if isinstance(p, Wild) else _escape_chars(p) for p in self.parts)

    def like(self) -> str:
        return "".join(
            {Wild.STAR: "%", Wild.ONE: "_"}[p] if isinstance(p, Wild) else _like_escape(p)
            for p in self.parts
        )


Value = Literal | Pattern


# -- SQL ------------------------------------------------------------------------------------


@dataclass
class SQLContext:
    """Collects the ``?`` parameters in the order their placeholders are written."""

    now_ms: int
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"


def _time(value: Literal, now: int) -> int:
    return parse_time(value.text, now=now)


def _token_sql(expr: str, v: Value, ctx: SQLContext) -> str:
    """A text field's match (store/tokens.py): a word or phrase is whole tokens, a pattern is
    anchored at token boundaries where it has no wildcard; a value without any token is a
    substring. The ILIKE on the longest literal text is only a quick first cut."""
    if isinstance(v, Pattern):
        parts = [tokens.STAR if p is Wild.STAR else tokens.ONE if p is Wild.ONE else p for p in v.parts]
        regex = tokens.pattern_regex(parts)
        cut = max((p for p in v.parts if isinstance(p, str)), key=len, default="")
    else:
        words = tokens.tokens(v.text)
        if not words:
            return f"{expr} ILIKE {ctx.param('%' + _like_escape(v.text) + '%')} ESCAPE '\\'"
        regex = tokens.phrase_regex(words)
        cut = max(words, key=len)
    if not cut:
        return f"regexp_matches({expr}, {ctx.param(regex)})"
    return (f"({expr} ILIKE {ctx.param('%' + _like_escape(cut) + '%')} ESCAPE '\\' "
            f"AND regexp_matches({expr}, {ctx.param(regex)}))")


# -- nodes ----------------------------------------------------------------------------------

_OR, _AND, _NOT, _ATOM = 1, 2, 3, 4  # precedence when printing


class Node:
    """A query tree node: prints itself back, compiles to SQL, describes itself."""

    prec = _ATOM

    def to_kql(self, values_only: bool = False) -> str:
        raise NotImplementedError

    def to_sql(self, ctx: SQLContext) -> str:
        raise NotImplementedError

    def sentence(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_kql()


def _wrap(text: str, prec: int, min_prec: int) -> str:
    return f"({text})" if prec < min_prec else text


def _sentence_prec(node: Node) -> int:
    return _sentence_prec(node.inner) if isinstance(node, Group) else node.prec


@dataclass(frozen=True)
class MatchAll(Node):
    """The empty query, or a bare ``*``."""

    def to_kql(self, values_only: bool = False) -> str:
        return "*"

    def to_sql(self, ctx: SQLContext) -> str:
        return "TRUE"

    def sentence(self) -> str:
        return "all events"


@dataclass(frozen=True)
class Match(Node):
    """``field:value``, or a bare value when ``field`` is None (it searches ``message``)."""

    field: str | None
    value: Value

    def to_kql(self, values_only: bool = False) -> str:
        if values_only or self.field is None:
            return self.value.to_kql()
        return f"{_escape_word(self.field)}:{self.value.to_kql()}"

    def to_sql(self, ctx: SQLContext) -> str:
        col, v = resolve(self.field or "message"), self.value
        if col.kind == "text":
            return _token_sql(col.text_sql(ctx.param), v, ctx)
        if isinstance(v, Pattern):
            if col.kind == "object":
                return f"{col.text_sql(ctx.param)} ILIKE {ctx.param('%' + v.like() + '%')} ESCAPE '\\'"
            return f"{col.text_sql(ctx.param)} LIKE {ctx.param(v.like())} ESCAPE '\\'"
        if col.kind == "object":
            return f"{col.text_sql(ctx.param)} ILIKE {ctx.param('%' + _like_escape(v.text) + '%')} ESCAPE '\\'"
        if col.kind == "long":
            return f"{col.sql(ctx.param)} = {ctx.param(_number(v.text))}"
        if col.kind == "date":
            return f"{col.sql(ctx.param)} = {ctx.param(_time(v, ctx.now_ms))}"
        n = _number(v.text) if col.kind == "json" else None
        if n is not None:  # "500" in the JSON text, or 500 / 500.0 as a number
            return f"({col.sql(ctx.param)} = {ctx.param(v.text)} OR TRY_CAST({col.sql(ctx.param)} AS DOUBLE) = {ctx.param(n)})"
        return f"{col.sql(ctx.param)} = {ctx.param(v.text)}"

    def sentence(self) -> str:
        name, v = self.field or "message", self.value
        kind = resolve(name).kind
        if isinstance(v, Pattern):
            return f"{name} matches {_quote(v.to_kql())}"
        if kind == "text" and tokens.tokens(v.text):
            words = len(tokens.tokens(v.text)) > 1
            return f"{name} has the word{'s' if words else ''} {_quote(v.text)}"
        if kind in ("text", "object"):
            return f"{name} contains {_quote(v.text)}"
        if kind in ("long", "date"):
            return f"{name} = {v.text}"
        return f"{name} is {_quote(v.text)}"


@dataclass(frozen=True)
class Exists(Node):
    """``field:*``"""

    field: str

    def to_kql(self, values_only: bool = False) -> str:
        return "*" if values_only else f"{_escape_word(self.field)}:*"

    def to_sql(self, ctx: SQLContext) -> str:
        return f"{resolve(self.field).sql(ctx.param)} IS NOT NULL"

    def sentence(self) -> str:
        return f"{self.field} exists"


@dataclass(frozen=True)
class Range(Node):
    """``field >= value`` (and >, <, <=)."""

    field: str
    op: str
    value: Literal

    def to_kql(self, values_only: bool = False) -> str:
        return f"{_escape_word(self.field)} {self.op} {self.value.to_kql()}"

    def to_sql(self, ctx: SQLContext) -> str:
        col, text = resolve(self.field), self.value.text
        if col.kind == "date":
            return f"{col.sql(ctx.param)} {self.op} {ctx.param(_time(self.value, ctx.now_ms))}"
        if col.kind == "long":
            return f"{col.sql(ctx.param)} {self.op} {ctx.param(_number(text))}"
        n = _number(text) if col.kind == "json" else None
        if n is not None:
            return f"TRY_CAST({col.sql(ctx.param)} AS DOUBLE) {self.op} {ctx.param(n)}"
        return f"{col.sql(ctx.param)} {self.op} {ctx.param(text)}"  # strings compare as strings

    def sentence(self) -> str:
        kind = resolve(self.field).kind
        numeric = kind in ("long", "date") or (
            kind == "json" and _number(self.value.text) is not None
        )
        shown = self.value.text if numeric else _quote(self.value.text)
        return f"{self.field} {self.op} {shown}"


@dataclass(frozen=True)
class Not(Node):
    child: Node
    prec = _NOT

    def to_kql(self, values_only: bool = False) -> str:
        return "not " + _wrap(self.child.to_kql(values_only), self.child.prec, _NOT)

    def to_sql(self, ctx: SQLContext) -> str:
        return f"({self.child.to_sql(ctx)}) IS NOT TRUE"  # NULL (field absent) counts as false

    def sentence(self) -> str:
        return "not " + _wrap(self.child.sentence(), _sentence_prec(self.child), _NOT)


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]
    prec = _AND

    def to_kql(self, values_only: bool = False) -> str:
        return " and ".join(_wrap(c.to_kql(values_only), c.prec, _AND) for c in self.children)

    def to_sql(self, ctx: SQLContext) -> str:
        return " AND ".join(f"({c.to_sql(ctx)})" for c in self.children)

    def sentence(self) -> str:
        return " and ".join(_wrap(c.sentence(), _sentence_prec(c), _AND) for c in self.children)


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]
    prec = _OR

    def to_kql(self, values_only: bool = False) -> str:
        return " or ".join(c.to_kql(values_only) for c in self.children)

    def to_sql(self, ctx: SQLContext) -> str:
        return " OR ".join(f"({c.to_sql(ctx)})" for c in self.children)

    def sentence(self) -> str:  # "(a and b) or c": clearer in prose than precedence
        return " or ".join(_wrap(c.sentence(), _sentence_prec(c), _NOT) for c in self.children)


@dataclass(frozen=True)
class Group(Node):
    """``field:(a or b and not c)``: ``inner`` is built of Match/Exists on ``field``."""

    field: str
    inner: Node

    def to_kql(self, values_only: bool = False) -> str:
        return f"{_escape_word(self.field)}:({self.inner.to_kql(values_only=True)})"

    def to_sql(self, ctx: SQLContext) -> str:
        return self.inner.to_sql(ctx)

    def sentence(self) -> str:
        return self.inner.sentence()


# -- lexer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # WORD PHRASE LPAREN RPAREN COLON CMP AND OR NOT EOF
    pos: int
    end: int
    text: str  # the source slice
    value: Value | None = None


def _lex(text: str) -> list[_Token]:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise KQLSyntaxError(
            f"invalid character at position {e.start}: send UTF-8 text", e.start
        ) from None
    tokens, i, n = [], 0, len(text)
    while i < n:
        c, start = text[i], i
        if c.isspace():
            i += 1
            continue
        if c in "():":
            i += 1
            tokens.append(_Token({"(": "LPAREN", ")": "RPAREN", ":": "COLON"}[c], start, i, c))
            continue
        if c in "<>":
            i += 2 if text.startswith("=", i + 1) else 1
            tokens.append(_Token("CMP", start, i, text[start:i]))
            continue
        if c == '"':
            buf, i = [], i + 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                    if i >= n:
                        break
                buf.append(text[i])
                i += 1
            if i >= n:
                raise KQLSyntaxError(
                    f'expected a closing " at position {n} for the phrase opened at position {start}',
                    n,
                )
            i += 1
            tokens.append(_Token("PHRASE", start, i, text[start:i], Literal("".join(buf), True)))
            continue
        parts: list[str | Wild] = []
        escaped = False
        while i < n and not (text[i].isspace() or text[i] in '():<>"'):
            ch = text[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise KQLSyntaxError(f'expected a character after "\\" at position {n}', n)
                escaped, i = True, i + 1
                ch = text[i]
            elif ch in "*?":
                parts.append(Wild(ch))
                i += 1
                continue
            if parts and isinstance(parts[-1], str):
                parts[-1] += ch
            else:
                parts.append(ch)
            i += 1
        raw = text[start:i]
        if not escaped and raw.lower() in KEYWORDS:
            tokens.append(_Token(raw.upper(), start, i, raw))
        elif any(isinstance(p, Wild) for p in parts):
            tokens.append(_Token("WORD", start, i, raw, Pattern(tuple(parts))))
        else:
            tokens.append(_Token("WORD", start, i, raw, Literal("".join(parts))))  # type: ignore[arg-type]
    tokens.append(_Token("EOF", n, n, ""))
    return tokens


# -- parser ---------------------------------------------------------------------------------

_TERM_START = ("WORD", "PHRASE", "LPAREN", "NOT")


def _found(tok: _Token) -> str:
    return "" if tok.kind == "EOF" else f', found "{tok.text}"'


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0) -> _Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    @staticmethod
    def error(message: str, tok: _Token, found: bool = False, hint: str = "") -> KQLSyntaxError:
        """``message at position N[, found "x"][: hint]``, N where ``tok`` starts."""
        text = f"{message} at position {tok.pos}{_found(tok) if found else ''}"
        return KQLSyntaxError(f"{text}: {hint}" if hint else text, tok.pos)

    def query(self) -> Node:
        if self.peek().kind == "EOF":
            return MatchAll()
        node = self.or_(None)
        tok = self.peek()
        if tok.kind == "RPAREN":
            raise KQLSyntaxError(
                f'unexpected ")" at position {tok.pos}: there is no "(" to close', tok.pos
            )
        if tok.kind == "COLON":
            raise KQLSyntaxError(
                f'unexpected ":" at position {tok.pos}: quote values that contain ":", e.g. url.path:"/a:b"',
                tok.pos,
            )
        if tok.kind != "EOF":
            raise KQLSyntaxError(f'unexpected "{tok.text}" at position {tok.pos}', tok.pos)
        return node

    # `group` is the field of an enclosing field:( ... ), where terms are bare values
    def or_(self, group: str | None) -> Node:
        children = [self.and_(group)]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.and_(group))
        return _flat(Or, children)

    def and_(self, group: str | None) -> Node:
        children = [self.not_(group)]
        while self.peek().kind == "AND" or self.peek().kind in _TERM_START:
            if self.peek().kind == "AND":
                self.take()
            children.append(self.not_(group))
        return _flat(And, children)

    def not_(self, group: str | None) -> Node:
        if self.peek().kind != "NOT":
            return self.primary(group)
        tok = self.take()
        self.enter(tok)
        node = Not(self.not_(group))
        self.depth -= 1
        return node

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                f"query nested too deeply (more than {MAX_DEPTH} parentheses and nots)", tok
            )

    def primary(self, group: str | None) -> Node:
        tok = self.peek()
        if tok.kind == "LPAREN":
            self.take()
            self.enter(tok)
            inner = self.or_(group)
            self.close(tok)
            self.depth -= 1
            return inner
        if tok.kind == "WORD" and group is None and self.peek(1).kind in ("COLON", "CMP"):
            return self.field_term()
        if tok.kind in ("WORD", "PHRASE"):
            self.take()
            return self.match(group, tok)
        what = "a value" if group else "a term"
        after = f' after "{self.tokens[self.i - 1].text}"' if self.i else ""
        raise self.error(f"expected {what}{after}", tok, found=True, hint=WORDS_HINT)

    def close(self, lparen: _Token) -> None:
        tok = self.peek()
        if tok.kind != "RPAREN":
            raise KQLSyntaxError(
                f'expected ")" at position {tok.pos} to close the "(" at position {lparen.pos}{_found(tok)}',
                tok.pos,
            )
        self.take()

    def field_term(self) -> Node:
        ftok, op = self.take(), self.take()
        if isinstance(ftok.value, Pattern):
            raise self.error("wildcards are not allowed in field names", ftok)
        name = ftok.value.text  # type: ignore[union-attr]
        try:
            col = resolve(name)
        except ValueError as e:
            raise self.error(str(e), ftok) from None
        tok = self.peek()
        after = self.text[ftok.pos : op.end]
        if op.kind == "COLON" and tok.kind == "LPAREN":
            self.take()
            self.enter(tok)
            inner = self.or_(name)
            self.close(tok)
            self.depth -= 1
            return Group(name, inner)
        if tok.kind not in ("WORD", "PHRASE"):
            raise self.error(f'expected a value after "{after}"', tok, found=True, hint=WORDS_HINT)
        self.take()
        if op.kind == "COLON":
            return self.match(name, tok)
        if isinstance(tok.value, Pattern):
            raise self.error(f'wildcards are not allowed after "{after}"', tok)
        value = tok.value
        assert isinstance(value, Literal)
        if col.kind == "object":
            raise self.error(
                f'"{name}" is an object and can\'t be compared (compare one of its keys, e.g. {name}.id {op.text} 5)',
                ftok,
            )
        self.check_value(col.kind, name, value, tok)
        return Range(name, op.text, value)

    def match(self, name: str | None, tok: _Token) -> Node:
        value = tok.value
        if isinstance(value, Pattern) and all(p is Wild.STAR for p in value.parts):
            return MatchAll() if name is None else Exists(name)
        if name is not None and isinstance(value, Literal):
            self.check_value(resolve(name).kind, name, value, tok)
        return Match(name, value)  # type: ignore[arg-type]

    def check_value(self, kind: str, name: str, value: Literal, tok: _Token) -> None:
        if kind == "long" and _number(value.text) is None:
            raise self.error(f'expected a number for "{name}" (a long field)', tok, found=True)
        if kind == "date":
            try:
                parse_time(value.text, now=0)
            except TimeRangeError as e:
                raise self.error(f'expected a time for "{name}"', tok, True, e.hint) from None


def _flat(cls: type[And] | type[Or], children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for c in children:
        flat.extend(c.children if isinstance(c, cls) else [c])
    return cls(tuple(flat))


# -- cost -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What a query costs per event read, known before it runs (the API refuses or queues by it).

    ``terms``: every ``field:value``, word, comparison and ``field:*``. ``scans``: those that
    read inside a text or a JSON document for every event -- a word or phrase on a text field
    (``message ILIKE '%v%'``), a pattern with a leading wildcard (``*v``: no prefix to cut
    on), and any term on a key of ``params`` or ``labels`` (a JSON parse per event). A scan
    term costs ~30-60 ns per event on DuckDB, an equality ~0.1 ns: 400 scans over 500k
    events take ~6 s of CPU, 2,500 equalities ~0.1 s. ``indexed``: scan terms read only in
    the blocks the token index keeps (a word every match requires, and what is asked together
    with it; see :func:`cost`), not counted in ``scans``.
    """

    terms: int = 0
    scans: int = 0
    indexed: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.terms + other.terms, self.scans + other.scans, self.indexed + other.indexed)


def _leaf_scans(name: str | None, value: Value | None) -> bool:
    kind = resolve(name or "message").kind
    if kind in ("text", "object", "json"):
        return True
    return isinstance(value, Pattern) and isinstance(value.parts[0], Wild)


_CONJ, _INDEXED, _OTHER = range(3)  # where a node of the tree is, for cost()


def cost(node: Node, narrows: Callable[[Node], object | None] | None = None) -> Cost:
    """The :class:`Cost` of a parsed query (iterative: trees are at most MAX_DEPTH deep anyway).

    ``narrows(subtree)`` (query/token_need.need): not None when the block index skips the
    blocks that cannot match ``subtree``. Asked of the query and of each part every match
    requires (below ANDs only); the scan terms of a subtree it narrows are ``indexed``: they
    are read in the blocks holding its words, not in every event. Without it every scan
    term is counted as a full scan.
    """
    total, stack = Cost(), [(node, _CONJ)]
    while stack:
        n, where = stack.pop()
        if where == _CONJ and narrows is not None and narrows(n) is not None:
            where = _INDEXED
        inner = _CONJ if where == _CONJ and isinstance(n, (And, Group)) else (
            _INDEXED if where == _INDEXED else _OTHER)
        if isinstance(n, (And, Or)):
            stack.extend((c, inner) for c in n.children)
        elif isinstance(n, Not):
            stack.append((n.child, _INDEXED if where == _INDEXED else _OTHER))
        elif isinstance(n, Group):
            stack.append((n.inner, inner))
        elif isinstance(n, (Match, Exists, Range)):
            scans = int(_leaf_scans(n.field, n.value if isinstance(n, Match) else None))
            total += Cost(1, 0, scans) if where == _INDEXED else Cost(1, scans)
    return total


# -- public API -----------------------------------------------------------------------------


def parse(text: str) -> Node:
    """KQL text -> a tree; raises KQLSyntaxError (with ``position``) for a bad query."""
    return _Parser(text).query()


def compile_where(
    node: Node, *, clock: Clock = time.time, now: int | None = None
) -> tuple[str, list[Any]]:
    """A tree -> (SQL boolean expression for a WHERE, parameters for its ``?`` placeholders).

    Relative times (now-15m) are read against ``now`` (epoch ms) or the clock.
    """
    ctx = SQLContext(now_ms(clock) if now is None else now)
    return node.to_sql(ctx), ctx.params
