"""POST /webhooks/hubspot: the ladder of answers, persistence before acknowledgement, dedupe."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from connector.app import create_app
from connector.store.models import InboxEvent
from connector.store.tenants import create_tenant
from tests.adapters.hubspot.signing import v1, v3_headers
from tests.web.pending import pending_deals

SECRET = "hs-test-secret"
URI = "https://dealradar.example/webhooks/hubspot"  # PUBLIC_URL + path, not the test host
PORTAL = 62515


def _event(event_id: int, deal_id: int, kind: str = "deal.propertyChange", at: int = 0) -> dict:
    return {
        "eventId": event_id, "subscriptionId": 1, "portalId": PORTAL, "appId": 54321,
        "occurredAt": 1764057600000 + at, "subscriptionType": kind, "attemptNumber": 0,
        "objectId": deal_id, "propertyName": "dealstage", "propertyValue": "contractsent",
        "changeSource": "CRM",
    }  # fmt: skip


def _post(client: FlaskClient, body: bytes, *, secret: str = SECRET, headers: dict | None = None):  # type: ignore[no-untyped-def]
    signed = v3_headers(secret, "POST", URI, body, int(time.time() * 1000))
    return client.post(
        "/webhooks/hubspot",
        data=body,
        headers={**signed, **(headers or {})},
        content_type="application/json",
    )


@pytest.fixture
def tenant_id(app: Flask) -> str:
    store = app.extensions["dealradar"].store
    tenant, _ = create_tenant(store, crm="hubspot", account_id=str(PORTAL), now=datetime.now(UTC))
    return tenant.id


def _inbox(app: Flask, tenant_id: str) -> list[InboxEvent]:
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_fifty_events_for_three_deals_with_duplicates_and_out_of_order_queue_three_deals(
    client: FlaskClient, app: Flask, redis: Redis, tenant_id: str
) -> None:
    events = [_event(i, 1000 + i % 3, at=i) for i in range(40)]
    events += random.Random(3).sample(events, 10)  # ten redeliveries
    random.Random(4).shuffle(events)
    for start in range(0, 50, 10):  # HubSpot batches them
        response = _post(client, json.dumps(events[start : start + 10]).encode())
        assert response.status_code in (200, 202)
    expected = {"1000", "1001", "1002"}
    assert pending_deals(redis, tenant_id, expected) == expected
    assert len(_inbox(app, tenant_id)) == 40, "each event once"


def test_text_no_database_can_store_loses_nothing_of_the_delivery(
    client: FlaskClient, app: Flask, redis: Redis, tenant_id: str
) -> None:
    """A truncated emoji (a lone surrogate, as JSON escapes it) or a NUL in one event: had the
    insert been refused, HubSpot would retry the same bytes until it gave up, and the good
    events delivered with it would be lost too."""
    odd = [{**_event(1, 1000), "propertyValue": "Big deal \ud83d"},
           {**_event(2, 1001), "propertyValue": "nul \u0000 here"}]  # fmt: skip
    body = ("[" + ",".join([json.dumps(_event(3, 1002)), *map(json.dumps, odd)]) + "]").encode()
    assert b"\\ud83d" in body and b"\\u0000" in body
    response = _post(client, body)
    assert response.status_code == 202, response.json
    stored = {e.deal_ids[0]: e.body for e in _inbox(app, tenant_id)}
    assert set(stored) == {"1000", "1001", "1002"}
    assert "Big deal \ufffd" in stored["1000"]
    assert "nul \\u0000 here" in stored["1001"], "kept as the JSON escape it came as"


def test_a_replayed_delivery_is_acknowledged_and_dropped(
    client: FlaskClient, app: Flask, tenant_id: str
) -> None:
    body = json.dumps([_event(1, 1000), _event(2, 1001)]).encode()
    first = _post(client, body)
    assert first.status_code == 202 and first.json["queued"] == 2
    again = _post(client, body)
    assert again.status_code == 200 and again.json["queued"] == 0
    assert len(_inbox(app, tenant_id)) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda h, b: ({k: v for k, v in h.items() if "Signature" not in k}, b),
            "signature_missing",
        ),
        (lambda h, b: (h, b.replace(b"1000", b"1001")), "signature_mismatch"),
        (
            lambda h, b: (
                {**h, "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000) - 301_000)},
                b,
            ),
            "signature_mismatch",
        ),
        (lambda h, b: ({**h, "X-HubSpot-Request-Timestamp": "soon"}, b), "signature_malformed"),
    ],
)
def test_unverifiable_requests_get_401(
    client: FlaskClient, app: Flask, tenant_id: str, change, reason: str
) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps([_event(1, 1000)]).encode()
    headers = v3_headers(SECRET, "POST", URI, body, int(time.time() * 1000))
    headers, body = change(headers, body)
    response = client.post(
        "/webhooks/hubspot", data=body, headers=headers, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json["error"] == reason
    assert _inbox(app, tenant_id) == []
    if reason == "signature_missing":  # the sender is told what to do
        assert "sign the request" in response.json["detail"]
    if reason == "signature_mismatch":  # a forger is told nothing more
        assert response.json["detail"] == "the signature does not verify"


def test_a_stale_but_authentic_request_is_401(
    client: FlaskClient, app: Flask, tenant_id: str
) -> None:
    body = json.dumps([_event(1, 1000)]).encode()
    old = int(time.time() * 1000) - 6 * 60 * 1000
    response = client.post(
        "/webhooks/hubspot", data=body, headers=v3_headers(SECRET, "POST", URI, body, old),
        content_type="application/json",
    )  # fmt: skip
    assert (response.status_code, response.json["error"]) == (401, "signature_stale")
    assert "over 5 minutes old" in response.json["detail"]


def test_wrong_secret_and_wrong_uri_are_401(client: FlaskClient, tenant_id: str) -> None:
    body = json.dumps([_event(1, 1000)]).encode()
    assert _post(client, body, secret="other-secret").status_code == 401
    local = v3_headers(
        SECRET, "POST", "http://localhost/webhooks/hubspot", body, int(time.time() * 1000)
    )
    response = client.post(
        "/webhooks/hubspot", data=body, headers=local, content_type="application/json"
    )
    assert response.status_code == 401, "the URI signed is the public one"


def test_v1_signatures_are_accepted(client: FlaskClient, app: Flask, tenant_id: str) -> None:
    body = json.dumps([_event(7, 1000)]).encode()
    response = client.post(
        "/webhooks/hubspot", data=body, content_type="application/json",
        headers={"X-HubSpot-Signature": v1(SECRET, body), "X-HubSpot-Signature-Version": "v1"},
    )  # fmt: skip
    assert response.status_code == 202


@pytest.mark.parametrize("body", [b'{"eventId": 1}', b"not json", b'["a"]'])
def test_a_body_that_is_not_an_array_of_events_is_400(client: FlaskClient, body: bytes) -> None:
    response = _post(client, body)
    assert response.status_code == 400 and response.json["error"] == "malformed"


def test_unknown_portals_and_ignored_events_are_200(
    client: FlaskClient, app: Flask, tenant_id: str
) -> None:
    stranger = {**_event(1, 1000), "portalId": 999}
    assert _post(client, json.dumps([stranger]).encode()).status_code == 200
    unsupported = _event(2, 1000, kind="conversation.newMessage")
    assert _post(client, json.dumps([unsupported]).encode()).status_code == 200
    assert _inbox(app, tenant_id) == []


def test_events_about_records_no_deal_links_yet_are_kept_unresolved(
    client: FlaskClient, app: Flask, tenant_id: str
) -> None:
    contact = {**_event(3, 555, kind="contact.propertyChange"), "propertyName": "jobtitle"}
    assert _post(client, json.dumps([contact]).encode()).status_code == 202
    (row,) = _inbox(app, tenant_id)
    assert (row.status, row.deal_ids) == ("unresolved", [])


def test_redis_down_still_acknowledges_and_keeps_the_event(app: Flask, tenant_id: str) -> None:
    services = app.extensions["dealradar"]
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    client = create_app(services.config, store=services.store, redis=dead).test_client()
    response = _post(client, json.dumps([_event(1, 1000)]).encode())
    assert response.status_code == 202
    (row,) = _inbox(app, tenant_id)
    assert row.status == "pending", "the sweeper will enqueue it"


@pytest.mark.parametrize(
    ("path", "content_type", "source"),
    [
        ("/webhooks/hubspot", "application/json", "hubspot"),
        ("/webhooks/events/T-1", "application/json", "events"),
        ("/webhooks/salesforce/outbound", "text/xml", "salesforce"),
    ],
)
def test_bodies_over_one_mebibyte_are_413_and_counted(
    client: FlaskClient, path: str, content_type: str, source: str
) -> None:
    response = client.post(
        path, data=b"[" + b" " * (1024 * 1024) + b"]", content_type=content_type
    )
    assert response.status_code == 413
    if source == "salesforce":  # Salesforce reads a SOAP fault
        assert b"<soapenv:Fault>" in response.data and b"over 1 MiB" in response.data
    else:
        assert response.get_json()["error"] == "too_large"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'dealradar_webhooks_refused_total{{reason="too_large",source="{source}"}} 1.0' in (
        metrics
    )


def test_a_database_that_cannot_take_the_events_is_503_so_hubspot_retries(app: Flask) -> None:
    from connector.store.db import Store

    services = app.extensions["dealradar"]
    down = Store("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})
    client = create_app(services.config, store=down, redis=services.redis).test_client()
    response = _post(client, json.dumps([_event(1, 1000)]).encode())
    assert (response.status_code, response.json["error"]) == (503, "database_unavailable")


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    body = json.dumps([_event(1, 1000)]).encode()
    headers = v3_headers(SECRET, "POST", URI, body, int(time.time() * 1000))
    response = client.post(
        "/webhooks/hubspot", data=body, headers=headers, content_type="text/plain"
    )
    assert response.status_code == 415
