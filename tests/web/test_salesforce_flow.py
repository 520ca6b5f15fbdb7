"""POST /webhooks/salesforce/events: a Flow callout, authenticated by the tenant's API key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from connector.store.tenants import create_tenant
from tests.web.pending import pending_deals

OPP = "0065e00000GhIjKAAV"


@pytest.fixture
def tenant(app: Flask) -> tuple[str, str]:
    store = app.extensions["dealradar"].store
    t, key = create_tenant(
        store, crm="salesforce", account_id="00D5e000000Hxb2", now=datetime.now(UTC)
    )
    return t.id, key


def _post(client: FlaskClient, key: str, doc: object):  # type: ignore[no-untyped-def]
    return client.post(
        "/webhooks/salesforce/events", data=json.dumps(doc),
        headers={"Authorization": f"Bearer {key}"}, content_type="application/json",
    )  # fmt: skip


def test_a_task_on_an_opportunity_queues_the_deal_once(
    client: FlaskClient, redis: Redis, tenant: tuple[str, str]
) -> None:
    tenant_id, key = tenant
    doc = {"events": [{"id": "e-1", "object": "Task", "record_id": "00T5e00000AbCdEAAZ",
                       "opportunity_id": OPP}]}  # fmt: skip
    assert _post(client, key, doc).status_code == 202
    assert _post(client, key, doc).status_code == 200, "the Flow retried the same event"
    assert pending_deals(redis, tenant_id, {OPP}) == {OPP}


def test_another_crms_key_or_no_key_is_401(client: FlaskClient, app: Flask) -> None:
    store = app.extensions["dealradar"].store
    _, hubspot_key = create_tenant(store, crm="hubspot", account_id="9", now=datetime.now(UTC))
    doc = {"events": [{"id": "e", "object": "Opportunity", "record_id": OPP}]}
    assert _post(client, hubspot_key, doc).status_code == 401
    assert _post(client, "drk_nope", doc).status_code == 401
    assert client.post("/webhooks/salesforce/events", json=doc).status_code == 401


@pytest.mark.parametrize(
    "doc",
    [{"events": []}, {"events": [{"id": "e", "object": "Lead", "record_id": OPP}]},
     {"events": [{"id": "e", "object": "Opportunity", "record_id": "nope"}]}, [1]],
)  # fmt: skip
def test_malformed_events_are_400(
    client: FlaskClient, tenant: tuple[str, str], doc: object
) -> None:
    assert _post(client, tenant[1], doc).status_code == 400


def test_a_task_on_no_opportunity_or_on_an_account_is_taken_without_queueing_it_as_a_deal(
    client: FlaskClient, redis: Redis, tenant: tuple[str, str]
) -> None:
    """The README's Flow sends "opportunity_id": "{!$Record.WhatId}", which is "" for a call
    logged on a contact alone and an account's id for one logged on an account: neither may
    refuse the delivery (the Flow would fault and its other events be lost), neither is a deal."""
    tenant_id, key = tenant
    account = "0015e00000AbCdEAAZ"
    doc = {"events": [
        {"id": "e-1", "object": "Opportunity", "record_id": OPP},
        {"id": "e-2", "object": "Task", "record_id": "00T5e00000AbCdEAAZ", "opportunity_id": ""},
        {"id": "e-3", "object": "Task", "record_id": "00T5e00000AbCdFAAZ",
         "opportunity_id": account},
    ]}  # fmt: skip
    assert _post(client, key, doc).status_code == 202
    assert pending_deals(redis, tenant_id, {OPP, account}) == {OPP}
