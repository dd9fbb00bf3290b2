"""Contacts over real HTTP: create, upsert matching, duplicate search, get/update/delete, tags, workflows."""

from __future__ import annotations

from .conftest import LOCATION, OTHER_LOCATION, Receiver, Sandbox


async def test_create_then_get(sandbox: Sandbox) -> None:
    r = await sandbox.api.post(
        "/contacts/",
        json={
            "locationId": LOCATION,
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "grace@example.com",
            "tags": ["VIP"],
        },
    )
    assert r.status_code == 201
    contact = r.json()["contact"]
    assert contact["name"] == "Grace Hopper" and contact["tags"] == ["vip"]
    got = (await sandbox.api.get(f"/contacts/{contact['id']}")).json()["contact"]
    assert got["email"] == "grace@example.com" and got["locationId"] == LOCATION


async def test_create_refuses_a_duplicate(sandbox: Sandbox) -> None:
    await sandbox.contact("dup@example.com")
    r = await sandbox.api.post("/contacts/", json={"locationId": LOCATION, "email": "DUP@example.com"})
    assert r.status_code == 400 and r.json()["statusCode"] == 400


async def test_upsert_matches_email_in_another_letter_case(sandbox: Sandbox) -> None:
    existing = await sandbox.contact("Ada.Lovelace@Example.com")
    r = await sandbox.api.post(
        "/contacts/upsert",
        json={"locationId": LOCATION, "email": "ada.lovelace@example.COM", "companyName": "Analytical Engines"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["new"] is False and body["contact"]["id"] == existing["id"]
    assert body["contact"]["companyName"] == "Analytical Engines" and body["traceId"]


async def test_upsert_falls_back_to_phone_then_creates(sandbox: Sandbox) -> None:
    existing = await sandbox.contact("one@example.com", phone="+1 (555) 555-0199")
    by_phone = (
        await sandbox.api.post("/contacts/upsert", json={"locationId": LOCATION, "phone": "+15555550199"})
    ).json()
    assert by_phone["new"] is False and by_phone["contact"]["id"] == existing["id"]
    fresh = (
        await sandbox.api.post("/contacts/upsert", json={"locationId": LOCATION, "email": "new@example.com"})
    ).json()
    assert fresh["new"] is True and fresh["contact"]["id"] != existing["id"]


async def test_duplicate_search(sandbox: Sandbox) -> None:
    existing = await sandbox.contact("Search@Example.com")
    r = await sandbox.api.get(
        "/contacts/search/duplicate", params={"locationId": LOCATION, "email": "search@example.com"}
    )
    assert r.json()["contact"]["id"] == existing["id"]
    r = await sandbox.api.get(
        "/contacts/search/duplicate", params={"locationId": LOCATION, "email": "nobody@example.com"}
    )
    assert r.status_code == 200 and r.json()["contact"] is None


async def test_update_delete_and_unknown_ids(sandbox: Sandbox, receiver: Receiver) -> None:
    contact = await sandbox.contact()
    r = await sandbox.api.put(f"/contacts/{contact['id']}", json={"city": "London"})
    assert r.json()["succeded"] is True and r.json()["contact"]["city"] == "London"
    assert (await sandbox.api.delete(f"/contacts/{contact['id']}")).json()["succeded"] is True
    missing = await sandbox.api.get(f"/contacts/{contact['id']}")
    assert missing.status_code == 404 and missing.json() == {"statusCode": 404, "message": "Contact not found"}
    await sandbox.engine.webhooks.drain()
    assert [b["type"] for b in receiver.bodies()] == ["ContactCreate", "ContactUpdate", "ContactDelete"]
    assert receiver.bodies("ContactUpdate")[0]["city"] == "London"


async def test_tags_add_and_remove(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    r = await sandbox.api.post(f"/contacts/{contact['id']}/tags", json={"tags": ["Review-Request", "paid"]})
    assert r.status_code == 201 and r.json()["tags"] == ["review-request", "paid"]
    r = await sandbox.api.request("DELETE", f"/contacts/{contact['id']}/tags", json={"tags": ["paid"]})
    assert r.json()["tags"] == ["review-request"]
    bad = await sandbox.api.post(f"/contacts/{contact['id']}/tags", json={"tags": "x"})
    assert bad.status_code == 422 and isinstance(bad.json()["message"], list)


async def test_workflow_enrolment_is_recorded(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    r = await sandbox.api.post(f"/contacts/{contact['id']}/workflow/wfReview", json={})
    assert r.status_code == 200 and r.json()["succeded"] is True
    enrolments = (await sandbox.control("GET", "/workflow-enrolments"))["enrolments"]
    assert [(e["contactId"], e["workflowId"]) for e in enrolments] == [(contact["id"], "wfReview")]


async def test_a_token_only_reaches_its_own_location(sandbox: Sandbox) -> None:
    other = await sandbox.control("POST", "/contacts", {"locationId": OTHER_LOCATION, "email": "o@example.com"})
    assert (await sandbox.api.get(f"/contacts/{other['id']}")).status_code == 404
    r = await sandbox.api.post("/contacts/upsert", json={"locationId": OTHER_LOCATION, "email": "x@example.com"})
    assert r.status_code == 403


async def test_malformed_body_is_400_and_missing_location_422(sandbox: Sandbox) -> None:
    r = await sandbox.api.post("/contacts/upsert", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["statusCode"] == 400
    r = await sandbox.api.post("/contacts/upsert", json={"email": "x@example.com"})
    assert r.status_code == 422 and r.json()["error"] == "Unprocessable Entity"


async def test_a_property_the_request_dto_does_not_declare_is_a_422_that_writes_nothing(sandbox: Sandbox) -> None:
    contact = await sandbox.contact("ada@example.com")
    path = f"/contacts/{contact['id']}"
    refused = await sandbox.api.put(path, json={"companyName": "Engines", "city": "London"})  # UpdateContactDto
    assert refused.status_code == 422
    assert refused.json()["message"] == ["property companyName should not exist"]
    tags = await sandbox.api.post(f"{path}/tags", json={"tags": ["vip"], "colour": "red"})  # TagsDTO
    workflow = await sandbox.api.post(f"{path}/workflow/wf1", json={"contactId": contact["id"]})  # CreateWorkflowDto
    assert tags.status_code == workflow.status_code == 422
    kept = (await sandbox.api.get(path)).json()["contact"]
    assert kept.get("city") is None and "vip" not in kept.get("tags", [])
    accepted = await sandbox.api.put(path, json={"city": "London"})
    assert accepted.status_code == 200 and accepted.json()["contact"]["city"] == "London"
