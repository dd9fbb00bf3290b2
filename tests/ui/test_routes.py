"""The UI's routes over a real loopback server, driven like a browser (cookies, forms, CSRF tokens)."""

from __future__ import annotations

import asyncio
import re
import stat

import httpx
from ledgerbridge.cards import CardProgress
from ledgerbridge.testing.harness import settle

from tests.ui.conftest import TOKEN, Browser, UiServer, csrf_of

INTEGRATIONS = "/accounts/acme/settings/integrations"


# signing in


async def test_every_page_needs_sign_in(browser: Browser) -> None:
    for path in ("/", INTEGRATIONS, "/accounts/acme/activity"):
        response = await browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=")
    page = await browser.get("/signin")
    assert page.status_code == 200
    assert '<label for="token">Admin token</label>' in page.text


async def test_posts_without_a_session_change_nothing(ui_server: UiServer, browser: Browser) -> None:
    await browser.get("/signin")
    response = await browser.post("/accounts/acme/plugins/books/enabled", {"enabled": "false"})
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    assert "books" in await ui_server.runtime.store.enabled_plugins("acme")


async def test_card_json_needs_sign_in(browser: Browser) -> None:
    response = await browser.client.get("/accounts/acme/plugins/books/card.json")
    assert response.status_code == 401
    assert "sign in" in response.json()["error"]["message"]


async def test_a_wrong_token_is_refused(browser: Browser) -> None:
    response = await browser.sign_in("not-the-token")
    assert response.status_code == 401
    assert "That is not the admin token" in response.text
    assert 'aria-invalid="true"' in response.text
    assert (await browser.get("/")).status_code == 303


async def test_signing_in_returns_to_the_page_asked_for(browser: Browser) -> None:
    first = await browser.get(INTEGRATIONS)
    assert first.headers["location"] == "/signin?next=%2Faccounts%2Facme%2Fsettings%2Fintegrations"
    await browser.get(first.headers["location"])
    response = await browser.post("/signin", {"token": TOKEN, "next": INTEGRATIONS})
    assert response.status_code == 303 and response.headers["location"] == INTEGRATIONS
    assert (await browser.get(INTEGRATIONS)).status_code == 200


async def test_sign_in_never_redirects_off_site(ui_server: UiServer) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        browser = Browser(ui_server.url)
        async with browser.client:
            await browser.get("/signin")
            response = await browser.post("/signin", {"token": TOKEN, "next": target})
            assert response.status_code == 303 and response.headers["location"] == "/", target


async def test_sign_in_without_the_form_token_is_refused(browser: Browser) -> None:
    await browser.get("/signin")
    response = await browser.post("/signin", {"token": TOKEN}, csrf=False)
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert (await browser.get("/")).status_code == 303


async def test_sign_out_ends_the_session(signed_in: Browser) -> None:
    response = await signed_in.post("/signout", {})
    assert response.status_code == 303
    assert (await signed_in.get("/")).status_code == 303
    assert "You are signed out." in (await signed_in.get("/signin")).text


async def test_the_session_key_is_private_to_its_owner(ui_server: UiServer) -> None:
    path = ui_server.runtime.settings.data_dir / "session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text()) >= 32


async def test_the_session_cookie_is_httponly_and_samesite(browser: Browser) -> None:
    response = await browser.get("/signin")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


# accounts


async def test_account_list_and_create(signed_in: Browser, ui_server: UiServer) -> None:
    page = (await signed_in.get("/")).text
    assert "Acme Ltd" in page and "Globex" in page
    response = await signed_in.post("/accounts", {"name": "Initech Corp", "id": ""})
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts/initech-corp/settings/integrations"
    account = await ui_server.runtime.store.get_account("initech-corp")
    assert account is not None and account.name == "Initech Corp"
    assert "Account “Initech Corp” created" in (await signed_in.get(response.headers["location"])).text


async def test_bad_or_duplicate_accounts_are_refused_with_the_form_kept(signed_in: Browser) -> None:
    duplicate = await signed_in.post("/accounts", {"name": "Acme again", "id": "acme"})
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.text and 'value="Acme again"' in duplicate.text
    bad = await signed_in.post("/accounts", {"name": "X", "id": "Not An Id!"})
    assert bad.status_code == 422 and "an account id is 1-64 characters" in bad.text
    empty = await signed_in.post("/accounts", {"name": "  "})
    assert empty.status_code == 422 and "needs a name" in empty.text


