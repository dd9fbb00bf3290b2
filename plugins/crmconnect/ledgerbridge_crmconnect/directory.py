"""The CRM contact directory: a location's contacts by normalised e-mail, kept in the store, so finding the
contact of an unlinked customer costs no CRM call.

- **Filled once per location** by listing its contacts (`POST /contacts/search`, 500 a page, oldest first,
  `searchAfter` cursors so more than 10,000 work), a page at a time: one store transaction per page, nothing
  held in memory but the page and the e-mails seen so far. Where two contacts share an e-mail (a location that
  allows duplicates) the oldest is kept, as HighLevel's duplicate search would answer.
- **Kept fresh** by the CRM's ContactCreate / ContactUpdate / ContactDelete webhooks (`apply_webhook`) and by
  the plugin's own writes (`remember`, `forget`).
- **Trusted only when complete**: the cursor `contact-directory:<location>` says when it was filled. A CRM that
  refuses the listing (400/403/404/422, or an answer of an unknown shape) leaves it marked refused for a day,
  and `lookup` answers `UNKNOWN`: the caller searches the CRM as before. A listing cut short by a 429, a 5xx
  or a lost connection is tried again by a later delivery. One task per account fills it (a store lock); the
  others meanwhile look contacts up the old way.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from ledgerbridge import AccountContext
from ledgerbridge.locks import LockTimeout

from ledgerbridge_crmconnect.client import CrmApiError, CrmClient, CrmTokenRejected, CrmTransportError

logger = logging.getLogger("ledgerbridge.plugins.crmconnect.directory")

PAGE_LIMIT = 500  # POST /contacts/search: pageLimit at most 500
#: how long a complete directory is trusted before it is listed again (webhooks missed in an outage heal)
REFILL_AFTER_SECONDS = 24 * 3600.0
#: after a refusal, how long until the listing is tried again
RETRY_REFUSED_SECONDS = 24 * 3600.0
#: the longest a fill may hold the account's lock (a million contacts at HighLevel's 10 requests/s: 200 s)
FILL_LOCK_SECONDS = 900.0


class Unknown(enum.Enum):
    """`lookup`'s answer when there is no directory to ask."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN


def kind(location_id: str) -> str:
    """The link kind holding one location's e-mails (normalised e-mail → contact id)."""
    return f"crm-email:{location_id}"


def normalise(email: str | None) -> str | None:
    email = email.strip().lower() if isinstance(email, str) else None
    return email or None


class SearchedContact(msgspec.Struct):
    """ContactsSearchSchema, the fields the directory reads."""

    id: str = ""
    email: str | None = None
    searchAfter: list[Any] | None = None


class SearchPage(msgspec.Struct):
    """`POST /contacts/search`'s answer: {contacts, total}, each contact with its `searchAfter` cursor."""

    contacts: list[SearchedContact]
    total: int | None = None
    count: int | None = None
    searchAfter: list[Any] | None = None


_search_page = msgspec.json.Decoder(SearchPage)


class Refused(Exception):
    """The CRM does not list contacts the documented way: no directory for this location."""


@dataclass(frozen=True)
class State:
    status: str  # "complete" | "refused"
    at: float
    contacts: int = 0

    @classmethod
    def parse(cls, text: str | None) -> State | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(str(data["status"]), float(data["at"]), int(data.get("contacts", 0)))
        except (ValueError, KeyError, TypeError):
            return None

    def dump(self) -> str:
        return json.dumps({"status": self.status, "at": self.at, "contacts": self.contacts})


def cursor_name(location_id: str) -> str:
    return f"contact-directory:{location_id}"


async def state(ctx: AccountContext, location_id: str) -> State | None:
    return State.parse(await ctx.get_cursor(cursor_name(location_id)))


async def search_page(client: CrmClient, location_id: str, after: list[Any] | None) -> SearchPage:
    """One page of the location's contacts, oldest first; `Refused` when the CRM will not list them."""
    body: dict[str, Any] = {
        "locationId": location_id,
        "pageLimit": PAGE_LIMIT,
        "sort": [{"field": "dateAdded", "direction": "asc"}],
    }
    if after is not None:
        body["searchAfter"] = after
    try:
        raw = await client.request("POST", "/contacts/search", json=body, idempotent=True)
    except CrmTokenRejected:
        raise
    except CrmApiError as exc:
        if exc.retryable:
            raise
        raise Refused(f"POST /contacts/search: {exc}") from exc
    try:
        return _search_page.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Refused(f"POST /contacts/search answered an unknown shape: {exc}") from exc


async def fill(ctx: AccountContext, client: CrmClient, location_id: str) -> State:
    """List every contact of the location into the directory; the state it ends in (stored)."""
    link_kind = kind(location_id)
    started = ctx.now()
    seen: set[str] = set()
    after: list[Any] | None = None
    listed = 0
    while True:
        page = await search_page(client, location_id, after)
        links: list[tuple[str, str, dict[str, Any]]] = []
        for contact in page.contacts:
            email = normalise(contact.email)
            if email and contact.id and email not in seen:  # oldest first: the first one keeps the e-mail
                seen.add(email)
                links.append((email, contact.id, {}))
        if links:
            await ctx.put_links(link_kind, links)
        listed += len(page.contacts)
        cursor = page.searchAfter or (page.contacts[-1].searchAfter if page.contacts else None)
        if len(page.contacts) < PAGE_LIMIT or not cursor:
            break
        if cursor == after:
            raise Refused("POST /contacts/search returned the same cursor twice")
        after = cursor
    done = State("complete", started, listed)
    await ctx.set_cursor(cursor_name(location_id), done.dump())
    logger.info("contact directory of location %s filled: %d contacts", location_id, listed)
    return done


