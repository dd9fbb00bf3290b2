"""Activity: what happened for an account, each delivery's status in plain words, and retrying dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.events import decode_event
from ledgerbridge.outcomes import OUTCOME_KEY, Outcome, outcome_of
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import ActivityEntry, Delivery
from ledgerbridge.store.base import DeliveryState
from ledgerbridge.ui.accounts import account_from_path
from ledgerbridge.ui.endpoint import redirect
from ledgerbridge.ui.render import format_time, page, plain_value, runtime_of
from ledgerbridge.ui.session import flash
from ledgerbridge.ui.words import KIND_LABELS, EventWords, describe
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

PAGE_SIZE = 50
# a customer filter reads this many of the newest deliveries (a customer is not a column of the store)
SEARCH_DEPTH = 1000
# deliveries of raw vendor notifications to their own plugin: routine checks, folded away unless asked for
ROUTINE_TYPE = "notification"
STATES: tuple[str, ...] = get_args(DeliveryState)
STATE_LABELS = {"pending": "Pending", "done": "Done", "skipped": "Skipped", "dead": "Dead letter"}
# what a vendor's error carries, said plainly; these come first, in this order
DETAIL_LABELS = {
    "vendor_message": "The vendor said",
    "message": "The vendor said",
    "detail": "Detail",
    "error": "Error",
    "code": "Error code",
    "element": "Field the vendor named",
    "status": "HTTP status",
    "vendor_transaction_id": "The vendor's transaction id",
}
HIDDEN_DETAILS = frozenset({"delivery_id", OUTCOME_KEY})


@dataclass(frozen=True)
class Detail:
    label: str
    value: str
    key: str


@dataclass(frozen=True)
class EntryView:
    entry: ActivityEntry
    details: tuple[Detail, ...]


@dataclass(frozen=True)
class DeliveryView:
    delivery: Delivery
    state_label: str
    explanation: str
    details: tuple[Detail, ...]
    words: EventWords | None = None
    outcome: Outcome | None = None

    @property
    def link(self) -> str | None:
        """The outcome's link when it is one a browser may follow (http or https only)."""
        url = self.outcome.url if self.outcome else None
        return url if url and url.startswith(("https://", "http://")) else None


def details_of(data: dict[str, Any]) -> tuple[Detail, ...]:
    known = [Detail(label, plain_value(data[key]), key) for key, label in DETAIL_LABELS.items() if key in data]
    rest = [
        Detail(key.replace("_", " "), plain_value(value), key)
        for key, value in sorted(data.items())
        if key not in DETAIL_LABELS and key not in HIDDEN_DETAILS
    ]
    return (*known, *rest)


def explain(delivery: Delivery) -> str:
    if delivery.state == "done":
        return "Delivered."
    if delivery.state == "skipped":
        # the "error" of a skipped delivery is the plugin's reason, not a failure
        reason = (delivery.last_error or "there was nothing to do").rstrip(".")
        return f"Skipped: {reason}."
    if delivery.state == "dead":
        return "Gave up on this one: it needs you. Fix the cause, then retry."
    if delivery.attempts == 0:
        return "Waiting to be sent."
    return f"Attempt {delivery.attempts} failed; the next try is at {format_time(delivery.next_attempt_at)}."


def delivery_views(
    deliveries: list[Delivery],
    entries: list[ActivityEntry],
    words: dict[int, EventWords] | None = None,
) -> list[DeliveryView]:
    # the newest log entry about a delivery carries the vendor's details (its message, its transaction id);
    # the newest outcome says what it made at the vendor
    latest: dict[int, ActivityEntry] = {}
    outcomes: dict[int, Outcome] = {}
    for entry in entries:
        delivery_id = entry.data.get("delivery_id")
        if not isinstance(delivery_id, int):
            continue
        outcome = outcome_of(entry.data)
        if outcome is not None:
            outcomes.setdefault(delivery_id, outcome)
        elif delivery_id not in latest:
            latest[delivery_id] = entry
    views = []
    for delivery in deliveries:
        about = latest.get(delivery.id)
        # only a failure's entry carries the vendor's side of the story
        failed = about is not None and about.level != "info" and delivery.state in ("dead", "pending")
        views.append(
            DeliveryView(
                delivery=delivery,
                state_label=STATE_LABELS.get(delivery.state, delivery.state),
                explanation=explain(delivery),
                details=details_of(about.data) if failed and about is not None else (),
                words=(words or {}).get(delivery.id),
                outcome=outcomes.get(delivery.id),
            )
        )
    return views


async def event_words(runtime: Runtime, account_id: str, deliveries: list[Delivery]) -> dict[int, EventWords]:
    """Each delivery's event in business words (a delivery whose event cannot be read is left out)."""
    found: dict[int, EventWords] = {}
    by_seq: dict[int, EventWords | None] = {}
    for delivery in deliveries:
        if delivery.event_seq not in by_seq:
            record = await runtime.store.get_event(account_id, delivery.event_seq)
            said = None
            if record is not None:
                try:
                    said = describe(decode_event(record.payload))
                except msgspec.MsgspecError:
                    said = None
            by_seq[delivery.event_seq] = said
        said = by_seq[delivery.event_seq]
        if said is not None:
            found[delivery.id] = said
    return found


async def described(runtime: Runtime, account_id: str, deliveries: list[Delivery]) -> list[DeliveryView]:
    words = await event_words(runtime, account_id, deliveries)
    entries = await runtime.store.activity_of_deliveries(account_id, [d.id for d in deliveries])
    return delivery_views(deliveries, entries, words)