async def test_names_are_escaped(signed_in: Browser, ui_server: UiServer) -> None:
    await ui_server.runtime.create_account("xss", '<script>alert("x")</script>')
    for path in ("/", "/accounts/xss/settings/integrations", "/accounts/xss/activity"):
        page = (await signed_in.get(path)).text
        assert '<script>alert("x")</script>' not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


# Settings › Integrations


async def test_integrations_page_shows_the_plugins_card(signed_in: Browser, ui_server: UiServer) -> None:
    page = (await signed_in.get(INTEGRATIONS)).text
    assert '<h2 id="plugin-books-title">Demo Books</h2>' in page
    assert "<dt>Company</dt><dd>Books of Acme Ltd</dd>" in page
    # a GET action is a link; a POST action is a form with this session's CSRF token
    assert f'href="{ui_server.url}/plugins/books/books?account=acme">Open books</a>' in page
    assert f'<form method="post" action="{ui_server.url}/plugins/books/refresh?account=acme">' in page
    assert 'role="switch" aria-checked="false"' in page  # the review-request toggle, off
    assert "Ask for a review after payment" in page


async def test_a_cards_post_action_reaches_the_plugin(signed_in: Browser, ui_server: UiServer) -> None:
    await signed_in.get(INTEGRATIONS)
    response = await signed_in.client.post("/plugins/books/refresh?account=acme", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 303 and response.headers["location"] == INTEGRATIONS
    assert ui_server.books.refreshes == ["acme"]


async def test_enable_and_disable_change_the_store(signed_in: Browser, ui_server: UiServer) -> None:
    store = ui_server.runtime.store
    await signed_in.get(INTEGRATIONS)
    off = await signed_in.post("/accounts/acme/plugins/books/enabled", {"enabled": "false"})
    assert off.status_code == 303 and off.headers["location"] == INTEGRATIONS + "#plugin-books"
    assert "books" not in await store.enabled_plugins("acme")
    assert "books" in await store.enabled_plugins("globex")  # the other account is untouched
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "books is off for Acme Ltd." in page and "Demo Books ignores this account" in page
    on = await signed_in.post("/accounts/acme/plugins/books/enabled", {"enabled": "true"})
    assert on.status_code == 303
    assert "books" in await store.enabled_plugins("acme")
    messages = [e.message for e in await store.list_activity("acme")]
    assert messages[:2] == ["books enabled", "books disabled"]


async def test_enable_refuses_a_missing_csrf_token_or_bad_value(signed_in: Browser, ui_server: UiServer) -> None:
    await signed_in.get(INTEGRATIONS)
    forged = await signed_in.post("/accounts/acme/plugins/books/enabled", {"enabled": "false"}, csrf=False)
    assert forged.status_code == 403
    wrong = await signed_in.post("/accounts/acme/plugins/books/enabled", {"enabled": "false", "csrf_token": "x"})
    assert wrong.status_code == 403
    cross_site = await signed_in.client.post(
        "/accounts/acme/plugins/books/enabled",
        data={"enabled": "false", "csrf_token": signed_in.csrf},
        headers={"origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403 and "another site" in cross_site.text
    odd = await signed_in.post("/accounts/acme/plugins/books/enabled", {"enabled": "maybe"})
    assert odd.status_code == 422 and "enabled must be true or false" in odd.text
    missing = await signed_in.post("/accounts/acme/plugins/nope/enabled", {"enabled": "false"})
    assert missing.status_code == 404 and "no plugin named" in missing.text
    assert "books" in await ui_server.runtime.store.enabled_plugins("acme")


async def test_a_toggle_saves_validated_settings(signed_in: Browser, ui_server: UiServer) -> None:
    store = ui_server.runtime.store
    await store.set_plugin_settings("acme", "books", {"memo": "kept"})
    await signed_in.get(INTEGRATIONS)
    response = await signed_in.post(
        "/accounts/acme/plugins/books/settings", {"setting": "review_requests", "value": "true"}
    )
    assert response.status_code == 303
    state = await store.get_plugin_state("acme", "books")
    assert state.settings == {"review_requests": True, "memo": "kept"}
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "books: review requests turned on." in page
    assert re.search(r'role="switch" aria-checked="true"\s+aria-describedby="plugin-books-review_requests-help"', page)
    assert (await store.get_plugin_state("globex", "books")).settings == {}


async def test_a_toggle_refuses_what_the_schema_does_not_allow(signed_in: Browser, ui_server: UiServer) -> None:
    await signed_in.get(INTEGRATIONS)
    for setting, value, expected in (
        ("no_such_setting", "true", "has no on/off setting named &#39;no_such_setting&#39;"),
        ("memo", "true", "has no on/off setting named &#39;memo&#39;"),  # a str setting is not a switch
        ("review_requests", "yes", "value must be true or false"),
    ):
        response = await signed_in.post("/accounts/acme/plugins/books/settings", {"setting": setting, "value": value})
        assert response.status_code == 422, setting
        assert expected in response.text
    assert (await ui_server.runtime.store.get_plugin_state("acme", "books")).settings == {}


async def test_card_json_carries_progress_for_the_live_view(signed_in: Browser, ui_server: UiServer) -> None:
    ui_server.books.progress = CardProgress(label="Importing invoices", done=40, total=160)
    page = (await signed_in.get(INTEGRATIONS)).text
    assert 'data-poll="on"' in page and 'aria-live="polite"' in page
    assert "Importing invoices: 40 of 160 (25%)" in page
    ui_server.books.progress = CardProgress(label="Importing invoices", done=80, total=160)
    body = (await signed_in.client.get("/accounts/acme/plugins/books/card.json")).json()
    assert body["card"]["progress"] == {"label": "Importing invoices", "done": 80, "total": 160}
    assert "Importing invoices: 80 of 160 (50%)" in body["html"]
    ui_server.books.progress = None
    finished = (await signed_in.client.get("/accounts/acme/plugins/books/card.json")).json()
    assert finished["card"]["progress"] is None and 'data-poll="on"' not in finished["html"]


async def test_a_failing_card_is_shown_as_an_error_not_a_500(signed_in: Browser, ui_server: UiServer) -> None:
    ui_server.books.card_error = RuntimeError("the token store is locked")
    response = await signed_in.get(INTEGRATIONS)
    assert response.status_code == 200
    assert "books could not draw its card: the token store is locked" in response.text


# activity and retry


async def test_activity_shows_a_dead_letter_in_plain_words(signed_in: Browser, ui_server: UiServer) -> None:
    await ui_server.pay("acme", "p-1")
    assert await settle(ui_server.runtime, "acme") == {"dead": 1}
    page = (await signed_in.get("/accounts/acme/activity")).text
    assert '<span class="badge badge-dead">Dead letter</span>' in page
    assert "QuickBooks refused the sales receipt: a required field is missing" in page
    assert "<dt>The vendor said</dt><dd>Required param missing: Line.Amount</dd>" in page
    assert "<dt>The vendor&#39;s transaction id</dt><dd>1-abc-tid</dd>" in page
    assert '>Retry<span class="visually-hidden"> delivery 1</span>' in page
    dead_only = (await signed_in.get("/accounts/acme/activity?state=dead")).text
    assert 'id="delivery-1"' in dead_only
    assert 'id="delivery-1"' not in (await signed_in.get("/accounts/acme/activity?state=done")).text


async def test_retry_replays_a_dead_letter_exactly_once(signed_in: Browser, ui_server: UiServer) -> None:
    books, runtime = ui_server.books, ui_server.runtime
    await ui_server.pay("acme", "p-1")
    await settle(runtime, "acme")
    assert books.payments == [("acme", "p-1")]
    books.reject_payments = False
    await signed_in.get("/accounts/acme/activity")
    first, second = await asyncio.gather(
        signed_in.post("/accounts/acme/deliveries/1/retry", {}),
        signed_in.post("/accounts/acme/deliveries/1/retry", {}),
    )
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    refused = first if first.status_code == 409 else second
    assert "not a dead letter; nothing to replay" in refused.text
    assert await settle(runtime, "acme") == {"done": 1}
    assert books.payments == [("acme", "p-1"), ("acme", "p-1")]
    again = await signed_in.post("/accounts/acme/deliveries/1/retry", {})
    assert again.status_code == 409
    await asyncio.sleep(0.2)
    assert len(books.payments) == 2
    # (the flash message is not checked here: two concurrent answers race to set the session cookie)
    page = (await signed_in.get("/accounts/acme/activity")).text
    assert '<span class="badge badge-done">Done</span>' in page and "Retry<span" not in page


async def test_retry_says_what_it_did(signed_in: Browser, ui_server: UiServer) -> None:
    await ui_server.pay("acme", "p-1")
    await settle(ui_server.runtime, "acme")
    await signed_in.get("/accounts/acme/activity")
    response = await signed_in.post("/accounts/acme/deliveries/1/retry", {})
    assert response.headers["location"] == "/accounts/acme/activity"
    page = (await signed_in.get("/accounts/acme/activity")).text
    assert "Delivery 1 (payment to books) is queued to be tried again." in page


async def test_ids_of_one_account_do_not_reach_another(signed_in: Browser, ui_server: UiServer) -> None:
    await ui_server.pay("acme", "p-1")
    await settle(ui_server.runtime, "acme")
    await signed_in.get("/accounts/globex/activity")
    response = await signed_in.post("/accounts/globex/deliveries/1/retry", {})
    assert response.status_code == 404
    assert "no delivery 1 in account &#39;globex&#39;" in response.text
    assert await ui_server.runtime.store.count_deliveries("acme") == {"dead": 1}
    assert 'id="delivery-1"' not in (await signed_in.get("/accounts/globex/activity")).text
    for path in ("/accounts/nobody/settings/integrations", "/accounts/nobody/activity"):
        missing = await signed_in.get(path)
        assert missing.status_code == 404 and "no account &#39;nobody&#39;" in missing.text
    gone = await signed_in.post("/accounts/nobody/plugins/books/enabled", {"enabled": "false"})
    assert gone.status_code == 404
    assert (await signed_in.client.get("/accounts/nobody/plugins/books/card.json")).status_code == 404


# errors are pages


async def test_unknown_pages_and_bad_queries_are_readable_pages(signed_in: Browser) -> None:
    missing = await signed_in.get("/no/such/page")
    assert missing.status_code == 404 and "There is no page at /no/such/page." in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    bad = await signed_in.get("/accounts/acme/activity?state=exploded")
    assert bad.status_code == 400 and "state must be one of" in bad.text
    bad_before = await signed_in.get("/accounts/acme/activity?before=-3")
    assert bad_before.status_code == 400 and "before must be a whole number" in bad_before.text
    retry_junk = await signed_in.post("/accounts/acme/deliveries/abc/retry", {})
    assert retry_junk.status_code == 404


async def test_api_clients_still_get_json_errors(ui_server: UiServer) -> None:
    async with httpx.AsyncClient(base_url=ui_server.url) as client:
        response = await client.get("/no/such/thing", headers={"accept": "application/json"})
        assert response.status_code == 404 and response.json()["error"]["message"] == "Not Found"
        admin = await client.get("/admin/api/accounts")
        assert admin.status_code == 401 and "error" in admin.json()


async def test_pages_send_security_headers_and_local_assets(signed_in: Browser) -> None:
    response = await signed_in.get(INTEGRATIONS)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<link rel="stylesheet" href="/static/ui.css">' in response.text
    for asset in ("/static/ui.css", "/static/ui.js"):
        assert (await signed_in.client.get(asset)).status_code == 200
    assert "http" not in csrf_of(response.text)


async def test_the_outcome_of_a_vendor_sign_in_is_said_on_the_page(signed_in: Browser) -> None:
    connected = await signed_in.get(INTEGRATIONS + "?account=acme&connected=1&realm_id=9130&company=Acme+%3Cb%3E")
    assert '<div class="flash" role="status">Connected to Acme &lt;b&gt;.</div>' in connected.text
    refused = await signed_in.get(INTEGRATIONS + "?account=acme&error=access_denied")
    assert '<div class="notice error" role="alert">The connection was not made: access_denied.</div>' in refused.text


async def test_the_books_card_says_what_syncs_and_takes_a_backfill_date(
    signed_in: Browser, ui_server: UiServer
) -> None:
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "What syncs" in page and "Also sync payments and invoices created since" in page
    refused = await signed_in.post("/accounts/acme/backfill", {"since": "31/12/2025"})
    assert refused.status_code == 422 and "YYYY-MM-DD" in refused.text
    assert (await ui_server.runtime.store.get_account("acme")).backfill_since is None  # type: ignore[union-attr]
    saved = await signed_in.post("/accounts/acme/backfill", {"since": "2026-01-01"})
    assert saved.status_code == 303
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "Payments and invoices created since 2026-01-01 will sync." in page
    assert "created since <strong>2026-01-01</strong>" in page


async def test_review_requests_cannot_be_switched_on_before_the_form_is_complete(
    signed_in: Browser, ui_server: UiServer
) -> None:
    await signed_in.get(INTEGRATIONS)
    refused = await signed_in.post("/accounts/acme/reviews/enabled", {"value": "true"})
    assert refused.status_code == 303
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "Review requests cannot be switched on yet" in page and "turn on a CRM plugin" in page
    assert (await ui_server.runtime.store.get_plugin_state("acme", "reviews")).settings.get("enabled") is not True