class Readiness:
    """Which directories this process has seen complete, until when: an import's lookups skip the store read
    of the directory's state (a refill is due a day after the fill; `TRUST_SECONDS` bounds the rest)."""

    TRUST_SECONDS = 60.0

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    def holds(self, ctx: AccountContext, location_id: str) -> bool:
        return self._until.get((ctx.account_id, location_id), 0.0) > ctx.now()

    def saw(self, ctx: AccountContext, location_id: str, current: State) -> None:
        until = min(ctx.now() + self.TRUST_SECONDS, current.at + REFILL_AFTER_SECONDS)
        self._until[(ctx.account_id, location_id)] = until


async def ready(ctx: AccountContext, client: CrmClient, location_id: str, seen: Readiness | None = None) -> bool:
    """True when the directory can answer; fills it (once, under a lock) when it is missing or old. A refusal
    or a failed listing means False: the caller looks the contact up in the CRM, the import goes on."""
    if seen is not None and seen.holds(ctx, location_id):
        return True
    current = await state(ctx, location_id)
    now = ctx.now()
    if current is not None and current.status == "complete" and now - current.at < REFILL_AFTER_SECONDS:
        if seen is not None:
            seen.saw(ctx, location_id, current)
        return True
    if current is not None and current.status == "refused" and now - current.at < RETRY_REFUSED_SECONDS:
        return False
    lock = ctx.exclusive(cursor_name(location_id), hold_seconds=FILL_LOCK_SECONDS, wait_seconds=0)
    try:
        await lock.__aenter__()
    except LockTimeout:
        return False  # another task is filling it; this one looks its contact up the old way
    try:
        current = await state(ctx, location_id)  # another task may have filled it meanwhile
        if current is not None and current.status == "complete" and ctx.now() - current.at < REFILL_AFTER_SECONDS:
            return True
        done = await fill(ctx, client, location_id)
        if seen is not None:
            seen.saw(ctx, location_id, done)
        return True
    except Refused as exc:
        logger.warning("no contact directory for location %s: %s", location_id, exc)
        await ctx.set_cursor(cursor_name(location_id), State("refused", ctx.now()).dump())
        await ctx.log(f"contacts are looked up one by one: {exc}", level="warning")
        return False
    except CrmTokenRejected:
        raise
    except (CrmApiError, CrmTransportError) as exc:  # a 429, a 5xx, a lost connection: a later delivery retries
        logger.info("contact directory of location %s not filled yet: %s", location_id, exc)
        return False
    finally:
        await lock.__aexit__(None, None, None)


async def lookup(
    ctx: AccountContext, client: CrmClient, location_id: str, email: str | None, seen: Readiness | None = None
) -> str | Unknown | None:
    """The contact id the location's directory holds for `email`, None when it holds none, or `UNKNOWN`."""
    key = normalise(email)
    if key is None or not await ready(ctx, client, location_id, seen):
        return UNKNOWN
    link = await ctx.get_link(kind(location_id), key)
    return link.remote_id if link is not None else None


async def remember(
    ctx: AccountContext, location_id: str, email: str | None, contact_id: str, *, absent: bool = False
) -> None:
    """A contact the plugin wrote has this e-mail (`absent`: the directory was just seen to hold none)."""
    key = normalise(email)
    if key is None or not contact_id:
        return
    link = None if absent else await ctx.get_link(kind(location_id), key)
    if link is None or link.remote_id != contact_id:
        await ctx.put_link(kind(location_id), key, contact_id)


async def forget(ctx: AccountContext, location_id: str, email: str | None, contact_id: str) -> None:
    """The entry for `email` pointed at a contact that is gone (or no longer has it)."""
    key = normalise(email)
    if key is None:
        return
    link = await ctx.get_link(kind(location_id), key)
    if link is not None and link.remote_id == contact_id:
        await ctx.delete_link(kind(location_id), key)


async def apply_webhook(ctx: AccountContext, location_id: str, event: str, body: dict[str, Any]) -> None:
    """ContactCreate / ContactUpdate / ContactDelete: the flat contact (id, email, …) as HighLevel sends it."""
    contact_id = body.get("id")
    if not isinstance(contact_id, str) or not contact_id:
        return
    link_kind = kind(location_id)
    email = normalise(body.get("email"))
    previous = await ctx.find_link(link_kind, contact_id)
    if previous is not None and (event == "ContactDelete" or previous.local_id != email):
        await ctx.delete_link(link_kind, previous.local_id)  # deleted, or its e-mail changed
    if event == "ContactDelete":
        await forget(ctx, location_id, email, contact_id)
        return
    if email is None:
        return
    holder = await ctx.get_link(link_kind, email)
    if holder is None:
        await ctx.put_link(link_kind, email, contact_id)
    # else: an older contact holds the e-mail (a location allowing duplicates), or this one already does
