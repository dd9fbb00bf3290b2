"""Contacts: create, upsert (e-mail first, then phone), duplicate search, get/update/delete, tags, workflows."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox.auth import CONTACTS_VERSION, Ctx, Handler, api
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record, SandboxState
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse, ghl_id, not_found, now_iso, trace_id

STRING_FIELDS = (
    "firstName",
    "lastName",
    "name",
    "email",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "source",
    "country",
    "companyName",
    "assignedTo",
    "gender",
    "dateOfBirth",
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The properties each request DTO declares (apps/contacts.json); HighLevel refuses any other with 422.
UPDATE_FIELDS = frozenset({
    "address1", "assignedTo", "city", "country", "customFields", "dateOfBirth", "dnd", "dndSettings", "email",
    "firstName", "inboundDndSettings", "lastName", "name", "phone", "postalCode", "source", "state", "tags",
    "timezone", "website",
})  # fmt: skip
CREATE_FIELDS = UPDATE_FIELDS | {"companyName", "gender", "locationId"}
UPSERT_FIELDS = CREATE_FIELDS | {"createNewIfDuplicateAllowed"}
TAGS_FIELDS = frozenset({"tags"})  # TagsDTO
WORKFLOW_FIELDS = frozenset({"eventStartTime"})  # CreateWorkflowDto


def _normalise_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    return digits or None


def declared_only(body: dict[str, Any], declared: frozenset[str]) -> None:
    """HighLevel's whitelist validation: a property the DTO does not declare is a 422."""
    extra = sorted(set(body) - declared)
    if extra:
        raise ApiError(422, [f"property {name} should not exist" for name in extra])


