"""`/api/v1/hooks` and `/api/v1/slack-webhooks`: subscriptions and Slack webhooks by API key,
tenant by tenant, with every URL checked by the SSRF policy (names resolve through the test
resolver in tests/web/conftest.py, never real DNS), and answers as the OpenAPI document says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.store.models import Credential, Hook, HookDelivery
from connector.store.secrets import TokenBox
from connector.store.tenants import create_tenant
from tests.web.test_openapi import CHECKS, schema

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TARGET = "https://hooks.example.com/catch/123/abc"


def _key(app: Flask, account: str = "acct-1") -> tuple[str, dict[str, str]]:
    tenant, key = create_tenant(
        app.extensions["dealradar"].store, crm="test", account_id=account, now=NOW
    )
    return tenant.id, {"Authorization": f"Bearer {key}"}


def test_subscribe_list_and_unsubscribe(app: Flask, client: FlaskClient) -> None:
    tenant_id, auth = _key(app)
    created = client.post(
        "/api/v1/hooks",
        json={
            "target_url": TARGET,
            "events": ["alert.ended", "alert.started"],
            "description": "Zap 42",
        },
        headers=auth,
    )
    assert created.status_code == 201, created.get_json()
    hook = created.get_json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert created.headers["Cache-Control"] == "no-store", "the secret is kept by no cache"
    assert hook["events"] == ["alert.started", "alert.ended"]
    assert hook["status"] == "active" and hook["description"] == "Zap 42"
    listed = client.get("/api/v1/hooks", headers=auth).get_json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0], "the secret is shown once"
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        stored = s.scalars(select(Hook)).one()
    assert hook["secret"] not in stored.secret, "sealed at rest"
    assert client.delete(f"/api/v1/hooks/{hook['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/hooks", headers=auth).get_json()["items"] == []
    gone = client.delete(f"/api/v1/hooks/{hook['id']}", headers=auth)
    assert gone.status_code == 404 and "no hook" in gone.get_json()["detail"]
    assert client.delete("/api/v1/slack-webhooks/a%00b", headers=auth).status_code == 404


def test_a_hook_shows_how_its_deliveries_fare(app: Flask, client: FlaskClient) -> None:
    """A target failing for hours said nothing in the listing ("active"): its deliveries
    waiting, given up, the last taken and the latest error show there."""
    tenant_id, auth = _key(app)
    hook = client.post("/api/v1/hooks", json={"target_url": TARGET, "events": ["alert.started"]},
                       headers=auth).get_json()  # fmt: skip
    assert hook["deliveries"] == {"pending": 0, "failed": 0, "last_delivered_at": None,
                                  "last_error": None}  # fmt: skip
    rows = [("done", None, NOW), ("failed", "503 Service Unavailable", None),
            ("pending", "timed out after 10 s", None), ("pending", None, None)]  # fmt: skip
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        for n, (status, error, delivered) in enumerate(rows):
            s.add(HookDelivery(tenant_id=tenant_id, hook_id=hook["id"], event_key=f"e{n}",
                               event_type="alert.started", msg_id=f"m{n}", body="{}",
                               status=status, attempts=1, last_error=error, created_at=NOW,
                               due_at=NOW, delivered_at=delivered))  # fmt: skip
    [listed] = client.get("/api/v1/hooks", headers=auth).get_json()["items"]
    assert listed["deliveries"] == {
        "pending": 2, "failed": 1, "last_delivered_at": "2026-11-25T08:00:00+00:00",
        "last_error": "timed out after 10 s",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.0.0.5/hook", "private address"),
        ("https://intranet.example.com/hook", "resolves to a private address"),
        ("https://rebind.example.com/", "metadata"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://127.0.0.1:8080/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("http://hooks.example.com/hook", "only https"),
        ("https://unknown.example.com/hook", "cannot be resolved"),
    ],
)
def test_unsafe_targets_are_refused(app: Flask, client: FlaskClient, url: str, why: str) -> None:
    _, auth = _key(app)
    refused = client.post(
        "/api/v1/hooks", json={"target_url": url, "events": ["alert.started"]}, headers=auth
    )
    assert refused.status_code == 422
    assert why in refused.get_json()["errors"]["target_url"][0]
    assert "10.1.2.3" not in refused.get_data(as_text=True)  # the name's address is ours alone
    assert client.get("/api/v1/hooks", headers=auth).get_json()["items"] == []


def test_bad_bodies_and_missing_keys(app: Flask, client: FlaskClient) -> None:
    _, auth = _key(app)
    bad = client.post(
        "/api/v1/hooks", json={"target_url": TARGET, "events": ["deal.won"]}, headers=auth
    )
    assert bad.status_code == 422 and "events.0" in bad.get_json()["errors"]
    empty = client.post("/api/v1/hooks", json={"target_url": TARGET, "events": []}, headers=auth)
    assert empty.status_code == 422
    assert client.post("/api/v1/hooks", json={"target_url": TARGET}).status_code == 401
    assert client.get("/api/v1/hooks").status_code == 401


def test_a_tenant_sees_and_deletes_only_its_own_hooks(app: Flask, client: FlaskClient) -> None:
    _, mine = _key(app, "acct-1")
    _, theirs = _key(app, "acct-2")
    hook = client.post(
        "/api/v1/hooks", json={"target_url": TARGET, "events": ["alert.started"]}, headers=mine
    ).get_json()
    assert client.get("/api/v1/hooks", headers=theirs).get_json()["items"] == []
    assert client.delete(f"/api/v1/hooks/{hook['id']}", headers=theirs).status_code == 404
    assert len(client.get("/api/v1/hooks", headers=mine).get_json()["items"]) == 1


def test_slack_webhooks_are_stored_sealed_and_never_shown(app: Flask, client: FlaskClient) -> None:
    tenant_id, auth = _key(app)
    url = "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"
    put = client.put("/api/v1/slack-webhooks/sales-team", json={"url": url}, headers=auth)
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["host"] == "hooks.example.com"
    listed = client.get("/api/v1/slack-webhooks", headers=auth).get_json()["items"]
    assert [(w["name"], w["host"]) for w in listed] == [("sales-team", "hooks.example.com")]
    assert "SECRET" not in str(listed)
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        sealed = s.scalars(select(Credential.ciphertext)).one()
    assert "SECRET" not in sealed
    private = client.put(
        "/api/v1/slack-webhooks/ops", json={"url": "https://10.0.0.9/x"}, headers=auth
    )
    assert private.status_code == 422 and "private" in private.get_json()["errors"]["url"][0]
    named = client.put("/api/v1/slack-webhooks/Bad%20Name", json={"url": url}, headers=auth)
    assert named.status_code == 422 and "name" in named.get_json()["errors"]
    assert client.delete("/api/v1/slack-webhooks/sales-team", headers=auth).status_code == 204
    assert client.delete("/api/v1/slack-webhooks/sales-team", headers=auth).status_code == 404
    assert client.get("/api/v1/slack-webhooks", headers=auth).get_json()["items"] == []


def test_a_webhook_sealed_under_a_dropped_key_is_listed_with_how_to_mend_it(
    app: Flask, client: FlaskClient
) -> None:
    """After a key rotation that dropped a key too soon, the whole list answered 500: every
    webhook is listed, the unreadable one saying so and how to store it again."""
    tenant_id, auth = _key(app)
    url = "https://hooks.example.com/services/T000/B000/XXXX"
    for name in ("sales", "support"):
        assert client.put(f"/api/v1/slack-webhooks/{name}", json={"url": url},
                          headers=auth).status_code == 200  # fmt: skip
    lost_key = TokenBox((Fernet.generate_key().decode(),)).seal(tenant_id, {"url": url})
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        s.execute(update(Credential).where(Credential.name == "slack:sales")
                  .values(ciphertext=lost_key))  # fmt: skip
    listing = schema["/api/v1/slack-webhooks"]["GET"].Case()
    listed = listing.call_and_validate(app=app, headers=auth, checks=CHECKS)  # as documented
    assert listed.status_code == 200
    sales, support = listed.json()["items"]
    assert (sales["name"], sales["host"]) == ("sales", None)
    assert "cannot be read" in sales["problem"]
    assert "PUT /api/v1/slack-webhooks/sales" in sales["problem"]
    assert (support["host"], support["problem"]) == ("hooks.example.com", None)
    assert client.put("/api/v1/slack-webhooks/sales", json={"url": url},
                      headers=auth).status_code == 200  # fmt: skip
    mended = client.get("/api/v1/slack-webhooks", headers=auth).get_json()["items"]
    assert [w["problem"] for w in mended] == [None, None]


def test_stored_hooks_and_webhooks_answer_as_documented(app: Flask) -> None:
    """Generated requests almost never name a resolvable target: real ones, through the
    schemathesis checks of tests/web/test_openapi.py."""
    _, auth = _key(app)
    calls = [
        ("/api/v1/hooks", "POST", {}, {"target_url": TARGET, "events": ["alert.started"]}),
        ("/api/v1/hooks", "GET", {}, None),
        ("/api/v1/slack-webhooks/{name}", "PUT", {"name": "team"}, {"url": TARGET}),
        ("/api/v1/slack-webhooks", "GET", {}, None),
        ("/api/v1/slack-webhooks/{name}", "DELETE", {"name": "team"}, None),
    ]
    created = None
    for path, method, params, body in calls:
        case = schema[path][method].Case(
            path_parameters=params,
            **({"body": body, "media_type": "application/json"} if body else {}),
        )
        response = case.call_and_validate(app=app, headers=auth, checks=CHECKS)
        assert response.status_code < 300, (method, path, response.text)
        created = created or (response.json() if method == "POST" else None)
    assert created is not None
    case = schema["/api/v1/hooks/{hook_id}"]["DELETE"].Case(
        path_parameters={"hook_id": created["id"]}
    )
    assert case.call_and_validate(app=app, headers=auth, checks=CHECKS).status_code == 204
