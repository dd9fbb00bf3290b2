"""The QuickBooks sandbox's batch endpoint holds to what Intuit documents: 30 items, a requestid of at most 36
characters (bIds of at most 10 with it) that replays, a Fault per item, 120 batch requests a minute, each
counted in the company's 500 a minute as well."""

from __future__ import annotations

from typing import Any

import httpx

from tests.quickbooks_sandbox.conftest import Running, running_sandbox


def post(server: Running, client: httpx.Client, body: Any, **params: str) -> httpx.Response:
    return client.post(server.api("batch"), json=body, params={"minorversion": "75", **params})


def customers(*names: str, bid_prefix: str = "") -> dict[str, Any]:
    return {"BatchItemRequest": [{"bId": f"{bid_prefix}{n}", "operation": "create", "Customer": {"DisplayName": name}}
                                 for n, name in enumerate(names)]}  # fmt: skip


def names(server: Running) -> list[str]:
    return sorted(c["DisplayName"] for c in server.sandbox.company(server.realm).table("Customer").values())


def test_a_repeated_batch_requestid_replays_the_first_answer_without_creating_again() -> None:
    with running_sandbox() as server, httpx.Client(headers=server.headers()) as client:
        before = names(server)
        first = post(server, client, customers("Ann", "Bob"), requestid="b" * 36)
        again = post(server, client, customers("Ann", "Bob"), requestid="b" * 36)
        assert first.status_code == again.status_code == 200
        assert first.content == again.content
        assert names(server) == sorted([*before, "Ann", "Bob"])


def test_batch_requestid_and_bid_lengths_are_checked() -> None:
    with running_sandbox() as server, httpx.Client(headers=server.headers()) as client:
        assert post(server, client, customers("Cy"), requestid="r" * 37).status_code == 400
        long_bid = post(server, client, customers("Di", bid_prefix="x" * 10), requestid="r" * 36).json()
        assert long_bid["BatchItemResponse"][0]["Fault"]["type"] == "ValidationFault"
        # without a requestid, a bId may be longer
        answer = post(server, client, customers("Ed", bid_prefix="x" * 10)).json()
        assert answer["BatchItemResponse"][0]["Customer"]["DisplayName"] == "Ed"
        duplicate = {"BatchItemRequest": customers("Fa")["BatchItemRequest"] * 2}
        assert post(server, client, duplicate).status_code == 400
        assert "Fa" not in names(server)


def test_each_item_has_its_own_answer_or_fault_matched_by_bid() -> None:
    with running_sandbox() as server, httpx.Client(headers=server.headers()) as client:
        answer = post(server, client, customers("Gil", "Gil", "Hal"), requestid="faults-1").json()
        by_bid = {item["bId"]: item for item in answer["BatchItemResponse"]}
        assert by_bid["0"]["Customer"]["DisplayName"] == "Gil"
        assert by_bid["1"]["Fault"]["Error"][0]["code"] == "6240"
        assert by_bid["2"]["Customer"]["DisplayName"] == "Hal"
        assert [item["bId"] for item in answer["BatchItemResponse"]] != ["0", "1", "2"]  # order not guaranteed


def test_batches_have_their_own_limit_and_count_in_the_companys_minute() -> None:
    with (
        running_sandbox(requests_per_minute=4, batches_per_minute=2, time_scale=6) as server,
        httpx.Client(headers=server.headers()) as client,
    ):
        assert [post(server, client, customers(f"I{n}")).status_code for n in range(3)] == [200, 200, 429]
        # two batches counted in the minute's four requests; the refused one is not counted
        reads = [client.get(server.api("companyinfo/1")).status_code for _ in range(3)]
        assert reads == [200, 200, 429]
        seen = server.sandbox.throttle.observed[server.realm]
        assert (seen.batches, seen.batch_items) == (2, 2)  # a refused batch is not performed
        server.sandbox.advance_clock(10)  # one scaled minute later
        assert post(server, client, customers("J")).status_code == 200
