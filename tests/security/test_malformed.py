"""Every malformed request is a 4xx with a message and writes nothing: a table of hand-made cases over the
server's routes and the sandboxes' routes (schemathesis adds generated ones in test_openapi.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ledgerbridge_quickbooks.settings import SANDBOX_VERIFIER_TOKEN
from ledgerbridge_quickbooks.webhooks import sign
from starlette.routing import BaseRoute, Mount, Route

from tests.security.conftest import ADMIN, Product

DEEP_ARRAY = b"[" * 200_000 + b"]" * 200_000
DEEP_OBJECT = b'{"a":' * 150_000 + b"1" + b"}" * 150_000  # under the 1 MiB body limit
BODIES = {
    "JSON nested 200,000 deep (arrays)": DEEP_ARRAY,
    "JSON nested 150,000 deep (objects)": DEEP_OBJECT,
    "lone surrogates": b'{"name": "\\ud800", "location_id": "\\udfff", "token": "\\ud800", "enabled": true}',
    "5,000-digit numbers": b'{"name": 1' + b"0" * 5000 + b', "enabled": 1' + b"0" * 5000 + b"}",
    "ids above int64": b'{"name": 9223372036854775808, "id": 9223372036854775808, "location_id": 9223372036854775808}',
    "not UTF-8": b'{"name": "\xff\xfe"}',
    "wrong types": b'{"name": [], "id": {}, "plugins": "x", "enabled": "yes", "location_id": 5, "token": []}',
    "a list": b"[1, 2]",
    "not JSON": b"{name: Acme",
}
PARAMS = {"non-ASCII digits": "\u00b2\u00b3", "digits above int64": "9" * 25, "5,000 digits": "9" * 5000,
          "a lone surrogate, encoded": "%ED%A0%80", "not UTF-8": "%FF"}  # fmt: skip
QUERY = ("limit", "before", "state", "account", "code", "realmId", "return_to")


def routes_of(routes: list[BaseRoute], prefix: str = "", sandboxes: bool = False) -> list[tuple[str, str]]:
    found = []
    for route in routes:
        if isinstance(route, Mount):
            if route.path == "/static" or (route.path.startswith("/sandbox") != sandboxes and not prefix):
                continue
            children = getattr(route, "routes", None) or getattr(route.app, "routes", [])
            found += routes_of(list(children), prefix + route.path, sandboxes)
        elif isinstance(route, Route) and (sandboxes or prefix or route.path != "/{path:path}"):
            found += [(m, prefix + route.path) for m in sorted((route.methods or set()) - {"HEAD"})]
    return found


def fill(path: str, value: str | None = None) -> str:
    if value is not None:
        return re.sub(r"\{[^}]+\}", value, path)
    defaults = {"account_id": "acme", "plugin": "crmconnect", "realm": "9130000000000001"}
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: defaults.get(m.group(1), "1"), path)


def message_of(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message") if isinstance(error, dict) else error or body)


async def test_every_malformed_body_to_every_server_route_is_a_4xx_with_a_message_and_writes_nothing(
    product: Product,
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    before = product.snapshot()
    wrong: list[str] = []
    for method, path in routes_of(list(product.app.routes)):
        if method in ("GET", "DELETE"):
            continue  # a DELETE has no body to be malformed
        for case, body in BODIES.items():
            response = await product.http.request(method, fill(path), content=body,
                                                  headers={**ADMIN, "content-type": "application/json"})  # fmt: skip
            if not 400 <= response.status_code < 500 or not message_of(response):
                wrong.append(f"{method} {path} with {case}: {response.status_code} {response.text[:80]}")
    assert wrong == []
    assert product.snapshot() == before


async def test_malformed_ids_and_numbers_in_paths_and_queries_never_reach_a_5xx_and_refusals_write_nothing(
    product: Product,
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    before = product.snapshot()
    wrong: list[str] = []
    for method, path in routes_of(list(product.app.routes)):
        if method == "DELETE":
            continue  # deleting the account is what a well-formed DELETE with stray query parameters does
        for case, value in PARAMS.items():
            targets = [fill(path) + "?" + "&".join(f"{name}={value}" for name in QUERY)]
            if "{" in path:
                targets.append(fill(path, value))
            for target in targets:
                response = await product.http.request(method, target, headers=ADMIN)
                if response.status_code >= 500:
                    wrong.append(f"{method} {target[:80]} ({case}): {response.status_code}")
                after = product.snapshot()
                if response.status_code >= 400 and after != before:
                    wrong.append(f"{method} {target[:80]} ({case}) was refused but wrote")
                before = after


@pytest.mark.parametrize(
    ("case", "query"),
    [
        ("non-ASCII digits", "limit=\u00b2"),
        ("above int64", "before=99999999999999999999"),
        ("5,000 digits", "limit=" + "9" * 5000),
        ("zero", "limit=0"),
    ],
)
async def test_the_admin_api_names_the_parameter_it_refuses(product: Product, case: str, query: str) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    response = await product.http.get(f"/admin/api/accounts/acme/activity?{query}", headers=ADMIN)
    assert response.status_code == 400
    assert "must be a whole number" in response.json()["error"]["message"]


async def test_a_delivery_id_above_int64_is_simply_not_found(product: Product) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    for raw in ("9" * 25, "\u00b2", "9" * 5000):
        response = await product.http.post(f"/admin/api/accounts/acme/deliveries/{raw}/replay", headers=ADMIN)
        assert response.status_code == 404


SIGNED_QB_BODIES = {
    "JSON nested 200,000 deep": DEEP_ARRAY,
    "dataChangeEvent as a list": b'{"eventNotifications": [{"realmId": "9130000000000001", "dataChangeEvent": []}]}',
    "dataChangeEvent as a string": b'{"eventNotifications": [{"realmId": "9130000000000001", "dataChangeEvent": "x"}]}',
    "realmId as a list": b'{"eventNotifications": [{"realmId": [1], "dataChangeEvent": {"entities": []}}]}',
    "entity fields of the wrong type": b'{"eventNotifications": [{"realmId": "9130000000000001", "dataChangeEvent":'
    b' {"entities": [{"name": ["Customer"], "id": {"a": 1}, "operation": 5.5}]}}]}',
    "a 5,000-digit entity id": b'{"eventNotifications": [{"realmId": "9130000000000001", "dataChangeEvent":'
    b' {"entities": [{"name": "Customer", "id": 1' + b"0" * 5000 + b', "operation": "Create"}]}}]}',
    "lone surrogates": b'[{"type": "qbo.customer.created.v1", "intuitaccountid": "\\ud800", "intuitentityid": "1",'
    b' "id": "\\udfff"}]',
    "not UTF-8": b'{"eventNotifications": "\xff"}',
    "a CloudEvent with a list type": b'[{"type": ["qbo"], "intuitaccountid": "1", "intuitentityid": "1", "id": "1"}]',
    "a bare number": b"12",
}


@pytest.mark.parametrize("case", list(SIGNED_QB_BODIES))
async def test_a_signed_quickbooks_webhook_that_cannot_be_used_is_quarantined_never_refused(
    product: Product, case: str
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    before = product.snapshot()
    body = SIGNED_QB_BODIES[case]
    response = await product.http.post("/plugins/quickbooks/webhooks", content=body,
                                       headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, body)})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 0
    assert response.json()["quarantined"] >= 1
    assert product.snapshot() == before  # no account is bound to a company: nothing to store


async def test_an_unsigned_crm_webhook_nested_200000_deep_is_refused_as_unsigned(product: Product) -> None:
    for body in (DEEP_ARRAY, DEEP_OBJECT, b'{"locationId": "\\ud800"}'):
        response = await product.http.post("/plugins/crmconnect/webhooks", content=body)
        assert response.status_code == 401
        assert "signature" in response.json()["error"]["message"]


SANDBOX_BODIES = {k: BODIES[k] for k in ("JSON nested 200,000 deep (arrays)", "lone surrogates", "not UTF-8")}


async def test_the_sandboxes_answer_malformed_bodies_with_a_4xx_and_keep_working(product: Product) -> None:
    crm = {"Authorization": "Bearer ledgerbridge-sandbox-pit", "Version": "2021-07-28"}
    wrong: list[str] = []
    for method, path in routes_of(list(product.app.routes), sandboxes=True):
        if method not in ("POST", "PUT"):
            continue
        for case, body in SANDBOX_BODIES.items():
            response = await product.http.request(method, fill(path), content=body,
                                                  headers={**crm, "content-type": "application/json"})  # fmt: skip
            if response.status_code >= 500:
                wrong.append(f"{method} {path} with {case}: {response.status_code}")
    assert wrong == []
    assert (await product.http.get("/sandbox/quickbooks/companies")).status_code == 200
    assert (await product.http.get("/sandbox/crmconnect/_control/locations")).status_code == 200
