"""Xero's `where` filter, the subset its docs use: comparisons, Contains/StartsWith/EndsWith, ToLower(),
null checks, guid("…"), joined with AND/&&/OR/||. Anything else is refused, as Xero refuses it."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<guid>guid\("(?P<guidv>[0-9a-fA-F-]{36})"\))
    | (?P<op>==|!=|>=|<=|>|<|&&|\|\||\(|\))
    | (?P<word>[A-Za-z_]\w*(?:\.(?!(?:Contains|StartsWith|EndsWith)\()[A-Za-z_]\w*(?:\(\))?)*)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<method>\.(?:Contains|StartsWith|EndsWith)\()
    )""",
    re.VERBOSE,
)
_METHOD = re.compile(
    r"^(?P<field>[A-Za-z_][A-Za-z0-9_.]*?)(?P<lower>\.ToLower\(\))?\.(?P<m>Contains|StartsWith|EndsWith)$"
)


class WhereError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WhereError(f"cannot parse the where clause near {text[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "guidv":
            kind = "guid"
        value = match.group("guidv") if match.group("guid") else match.group(kind)
        if kind == "word" and value.upper() in ("AND", "OR"):
            kind, value = "op", "&&" if value.upper() == "AND" else "||"
        out.append((kind, value))
    return out


def _field(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _literal(kind: str, value: str) -> Any:
    if kind == "string":
        return value[1:-1].replace('\\"', '"')
    if kind == "guid":
        return value.lower()
    if kind == "number":
        return Decimal(value)
    if kind == "word" and value in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[value]
    raise WhereError(f"expected a value, got {value!r}")


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(expected, Decimal) and actual is not None:
        try:
            actual = Decimal(str(actual))
        except InvalidOperation:
            return False
    if isinstance(actual, str) and isinstance(expected, str) and len(expected) == 36 and expected.count("-") == 4:
        actual = actual.lower()
    if op == "==":
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    try:
        return bool(
            {">": actual > expected, "<": actual < expected, ">=": actual >= expected, "<=": actual <= expected}[op]
        )
    except TypeError:
        return False


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise WhereError("the where clause ends too early")
        self.at += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise WhereError(f"unexpected {self.peek()[1]!r} in the where clause")  # type: ignore[index]
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.atom()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def atom(self) -> Predicate:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise WhereError("unbalanced parentheses in the where clause")
            return inner
        if kind == "word" and self.peek() is not None and self.peek()[0] == "method":  # type: ignore[index]
            method = self.take()[1][1:-1]
            arg_kind, arg = self.take()
            if self.take() != ("op", ")"):
                raise WhereError(f"{method} takes one argument")
            needle = _literal(arg_kind, arg)
            if not isinstance(needle, str):
                raise WhereError(f"{method} needs a string")
            match = _METHOD.match(f"{value}.{method}")
            assert match is not None
            path, lower = match.group("field"), bool(match.group("lower"))

            def method_call(record: dict[str, Any]) -> bool:
                actual = _field(record, path)
                if not isinstance(actual, str):
                    return False
                actual = actual.lower() if lower else actual
                return {
                    "Contains": needle in actual,
                    "StartsWith": actual.startswith(needle),
                    "EndsWith": actual.endswith(needle),
                }[method]

            return method_call
        if kind != "word":
            raise WhereError(f"expected a field name, got {value!r}")
        lower = value.endswith(".ToLower()")
        path = value[: -len(".ToLower()")] if lower else value
        op_kind, op = self.take()
        if op_kind != "op" or op not in ("==", "!=", ">", "<", ">=", "<="):
            raise WhereError(f"expected a comparison after {value}, got {op!r}")
        expected = _literal(*self.take())

        def comparison(record: dict[str, Any]) -> bool:
            actual = _field(record, path)
            if lower and isinstance(actual, str):
                actual = actual.lower()
            return _compare(actual, op, expected)

        return comparison


def compile_where(text: str) -> Predicate:
    return _Parser(_tokens(text)).parse()
