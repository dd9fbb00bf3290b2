"""Each plugin's settings form, generated from its msgspec schema: titled fields only, labels and help from
the schema, a bad value shows the form again with the schema's limit in words and saves nothing."""

from __future__ import annotations

from tests.ui.conftest import Browser, UiServer

INTEGRATIONS = "/accounts/acme/settings/integrations"
FORM = "/accounts/acme/plugins/books/settings-form"


async def test_the_form_shows_the_schemas_titled_fields_with_their_help(signed_in: Browser) -> None:
    card = (await signed_in.get(INTEGRATIONS)).text
    assert f'action="{FORM}"' in card
    assert '<label for="plugin-books-setting-memo">Memo on receipts</label>' in card
    assert 'value="synced by ledgerbridge"' in card and 'maxlength="40"' in card
    assert '<p class="help" id="plugin-books-setting-memo-help">Written on every receipt the books make.</p>' in card
    assert 'type="number" inputmode="decimal" step="1" min="1" max="100"' in card
    assert '<option value="compact" selected>compact</option>' in card
    assert "secret_knob" not in card  # no title: not on the form
    assert 'name="review_requests" value="true"' not in card  # a toggle already: not twice


async def test_good_values_are_saved_and_logged(signed_in: Browser, ui_server: UiServer) -> None:
    await signed_in.get(INTEGRATIONS)
    answer = await signed_in.post(FORM, {"memo": "  from the CRM ", "batch_size": "25", "layout": "detailed"})
    assert answer.status_code == 303 and answer.headers["location"] == INTEGRATIONS + "#plugin-books-settings"
    state = await ui_server.runtime.store.get_plugin_state("acme", "books")
    assert state.settings["memo"] == "from the CRM" and state.settings["batch_size"] == 25
    assert state.settings["layout"] == "detailed" and state.settings["secret_knob"] == 3
    page = (await signed_in.get(INTEGRATIONS)).text
    assert "Settings saved." in page and '<option value="detailed" selected>' in page
    assert "settings saved" in [e.message for e in await ui_server.runtime.store.list_activity("acme")]


async def test_a_value_outside_the_schema_shows_the_form_again_and_saves_nothing(
    signed_in: Browser, ui_server: UiServer
) -> None:
    await signed_in.get(INTEGRATIONS)
    before = (await ui_server.runtime.store.get_plugin_state("acme", "books")).settings
    too_big = await signed_in.post(FORM, {"memo": "kept as typed", "batch_size": "500", "layout": "compact"})
    assert too_big.status_code == 422
    assert '<p class="field-error" id="plugin-books-setting-batch_size-error">Must be at most 100.</p>' in too_big.text
    assert 'aria-invalid="true"' in too_big.text and 'value="kept as typed"' in too_big.text
    assert '<details class="plugin-settings" id="plugin-books-settings" open>' in too_big.text
    not_a_number = await signed_in.post(FORM, {"memo": "x", "batch_size": "ten", "layout": "compact"})
    assert not_a_number.status_code == 422 and "Enter a whole number." in not_a_number.text
    too_long = await signed_in.post(FORM, {"memo": "m" * 41, "batch_size": "5", "layout": "compact"})
    assert too_long.status_code == 422 and "At most 40 characters." in too_long.text
    bad_choice = await signed_in.post(FORM, {"memo": "x", "batch_size": "5", "layout": "fancy"})
    assert bad_choice.status_code == 422 and "Choose one of: compact, detailed." in bad_choice.text
    assert (await ui_server.runtime.store.get_plugin_state("acme", "books")).settings == before
