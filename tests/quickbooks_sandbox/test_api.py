"""The /v3 API over HTTP: envelopes, limits, faults, replay, CDC, batch, non-US tax codes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from .conftest import Running, running_sandbox


def post(server: Running, client: httpx.Client, path: str, body: Any, **params: str) -> httpx.Response:
    return client.post(server.api(path), json=body, params={"minorversion": "75", **params})


@pytest.fixture
def client(server: Running) -> httpx.Client:
    with httpx.Client(headers=server.headers()) as http:
        yield http


def test_every_response_has_intuit_tid_and_time(server: Running, client: httpx.Client) -> None:
    answer = client.get(server.api("companyinfo/1"))
    assert answer.status_code == 200 and answer.headers["intuit_tid"]
    body = answer.json()
    assert body["CompanyInfo"]["Country"] == "US" and body["time"]
    assert httpx.get(server.discovery).headers["intuit_tid"]


def test_validation_fault_envelope_and_codes(server: Running, client: httpx.Client) -> None:
    missing = client.get(server.api("invoice/999"))
    assert missing.status_code == 400
    fault = missing.json()["Fault"]
    assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "610"
    no_customer = post(server, client, "invoice", {"Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail"}]})
    assert no_customer.json()["Fault"]["Error"][0]["code"] == "2020"
    bad_ref = post(server, client, "invoice", {"CustomerRef": {"value": "77"}, "Line": []})
    assert bad_ref.json()["Fault"]["Error"][0]["code"] == "2500"
    read_only = post(server, client, "taxcode", {"Name": "X"})
    assert read_only.status_code == 400


def test_auth_envelopes_are_lower_case(server: Running, client: httpx.Client) -> None:
    unauthenticated = httpx.get(server.api("customer/1"))
    assert unauthenticated.status_code == 401
    error = unauthenticated.json()["fault"]["error"][0]
    assert error["code"] == "3200" and "statusCode=401" in error["message"]
    other = server.sandbox.create_company("Other", "US")
    forbidden = client.get(f"{server.url}/v3/company/{other.realm_id}/customer/1")
    assert forbidden.status_code == 403 and forbidden.json()["fault"]["error"][0]["code"] == "3100"


def test_query_get_post_and_errors(server: Running, client: httpx.Client) -> None:
    post(server, client, "customer", {"DisplayName": "Ann", "PrimaryEmailAddr": {"Address": "ann@x.io"}})
    by_get = client.get(server.api("query"), params={"query": "select * from Customer where DisplayName LIKE '%nn'"})
    assert [c["DisplayName"] for c in by_get.json()["QueryResponse"]["Customer"]] == ["Ann"]
    by_post = client.post(server.api("query"), content="SELECT COUNT(*) FROM Customer",
                          headers={"Content-Type": "application/text"})  # fmt: skip
    assert by_post.json()["QueryResponse"] == {"totalCount": 1}
    empty = client.get(server.api("query"), params={"query": "SELECT * FROM Invoice"})
    assert empty.json()["QueryResponse"] == {}
    parse = client.get(server.api("query"), params={"query": "SELECT * FROM Customer WHERE A = 'x' OR B = 'y'"})
    assert parse.json()["Fault"]["Error"][0]["code"] == "4000"
    unknown = client.get(server.api("query"), params={"query": "SELECT * FROM Customer WHERE Nonsense = 'x'"})
    assert unknown.json()["Fault"]["Error"][0]["code"] == "4001"


def test_requestid_replays_bytes_and_is_per_company(server: Running, client: httpx.Client) -> None:
    first = post(server, client, "customer", {"DisplayName": "Once"}, requestid="r-1")
    second = post(server, client, "customer", {"DisplayName": "Twice"}, requestid="r-1")
    assert first.content == second.content and first.status_code == second.status_code == 200
    failed = post(server, client, "customer", {"DisplayName": "Once"}, requestid="r-2")
    again = post(server, client, "customer", {"DisplayName": "Other"}, requestid="r-2")
    assert failed.status_code == again.status_code == 400 and failed.content == again.content
    assert len(server.sandbox.companies[server.realm].table("Customer")) == 1
    too_long = post(server, client, "customer", {"DisplayName": "Long"}, requestid="x" * 51)
    assert too_long.status_code == 400


def test_requestid_replies_are_forgotten_after_the_window_or_on_demand(server: Running, client: httpx.Client) -> None:
    customers = server.sandbox.companies[server.realm].table("Customer")
    server.sandbox.config.requestid_ttl_seconds = 600  # the window is configurable (48 h by default)
    first = post(server, client, "customer", {"DisplayName": "Once"}, requestid="w-1")
    server.sandbox.advance_clock(590)
    assert post(server, client, "customer", {"DisplayName": "Once"}, requestid="w-1").content == first.content
    server.sandbox.advance_clock(20)  # past the window: the requestid is no longer known
    late = post(server, client, "customer", {"DisplayName": "Once"}, requestid="w-1")
    assert late.status_code == 400 and late.json()["Fault"]["Error"][0]["code"] == "6240"  # performed again
    post(server, client, "customer", {"DisplayName": "Twice"}, requestid="w-2")
    refused = httpx.post(f"{server.url}/_control/requestids/expire", json={"realm": "nope"})
    assert refused.status_code == 400
    expired = httpx.post(f"{server.url}/_control/requestids/expire", json={"realm": server.realm})
    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    again = post(server, client, "customer", {"DisplayName": "Twice"}, requestid="w-2")
    assert again.status_code == 400 and again.json()["Fault"]["Error"][0]["code"] == "6240"
    assert sorted(c["DisplayName"] for c in customers.values()) == ["Once", "Twice"]


def test_sparse_update_delete_and_cdc_tombstone(server: Running, client: httpx.Client) -> None:
    customer = post(server, client, "customer", {"DisplayName": "Bo", "GivenName": "Bo"}).json()["Customer"]
    sparse = post(server, client, "customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                                              "FamilyName": "Diddley"}).json()["Customer"]  # fmt: skip
    assert sparse["GivenName"] == "Bo" and sparse["FamilyName"] == "Diddley" and sparse["SyncToken"] == "1"
    full = post(server, client, "customer", {"Id": customer["Id"], "SyncToken": "1", "DisplayName": "Bo"})
    assert "GivenName" not in full.json()["Customer"]  # a full update nulls omitted fields
    invoice = post(server, client, "invoice", {"CustomerRef": {"value": customer["Id"]},
                                               "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail"}]})  # fmt: skip
    invoice_id = invoice.json()["Invoice"]["Id"]
    deleted = post(server, client, "invoice", {"Id": invoice_id, "SyncToken": "0"}, operation="delete")
    assert deleted.json()["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": invoice_id}
    since = (server.sandbox.clock.now() - timedelta(minutes=5)).isoformat()
    cdc = client.get(server.api("cdc"), params={"entities": "Invoice,Customer", "changedSince": since}).json()
    invoices, customers = cdc["CDCResponse"][0]["QueryResponse"]
    assert invoices["Invoice"][0]["status"] == "Deleted"
    assert customers["Customer"][0]["Id"] == customer["Id"]
    old = (server.sandbox.clock.now() - timedelta(days=31)).isoformat()
    too_old = client.get(server.api("cdc"), params={"entities": "Invoice", "changedSince": old})
    assert too_old.status_code == 400


def test_batch_items_and_faults(server: Running, client: httpx.Client) -> None:
    invoice = post(server, client, "invoice", {"CustomerRef": {"value": post(server, client, "customer",
                   {"DisplayName": "B"}).json()["Customer"]["Id"]},
                   "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail"}]}).json()["Invoice"]  # fmt: skip
    body = {"BatchItemRequest": [
        {"bId": "1", "operation": "create", "Customer": {"DisplayName": "C"}},
        {"bId": "2", "operation": "update", "optionsData": "void", "Invoice": {"Id": invoice["Id"], "SyncToken": "0"}},
        {"bId": "3", "Query": "select * from Item"},
        {"bId": "4", "operation": "create", "Customer": {"DisplayName": "B"}},
    ]}  # fmt: skip
    items = {i["bId"]: i for i in post(server, client, "batch", body).json()["BatchItemResponse"]}
    assert items["1"]["Customer"]["DisplayName"] == "C"
    assert items["2"]["Invoice"]["TotalAmt"] == 0
    assert items["3"]["QueryResponse"]["Item"][0]["Name"] == "Services"
    assert items["4"]["Fault"]["Error"][0]["code"] == "6240"
    thirty = {"BatchItemRequest": [{"bId": str(n), "Query": "select * from Item"} for n in range(30)]}
    assert post(server, client, "batch", thirty).status_code == 200
    thirty["BatchItemRequest"].append({"bId": "31", "Query": "select * from Item"})
    assert post(server, client, "batch", thirty).status_code == 400


def test_rate_limit_gives_xml_429_whatever_accept() -> None:
    with (
        running_sandbox(requests_per_minute=5, time_scale=6) as server,
        httpx.Client(headers=server.headers()) as client,
    ):
        statuses = [client.get(server.api("companyinfo/1")).status_code for _ in range(5)]
        throttled = client.get(server.api("companyinfo/1"))
        assert statuses == [200] * 5 and throttled.status_code == 429
        assert throttled.headers["content-type"].startswith("application/xml")
        assert '<Error code="3001">' in throttled.text and "statusCode=429" in throttled.text
        assert "retry-after" not in throttled.headers
        server.sandbox.advance_clock(10)  # one scaled minute (60 s / 6) later
        assert client.get(server.api("companyinfo/1")).status_code == 200


def test_in_flight_limit(server: Running) -> None:
    server.sandbox.limits.max_in_flight = 0  # every request now finds the realm's slots taken
    answer = httpx.get(server.api("companyinfo/1"), headers=server.headers())
    assert answer.status_code == 429


def test_injected_statuses_and_dropped_writes(server: Running, client: httpx.Client) -> None:
    control = server.url + "/_control/faults"
    httpx.post(control, json={"status": 503, "count": 1})
    assert client.get(server.api("companyinfo/1")).status_code == 503
    assert client.get(server.api("companyinfo/1")).status_code == 200
    httpx.post(control, json={"drop_writes": 1})
    with pytest.raises(httpx.TransportError):
        post(server, client, "customer", {"DisplayName": "Committed"}, requestid="drop-1")
    # The write was committed: replaying the requestid returns it without a second customer.
    replay = post(server, client, "customer", {"DisplayName": "Committed"}, requestid="drop-1")
    assert replay.json()["Customer"]["DisplayName"] == "Committed"
    assert len(server.sandbox.companies[server.realm].table("Customer")) == 1


def test_non_us_company_needs_tax_codes(server: Running) -> None:
    company = server.sandbox.create_company("UK Ltd", "GB")
    tokens = server.sandbox.issue_tokens("ABsandboxclient", company.realm_id)
    headers = {"Authorization": "Bearer " + tokens["access_token"]}
    base = f"{server.url}/v3/company/{company.realm_id}/"
    customer = httpx.post(base + "customer", json={"DisplayName": "Brit"}, headers=headers).json()["Customer"]
    line: dict[str, Any] = {"Amount": 100, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    refused = httpx.post(base + "invoice", json={"CustomerRef": {"value": customer["Id"]}, "Line": [line]},
                         headers=headers)  # fmt: skip
    assert refused.json()["Fault"]["Error"][0]["code"] == "6000"
    line["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "2"}
    accepted = httpx.post(base + "invoice", json={"CustomerRef": {"value": customer["Id"]}, "Line": [line]},
                          headers=headers).json()["Invoice"]  # fmt: skip
    assert accepted["TotalAmt"] == 120 and accepted["TxnTaxDetail"]["TotalTax"] == 20
    assert json.dumps(accepted["CurrencyRef"]) == '{"value": "GBP"}'
