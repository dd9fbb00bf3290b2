"""HTML pages for acting as the CRM's user: a home page per location (contacts, invoices, payments,
subscriptions) and forms that call the same actions as the control API. A bad form is answered 4xx with the
form again and one message per field, and writes nothing; a good one redirects (303) to a page that says what
happened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import actions, views
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.forms import INVOICE_LINES, PAYMENT_LINES, FormReader
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.templating import render
from ledgerbridge_crmconnect.sandbox.util import ApiError

Checkout = Callable[[SandboxEngine, dict[str, Any]], dict[str, Record]]
#: form value → (label, action, extra body)
PAYMENT_KINDS: dict[str, tuple[str, Checkout, dict[str, Any]]] = {
    "order_form": ("Order form", actions.order_form, {"step": "one_step"}),
    "order_form_two_step": ("Order form, two steps", actions.order_form, {"step": "two_step"}),
    "upsell": ("Order form upsell", actions.order_form, {"upsell": True}),
    "subscription": ("Subscription: first monthly charge", actions.start_subscription, {}),
    "membership": ("Membership checkout", actions.membership, {}),
    "calendar_meeting": ("Calendar booking: meeting", actions.calendar, {"subType": "meeting"}),
    "calendar_service": ("Calendar booking: service", actions.calendar, {"subType": "service"}),
    "payment_link": ("Payment link", actions.payment_link, {}),
}
MODE_LABELS = {"card": "Card", "cash": "Cash", "cheque": "Cheque", "bank_transfer": "Bank transfer", "other": "Other"}


class Page:
    """One request's rendering context: the engine, the URL prefix (mounted or not), the location."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.engine: SandboxEngine = request.app.state.sandbox
        self.base = str(request.scope.get("root_path", "")).rstrip("/")
        self.location: Record | None = None
        location_id = request.path_params.get("location_id")
        if location_id is not None:
            self.location = self.engine.state.locations.get(location_id)
            if self.location is None:
                raise ApiError(404, "There is no such sub-account in this sandbox.")

    @property
    def here(self) -> str:
        assert self.location is not None
        return f"{self.base}/locations/{self.location['id']}"

    def render(self, template: str, title: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = render(
            template,
            title=title,
            base=self.base,
            here=self.here if self.location else self.base,
            location=self.location,
            persistent=bool(self.engine.config.state_file),
            **context,
        )
        return HTMLResponse(html, status)

    def redirect(self, path: str, done: str, ref: str = "") -> RedirectResponse:
        query = urlencode({"done": done, **({"ref": ref} if ref else {})})
        return RedirectResponse(f"{path}?{query}", status_code=303)

    def flash(self) -> str | None:
        q = self.request.query_params
        return views.flash(self.engine, q.get("done", ""), q.get("ref", ""))

    def perform(self, action: Callable[..., Any], *args: Any) -> Any:
        """Run an action as the control API does: under the lock, saved afterwards."""
        with self.engine.lock:
            result = action(self.engine, *args)
            self.engine.save()
        return result

    def contact_options(self) -> list[tuple[str, str]]:
        """The location's contacts for a select, after a "Choose" prompt; empty when there are none."""
        assert self.location is not None
        people = self.engine.state.in_location(self.engine.state.contacts, self.location["id"])
        if not people:
            return []
        return [("", "Choose a customer")] + [(c["id"], views.person(c)) for c in sorted(people, key=views.person)]


PageHandler = Callable[[Page], Awaitable[Response]]


def page(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request.app.state.sandbox.ensure_started()
        try:
            return await handler(Page(request))
        except ApiError as error:
            return error_page(request, error)

    endpoint.__name__ = handler.__name__
    return endpoint


def error_page(request: Request, error: ApiError) -> Response:
    base = str(request.scope.get("root_path", "")).rstrip("/")
    message = error.message if isinstance(error.message, str) else " ".join(error.message)
    title = "Not found" if error.status == 404 else "That did not work"
    html = render(
        "error.html",
        title=title,
        base=base,
        location=None,
        message=views.sentence(message),
        back=f"{base}/",
        back_label="Home",
    )
    return HTMLResponse(html, error.status)


async def form_of(page: Page) -> FormReader:
    form = await page.request.form()
    return FormReader({k: v for k, v in form.items() if isinstance(v, str)})


# -- home ----------------------------------------------------------------------------------------------
@page
async def home(p: Page) -> Response:
    locations = list(p.engine.state.locations.values())
    if len(locations) == 1 and not p.request.query_params.get("done"):
        return RedirectResponse(f"{p.base}/locations/{locations[0]['id']}", status_code=303)
    return p.render("home.html", "CRM Connect sandbox", locations=locations, flash=p.flash())


@page
async def location_home(p: Page) -> Response:
    assert p.location is not None
    return p.render(
        "location.html", p.location["name"], flash=p.flash(), **views.location_overview(p.engine, p.location["id"])
    )


@page
async def review_page(p: Page) -> Response:
    """Where the location's customers leave a review: what a review request's link opens in sandbox mode.

    HighLevel's API publishes no review link; this page stands in for the business's review site."""
    assert p.location is not None
    return p.render("review.html", f"Review {p.location['name']}")


# -- contacts ------------------------------------------------------------------------------------------
CONTACT_FIELDS = {"firstName": "the first name", "lastName": "the last name", "phone": "the phone number",
                  "companyName": "the company"}  # fmt: skip


@page
async def contact_form(p: Page) -> Response:
    return p.render("contact_form.html", "Add a contact", values={}, errors={})


@page
async def contact_submit(p: Page) -> Response:
    assert p.location is not None
    form = await form_of(p)
    body = {name: form.text(name, label) for name, label in CONTACT_FIELDS.items()}
    body["email"] = form.email("email")
    if not (body["firstName"] or body["lastName"] or body["email"]):
        form.fail("firstName", "Enter a name or an e-mail address.")
    if body["email"] and views.contact_with_email(p.engine, p.location["id"], body["email"]):
        form.fail("email", "A contact with this e-mail address already exists.")
    if form.errors:
        return p.render("contact_form.html", "Add a contact", 422, values=form.raw, errors=form.errors)
    fields = {k: v for k, v in body.items() if v}
    contact = p.perform(actions.create_contact, {"locationId": p.location["id"], **fields})
    return p.redirect(p.here, "contact", contact["id"])


# -- payments ------------------------------------------------------------------------------------------
def _payment_form(p: Page, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    kinds = [(key, label) for key, (label, _, _) in PAYMENT_KINDS.items()]
    return p.render(
        "payment_form.html",
        "Take a payment",
        status,
        values=values,
        errors=errors,
        rows=PAYMENT_LINES,
        contact_options=p.contact_options(),
        kind_options=kinds,
    )


@page
async def payment_form(p: Page) -> Response:
    kind = p.request.query_params.get("kind", "order_form")
    contact = p.request.query_params.get("contact", "")
    return _payment_form(p, {"kind": kind, "contactId": contact, "line0_qty": "1"}, {})


@page
async def payment_submit(p: Page) -> Response:
    form = await form_of(p)
    contact_id = _contact_choice(p, form)
    kind = form.choice("kind", "how the customer pays", PAYMENT_KINDS)
    items = form.lines(PAYMENT_LINES)
    if form.errors:
        return _payment_form(p, form.raw, form.errors, 422)
    _, action, extra = PAYMENT_KINDS[kind]
    result = p.perform(action, {"contactId": contact_id, "items": items, **extra})
    return p.redirect(p.here, "payment", result["transaction"]["_id"])


def _contact_choice(p: Page, form: FormReader) -> str:
    assert p.location is not None
    contact_id = form.raw.get("contactId", "")
    contact = p.engine.state.contacts.get(contact_id)
    if contact is None or contact["locationId"] != p.location["id"]:
        form.fail("contactId", "Choose a customer.")
    return contact_id


@page
async def renew_submit(p: Page) -> Response:
    assert p.location is not None
    sub = p.engine.state.subscriptions.get(p.request.path_params["subscription_id"])
    if sub is None or sub["locationId"] != p.location["id"]:
        raise ApiError(404, "There is no such subscription in this sub-account.")
    txn = p.perform(actions.renew_subscription, sub["_id"])
    return p.redirect(p.here, "renewal", txn["_id"])


def _transaction(p: Page) -> Record:
    assert p.location is not None
    txn = p.engine.state.transactions.get(p.request.path_params["transaction_id"])
    if txn is None or txn["locationId"] != p.location["id"]:
        raise ApiError(404, "There is no such payment in this sub-account.")
    return txn


def _refund_page(p: Page, txn: Record, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    summary = views.payment_row(p.engine, txn)
    return p.render(
        "refund.html",
        "Refund a payment",
        status,
        p=summary,
        values=values,
        errors=errors,
        this=f"{p.here}/payments/{txn['_id']}/refund",
    )


@page
async def refund_form(p: Page) -> Response:
    txn = _transaction(p)
    return _refund_page(p, txn, {"amount": views.plain(txn["amount"] - txn["amountRefunded"])}, {})


@page
async def refund_submit(p: Page) -> Response:
    txn = _transaction(p)
    form = await form_of(p)
    amount = form.money("amount", "the amount to refund")
    left = txn["amount"] - txn["amountRefunded"]
    if amount is not None and not 0 < amount <= left:
        form.fail("amount", f"Refund more than 0 and at most {views.money(left, txn['currency'])}.")
    if form.errors:
        return _refund_page(p, txn, form.raw, form.errors, 422)
    p.perform(actions.refund, txn["_id"], {"amount": str(amount)})
    return p.redirect(p.here, "refund", txn["_id"])


# -- invoices ------------------------------------------------------------------------------------------
def _invoice_form(p: Page, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    return p.render(
        "invoice_form.html",
        "New invoice",
        status,
        values=values,
        errors=errors,
        rows=INVOICE_LINES,
        contact_options=p.contact_options(),
    )


@page
async def invoice_form(p: Page) -> Response:
    contact = p.request.query_params.get("contact", "")
    return _invoice_form(p, {"contactId": contact, "line0_qty": "1", "discount_type": "percentage"}, {})


@page
async def invoice_submit(p: Page) -> Response:
    form = await form_of(p)
    contact_id = _contact_choice(p, form)
    body: dict[str, Any] = {"contactId": contact_id, "name": form.text("name", "the invoice's name") or "Invoice"}
    due = form.day("dueDate", "the due date")
    items = form.lines(INVOICE_LINES)
    discount = form.discount()
    send = form.choice("action", "whether to send it", ("send", "draft")) == "send"
    if form.errors:
        return _invoice_form(p, form.raw, form.errors, 422)
    body.update(items=items, send=send)
    if due:
        body["dueDate"] = due
    if discount:
        body["discount"] = discount
    invoice = p.perform(actions.create_invoice, body)
    done = "invoice-sent" if send else "invoice-draft"
    return p.redirect(f"{p.here}/invoices/{invoice['_id']}", done, invoice["_id"])


def _invoice(p: Page) -> Record:
    assert p.location is not None
    invoice = p.engine.state.invoices.get(p.request.path_params["invoice_id"])
    if invoice is None or invoice["locationId"] != p.location["id"]:
        raise ApiError(404, "There is no such invoice in this sub-account.")
    return invoice


def _invoice_page(
    p: Page,
    invoice: Record,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    detail = views.invoice_detail(invoice)
    defaults = {**views.invoice_form_values(invoice), "amount": views.plain(detail["due_amount"]), "mode": "card"}
    return p.render(
        "invoice.html",
        f"Invoice {invoice['invoiceNumber']}",
        status,
        inv=detail,
        values={**defaults, **(values or {})},
        errors=errors or {},
        rows=len(invoice["items"]) + 1,
        mode_options=list(MODE_LABELS.items()),
        flash=p.flash(),
        this=f"{p.here}/invoices/{invoice['_id']}",
    )


@page
async def invoice_page(p: Page) -> Response:
    return _invoice_page(p, _invoice(p))


def _refused(p: Page, invoice: Record, error: ApiError, form: FormReader | None = None) -> Response:
    message = error.message if isinstance(error.message, str) else " ".join(error.message)
    errors = {"_action": views.sentence(message)}
    return _invoice_page(p, invoice, form.raw if form else None, errors, 409 if error.status == 400 else error.status)


@page
async def invoice_send(p: Page) -> Response:
    invoice = _invoice(p)
    try:
        p.perform(actions.send_invoice, invoice["_id"])
    except ApiError as error:
        return _refused(p, invoice, error)
    return p.redirect(f"{p.here}/invoices/{invoice['_id']}", "invoice-sent", invoice["_id"])


@page
async def invoice_pay(p: Page) -> Response:
    invoice = _invoice(p)
    form = await form_of(p)
    amount = form.money("amount", "the amount paid")
    mode = form.choice("mode", "how it was paid", MODE_LABELS)
    due = views.invoice_detail(invoice)["due_amount"]
    if amount is not None and invoice["status"] not in ("paid", "void") and not 0 < amount <= due:
        form.fail("amount", f"Enter more than 0 and at most the amount due, {views.money(due, invoice['currency'])}.")
    if form.errors:
        return _invoice_page(p, invoice, form.raw, form.errors, 422)
    try:
        p.perform(actions.pay_invoice, invoice["_id"], {"amount": str(amount), "mode": mode})
    except ApiError as error:
        return _refused(p, invoice, error, form)
    txn = views.last_payment_of(p.engine, invoice["_id"])
    return p.redirect(f"{p.here}/invoices/{invoice['_id']}", "invoice-paid", txn["_id"] if txn else "")


@page
async def invoice_edit(p: Page) -> Response:
    invoice = _invoice(p)
    form = await form_of(p)
    changes: dict[str, Any] = {"name": form.text("name", "the invoice's name", required=True)}
    due = form.day("dueDate", "the due date")
    changes["items"] = form.lines(len(invoice["items"]) + 1)
    changes["discount"] = form.discount() or {"type": "percentage", "value": 0}
    if due:
        changes["dueDate"] = due
    if form.errors:
        return _invoice_page(p, invoice, form.raw, form.errors, 422)
    try:
        p.perform(actions.edit_invoice, invoice["_id"], changes)
    except ApiError as error:
        return _refused(p, invoice, error, form)
    return p.redirect(f"{p.here}/invoices/{invoice['_id']}", "invoice-edited", invoice["_id"])


@page
async def invoice_void(p: Page) -> Response:
    invoice = _invoice(p)
    try:
        p.perform(actions.void_invoice, invoice["_id"])
    except ApiError as error:
        return _refused(p, invoice, error)
    return p.redirect(f"{p.here}/invoices/{invoice['_id']}", "invoice-voided", invoice["_id"])


# -- reset ---------------------------------------------------------------------------------------------
@page
async def reset_form(p: Page) -> Response:
    return p.render("reset.html", "Reset the CRM sandbox?")


@page
async def reset_submit(p: Page) -> Response:
    p.engine.reset()
    return p.redirect(f"{p.base}/", "reset")


LOCATION = "/locations/{location_id}"
INVOICE = LOCATION + "/invoices/{invoice_id}"
routes = [
    Route("/", home, methods=["GET"]),
    Route("/reset", reset_form, methods=["GET"]),
    Route("/reset", reset_submit, methods=["POST"]),
    Route(LOCATION, location_home, methods=["GET"]),
    Route(LOCATION + "/review", review_page, methods=["GET"]),
    Route(LOCATION + "/contacts/new", contact_form, methods=["GET"]),
    Route(LOCATION + "/contacts/new", contact_submit, methods=["POST"]),
    Route(LOCATION + "/payments/new", payment_form, methods=["GET"]),
    Route(LOCATION + "/payments/new", payment_submit, methods=["POST"]),
    Route(LOCATION + "/payments/{transaction_id}/refund", refund_form, methods=["GET"]),
    Route(LOCATION + "/payments/{transaction_id}/refund", refund_submit, methods=["POST"]),
    Route(LOCATION + "/subscriptions/{subscription_id}/renew", renew_submit, methods=["POST"]),
    Route(LOCATION + "/invoices/new", invoice_form, methods=["GET"]),
    Route(LOCATION + "/invoices/new", invoice_submit, methods=["POST"]),
    Route(INVOICE, invoice_page, methods=["GET"]),
    Route(INVOICE + "/send", invoice_send, methods=["POST"]),
    Route(INVOICE + "/pay", invoice_pay, methods=["POST"]),
    Route(INVOICE + "/edit", invoice_edit, methods=["POST"]),
    Route(INVOICE + "/void", invoice_void, methods=["POST"]),
]
