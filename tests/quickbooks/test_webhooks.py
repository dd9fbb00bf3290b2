"""Webhook signatures (Intuit's public vectors) and body parsing (legacy and CloudEvents)."""

from __future__ import annotations

import json

import pytest
from ledgerbridge_quickbooks.webhooks import parse, verify

LEGACY = (
    b'{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40",'
    b'"operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43","operation":'
    b'"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}'
)


def test_intuit_signature_vectors() -> None:
    assert verify("verify_me", b'{"stuff":"5"}', "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA=")
    assert verify("00faeec4-08d0-4996-bb37-698ae19f0149", LEGACY, "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=")
    assert not verify("verify_me", b'{"stuff":"6"}', "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA=")
    assert not verify("verify_me", b"{}", None)


def test_legacy_and_cloudevents_bodies_parse_into_changes() -> None:
    changes, rejects = parse(LEGACY)
    assert rejects == [] and [(c.realm_id, c.entity, c.entity_id, c.operation) for c in changes] == [
        ("1269959970", "Vendor", "40", "Update"), ("1269959970", "Customer", "43", "Create")]  # fmt: skip
    cloud = json.dumps([
        {"specversion": "1.0", "id": "e1", "type": "qbo.customer.merged.v1", "intuitentityid": "26",
         "intuitaccountid": "9", "data": {"deletedid": "27"}},
        {"specversion": "1.0", "id": "e2", "type": "qbo.invoice.updated.v1", "intuitentityid": "130",
         "intuitaccountid": "9"},
        {"type": "nonsense"},
    ]).encode()  # fmt: skip
    changes, rejects = parse(cloud)
    assert [(c.entity, c.entity_id, c.operation, c.deleted_id, c.event_id) for c in changes] == [
        ("Customer", "26", "Merge", "27", "e1"), ("Invoice", "130", "Update", None, "e2")]  # fmt: skip
    assert rejects == [{"type": "nonsense"}]
    with pytest.raises(ValueError):
        parse(b"not json")


def test_an_echo_is_recognised_whatever_offset_intuit_writes_its_stamps_with() -> None:
    from ledgerbridge_quickbooks.echoes import instant

    written = "2016-10-04T20:09:04-07:00"  # an entity's MetaData.LastUpdatedTime, in the company's time zone
    notified = "2016-10-05T03:09:04.000Z"  # the webhook's lastUpdated, in UTC
    assert instant(written) == instant(notified) == "2016-10-05T03:09:04Z"
    assert instant("2016-10-05T03:09:05.000Z") != instant(written)
    assert instant(None) is None and instant("not a time") == "not a time"
