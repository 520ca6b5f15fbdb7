"""POST /webhooks/events/<tenant id>: Standard Webhooks signatures with the tenant's own secret."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from adapters.standard_webhooks import sign
from connector.cli import main
from connector.store.credentials import WEBHOOK_SECRET, save_tokens
from connector.store.models import InboxEvent
from connector.store.tenants import create_tenant
from tests.web.pending import pending_deals

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def tenant_id(app: Flask) -> str:
    services = app.extensions["dealradar"]
    tenant, _ = create_tenant(services.store, crm="hubspot", account_id="1", now=datetime.now(UTC))
    save_tokens(
        services.store, services.box, tenant.id, {"secret": SECRET}, None, datetime.now(UTC),
        name=WEBHOOK_SECRET,
    )  # fmt: skip
    return tenant.id


def _post(
    client: FlaskClient,
    tenant_id: str,
    doc: object,
    *,
    msg_id: str = "msg_1",
    secret: str = SECRET,
    ts: int | None = None,
):  # type: ignore[no-untyped-def]
    body = json.dumps(doc).encode()
    ts = int(time.time()) if ts is None else ts
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(msg_id=msg_id, timestamp=ts, body=body, secret=secret),
    }
    return client.post(f"/webhooks/events/{tenant_id}", data=body, headers=headers,
                       content_type="application/json")  # fmt: skip


def test_a_signed_event_is_queued_once(
    client: FlaskClient, app: Flask, redis: Redis, tenant_id: str
) -> None:
    doc = {"type": "deal.updated", "data": {"deal_id": "d-42"}}
    assert _post(client, tenant_id, doc).status_code == 202
    assert _post(client, tenant_id, doc).status_code == 200, "the same webhook-id again"
    assert pending_deals(redis, tenant_id, {"d-42"}) == {"d-42"}
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.dedupe_key)).all() == ["std:msg_1"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "whsec_" + "A" * 32}, "signature_mismatch"),
        ({"ts": int(time.time()) - 3600}, "signature_stale"),
    ],
)
def test_bad_signatures_are_401(
    client: FlaskClient, tenant_id: str, kwargs: dict, reason: str
) -> None:
    response = _post(
        client, tenant_id, {"type": "deal.updated", "data": {"deal_id": "x"}}, **kwargs
    )
    assert (response.status_code, response.json["error"]) == (401, reason)


@pytest.mark.parametrize("tenant_id", ["no-such-tenant", "nul%00here"])
def test_a_tenant_without_a_secret_or_an_unknown_tenant_is_401(
    client: FlaskClient, tenant_id: str
) -> None:
    response = _post(client, tenant_id, {"type": "deal.updated", "data": {"deal_id": "x"}})
    assert (response.status_code, response.json["error"]) == (401, "signature_no_secret")


@pytest.mark.parametrize(
    "doc",
    [
        [1],
        {"type": "deal.exploded", "data": {"deal_id": "x"}},
        {"type": "deal.updated", "data": {}},
        {"type": "deal.updated", "data": {"deal_id": "d\u0000x"}},  # no database stores it
        {"type": "deal.updated", "data": {"deal_ids": ["d-1", "d\ud83d"]}},
        {"type": "deal.updated", "data": {"deal_id": "x" * 256}},
    ],
)
def test_a_signed_but_malformed_event_is_400(
    client: FlaskClient, tenant_id: str, doc: object
) -> None:
    assert _post(client, tenant_id, doc).status_code == 400


def test_the_command_issues_a_secret_once(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import SECRET_KEY

    url = f"sqlite:///{tmp_path / 'dr.db'}"
    monkeypatch.setenv("DEALRADAR_SECRET_KEYS", SECRET_KEY)
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert (
        main(["tenants", "add", "--crm", "test", "--account-id", "a", "--database-url", url]) == 0
    )
    tenant = capsys.readouterr().out.split("tenant ")[1].split()[0]
    assert main(["tenants", "webhook-secret", tenant, "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "whsec_" in out and "will not be shown again" in out
    assert main(["tenants", "webhook-secret", "nope", "--database-url", url]) == 2
    capsys.readouterr()
    # Another key than the app's: the secret it would seal could never be read by the app.
    monkeypatch.setenv("DEALRADAR_SECRET_KEYS", Fernet.generate_key().decode())
    assert main(["tenants", "webhook-secret", tenant, "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "does not open this tenant's stored secrets" in err and "nothing was changed" in err
    monkeypatch.setenv("DEALRADAR_SECRET_KEYS", SECRET_KEY)
    assert main(["tenants", "webhook-secret", tenant, "--database-url", url]) == 0, "unchanged"
