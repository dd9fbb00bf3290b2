"""The OAuth provider: discovery, authorize page (errors, deny, new company), token and code rules."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Running, authorize


def _authorize_url(server: Running, **overrides: str) -> str:
    params = {"client_id": CLIENT_ID, "response_type": "code", "scope": "com.intuit.quickbooks.accounting",
              "redirect_uri": REDIRECT_URI, "state": "s1", **overrides}  # fmt: skip
    return server.url + "/connect/oauth2?" + urlencode(params)


def test_discovery_document_has_what_intuit_oauth_reads(server: Running) -> None:
    for path in ("openid_configuration", "openid_configuration/", "openid_sandbox_configuration"):
        doc = httpx.get(f"{server.url}/.well-known/{path}").json()
        for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "issuer", "jwks_uri",
                    "userinfo_endpoint"):  # fmt: skip
            assert doc[key].startswith(server.url)


def test_bad_client_or_redirect_gets_an_error_page_not_a_redirect(server: Running) -> None:
    for url in (_authorize_url(server, client_id="nobody"), _authorize_url(server, redirect_uri="http://evil/")):
        answer = httpx.get(url, follow_redirects=False)
        assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]


def test_deny_redirects_with_access_denied(server: Running) -> None:
    with httpx.Client() as browser:
        callback = authorize(browser, _authorize_url(server), action="deny")
    assert callback == {"error": ["access_denied"], "state": ["s1"]}


def test_new_company_and_one_time_code(server: Running) -> None:
    with httpx.Client() as browser:
        callback = authorize(browser, _authorize_url(server), choice="new", company_name="<b>Newco</b>", country="GB")
    realm = callback["realmId"][0]
    assert server.sandbox.companies[realm].country == "GB"
    assert "&lt;b&gt;Newco" in httpx.get(f"{server.url}/companies/{realm}").text  # pages escape everything
    form = {"grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": REDIRECT_URI}
    first = httpx.post(server.url + "/oauth2/v1/tokens/bearer", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert first.status_code == 200 and first.json()["token_type"] == "bearer" and "id_token" not in first.json()
    again = httpx.post(server.url + "/oauth2/v1/tokens/bearer", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant", "error_description": "Token invalid"}
    wrong_secret = httpx.post(server.url + "/oauth2/v1/tokens/bearer", data=form, auth=(CLIENT_ID, "nope"))
    assert wrong_secret.status_code == 401


def test_codes_expire(server: Running) -> None:
    with httpx.Client() as browser:
        callback = authorize(browser, _authorize_url(server))
    server.sandbox.advance_clock(301)
    form = {"grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": REDIRECT_URI}
    late = httpx.post(server.url + "/oauth2/v1/tokens/bearer", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert late.json()["error"] == "invalid_grant"


def test_unsupported_response_type_and_scope_redirect_with_error(server: Running) -> None:
    answer = httpx.get(_authorize_url(server, response_type="token"), follow_redirects=False)
    assert answer.status_code == 302 and "error=unsupported_response_type" in answer.headers["location"]
    answer = httpx.get(_authorize_url(server, scope="nonsense"), follow_redirects=False)
    assert "error=invalid_scope" in answer.headers["location"]
