"""The QBO query language: a small parser and an evaluator over one company's stored entities."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from . import errors
from .clock import parse_time

DEFAULT_MAX = 100
LIMIT_MAX = 1000
TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')|(?P<op><=|>=|!=|<>|[=<>(),*])"
    r"|(?P<number>-?\d+(?:\.\d+)?)(?![\w.])|(?P<word>[A-Za-z_][\w.]*))"
)
OPERATORS = ("=", "<", ">", "<=", ">=", "LIKE", "IN")
# Filterable top-level properties per entity (from Finance.xsd); stored keys are accepted too.
KNOWN: dict[str, set[str]] = {
    "Customer": {"Id", "SyncToken", "MetaData", "DisplayName", "GivenName", "FamilyName", "MiddleName",
                 "CompanyName", "PrimaryEmailAddr", "PrimaryPhone", "Mobile", "Fax", "BillAddr", "ShipAddr",
                 "Balance", "BalanceWithJobs", "Active", "Title", "Suffix", "FullyQualifiedName", "PrintOnCheckName",
                 "Job", "ParentRef", "Level", "Taxable", "CurrencyRef", "Notes", "WebAddr"},
    "Invoice": {"Id", "SyncToken", "MetaData", "DocNumber", "TxnDate", "DueDate", "CustomerRef", "TotalAmt",
                "Balance", "EmailStatus", "PrintStatus", "BillEmail", "CurrencyRef", "PrivateNote", "Line",
                "TxnTaxDetail", "LinkedTxn"},
    "SalesReceipt": {"Id", "SyncToken", "MetaData", "DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "Balance",
                     "PaymentMethodRef", "PaymentRefNum", "DepositToAccountRef", "CurrencyRef", "PrivateNote"},
    "RefundReceipt": {"Id", "SyncToken", "MetaData", "DocNumber", "TxnDate", "CustomerRef", "TotalAmt",
                      "DepositToAccountRef", "PaymentMethodRef", "CurrencyRef", "PrivateNote"},
    "Payment": {"Id", "SyncToken", "MetaData", "TxnDate", "CustomerRef", "TotalAmt", "UnappliedAmt",
                "PaymentRefNum", "PaymentMethodRef", "DepositToAccountRef", "CurrencyRef", "PrivateNote"},
    "Item": {"Id", "SyncToken", "MetaData", "Name", "Sku", "Type", "Active", "FullyQualifiedName", "Taxable",
             "UnitPrice", "IncomeAccountRef", "Description"},
    "Account": {"Id", "SyncToken", "MetaData", "Name", "AccountType", "AccountSubType", "Classification", "Active",
                "FullyQualifiedName", "CurrentBalance", "AcctNum"},
    "TaxCode": {"Id", "SyncToken", "MetaData", "Name", "Active", "Taxable", "TaxGroup", "Description"},
    "TaxRate": {"Id", "SyncToken", "MetaData", "Name", "Active", "RateValue", "Description"},
    "PaymentMethod": {"Id", "SyncToken", "MetaData", "Name", "Active", "Type"},
    "CompanyInfo": {"Id", "SyncToken", "MetaData", "CompanyName", "LegalName", "Country"},
}  # fmt: skip
NAME_LISTS = ("Customer", "Item", "Account", "PaymentMethod", "TaxCode", "TaxRate")
# A filter on an aggregate compares its scalar member: PrimaryEmailAddr = 'x' means its Address.
SCALAR_MEMBERS = ("Address", "FreeFormNumber", "URI", "value")


@dataclass
class Condition:
    path: list[str]
    op: str
    values: list[str | Decimal | bool]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] = field(default_factory=list)
    star: bool = True
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[list[str], bool]] = field(default_factory=list)
    start: int = 1
    limit: int = DEFAULT_MAX


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        pos = 0
        text = text.strip().rstrip(";")
        while pos < len(text):
            match = TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise errors.parse_error(
                    f"Encountered unexpected character at position {pos}: {text[pos : pos + 10]!r}"
                )
            kind = match.lastgroup or ""
            self.items.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def next(self, expected: str) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise errors.parse_error(f"Encountered end of query, expected {expected}")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.pos += 1
            return token[1].upper()
        return None

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            raise errors.parse_error(f"Encountered {token[1] if token else 'end of query'!r}, expected {word}")

    def expect_op(self, op: str) -> None:
        kind, value = self.next(op)
        if kind != "op" or value != op:
            raise errors.parse_error(f"Encountered {value!r}, expected {op!r}")


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _value(tokens: _Tokens) -> str | Decimal | bool:
    kind, raw = tokens.next("a value")
    if kind == "string":
        return _unquote(raw)
    if kind == "number":
        return Decimal(raw)
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise errors.parse_error(f"Encountered {raw!r}, expected a value")


def _int(tokens: _Tokens, what: str) -> int:
    kind, raw = tokens.next(what)
    if kind != "number" or "." in raw:
        raise errors.parse_error(f"Encountered {raw!r}, expected an integer after {what}")
    return int(raw)


def parse(text: str) -> Query:
    tokens = _Tokens(text)
    tokens.expect_keyword("SELECT")
    count = False
    star = False
    fields: list[str] = []
    if tokens.keyword("COUNT"):
        tokens.expect_op("(")
        tokens.expect_op("*")
        tokens.expect_op(")")
        count = True
    else:
        while True:
            kind, raw = tokens.next("a property or *")
            if kind == "op" and raw == "*":
                star = True
            elif kind == "word" and raw.upper() != "FROM":
                fields.append(raw)
            else:
                raise errors.parse_error(f"Encountered {raw!r}, expected a property or *")
            token = tokens.peek()
            if token == ("op", ","):
                tokens.pos += 1
                continue
            break
    tokens.expect_keyword("FROM")
    kind, entity = tokens.next("an entity")
    if kind != "word":
        raise errors.parse_error(f"Encountered {entity!r}, expected an entity")
    query = Query(entity=entity, count=count, fields=fields, star=star or count)
    if tokens.keyword("WHERE"):
        while True:
            query.where.append(_condition(tokens))
            if tokens.keyword("AND"):
                continue
            if tokens.keyword("OR"):
                raise errors.parse_error("OR is not supported")
            break
    order_word = tokens.keyword("ORDERBY", "ORDER")
    if order_word:
        if order_word == "ORDER":
            tokens.expect_keyword("BY")
        while True:
            kind, raw = tokens.next("a property")
            if kind != "word":
                raise errors.parse_error(f"Encountered {raw!r}, expected a property")
            descending = tokens.keyword("DESC", "ASC") == "DESC"
            query.order.append((raw.split("."), descending))
            if tokens.peek() == ("op", ","):
                tokens.pos += 1
                continue
            break
    if tokens.keyword("STARTPOSITION"):
        query.start = max(1, _int(tokens, "STARTPOSITION"))
    if tokens.keyword("MAXRESULTS"):
        query.limit = min(LIMIT_MAX, max(1, _int(tokens, "MAXRESULTS")))
    leftover = tokens.peek()
    if leftover is not None:
        raise errors.parse_error(f"Encountered {leftover[1]!r} after the end of the query")
    return query


def _condition(tokens: _Tokens) -> Condition:
    kind, raw = tokens.next("a property")
    if kind != "word":
        raise errors.parse_error(f"Encountered {raw!r}, expected a property")
    path = raw.split(".")
    token = tokens.next("an operator")
    op = token[1].upper()
    if op not in OPERATORS:
        raise errors.parse_error(f"Encountered {token[1]!r}, expected an operator")
    if op == "IN":
        tokens.expect_op("(")
        values = [_value(tokens)]
        while tokens.peek() == ("op", ","):
            tokens.pos += 1
            values.append(_value(tokens))
        tokens.expect_op(")")
        return Condition(path, op, values)
    return Condition(path, op, [_value(tokens)])


# -- evaluation -----------------------------------------------------------------------------------------


def _resolve(obj: dict[str, Any], path: list[str]) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.lower() == part.lower()), None)
        if key is None:
            return None
        value = value[key]
    if isinstance(value, dict):
        for member in SCALAR_MEMBERS:
            if member in value:
                return value[member]
        return None
    return value


Key = tuple[int, Any]


def _key(value: Any) -> Key:
    """A comparable form: numbers, then times, then case-folded text (QBO compares text case-insensitively)."""
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | float | Decimal):
        return (1, Decimal(str(value)))
    if isinstance(value, str):
        try:
            return (1, Decimal(value))
        except InvalidOperation:
            pass
        if len(value) >= 10 and value[4:5] == "-":
            moment = parse_time(value)
            if isinstance(moment, datetime):
                return (2, moment)
        return (3, value.casefold())
    return (4, str(value))


def _matches(obj: dict[str, Any], condition: Condition) -> bool:
    actual = _resolve(obj, condition.path)
    if actual is None:
        return False
    if isinstance(actual, list):
        return False
    if condition.op == "LIKE":
        pattern = str(condition.values[0])
        regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in pattern)
        return re.fullmatch(regex, str(actual), re.IGNORECASE | re.DOTALL) is not None
    if isinstance(condition.values[0], bool) or isinstance(actual, bool):
        wanted = {str(v).lower() for v in condition.values}
        return str(actual).lower() in wanted
    left = _key(actual)
    rights = [_key(v) for v in condition.values]
    if condition.op == "IN":
        return left in rights
    right = rights[0]
    if left[0] != right[0]:
        # Mixed kinds: compare as text, as QBO does for string-typed properties.
        left, right = (3, str(actual).casefold()), (3, str(condition.values[0]).casefold())
    if condition.op == "=":
        return bool(left == right)
    if condition.op == "<":
        return bool(left[1] < right[1])
    if condition.op == ">":
        return bool(left[1] > right[1])
    if condition.op == "<=":
        return bool(left[1] <= right[1])
    return bool(left[1] >= right[1])


def _check_properties(query: Query, rows: list[dict[str, Any]]) -> None:
    known = {name.lower() for name in KNOWN.get(query.entity, set())}
    for row in rows:
        known.update(key.lower() for key in row)
    names = [c.path[0] for c in query.where] + [p[0] for p, _ in query.order] + query.fields
    for name in names:
        if name.lower() not in known and name.lower() != "sku":
            raise errors.invalid_query(f"property '{name}' is not queryable for {query.entity}")


def _sort_key(row: dict[str, Any], path: list[str]) -> Key:
    return _key(_resolve(row, path))


def _id_key(row: dict[str, Any]) -> tuple[int, str]:
    raw = str(row.get("Id", ""))
    return (int(raw), raw) if raw.isdigit() else (0, raw)


def execute(query: Query, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Filter, order and page `rows`; returns the body of QueryResponse."""
    _check_properties(query, rows)
    selected = sorted(rows, key=_id_key)
    if query.entity in NAME_LISTS and not any(c.path[0].lower() == "active" for c in query.where):
        # Name lists answer with active records only unless the query filters on Active.
        selected = [row for row in selected if row.get("Active", True) is not False]
    selected = [row for row in selected if all(_matches(row, c) for c in query.where)]
    if query.count:
        return {"totalCount": len(selected)}
    for path, descending in reversed(query.order):
        present = [row for row in selected if _resolve(row, path) is not None]
        missing = [row for row in selected if _resolve(row, path) is None]
        present.sort(key=functools.partial(_sort_key, path=path), reverse=descending)
        selected = present + missing
    page = selected[query.start - 1 : query.start - 1 + query.limit]
    if not page:
        return {}
    if not query.star:
        wanted = {f.lower() for f in query.fields}
        page = [
            {**{k: v for k, v in row.items() if k.lower() in wanted},
             "Id": row["Id"], "SyncToken": row.get("SyncToken", "0"), "domain": "QBO", "sparse": True}
            for row in page
        ]  # fmt: skip
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}
