"""Activity: what happened for an account, each delivery's status in plain words, and retrying dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.store import ActivityEntry, Delivery
from ledgerbridge.store.base import DeliveryState
from ledgerbridge.ui.accounts import account_from_path
from ledgerbridge.ui.endpoint import redirect
from ledgerbridge.ui.render import format_time, page, plain_value, runtime_of
from ledgerbridge.ui.session import flash
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

PAGE_SIZE = 50
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
HIDDEN_DETAILS = frozenset({"delivery_id"})


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


def delivery_views(deliveries: list[Delivery], entries: list[ActivityEntry]) -> list[DeliveryView]:
    # the newest log entry about a delivery carries the vendor's details (its message, its transaction id)
    latest: dict[int, ActivityEntry] = {}
    for entry in entries:
        delivery_id = entry.data.get("delivery_id")
        if isinstance(delivery_id, int) and delivery_id not in latest:
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
            )
        )
    return views


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
    before = _query_int(request, "before")
    entries = await runtime.store.list_activity(account.id, PAGE_SIZE, before)
    deliveries = await runtime.store.list_deliveries(account.id, state, PAGE_SIZE)  # type: ignore[arg-type]
    counts = await runtime.store.count_deliveries(account.id)
    return page(
        request,
        "activity.html",
        title="Activity",
        section="activity",
        account=account,
        state=state,
        states=STATES,
        state_labels=STATE_LABELS,
        counts=counts,
        deliveries=delivery_views(deliveries, entries),
        entries=[EntryView(entry, details_of(entry.data)) for entry in entries],
        older=entries[-1].id if len(entries) == PAGE_SIZE else None,
        before=before,
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
