"""Products: create, list, get (minimal, per products.json)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox.auth import CONTACTS_VERSION, Ctx, api
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse, int_param, not_found, now_iso, object_id

PRODUCT_TYPES = ("DIGITAL", "PHYSICAL", "SERVICE", "PHYSICAL/DIGITAL")
OPTIONAL = (
    "description",
    "image",
    "statementDescriptor",
    "availableInStore",
    "collectionIds",
    "isTaxesEnabled",
    "taxes",
    "variants",
    "slug",
    "taxInclusive",
)


def render(product: Record) -> Record:
    return dict(product)


@api(CONTACTS_VERSION)
def create_product(request: Request, ctx: Ctx) -> Response:
    body = ctx.body
    problems = [f"{k} should not be empty" for k in ("name", "locationId", "productType") if not body.get(k)]
    if body.get("productType") and body["productType"] not in PRODUCT_TYPES:
        problems.append(f"productType must be one of the following values: {', '.join(PRODUCT_TYPES)}")
    if problems:
        raise ApiError(422, problems)
    location_id = ctx.require_location(body["locationId"])
    stamp = now_iso()
    product: Record = {
        "_id": object_id(),
        "locationId": location_id,
        "name": body["name"],
        "productType": body["productType"],
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    product.update({k: body[k] for k in OPTIONAL if k in body})
    ctx.engine.state.products[product["_id"]] = product
    return JSONResponse(render(product), status_code=201)


@api(CONTACTS_VERSION)
def list_products(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    location_id = ctx.require_location(q.get("locationId"))
    found = ctx.engine.state.in_location(ctx.engine.state.products, location_id)
    if q.get("search"):
        found = [p for p in found if q["search"].lower() in p["name"].lower()]
    limit, offset = int_param(q.get("limit"), "limit", 0), int_param(q.get("offset"), "offset", 0)
    page = found[offset : offset + limit] if limit else found[offset:]  # limit 0 (the default) means all
    return JSONResponse({"products": [render(p) for p in page], "total": [{"total": len(found)}]})


@api(CONTACTS_VERSION)
def get_product(request: Request, ctx: Ctx) -> Response:
    location_id = ctx.require_location(request.query_params.get("locationId"))
    product = ctx.engine.state.products.get(request.path_params["productId"])
    if product is None or product["locationId"] != location_id:
        raise not_found("Product")
    return JSONResponse(render(product))


routes = [
    Route("/products/", create_product, methods=["POST"]),
    Route("/products/", list_products, methods=["GET"]),
    Route("/products/{productId}", get_product, methods=["GET"]),
]
