"""The control API, the HTML pages, the CLI options, persistence, and mounting under a prefix."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
from ledgerbridge.testing import serve_in_thread
from ledgerbridge_quickbooks.sandbox import Sandbox, add_arguments, config_from_args, create_app
from starlette.applications import Starlette
from starlette.routing import Mount

from .conftest import Running, make_config


def test_act_as_the_quickbooks_user(server: Running) -> None:
    control = f"{server.url}/_control/companies/{server.realm}"
    customer = httpx.post(control + "/customers", json={"DisplayName": "Walk-in"}).json()["Customer"]
    edited = httpx.post(f"{control}/customers/{customer['Id']}", json={"CompanyName": "Walk Inc"}).json()
    assert edited["Customer"]["CompanyName"] == "Walk Inc" and edited["Customer"]["SyncToken"] == "1"
    invoice = httpx.post(control + "/invoices", json={"CustomerRef": {"value": customer["Id"]},
                         "Line": [{"Amount": 40, "DetailType": "SalesItemLineDetail"}]}).json()["Invoice"]  # fmt: skip
    paid = httpx.post(f"{control}/invoices/{invoice['Id']}/payments", json={"amount": 15})
    assert paid.status_code == 201
    assert httpx.get(f"{control}/invoices/{invoice['Id']}").json()["Invoice"]["Balance"] == 25
    voided = httpx.post(f"{control}/payments/{paid.json()['Payment']['Id']}/void").json()["Payment"]
    assert voided["TotalAmt"] == 0
    assert httpx.get(f"{control}/invoices/{invoice['Id']}").json()["Invoice"]["Balance"] == 40
    duplicate = httpx.post(control + "/customers", json={"DisplayName": "WALK-IN"})
    assert duplicate.status_code == 400 and duplicate.json()["Fault"]["Error"][0]["code"] == "6240"
    assert httpx.get(f"{control}/invoices/999").status_code == 404
    page = httpx.get(f"{server.url}/companies/{server.realm}").text
    assert "Walk-in" in page and "40.0" in page


def test_companies_apps_tokens_limits_clock(server: Running) -> None:
    base = server.url + "/_control"
    realm = httpx.post(base + "/companies", json={"name": "Second", "country": "CA"}).json()["realmId"]
    assert httpx.post(base + "/apps", json={"client_id": "c2", "client_secret": "s2"}).status_code == 201
    tokens = httpx.post(base + "/tokens", json={"client_id": "c2", "realmId": realm}).json()
    headers = {"Authorization": "Bearer " + tokens["access_token"]}
    assert httpx.get(f"{server.url}/v3/company/{realm}/companyinfo/1", headers=headers).json()["CompanyInfo"][
        "Country"] == "CA"  # fmt: skip
    assert httpx.post(base + "/limits", json={"requests_per_minute": 7, "retry_after": 3}).json()[
        "requests_per_minute"] == 7  # fmt: skip
    moved = httpx.post(base + "/clock/advance", json={"seconds": 3600}).json()
    assert moved["offset"] == 3600
    assert httpx.get(f"{server.url}/v3/company/{realm}/companyinfo/1", headers=headers).status_code == 401
    state = httpx.get(base + "/state").json()
    assert {c["realmId"] for c in state["companies"]} >= {realm} and state["limits"]["retry_after"] == 3
    assert httpx.get(base + "/webhooks").json() == []


def test_cli_groups_app_options_by_order() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([
        "--client-id", "a", "--client-secret", "sa", "--redirect-uri", "http://a/cb",
        "--client-id", "b", "--client-secret", "sb", "--webhook-url", "http://b/hook",
        "--webhook-format", "cloudevents", "--requests-per-minute", "50", "--time-scale", "10",
        "--requestid-ttl", "3600",
    ])  # fmt: skip
    config = config_from_args(args, "http://127.0.0.1:8000/sandbox/quickbooks/")
    assert config.base_url == "http://127.0.0.1:8000/sandbox/quickbooks"
    assert [(a.client_id, a.client_secret, a.redirect_uris) for a in config.apps] == [
        ("a", "sa", ["http://a/cb"]), ("b", "sb", [])]  # fmt: skip
    assert config.apps[0].webhook_url == "http://b/hook"  # the n-th webhook URL belongs to the n-th app
    assert config.apps[0].webhook_format == "cloudevents" and config.requests_per_minute == 50
    assert config.requestid_ttl_seconds == 3600


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "qbo.json")
    first = Sandbox(make_config(state_file=path))
    realm = next(iter(first.companies))
    first.books(realm).create("Customer", {"DisplayName": "Kept"})
    tokens = first.issue_tokens("ABsandboxclient", realm)
    first.save()
    second = Sandbox(make_config(state_file=path))
    assert second.books(realm).read("Customer", "1")["DisplayName"] == "Kept"
    assert second.tokens.check_access(second.clock, tokens["access_token"])[0] is not None
    assert second.books(realm).create("Customer", {"DisplayName": "Next"})["Id"] == "2"


def test_mounted_under_a_prefix() -> None:
    config = make_config()
    inner = create_app(config)
    outer = Starlette(routes=[Mount("/sandbox/quickbooks", app=inner)])
    with serve_in_thread(outer) as url:
        inner.state.sandbox.base_url = url + "/sandbox/quickbooks"
        doc = httpx.get(url + "/sandbox/quickbooks/.well-known/openid_configuration").json()
        assert doc["token_endpoint"] == url + "/sandbox/quickbooks/oauth2/v1/tokens/bearer"
        realm = next(iter(inner.state.sandbox.companies))
        tokens = inner.state.sandbox.issue_tokens("ABsandboxclient", realm)
        answer = httpx.get(f"{url}/sandbox/quickbooks/v3/company/{realm}/companyinfo/1",
                           headers={"Authorization": "Bearer " + tokens["access_token"]})  # fmt: skip
        assert answer.status_code == 200 and answer.headers["intuit_tid"]
