"""The run filter of ``loopwise runs --where``, ``loopwise compare --where`` and the dashboard's
run table: a small expression language, parsed (never ``eval``-ed) into a predicate.

Grammar (keywords are case-insensitive)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := value (("<" | "<=" | ">" | ">=" | "==" | "!=") value)?
    value   := NUMBER | STRING | KEY | "true" | "false" | "null" | "(" expr ")"

* A KEY is a path of letters, digits and ``_ . / -`` starting with a letter or ``_``
  (``lr``, ``optimizer.lr``, ``best.val_loss``, ``epoch/val_acc``), or any text in backticks.
  How a key is looked up is the caller's (:func:`loopwise.view.runs_table.lookup`).
* A STRING is in single or double quotes. A bare word on the right of a comparison that is no
  known key is a string too: ``status == finished``.
* A key a run does not have is missing: every comparison with it is false (``!=`` too), and
  ``key == null`` is true. A number never equals a string; ``<`` between a number and a
  string is false. A value alone (``not pinned``) is tested for truth.

A mistake is a :class:`WhereError` naming the bad token and its position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()
"""What a lookup returns for a key the run does not have."""

Lookup = Callable[[str], Any]
_Node = Callable[[Lookup], Any]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op><=|>=|==|!=|<|>|\(|\))
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_./\-]*)
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b}


class WhereError(ValueError):
    """An expression that cannot be parsed: the message names the token and its position."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise WhereError(f"unexpected character {text[pos]!r} at position {pos + 1} of "
                             f"{text!r}; use quotes around text and backticks around odd keys")
        kind = m.lastgroup or ""
        if kind == "word" and m.group().lower() in _KEYWORDS:
            kind = m.group().lower()
        if kind != "space":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        if a is MISSING or b is MISSING:
            return (a is MISSING or a is None) and (b is MISSING or b is None)
        return _equal(a, b)
    if a is MISSING or b is MISSING:
        return False
    if op == "!=":
        return not _equal(a, b)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers or (isinstance(a, str) and isinstance(b, str)):
        return bool(_OPS[op](a, b))
    return False


class Where:
    """A parsed expression: call it with a lookup (key -> value or :data:`MISSING`)."""

    def __init__(self, text: str, *, known: Collection[str] | None = None) -> None:
        if not isinstance(text, str):
            raise TypeError(f"a where expression must be a string, got {type(text).__name__}")
        self.text = text
        self.keys: list[str] = []
        self._known = known
        self._toks = _tokens(text)
        self._i = 0
        if not self._toks:
            raise WhereError("the where expression is empty; write e.g. \"lr < 0.01 and "
                             "status == finished\"")
        self._node = self._or()
        if self._i < len(self._toks):
            tok = self._toks[self._i]
            raise WhereError(f"unexpected {tok.text!r} at position {tok.pos + 1} of {text!r}; "
                             "join conditions with 'and' / 'or'")

    def __call__(self, lookup: Lookup) -> bool:
        value = self._node(lookup)
        return value is not MISSING and bool(value)

    def __repr__(self) -> str:
        return f"Where({self.text!r})"

    # -- parser ------------------------------------------------------------------------------
    def _peek(self) -> _Tok | None:
        return self._toks[self._i] if self._i < len(self._toks) else None

    def _expected(self, what: str) -> WhereError:
        tok = self._peek()
        if tok is None:
            return WhereError(f"{self.text!r} ends where {what} was expected")
        return WhereError(f"unexpected {tok.text!r} at position {tok.pos + 1} of "
                          f"{self.text!r}; expected {what}")

    def _or(self) -> _Node:
        left = self._and()
        while (tok := self._peek()) is not None and tok.kind == "or":
            self._i += 1
            right = self._and()
            left = (lambda a, b: lambda f: a(f) is True or b(f) is True)(left, right)
        return left

    def _and(self) -> _Node:
        left = self._not()
        while (tok := self._peek()) is not None and tok.kind == "and":
            self._i += 1
            right = self._not()
            left = (lambda a, b: lambda f: a(f) is True and b(f) is True)(left, right)
        return left

    def _not(self) -> _Node:
        tok = self._peek()
        if tok is not None and tok.kind == "not":
            self._i += 1
            inner = self._not()
            return lambda f: not _truth(inner(f))
        return self._compare()

    def _compare(self) -> _Node:
        left = self._value(side="left")
        tok = self._peek()
        if tok is None or tok.kind != "op" or tok.text in "()":
            return lambda f: _truth(left(f))
        self._i += 1
        right = self._value(side="right")
        op = tok.text
        return lambda f: _compare(op, left(f), right(f))

    def _value(self, *, side: str) -> _Node:
        tok = self._peek()
        if tok is None:
            raise self._expected("a key, a number or a string")
        self._i += 1
        if tok.kind == "number":
            number = float(tok.text)
            constant: Any = int(number) if number.is_integer() and "." not in tok.text and \
                "e" not in tok.text.lower() else number
            return lambda f: constant
        if tok.kind == "string":
            text = _unquote(tok.text)
            return lambda f: text
        if tok.kind in ("true", "false", "null"):
            literal = {"true": True, "false": False, "null": None}[tok.kind]
            return lambda f: literal
        if tok.kind == "op" and tok.text == "(":
            inner = self._or()
            close = self._peek()
            if close is None or close.text != ")":
                raise self._expected(f"')' to close the '(' at position {tok.pos + 1}")
            self._i += 1
            return inner
        if tok.kind in ("word", "quoted"):
            key = tok.text[1:-1] if tok.kind == "quoted" else tok.text
            if self._known is not None and key not in self._known:
                if side == "right" and tok.kind == "word":
                    return lambda f: key  # a bare word: status == finished
                near = close_keys(key, self._known)
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise WhereError(f"unknown key {key!r} at position {tok.pos + 1} of "
                                 f"{self.text!r}{hint}; `loopwise runs --format json` lists "
                                 "the keys")
            self.keys.append(key)
            return lambda f: f(key)
        self._i -= 1
        raise self._expected("a key, a number or a string")


def _truth(value: Any) -> bool:
    return value is not MISSING and value is not None and bool(value)


def close_keys(key: str, known: Collection[str]) -> list[str]:
    """Up to five of ``known`` that look like ``key`` (for "did you mean")."""
    import difflib

    near = difflib.get_close_matches(key, list(known), n=5, cutoff=0.6)
    near += [k for k in known if key.lower() in k.lower() and k not in near]
    return near[:5]


def parse_where(text: str, *, known: Collection[str] | None = None) -> Where:
    """Parse ``text``; with ``known`` (every key the runs have), an unknown key on the left of
    a comparison is an error and a bare unknown word on the right is a string."""
    return Where(text, known=known)
