"""The query language: parsing, filtering, ordering, paging and its error codes."""

from __future__ import annotations

from typing import Any

import pytest
from ledgerbridge_quickbooks.sandbox import errors
from ledgerbridge_quickbooks.sandbox.query import execute, parse

ROWS: list[dict[str, Any]] = [
    {"Id": "1", "DisplayName": "O'Brien", "Active": True, "Balance": 10, "PrimaryEmailAddr": {"Address": "a@X.io"},
     "MetaData": {"LastUpdatedTime": "2024-01-01T10:00:00+00:00"}},
    {"Id": "2", "DisplayName": "Zed", "Active": True, "Balance": 5, "CustomerRef": {"value": "7"},
     "MetaData": {"LastUpdatedTime": "2024-03-01T10:00:00+00:00"}},
    {"Id": "10", "DisplayName": "Gone", "Active": False, "Balance": 0,
     "MetaData": {"LastUpdatedTime": "2024-02-01T10:00:00+00:00"}},
]  # fmt: skip


def ids(text: str) -> list[str]:
    result = execute(parse(text), ROWS)
    return [row["Id"] for row in result.get(parse(text).entity, [])]


def test_filters() -> None:
    assert ids("SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien'") == ["1"]
    assert ids("select * from Customer where displayname = 'o\\'brien'") == ["1"]
    assert ids("SELECT * FROM Customer WHERE Id IN ('1', '2')") == ["1", "2"]
    assert ids("SELECT * FROM Customer WHERE DisplayName LIKE 'Z%'") == ["2"]
    assert ids("SELECT * FROM Customer WHERE Balance > '6'") == ["1"]
    assert ids("SELECT * FROM Customer WHERE MetaData.LastUpdatedTime >= '2024-02-01'") == ["2"]
    assert ids("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'A@x.IO'") == ["1"]
    assert ids("SELECT * FROM Customer WHERE Active = false") == ["10"]
    assert ids("SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id") == ["1", "2", "10"]


def test_order_and_paging() -> None:
    assert ids("SELECT * FROM Customer ORDER BY DisplayName DESC") == ["2", "1"]
    assert ids("SELECT * FROM Customer STARTPOSITION 2 MAXRESULTS 1") == ["2"]
    result = execute(parse("SELECT * FROM Customer STARTPOSITION 2 MAXRESULTS 1"), ROWS)
    assert (result["startPosition"], result["maxResults"]) == (2, 1)
    assert execute(parse("SELECT * FROM Customer STARTPOSITION 50"), ROWS) == {}
    assert parse("SELECT * FROM Customer MAXRESULTS 5000").limit == 1000
    assert execute(parse("SELECT COUNT(*) FROM Customer"), ROWS) == {"totalCount": 2}


def test_projection_and_extra_fields() -> None:
    assert parse("SELECT *, Sku FROM Item").star
    page = execute(parse("SELECT DisplayName FROM Customer"), ROWS)["Customer"]
    assert page[0] == {"DisplayName": "O'Brien", "Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": True}


@pytest.mark.parametrize(
    "text",
    ["SELECT FROM Customer", "SELECT * FROM Customer WHERE A = 'x' OR B = 'y'", "SELECT * Customer",
     "SELECT * FROM Customer WHERE DisplayName = 'open", "SELECT * FROM Customer MAXRESULTS x"],
)  # fmt: skip
def test_parse_errors_are_4000(text: str) -> None:
    with pytest.raises(errors.QBOError) as raised:
        execute(parse(text), ROWS)
    assert raised.value.code == "4000"


def test_unknown_property_is_4001() -> None:
    with pytest.raises(errors.QBOError) as raised:
        execute(parse("SELECT * FROM Customer WHERE Shoe = 'x'"), ROWS)
    assert raised.value.code == "4001"