async def _without_routine(runtime: Runtime, account_id: str, entries: list[ActivityEntry]) -> list[ActivityEntry]:
    """The log without the info lines of routine checks (a vendor's notice that needed nothing)."""
    kept = []
    for entry in entries:
        delivery_id = entry.data.get("delivery_id")
        if entry.level == "info" and isinstance(delivery_id, int):
            delivery = await runtime.store.get_delivery(account_id, delivery_id)
            if delivery is not None and delivery.event_type == ROUTINE_TYPE:
                continue
        kept.append(entry)
    return kept


def _matches(view: DeliveryView, customer: str) -> bool:
    who = view.words.customer if view.words else None
    return who is not None and customer.casefold() in who.casefold()


def _query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) < 2**62:
        raise ApiError(400, f"{name} must be a whole number")
    return int(raw)


async def activity_page(request: Request) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, f"state must be one of {', '.join(STATES)}")
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in KIND_LABELS:
        raise ApiError(400, f"kind must be one of {', '.join(KIND_LABELS)}")
    customer = (request.query_params.get("customer") or "").strip()[:200]
    plugin = request.query_params.get("plugin") or None
    if plugin is not None:
        plugin = operations.require_plugin(runtime, plugin)
    routine = request.query_params.get("routine") == "1" or kind == ROUTINE_TYPE
    before = _query_int(request, "before")
    entries = await runtime.store.list_activity(account.id, PAGE_SIZE, before)
    found = await runtime.store.list_deliveries(
        account.id, state, SEARCH_DEPTH if customer else PAGE_SIZE,  # type: ignore[arg-type]
        event_type=kind, exclude_type=None if routine else ROUTINE_TYPE, plugin=plugin,
    )  # fmt: skip
    views = await described(runtime, account.id, found)
    if customer:
        views = [view for view in views if _matches(view, customer)][:PAGE_SIZE]
    folded = 0
    if not routine:
        folded = len(await runtime.store.list_deliveries(account.id, state, PAGE_SIZE, event_type=ROUTINE_TYPE))  # type: ignore[arg-type]
    older = entries[-1].id if len(entries) == PAGE_SIZE else None
    if not routine:
        entries = await _without_routine(runtime, account.id, entries)
    counts: dict[str, int] = {}
    for tally in (await runtime.store.tally_deliveries(account.id)).values():  # routine checks left out
        for name, count in tally.counts.items():
            counts[name] = counts.get(name, 0) + count
    return page(
        request,
        "activity.html",
        title="Activity",
        section="activity",
        account=account,
        state=state,
        kind=kind,
        kinds=KIND_LABELS,
        customer=customer,
        plugin=plugin,
        routine=routine,
        folded=folded,
        page_size=PAGE_SIZE,
        states=STATES,
        state_labels=STATE_LABELS,
        counts=counts,
        deliveries=views,
        entries=[EntryView(entry, details_of(entry.data)) for entry in entries],
        older=older,
        before=before,
    )


async def timeline_page(request: Request) -> Response:
    """One object's history (an invoice, a payment, a contact): each event and what it became at the vendor."""
    runtime = runtime_of(request)
    account = await account_from_path(request)
    key = request.query_params.get("object") or ""
    if not key or len(key) > 500:
        raise ApiError(400, "say which object: ?object=… (a link from Activity)")
    found = await runtime.store.list_deliveries(account.id, None, 500, object_key=key)
    if not found:
        raise ApiError(404, f"nothing has happened to {key!r} in this account")
    business = [d for d in found if d.event_type != ROUTINE_TYPE]
    found = business or found  # routine checks of the vendor's notices only when nothing else happened
    views = list(reversed(await described(runtime, account.id, found)))
    subject = next((v.words.subject for v in reversed(views) if v.words), key)
    return page(
        request,
        "timeline.html",
        title=subject,
        section="activity",
        account=account,
        subject=subject,
        deliveries=views,
        state_labels=STATE_LABELS,
    )


async def retry_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    raw: str = request.path_params["delivery_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(404, f"no delivery {raw!r} in account {account.id!r}")
    delivery = await operations.replay_delivery(runtime, account, int(raw))
    flash(request, f"Delivery {delivery.id} ({delivery.event_type} to {delivery.plugin}) is queued to be tried again.")
    return redirect(f"/accounts/{account.id}/activity")


async def send_skipped_submit(request: Request, form: FormData) -> Response:
    """Send one skipped delivery (`delivery_id`) or all of them now, through the same idempotent path."""
    runtime = runtime_of(request)
    account = await account_from_path(request)
    raw = form.get("delivery_id")
    ids: list[int] | None = None
    if isinstance(raw, str) and raw:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise ApiError(404, f"no delivery {raw[:20]!r} in account {account.id!r}")
        ids = [int(raw)]
    try:
        report = await operations.send_skipped(runtime, account, ids)
    except ApiError as exc:
        if exc.status != 409:
            raise
        flash(request, f"Not sent: {exc.message}")
        return redirect(f"/accounts/{account.id}/activity?state=skipped")
    sent, refused = report["sent"], report["refused"]
    message = f"{len(sent)} skipped event(s) queued to be sent."
    if refused:
        message += f" {len(refused)} could not be sent: {refused[0]['reason']}."
    flash(request, message)
    return redirect(f"/accounts/{account.id}/activity")
