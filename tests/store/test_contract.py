"""What every store must do, whichever database is behind it (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from ledgerbridge.store import Link, NewEvent, Nonce, Store
from ledgerbridge.store.migrations import MIGRATIONS, POSTGRES_MIGRATIONS

from tests.store.conftest import StoreFactory

NOW = 1_000_000.0


def new_event(external_id: str, key: str = "invoice:1", consumers: tuple[str, ...] = ("qb",), **kw: str) -> NewEvent:
    values = {"account_id": "acme", "source": "crm", "type": "invoice.updated"} | kw
    return NewEvent(
        external_id=external_id,
        object_key=key,
        payload=f'{{"id": "{external_id}"}}'.encode(),
        consumers=consumers,
        **values,
    )


@pytest.fixture
async def acme(store: Store) -> Store:
    await store.create_account("acme", "Acme Ltd")
    return store


def test_every_migration_exists_in_both_dialects() -> None:
    assert len(MIGRATIONS) == len(POSTGRES_MIGRATIONS)


# accounts


async def test_accounts_are_created_listed_renamed_and_deleted(store: Store) -> None:
    created = await store.create_account("acme", "Acme Ltd")
    await store.create_account("beta", "Beta")
    assert created.id == "acme" and created.name == "Acme Ltd"
    assert await store.get_account("acme") == created
    assert [a.id for a in await store.list_accounts()] == ["acme", "beta"]
    assert await store.rename_account("acme", "Acme Inc") is True
    assert (await store.get_account("acme")).name == "Acme Inc"  # type: ignore[union-attr]
    assert await store.rename_account("nobody", "x") is False
    assert await store.delete_account("beta") is True
    assert await store.delete_account("beta") is False
    assert await store.get_account("beta") is None


async def test_creating_an_existing_account_raises_key_error(acme: Store) -> None:
    with pytest.raises(KeyError):
        await acme.create_account("acme", "Again")
    assert (await acme.get_account("acme")).name == "Acme Ltd"  # type: ignore[union-attr]


async def test_deleting_an_account_deletes_its_events_deliveries_and_secrets(acme: Store) -> None:
    await acme.put_secret("acme", "qb", "token", b"x")
    await acme.append_events([new_event("e1")], NOW)
    await acme.delete_account("acme")
    await acme.create_account("acme", "Fresh")
    assert await acme.get_secret("acme", "qb", "token") is None
    assert await acme.count_deliveries("acme") == {}
    assert await acme.claim_deliveries("w", 10, 30, NOW) == []


# plugin state


async def test_plugin_state_defaults_then_follows_each_change(acme: Store) -> None:
    state = await acme.get_plugin_state("acme", "qb")
    assert (state.enabled, state.settings, state.external_id, state.paused_reason) == (False, {}, None, None)
    await acme.set_plugin_enabled("acme", "qb", True)
    await acme.set_plugin_settings("acme", "qb", {"tax": {"code": "TAX"}, "n": 2})
    await acme.set_external_id("acme", "qb", "realm-1")
    await acme.set_paused("acme", "qb", "token revoked")
    await acme.set_plugin_enabled("acme", "crm", False)
    state = await acme.get_plugin_state("acme", "qb")
    assert (state.enabled, state.settings, state.external_id, state.paused_reason) == (
        True,
        {"tax": {"code": "TAX"}, "n": 2},
        "realm-1",
        "token revoked",
    )
    assert [s.plugin for s in await acme.list_plugin_states("acme")] == ["crm", "qb"]
    assert await acme.enabled_plugins("acme") == frozenset({"qb"})
    assert await acme.find_account_by_external_id("qb", "realm-1") == "acme"
    assert await acme.find_account_by_external_id("qb", "realm-2") is None
    await acme.set_paused("acme", "qb", None)
    await acme.set_external_id("acme", "qb", None)
    state = await acme.get_plugin_state("acme", "qb")
    assert (state.paused_reason, state.external_id) == (None, None)


async def test_an_external_id_binds_to_one_account_only(acme: Store) -> None:
    await acme.create_account("beta", "Beta")
    await acme.set_external_id("acme", "qb", "realm-1")
    with pytest.raises(ValueError, match="already bound"):
        await acme.set_external_id("beta", "qb", "realm-1")
    assert await acme.find_account_by_external_id("qb", "realm-1") == "acme"
    await acme.set_external_id("beta", "crm", "realm-1")  # another plugin's id space
    assert await acme.find_account_by_external_id("crm", "realm-1") == "beta"


# secrets


async def test_secrets_are_stored_replaced_and_deleted(acme: Store) -> None:
    assert await acme.get_secret("acme", "qb", "token") is None
    await acme.put_secret("acme", "qb", "token", b"\x00cipher")
    await acme.put_secret("acme", "qb", "token", b"\x01newer")
    assert await acme.get_secret("acme", "qb", "token") == b"\x01newer"
    assert await acme.get_secret("acme", "crm", "token") is None
    await acme.delete_secret("acme", "qb", "token")
    assert await acme.get_secret("acme", "qb", "token") is None


# events and deliveries


async def test_append_stores_each_external_event_once(acme: Store) -> None:
    first = await acme.append_events([new_event("e1"), new_event("e2"), new_event("e1")], NOW)
    again = await acme.append_events([new_event("e2"), new_event("e3")], NOW)
    assert first == [True, True, False]
    assert again == [False, True]
    assert await acme.count_deliveries("acme") == {"pending": 3}
    assert await acme.append_events([], NOW) == []


async def test_an_event_gets_one_delivery_per_consumer_and_reads_back(acme: Store) -> None:
    await acme.append_events([new_event("e1", consumers=("qb", "crm"))], NOW)
    deliveries = await acme.list_deliveries("acme")
    assert sorted(d.plugin for d in deliveries) == ["crm", "qb"]
    d = deliveries[0]
    assert (d.state, d.attempts, d.event_type, d.object_key, d.next_attempt_at) == (
        "pending",
        0,
        "invoice.updated",
        "invoice:1",
        NOW,
    )
    assert await acme.get_delivery("acme", d.id) == d
    assert await acme.get_delivery("other", d.id) is None
    event = await acme.get_event("acme", d.event_seq)
    assert event is not None and (event.external_id, event.payload, event.received_at) == ("e1", b'{"id": "e1"}', NOW)
    assert await acme.get_event("other", d.event_seq) is None


async def test_concurrent_appends_of_one_event_store_it_once(open_stores: StoreFactory) -> None:
    one, two = await open_stores(), await open_stores()
    await one.create_account("acme", "Acme")
    results = await asyncio.gather(*(s.append_events([new_event("e1")], NOW) for s in (one, two, one, two)))
    assert sorted(r[0] for r in results) == [False, False, False, True]
    assert await one.count_deliveries("acme") == {"pending": 1}


async def test_claims_take_only_the_oldest_pending_delivery_of_each_object(acme: Store) -> None:
    await acme.append_events([new_event("a1", "k:a"), new_event("b1", "k:b"), new_event("a2", "k:a")], NOW)
    claimed = await acme.claim_deliveries("w1", 10, 30, NOW)
    assert [c.event.external_id for c in claimed] == ["a1", "b1"]
    assert all(c.delivery.attempts == 1 for c in claimed)
    assert await acme.claim_deliveries("w2", 10, 30, NOW) == []
    assert await acme.finish_delivery(claimed[0].delivery.id, "w1", "done", None, NOW) is True
    after = await acme.claim_deliveries("w2", 10, 30, NOW)
    assert [c.event.external_id for c in after] == ["a2"]


async def test_events_about_one_object_appended_together_run_one_after_another(acme: Store) -> None:
    await acme.append_events([new_event("a1"), new_event("a2"), new_event("b1", "k:b"), new_event("a3")], NOW)
    order = []
    for _ in range(3):
        claimed = await acme.claim_deliveries("w", 10, 30, NOW)
        order.append([c.event.external_id for c in claimed])
        for c in claimed:
            await acme.finish_delivery(c.delivery.id, "w", "done", None, NOW)
    assert order == [["a1", "b1"], ["a2"], ["a3"]]


async def test_an_object_waits_while_its_oldest_delivery_is_leased_and_the_wait_is_its_lease(acme: Store) -> None:
    await acme.append_events([new_event("a1")], NOW)
    await acme.claim_deliveries("w", 10, 30, NOW)
    await acme.append_events([new_event("a2")], NOW + 1)
    assert await acme.claim_deliveries("w2", 10, 30, NOW + 1) == []
    assert await acme.next_due_at() == NOW + 30  # not a2's time: a2 cannot run before a1 ends


async def test_one_account_s_backlog_does_not_starve_another_s_payment(store: Store) -> None:
    await store.create_account("acme", "Acme")
    await store.create_account("globex", "Globex")
    await store.append_events([new_event(f"a{i}", f"k:{i}") for i in range(50)], NOW)  # a 50-customer import
    await store.append_events([new_event("g1", "k:g", account_id="globex")], NOW + 1)
    # one free worker at a time: after one of acme's, globex's payment comes next, not after acme's 50
    assert [c.event.external_id for c in await store.claim_deliveries("w", 1, 30, NOW + 1)] == ["a0"]
    assert [c.event.external_id for c in await store.claim_deliveries("w", 1, 30, NOW + 1)] == ["g1"]
    assert [c.event.external_id for c in await store.claim_deliveries("w", 2, 30, NOW + 1)] == ["a1", "a2"]


async def test_accounts_share_one_claim_turn_by_turn(store: Store) -> None:
    await store.create_account("acme", "Acme")
    await store.create_account("globex", "Globex")
    await store.append_events([new_event(f"a{i}", f"k:{i}") for i in range(20)], NOW)
    await store.append_events([new_event(f"g{i}", f"k:{i}", account_id="globex") for i in range(2)], NOW + 1)
    claimed = await store.claim_deliveries("w", 6, 30, NOW + 1)
    assert sorted(c.event.external_id for c in claimed) == ["a0", "a1", "a2", "a3", "g0", "g1"]


async def test_claims_respect_the_limit_and_the_due_time(acme: Store) -> None:
    await acme.append_events([new_event(f"e{i}", f"k:{i}") for i in range(5)], NOW)
    assert len(await acme.claim_deliveries("w", 2, 30, NOW)) == 2
    assert len(await acme.claim_deliveries("w", 10, 30, NOW - 1)) == 0
    assert len(await acme.claim_deliveries("w", 10, 30, NOW)) == 3


async def test_replicas_claiming_together_never_share_a_delivery(open_stores: StoreFactory) -> None:
    stores = [await open_stores() for _ in range(3)]
    await stores[0].create_account("acme", "Acme")
    await stores[0].append_events([new_event(f"e{i}", f"k:{i % 7}") for i in range(60)], NOW)
    seen: list[int] = []
    for _ in range(12):
        rounds = await asyncio.gather(*(s.claim_deliveries(f"w{i}", 4, 30, NOW) for i, s in enumerate(stores)))
        by_key = [c for batch in rounds for c in batch]
        assert len({c.delivery.object_key for c in by_key}) == len(by_key)  # one in flight per object
        for i, batch in enumerate(rounds):
            for c in batch:
                seen.append(c.delivery.id)
                assert await stores[i].finish_delivery(c.delivery.id, f"w{i}", "done", None, NOW)
    assert len(seen) == len(set(seen)) == 60
    assert await stores[0].count_deliveries("acme") == {"done": 60}


async def test_a_paused_plugin_is_not_claimed_until_resumed(acme: Store) -> None:
    await acme.append_events([new_event("e1", consumers=("qb", "crm"))], NOW)
    await acme.set_paused("acme", "qb", "reconnect QuickBooks")
    assert [c.delivery.plugin for c in await acme.claim_deliveries("w", 10, 30, NOW)] == ["crm"]
    assert await acme.next_due_at() is None or await acme.next_due_at() > NOW  # crm's is leased
    await acme.set_paused("acme", "qb", None)
    assert [c.delivery.plugin for c in await acme.claim_deliveries("w", 10, 30, NOW)] == ["qb"]


async def test_a_delivery_paused_while_in_flight_waits_for_the_resume(acme: Store) -> None:
    await acme.append_events([new_event("a1"), new_event("a2")], NOW)
    (c,) = await acme.claim_deliveries("w", 10, 30, NOW)
    await acme.set_paused("acme", "qb", "token revoked")
    assert await acme.schedule_retry(c.delivery.id, "w", NOW, "HTTP 401", NOW) is True
    assert await acme.claim_deliveries("w", 10, 30, NOW + 60) == []
    assert await acme.next_due_at() is None
    await acme.set_paused("acme", "qb", None)
    assert [x.event.external_id for x in await acme.claim_deliveries("w", 10, 30, NOW + 60)] == ["a1"]


async def test_resuming_makes_each_object_s_oldest_delivery_claimable(acme: Store) -> None:
    await acme.set_paused("acme", "qb", "token revoked")
    await acme.append_events([new_event("a1"), new_event("b1", "k:b"), new_event("a2")], NOW)
    await acme.set_paused("acme", "qb", "still revoked")
    assert await acme.claim_deliveries("w", 10, 30, NOW) == []
    await acme.set_paused("acme", "qb", None)
    await acme.set_paused("acme", "qb", None)
    assert [x.event.external_id for x in await acme.claim_deliveries("w", 10, 30, NOW)] == ["a1", "b1"]


async def test_an_expired_lease_is_reclaimed_and_the_old_owner_loses_it(acme: Store) -> None:
    await acme.append_events([new_event("e1")], NOW)
    (first,) = await acme.claim_deliveries("dead-worker", 10, 30, NOW)
    assert await acme.claim_deliveries("w2", 10, 30, NOW + 29) == []
    assert await acme.next_due_at() == NOW + 30
    (again,) = await acme.claim_deliveries("w2", 10, 30, NOW + 30)
    assert again.delivery.id == first.delivery.id and again.delivery.attempts == 2
    assert await acme.finish_delivery(first.delivery.id, "dead-worker", "done", None, NOW + 31) is False
    assert await acme.finish_delivery(first.delivery.id, "w2", "done", None, NOW + 31) is True
    assert (await acme.get_delivery("acme", first.delivery.id)).state == "done"  # type: ignore[union-attr]


async def test_renewed_leases_stay_with_their_owner(acme: Store) -> None:
    await acme.append_events([new_event("e1"), new_event("e2", "k:2")], NOW)
    claimed = await acme.claim_deliveries("w1", 10, 30, NOW)
    ids = [c.delivery.id for c in claimed]
    assert await acme.renew_leases("w1", ids, NOW + 90) == 2
    assert await acme.renew_leases("w2", ids, NOW + 500) == 0
    assert await acme.renew_leases("w1", [], NOW + 500) == 0
    assert await acme.claim_deliveries("w2", 10, 30, NOW + 60) == []
    assert len(await acme.claim_deliveries("w2", 10, 30, NOW + 90)) == 2


async def test_a_retry_waits_for_its_time_and_keeps_the_error(acme: Store) -> None:
    await acme.append_events([new_event("e1")], NOW)
    (c,) = await acme.claim_deliveries("w", 10, 30, NOW)
    assert await acme.schedule_retry(c.delivery.id, "other", NOW + 5, "no", NOW) is False
    assert await acme.schedule_retry(c.delivery.id, "w", NOW + 5, "HTTP 503", NOW) is True
    assert await acme.next_due_at() == NOW + 5
    assert await acme.claim_deliveries("w", 10, 30, NOW + 4) == []
    (again,) = await acme.claim_deliveries("w", 10, 30, NOW + 5)
    assert again.delivery.attempts == 2 and again.delivery.last_error == "HTTP 503"


async def test_released_deliveries_are_claimable_again_with_or_without_their_attempt(acme: Store) -> None:
    await acme.append_events([new_event("e1"), new_event("e2", "k:2")], NOW)
    one, two = await acme.claim_deliveries("w", 10, 30, NOW)
    assert await acme.release_delivery(one.delivery.id, "other", refund_attempt=True, now=NOW) is False
    assert await acme.release_delivery(one.delivery.id, "w", refund_attempt=True, now=NOW) is True
    assert await acme.release_leases("w") == 1  # two's
    again = await acme.claim_deliveries("w2", 10, 30, NOW)
    assert {c.delivery.id: c.delivery.attempts for c in again} == {one.delivery.id: 1, two.delivery.id: 1}


async def test_dead_letters_replay_exactly_once(acme: Store) -> None:
    await acme.append_events([new_event("e1")], NOW)
    (c,) = await acme.claim_deliveries("w", 10, 30, NOW)
    assert await acme.finish_delivery(c.delivery.id, "w", "dead", "HTTP 400 bad tax code", NOW) is True
    assert await acme.finish_delivery(c.delivery.id, "w", "done", None, NOW) is False
    (dead,) = await acme.list_deliveries("acme", "dead")
    assert dead.last_error == "HTTP 400 bad tax code"
    assert await acme.claim_deliveries("w", 10, 30, NOW) == []
    replays = await asyncio.gather(*(acme.replay_delivery("acme", c.delivery.id, NOW + 1) for _ in range(3)))
    assert sorted(replays) == [False, False, True]
    assert await acme.replay_delivery("other", c.delivery.id, NOW + 1) is False
    (again,) = await acme.claim_deliveries("w", 10, 30, NOW + 1)
    assert (again.delivery.attempts, again.delivery.last_error) == (1, None)
    assert await acme.claim_deliveries("w", 10, 30, NOW + 1) == []


async def test_a_replayed_delivery_runs_before_newer_ones_about_its_object(acme: Store) -> None:
    await acme.append_events([new_event("a1")], NOW)
    (first,) = await acme.claim_deliveries("w", 10, 30, NOW)
    await acme.finish_delivery(first.delivery.id, "w", "dead", "HTTP 400", NOW)
    await acme.append_events([new_event("a2"), new_event("a3")], NOW)
    assert await acme.replay_delivery("acme", first.delivery.id, NOW) is True
    order = []
    for _ in range(3):
        (c,) = await acme.claim_deliveries("w", 10, 30, NOW)
        order.append(c.event.external_id)
        await acme.finish_delivery(c.delivery.id, "w", "done", None, NOW)
    assert order == ["a1", "a2", "a3"]


async def test_deliveries_are_listed_newest_first_and_counted_by_state(acme: Store) -> None:
    await acme.append_events([new_event(f"e{i}", f"k:{i}") for i in range(4)], NOW)
    claimed = await acme.claim_deliveries("w", 2, 30, NOW)
    await acme.finish_delivery(claimed[0].delivery.id, "w", "done", None, NOW)
    await acme.finish_delivery(claimed[1].delivery.id, "w", "skipped", "not ours", NOW)
    listed = await acme.list_deliveries("acme")
    assert [d.id for d in listed] == sorted((d.id for d in listed), reverse=True)
    assert [d.state for d in await acme.list_deliveries("acme", "skipped")] == ["skipped"]
    assert len(await acme.list_deliveries("acme", limit=3)) == 3
    assert await acme.count_deliveries("acme") == {"pending": 2, "done": 1, "skipped": 1}
    assert await acme.list_deliveries("other") == []


async def test_next_due_at_is_none_without_pending_work(acme: Store) -> None:
    assert await acme.next_due_at() is None
    await acme.append_events([new_event("e1")], NOW)
    assert await acme.next_due_at() == NOW


# links


async def test_links_map_both_ways_and_claim_link_wins_once(open_stores: StoreFactory) -> None:
    one, two = await open_stores(), await open_stores()
    await one.create_account("acme", "Acme")
    link = Link(account_id="acme", plugin="qb", kind="customer", local_id="c-1", remote_id="Q-9", data={"n": 1})
    wins = await asyncio.gather(*(s.claim_link(link) for s in (one, two, one, two)))
    assert sorted(wins) == [False, False, False, True]
    assert await two.get_link("acme", "qb", "customer", "c-1") == link
    assert await two.find_link("acme", "qb", "customer", "Q-9") == link
    assert await two.find_link("acme", "qb", "customer", "Q-0") is None
    moved = Link(account_id="acme", plugin="qb", kind="customer", local_id="c-1", remote_id="Q-10", data={})
    await one.put_link(moved)
    assert await one.get_link("acme", "qb", "customer", "c-1") == moved
    await one.put_link(Link(account_id="acme", plugin="qb", kind="customer", local_id="c-2", remote_id="Q-11", data={}))
    assert await one.count_links("acme", "qb", "customer") == 2
    await one.delete_link("acme", "qb", "customer", "c-1")
    assert await one.get_link("acme", "qb", "customer", "c-1") is None
    assert await one.count_links("acme", "qb", "customer") == 1


# cursors


async def test_cursors_are_set_replaced_and_cleared(acme: Store) -> None:
    assert await acme.get_cursor("acme", "qb", "cdc") is None
    await acme.set_cursor("acme", "qb", "cdc", "2026-01-01")
    await acme.set_cursor("acme", "qb", "cdc", "2026-02-01")
    assert await acme.get_cursor("acme", "qb", "cdc") == "2026-02-01"
    await acme.set_cursor("acme", "qb", "cdc", None)
    assert await acme.get_cursor("acme", "qb", "cdc") is None


# nonces


async def test_a_nonce_is_taken_once_even_by_concurrent_replicas(open_stores: StoreFactory) -> None:
    one, two = await open_stores(), await open_stores()
    await one.create_account("acme", "Acme")
    await one.put_nonce(Nonce(key="state-1", account_id="acme", plugin="qb", data={"r": "/x"}, expires_at=NOW + 600))
    taken = await asyncio.gather(*(s.take_nonce("state-1", NOW) for s in (one, two, one, two)))
    winners = [n for n in taken if n is not None]
    assert len(winners) == 1 and winners[0].data == {"r": "/x"} and winners[0].account_id == "acme"


async def test_an_expired_nonce_cannot_be_taken(acme: Store) -> None:
    await acme.put_nonce(Nonce(key="old", account_id="acme", plugin="qb", data={}, expires_at=NOW))
    assert await acme.take_nonce("old", NOW) is None
    assert await acme.take_nonce("missing", NOW) is None


async def test_a_nonce_shown_to_another_plugin_is_refused_and_left_for_its_own(acme: Store) -> None:
    await acme.put_nonce(Nonce(key="state-2", account_id="acme", plugin="qb", data={}, expires_at=NOW + 600))
    assert await acme.take_nonce("state-2", NOW, plugin="crm") is None
    taken = await acme.take_nonce("state-2", NOW, plugin="qb")
    assert taken is not None and taken.plugin == "qb"


# activity


async def test_deliveries_are_filtered_by_type_object_and_plugin_and_tallied_per_plugin(acme: Store) -> None:
    await acme.append_events([
        new_event("p1", "payment:1", type="payment"),
        new_event("i1", "invoice:1", consumers=("qb", "audit")),
        new_event("n1", "order:1", consumers=("crm",), type="notification"),
    ], NOW)  # fmt: skip
    claimed = await acme.claim_deliveries("w", 10, 30, NOW + 1)
    by_plugin = {(c.delivery.plugin, c.delivery.object_key): c.delivery.id for c in claimed}
    await acme.finish_delivery(by_plugin[("qb", "payment:1")], "w", "done", None, NOW + 2)
    await acme.finish_delivery(by_plugin[("audit", "invoice:1")], "w", "dead", "boom", NOW + 3)
    await acme.finish_delivery(by_plugin[("crm", "order:1")], "w", "skipped", "pending, not paid", NOW + 4)
    assert [d.object_key for d in await acme.list_deliveries("acme", event_type="payment")] == ["payment:1"]
    assert {d.plugin for d in await acme.list_deliveries("acme", object_key="invoice:1")} == {"qb", "audit"}
    assert [d.plugin for d in await acme.list_deliveries("acme", plugin="audit")] == ["audit"]
    kept = await acme.list_deliveries("acme", exclude_type="notification")
    assert "notification" not in {d.event_type for d in kept} and len(kept) == 3
    tallies = await acme.tally_deliveries("acme")
    assert tallies["qb"].counts == {"done": 1, "pending": 1} and tallies["qb"].last_done_at == NOW + 2
    assert tallies["audit"].counts == {"dead": 1} and tallies["audit"].last_done_at is None
    assert "crm" not in tallies  # a skipped notification is a routine check, not counted
    assert await acme.tally_deliveries("other") == {}


async def test_activity_about_deliveries_is_found_by_their_ids(acme: Store) -> None:
    await acme.log_activity("acme", "qb", "info", "receipt 1001", {"delivery_id": 7, "outcome": {"d": 1}}, NOW)
    await acme.log_activity("acme", "qb", "info", "other", {"delivery_id": 8}, NOW + 1)
    await acme.log_activity("acme", "qb", "info", "no delivery", {"i": 1}, NOW + 2)
    await acme.log_activity("acme", "qb", "info", "odd id", {"delivery_id": "seven"}, NOW + 3)
    await acme.log_activity("acme", "qb", "info", "newer about 7", {"delivery_id": 7}, NOW + 4)
    found = await acme.activity_of_deliveries("acme", [7])
    assert [e.message for e in found] == ["newer about 7", "receipt 1001"]
    assert found[1].data == {"delivery_id": 7, "outcome": {"d": 1}}
    assert await acme.activity_of_deliveries("acme", []) == []
    assert await acme.activity_of_deliveries("other", [7]) == []


async def test_activity_is_listed_newest_first_in_pages(acme: Store) -> None:
    for i in range(5):
        await acme.log_activity("acme", "qb" if i % 2 else None, "info", f"step {i}", {"i": i}, NOW + i)
    page = await acme.list_activity("acme", limit=3)
    assert [e.message for e in page] == ["step 4", "step 3", "step 2"]
    assert (page[0].plugin, page[0].data, page[0].created_at, page[1].plugin) == (None, {"i": 4}, NOW + 4, "qb")
    rest = await acme.list_activity("acme", limit=3, before_id=page[-1].id)
    assert [e.message for e in rest] == ["step 1", "step 0"]
    assert await acme.list_activity("other") == []


# leases on a name


async def test_a_lock_has_one_owner_until_it_expires_or_is_released(store: Store) -> None:
    assert await store.try_lock("refresh:acme", "a", 30, NOW) is True
    assert await store.try_lock("refresh:acme", "b", 30, NOW + 29) is False
    assert await store.try_lock("refresh:acme", "a", 30, NOW + 20) is True  # the owner extends it to NOW + 50
    assert await store.try_lock("refresh:acme", "b", 30, NOW + 49) is False
    assert await store.try_lock("refresh:other", "b", 30, NOW) is True
    assert await store.try_lock("refresh:acme", "b", 30, NOW + 50) is True  # expired: taken over
    assert await store.unlock("refresh:acme", "a") is False
    assert await store.unlock("refresh:acme", "b") is True
    assert await store.try_lock("refresh:acme", "c", 30, NOW + 51) is True


async def test_a_locks_holder_is_read_without_taking_it(store: Store) -> None:
    assert await store.lock_holder("session:x", NOW) is None
    assert await store.try_lock("session:x", "fingerprint", 30, NOW) is True
    assert await store.lock_holder("session:x", NOW + 29) == "fingerprint"
    assert await store.lock_holder("session:x", NOW + 30) is None  # expired
    assert await store.try_lock("session:x", "other", 30, NOW + 1) is False  # reading took nothing


async def test_replicas_racing_for_a_lock_get_one_winner(open_stores: StoreFactory) -> None:
    stores = [await open_stores() for _ in range(3)]
    wins = await asyncio.gather(*(s.try_lock("poller:acme", f"r{i}", 30, NOW) for i, s in enumerate(stores * 2)))
    assert sorted(wins) == [False] * 5 + [True]


async def test_appends_finishes_and_pauses_racing_across_replicas_strand_no_delivery(
    open_stores: StoreFactory,
) -> None:
    stores = [await open_stores() for _ in range(3)]
    await stores[0].create_account("acme", "Acme")
    appended = asyncio.Event()
    done: list[str] = []

    async def append(store: Store, part: int) -> None:
        for batch in range(10):
            events = [new_event(f"{part}-{batch}-{i}", f"k:{i % 3}") for i in range(3)]
            await store.append_events(events, NOW)
            await asyncio.sleep(0)

    async def work(store: Store, owner: str) -> None:
        while not (appended.is_set() and await store.count_deliveries("acme") == {"done": 60}):
            for c in await store.claim_deliveries(owner, 4, 30, NOW):
                done.append(c.event.external_id)
                assert await store.finish_delivery(c.delivery.id, owner, "done", None, NOW)
            await asyncio.sleep(0.001)

    async def toggle(store: Store) -> None:
        for i in range(6):
            await store.set_paused("acme", "qb", "revoked" if i % 2 == 0 else None)
            await asyncio.sleep(0.005)

    async def feed() -> None:
        await asyncio.gather(append(stores[0], 0), append(stores[1], 1), toggle(stores[2]))
        appended.set()

    await asyncio.wait_for(asyncio.gather(feed(), work(stores[0], "w0"), work(stores[1], "w1")), 20)
    assert len(done) == len(set(done)) == 60
    order = {key: [e for e in done if e.endswith(f"-{key}")] for key in range(3)}
    for part in range(2):  # each appender's events about one object ran in the order appended
        for key, events in order.items():
            mine = [e for e in events if e.startswith(f"{part}-")]
            assert mine == [f"{part}-{batch}-{key}" for batch in range(10)]


# the sync start, the backfill, and skipped deliveries


async def test_the_first_connection_is_kept_and_the_backfill_follows_changes(acme: Store) -> None:
    assert await acme.mark_connected("acme", "qb", NOW) == NOW
    assert await acme.mark_connected("acme", "qb", NOW + 50) == NOW
    assert (await acme.get_plugin_state("acme", "qb")).connected_at == NOW
    assert [s.connected_at for s in await acme.list_plugin_states("acme")] == [NOW]
    assert (await acme.get_account("acme")).backfill_since is None  # type: ignore[union-attr]
    await acme.set_backfill_since("acme", NOW - 86400)
    assert (await acme.get_account("acme")).backfill_since == NOW - 86400  # type: ignore[union-attr]
    assert [a.backfill_since for a in await acme.list_accounts()] == [NOW - 86400]
    await acme.set_backfill_since("acme", None)
    assert (await acme.get_account("acme")).backfill_since is None  # type: ignore[union-attr]


def skipped_event(external_id: str, key: str = "invoice:1") -> NewEvent:
    event = new_event(external_id, key, consumers=())
    return NewEvent(
        **{f: getattr(event, f) for f in event.__struct_fields__ if f != "skipped"},
        skipped=(("@accounting", "no accounting plugin is on"),),
    )


async def test_a_skipped_delivery_is_kept_with_its_reason_and_sent_on_request_once(acme: Store) -> None:
    await acme.append_events([skipped_event("e1"), new_event("e2")], NOW)
    (skipped,) = await acme.list_deliveries("acme", "skipped")
    assert (skipped.plugin, skipped.last_error, skipped.forced) == ("@accounting", "no accounting plugin is on", False)
    (first,) = await acme.claim_deliveries("w", 10, 30, NOW)  # e2 only: a skipped delivery never runs by itself
    assert first.event.external_id == "e2"
    assert await acme.send_skipped("acme", skipped.id, "qb", NOW) is True
    assert await acme.send_skipped("acme", skipped.id, "qb", NOW) is False
    sent = await acme.get_delivery("acme", skipped.id)
    assert sent is not None and (sent.plugin, sent.state, sent.forced, sent.last_error) == ("qb", "pending", True, None)
    assert await acme.claim_deliveries("w", 10, 30, NOW) == []  # e2, about the same object, is still running
    await acme.finish_delivery(first.delivery.id, "w", "done", None, NOW)
    (again,) = await acme.claim_deliveries("w", 10, 30, NOW)
    assert again.delivery.id == skipped.id and again.delivery.forced is True


async def test_a_skipped_delivery_is_not_sent_to_a_plugin_that_already_has_the_event(acme: Store) -> None:
    event = new_event("e1", consumers=("qb",))
    both = NewEvent(
        **{f: getattr(event, f) for f in event.__struct_fields__ if f != "skipped"}, skipped=(("crm", "crm is off"),)
    )
    await acme.append_events([both], NOW)
    (skipped,) = await acme.list_deliveries("acme", "skipped")
    assert await acme.send_skipped("acme", skipped.id, "qb", NOW) is False
    assert (await acme.get_delivery("acme", skipped.id)).state == "skipped"  # type: ignore[union-attr]
    assert await acme.send_skipped("other", skipped.id, "crm", NOW) is False


async def test_a_skipped_delivery_sent_while_a_newer_one_about_its_object_runs_waits_for_it(acme: Store) -> None:
    await acme.append_events([skipped_event("e1")], NOW)
    await acme.append_events([new_event("e2")], NOW)
    (skipped,) = await acme.list_deliveries("acme", "skipped")
    (running,) = await acme.claim_deliveries("w", 10, 30, NOW)
    assert running.event.external_id == "e2" and running.delivery.id > skipped.id
    assert await acme.send_skipped("acme", skipped.id, "qb", NOW) is True
    assert await acme.claim_deliveries("w2", 10, 30, NOW + 1) == []  # not while e2 runs, though e1 is older
    assert await acme.next_due_at() == NOW + 30  # e2's lease: should its worker die, e2 is taken again first
    assert [c.event.external_id for c in await acme.claim_deliveries("w2", 10, 30, NOW + 31)] == ["e2"]
    assert await acme.finish_delivery(running.delivery.id, "w2", "done", None, NOW + 31) is True
    (sent,) = await acme.claim_deliveries("w2", 10, 30, NOW + 31)
    assert sent.delivery.id == skipped.id and sent.delivery.forced is True


async def test_a_dead_delivery_replayed_while_a_newer_one_about_its_object_runs_waits_for_it(acme: Store) -> None:
    await acme.append_events([new_event("a1")], NOW)
    (first,) = await acme.claim_deliveries("w", 10, 30, NOW)
    await acme.finish_delivery(first.delivery.id, "w", "dead", "HTTP 400", NOW)
    await acme.append_events([new_event("a2"), new_event("a3")], NOW)
    (running,) = await acme.claim_deliveries("w", 10, 30, NOW)
    assert running.event.external_id == "a2"
    assert await acme.replay_delivery("acme", first.delivery.id, NOW) is True
    assert await acme.claim_deliveries("w2", 10, 30, NOW) == []  # a1 waits for a2, which is under way
    await acme.finish_delivery(running.delivery.id, "w", "done", None, NOW)
    order = []
    for _ in range(2):
        (c,) = await acme.claim_deliveries("w", 10, 30, NOW)
        order.append(c.event.external_id)
        await acme.finish_delivery(c.delivery.id, "w", "done", None, NOW)
    assert order == ["a1", "a3"]  # then the oldest pending first