def _validate(body: dict[str, Any]) -> None:
    problems: list[str] = []
    for name in STRING_FIELDS:
        if name in body and body[name] is not None and not isinstance(body[name], str):
            problems.append(f"{name} must be a string")
    if body.get("email") and isinstance(body["email"], str) and not EMAIL.match(body["email"]):
        problems.append("email must be an email")
    if "tags" in body and not (isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"])):
        problems.append("tags must be an array of strings")
    if "dnd" in body and not isinstance(body["dnd"], bool):
        problems.append("dnd must be a boolean value")
    if "customFields" in body and not isinstance(body["customFields"], list):
        problems.append("customFields must be an array")
    if problems:
        raise ApiError(422, problems)


def _apply(contact: Record, body: dict[str, Any]) -> None:
    """Copy the writable fields (a missing key leaves the field alone; null clears it)."""
    for name in STRING_FIELDS:
        if name in body:
            contact[name] = body[name] or None
    if "dnd" in body:
        contact["dnd"] = body["dnd"]
    if "tags" in body:
        contact["tags"] = list(dict.fromkeys(t.strip().lower() for t in body["tags"] if t.strip()))
    if "customFields" in body:
        contact["customFields"] = [
            {"id": f.get("id") or f.get("key"), "value": f.get("field_value", f.get("value"))}
            for f in body["customFields"]
            if isinstance(f, dict)
        ]
    if contact.get("email"):
        contact["email"] = contact["email"].strip()
    if "name" in body and body["name"] and not ("firstName" in body or "lastName" in body):
        first, _, last = body["name"].strip().partition(" ")
        contact["firstName"], contact["lastName"] = first or None, last or None
    if "name" not in body or not body["name"]:
        contact["name"] = " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p) or None
    contact["dateUpdated"] = now_iso()


def render(contact: Record) -> Record:
    """The contact as the REST API returns it (GetContectByIdSchema; absent fields omitted, not null)."""
    out: Record = {"id": contact["id"], "locationId": contact["locationId"]}
    for name in STRING_FIELDS:
        if contact.get(name) is not None:
            out[name] = contact[name]
    if contact.get("email"):
        out["emailLowerCase"] = contact["email"].lower()
    if contact.get("firstName"):
        out["firstNameLowerCase"] = contact["firstName"].lower()
    if contact.get("lastName"):
        out["lastNameLowerCase"] = contact["lastName"].lower()
    if contact.get("name"):
        out["fullNameLowerCase"] = contact["name"].lower()
    out.update(
        dnd=contact.get("dnd", False),
        type=contact.get("type", "lead"),
        tags=list(contact.get("tags", [])),
        customFields=[{"id": f["id"], "value": f["value"]} for f in contact.get("customFields", [])],
        dateAdded=contact["dateAdded"],
        dateUpdated=contact["dateUpdated"],
        deleted=False,
    )
    return out


def webhook_body(contact: Record) -> Record:
    """Contact events are the flat contact (ContactCreate.md); type/locationId are added on delivery."""
    body: Record = {"id": contact["id"]}
    for name in (
        "address1",
        "city",
        "state",
        "companyName",
        "country",
        "source",
        "dateOfBirth",
        "email",
        "name",
        "firstName",
        "lastName",
        "phone",
        "postalCode",
        "website",
        "assignedTo",
    ):
        if contact.get(name) is not None:
            body[name] = contact[name]
    body.update(
        dateAdded=contact["dateAdded"],
        dnd=contact.get("dnd", False),
        tags=list(contact.get("tags", [])),
        attachments=[],
        customFields=[{"id": f["id"], "value": f["value"]} for f in contact.get("customFields", [])],
    )
    return body


# -- domain ------------------------------------------------------------------------------------------
def create(engine: SandboxEngine, location_id: str, body: dict[str, Any]) -> Record:
    _validate(body)
    engine.location(location_id)
    stamp = now_iso()
    contact: Record = {"id": ghl_id(), "locationId": location_id, "dateAdded": stamp, "type": "lead", "tags": []}
    _apply(contact, {"source": "public api", **body})
    engine.state.contacts[contact["id"]] = contact
    email_index(engine).add(contact)
    engine.emit("ContactCreate", location_id, webhook_body(contact))
    return contact


def update(engine: SandboxEngine, contact: Record, body: dict[str, Any]) -> Record:
    _validate(body)
    index = email_index(engine)
    index.remove(contact)
    _apply(contact, body)
    index.add(contact)
    engine.emit("ContactUpdate", contact["locationId"], webhook_body(contact))
    return contact


def delete(engine: SandboxEngine, contact: Record) -> None:
    email_index(engine).remove(contact)
    del engine.state.contacts[contact["id"]]
    engine.emit("ContactDelete", contact["locationId"], webhook_body(contact))


def find(engine: SandboxEngine, location_id: str, contact_id: str) -> Record:
    contact = engine.state.contacts.get(contact_id)
    if contact is None or contact["locationId"] != location_id:
        raise not_found("Contact")
    return contact


class EmailIndex:
    """(location, lower-case e-mail) → contact ids, oldest first: the duplicate rule without a scan of the
    location per request. Derived from the state (never persisted), rebuilt when the state is replaced."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.ids: dict[tuple[str, str], list[str]] = {}
        for contact in state.contacts.values():
            self.add(contact)

    @staticmethod
    def key(contact: Record) -> tuple[str, str] | None:
        email = (contact.get("email") or "").strip().lower()
        return (contact["locationId"], email) if email else None

    def add(self, contact: Record) -> None:
        key = self.key(contact)
        if key is not None:
            self.ids.setdefault(key, []).append(contact["id"])

    def remove(self, contact: Record) -> None:
        key = self.key(contact)
        ids = self.ids.get(key) if key is not None else None
        if ids and contact["id"] in ids:
            ids.remove(contact["id"])

    def first(self, location_id: str, email: str) -> Record | None:
        wanted = email.strip().lower()
        for contact_id in self.ids.get((location_id, wanted), ()):
            contact = self.state.contacts.get(contact_id)
            if contact is not None and (contact.get("email") or "").lower() == wanted:
                return contact
        return None


_indexes: dict[int, EmailIndex] = {}


def email_index(engine: SandboxEngine) -> EmailIndex:
    index = _indexes.get(id(engine))
    if index is None or index.state is not engine.state:
        index = _indexes[id(engine)] = EmailIndex(engine.state)
    return index


def allows_duplicates(engine: SandboxEngine, location_id: str) -> bool:
    """The location's "Allow Duplicate Contact" setting (off unless the control API turned it on)."""
    return bool(engine.state.locations.get(location_id, {}).get("allowDuplicateContact"))


def find_duplicate(engine: SandboxEngine, location_id: str, email: str | None, phone: str | None) -> Record | None:
    """The location's duplicate rule as HighLevel defaults it: e-mail (any letter case) first, then phone."""
    if email:
        found = email_index(engine).first(location_id, email)
        if found is not None:
            return found
    wanted = _normalise_phone(phone)
    if wanted:
        for contact in engine.state.in_location(engine.state.contacts, location_id):
            if _normalise_phone(contact.get("phone")) == wanted:
                return contact
    return None


def upsert(engine: SandboxEngine, location_id: str, body: dict[str, Any]) -> tuple[bool, Record]:
    _validate(body)
    existing = find_duplicate(engine, location_id, body.get("email"), body.get("phone"))
    # "The Upsert API will adhere to the … Allow Duplicate Contact setting": it matches e-mail first whatever the
    # setting, and makes a second contact only when asked to and the location allows it.
    duplicate_wanted = body.get("createNewIfDuplicateAllowed") is True and allows_duplicates(engine, location_id)
    if existing is None or duplicate_wanted:
        return True, create(engine, location_id, body)
    fields = {k: v for k, v in body.items() if k not in ("locationId", "createNewIfDuplicateAllowed")}
    return False, update(engine, existing, fields)


# -- search (POST /contacts/search) -------------------------------------------------------------------
SEARCH_MAX_PAGE = 500  # pageLimit: "Results per page (max 500)"
SEARCH_MAX_WINDOW = 10_000  # page + pageLimit fetch up to 10,000 records; searchAfter goes beyond
SEARCH_FIELDS = frozenset({"locationId", "page", "pageLimit", "searchAfter", "filters", "sort", "query"})
SORTABLE = frozenset({"dateAdded", "dateUpdated"})


def _epoch_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def search(engine: SandboxEngine, location_id: str, body: dict[str, Any]) -> Record:
    """One page of the location's contacts ({contacts, total}); each contact carries its `searchAfter` cursor
    ([sort value in ms, id]). Filters and the full-text query are not emulated: a body using them is a 422."""
    declared_only(body, SEARCH_FIELDS)
    problems: list[str] = []
    limit = body.get("pageLimit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append("pageLimit must be a positive number")
    elif limit > SEARCH_MAX_PAGE:
        problems.append(f"pageLimit must not be greater than {SEARCH_MAX_PAGE}")
    page, after = body.get("page"), body.get("searchAfter")
    if page is not None and after is not None:
        problems.append("page and searchAfter cannot be used together")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
        problems.append("page must be a positive number")
    if after is not None and not (isinstance(after, list) and len(after) == 2 and isinstance(after[1], str)):
        problems.append("searchAfter must be the array a previous page returned")
    if body.get("filters") or body.get("query"):
        problems.append("filters and query are not supported by this sandbox")
    field, descending = "dateAdded", False
    sort = body.get("sort")
    if sort is not None:
        if not (isinstance(sort, list) and len(sort) <= 1 and all(isinstance(s, dict) for s in sort)):
            problems.append("sort must be an array of one {field, direction}")
        elif sort:
            field, direction = sort[0].get("field"), sort[0].get("direction", "asc")
            if field not in SORTABLE or direction not in ("asc", "desc"):
                problems.append(f"sort field must be one of {sorted(SORTABLE)}, direction asc or desc")
            descending = direction == "desc"
    if problems:
        raise ApiError(422, problems)
    assert isinstance(limit, int)
    keyed = sorted(
        ((_epoch_ms(c.get(field) or c["dateAdded"]), c["id"], c) for c in engine.state.in_location(
            engine.state.contacts, location_id)),
        key=lambda row: (row[0], row[1]),
        reverse=descending,
    )  # fmt: skip
    if after is not None:
        mark = (after[0], after[1])
        keyed = [row for row in keyed if ((row[0], row[1]) < mark if descending else (row[0], row[1]) > mark)]
        start = 0
    else:
        start = ((page or 1) - 1) * limit
        if start + limit > SEARCH_MAX_WINDOW:
            raise ApiError(422, [f"page and pageLimit reach past {SEARCH_MAX_WINDOW} records: use searchAfter"])
    rows = keyed[start : start + limit]
    contacts = [{**render(contact), "searchAfter": [ms, contact_id]} for ms, contact_id, contact in rows]
    return {"contacts": contacts, "total": len(engine.state.in_location(engine.state.contacts, location_id))}


# -- HTTP --------------------------------------------------------------------------------------------
_calls: dict[int, Counter[str]] = {}


def calls(engine: SandboxEngine) -> dict[str, int]:
    """Contact API requests answered (any status but a rate-limit refusal), by "METHOD route"."""
    return dict(_calls.get(id(engine), Counter()))


def reset_calls(engine: SandboxEngine) -> None:
    _calls.pop(id(engine), None)


def counted(name: str) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def endpoint(request: Request, ctx: Ctx) -> Response:
            _calls.setdefault(id(ctx.engine), Counter())[name] += 1
            return handler(request, ctx)

        return endpoint

    return wrap


@api(CONTACTS_VERSION)
@counted("POST /contacts/")
def create_contact(request: Request, ctx: Ctx) -> Response:
    declared_only(ctx.body, CREATE_FIELDS)
    location_id = ctx.require_location(ctx.body.get("locationId"))
    duplicate = find_duplicate(ctx.engine, location_id, ctx.body.get("email"), ctx.body.get("phone"))
    if duplicate is not None and not allows_duplicates(ctx.engine, location_id):
        # HighLevel refuses a create that its duplicate rule matches (upsert is the way to merge); a location
        # whose "Allow Duplicate Contact" is on accepts it: a second contact with the same e-mail.
        raise ApiError(400, "This location does not allow duplicated contacts.")
    contact = create(ctx.engine, location_id, ctx.body)
    return JSONResponse({"contact": render(contact)}, status_code=201)


@api(CONTACTS_VERSION)
@counted("POST /contacts/upsert")
def upsert_contact(request: Request, ctx: Ctx) -> Response:
    declared_only(ctx.body, UPSERT_FIELDS)
    location_id = ctx.require_location(ctx.body.get("locationId"))
    new, contact = upsert(ctx.engine, location_id, ctx.body)
    return JSONResponse({"new": new, "contact": render(contact), "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("GET /contacts/search/duplicate")
def search_duplicate(request: Request, ctx: Ctx) -> Response:
    location_id = ctx.require_location(request.query_params.get("locationId"))
    email, number = request.query_params.get("email"), request.query_params.get("number")
    contact = find_duplicate(ctx.engine, location_id, email, number)
    return JSONResponse({"contact": render(contact) if contact else None, "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("POST /contacts/search")
def search_contacts(request: Request, ctx: Ctx) -> Response:
    location_id = ctx.require_location(ctx.body.get("locationId"))
    return JSONResponse({**search(ctx.engine, location_id, ctx.body), "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("GET /contacts/{id}")
def get_contact(request: Request, ctx: Ctx) -> Response:
    contact = find(ctx.engine, ctx.location_id, request.path_params["contactId"])
    return JSONResponse({"contact": render(contact), "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("PUT /contacts/{id}")
def update_contact(request: Request, ctx: Ctx) -> Response:
    contact = find(ctx.engine, ctx.location_id, request.path_params["contactId"])
    declared_only(ctx.body, UPDATE_FIELDS)
    update(ctx.engine, contact, ctx.body)
    return JSONResponse({"succeded": True, "contact": render(contact), "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("DELETE /contacts/{id}")
def delete_contact(request: Request, ctx: Ctx) -> Response:
    delete(ctx.engine, find(ctx.engine, ctx.location_id, request.path_params["contactId"]))
    return JSONResponse({"succeded": True, "traceId": trace_id()})


def _tags(ctx: Ctx) -> list[str]:
    declared_only(ctx.body, TAGS_FIELDS)
    tags = ctx.body.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(422, ["tags must be an array", "each value in tags must be a string"])
    return [t.strip().lower() for t in tags if t.strip()]


@api(CONTACTS_VERSION)
@counted("POST /contacts/{id}/tags")
def add_tags(request: Request, ctx: Ctx) -> Response:
    contact = find(ctx.engine, ctx.location_id, request.path_params["contactId"])
    contact["tags"] = list(dict.fromkeys([*contact.get("tags", []), *_tags(ctx)]))
    contact["dateUpdated"] = now_iso()
    return JSONResponse({"tags": contact["tags"], "traceId": trace_id()}, status_code=201)


@api(CONTACTS_VERSION)
@counted("DELETE /contacts/{id}/tags")
def remove_tags(request: Request, ctx: Ctx) -> Response:
    contact = find(ctx.engine, ctx.location_id, request.path_params["contactId"])
    removing = set(_tags(ctx))
    contact["tags"] = [t for t in contact.get("tags", []) if t not in removing]
    contact["dateUpdated"] = now_iso()
    return JSONResponse({"tags": contact["tags"], "traceId": trace_id()})


@api(CONTACTS_VERSION)
@counted("POST /contacts/{id}/workflow/{workflowId}")
def add_to_workflow(request: Request, ctx: Ctx) -> Response:
    contact = find(ctx.engine, ctx.location_id, request.path_params["contactId"])
    declared_only(ctx.body, WORKFLOW_FIELDS)
    start = ctx.body.get("eventStartTime")
    if start is not None and not isinstance(start, str):
        raise ApiError(422, ["eventStartTime must be a string"])
    ctx.engine.state.workflow_enrolments.append(
        {
            "locationId": ctx.location_id,
            "contactId": contact["id"],
            "workflowId": request.path_params["workflowId"],
            "eventStartTime": start,
            "enrolledAt": now_iso(),
        }
    )
    return JSONResponse({"succeded": True, "traceId": trace_id()})


routes = [
    Route("/contacts/", create_contact, methods=["POST"]),
    Route("/contacts/upsert", upsert_contact, methods=["POST"]),
    Route("/contacts/search", search_contacts, methods=["POST"]),
    Route("/contacts/search/duplicate", search_duplicate, methods=["GET"]),
    Route("/contacts/{contactId}/tags", add_tags, methods=["POST"]),
    Route("/contacts/{contactId}/tags", remove_tags, methods=["DELETE"]),
    Route("/contacts/{contactId}/workflow/{workflowId}", add_to_workflow, methods=["POST"]),
    Route("/contacts/{contactId}", get_contact, methods=["GET"]),
    Route("/contacts/{contactId}", update_contact, methods=["PUT"]),
    Route("/contacts/{contactId}", delete_contact, methods=["DELETE"]),
]
