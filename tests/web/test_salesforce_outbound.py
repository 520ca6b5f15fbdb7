"""POST /webhooks/salesforce/outbound: Ack only once persisted; unknown orgs and bad XML refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from connector.store.models import InboxEvent
from connector.store.tenants import create_tenant
from tests.web.pending import pending_deals

FIXTURES = Path(__file__).parents[1] / "adapters" / "salesforce" / "fixtures"
ORG_15 = "00D5e000000Hxb2"  # the fixture's org id, 18 characters there


def _post(client: FlaskClient, name: str, content_type: str = "text/xml; charset=utf-8"):  # type: ignore[no-untyped-def]
    return client.post(
        "/webhooks/salesforce/outbound",
        data=(FIXTURES / name).read_bytes(),
        content_type=content_type,
    )


@pytest.fixture
def tenant_id(app: Flask) -> str:
    store = app.extensions["dealradar"].store
    tenant, _ = create_tenant(store, crm="salesforce", account_id=ORG_15, now=datetime.now(UTC))
    return tenant.id


def _inbox(app: Flask, tenant_id: str) -> list[InboxEvent]:
    with app.extensions["dealradar"].store.tenant(tenant_id) as s:
        return list(s.scalars(select(InboxEvent)))


def test_a_message_is_persisted_queued_and_acknowledged(
    client: FlaskClient, app: Flask, redis: Redis, tenant_id: str
) -> None:
    response = _post(client, "outbound__opportunity.xml")
    assert response.status_code == 200
    assert b"<Ack>true</Ack>" in response.data
    (row,) = _inbox(app, tenant_id)
    assert row.deal_ids == ["0065e00000GhIjKAAV"]
    assert pending_deals(redis, tenant_id, {"0065e00000GhIjKAAV"}) == {"0065e00000GhIjKAAV"}
    assert row.body == (FIXTURES / "outbound__opportunity.xml").read_text(encoding="utf-8"), (
        "the message as Salesforce sent it: what the adapter reads again for the events whose "
        "deal it must find later"
    )
    again = _post(client, "outbound__opportunity.xml")  # Salesforce redelivers
    assert again.status_code == 200 and b"<Ack>true</Ack>" in again.data
    assert len(_inbox(app, tenant_id)) == 1


def test_an_unknown_org_gets_a_soap_fault(client: FlaskClient, app: Flask) -> None:
    response = _post(client, "outbound__opportunity.xml")
    assert response.status_code == 403
    assert b"Fault" in response.data and b"<Ack>true</Ack>" not in response.data


@pytest.mark.parametrize(
    "fixture",
    [
        "outbound__doctype_entity_bomb.xml",
        "outbound__external_entity.xml",
        "outbound__truncated.xml",
    ],
)
def test_unsafe_or_broken_xml_is_400_never_500(
    client: FlaskClient, app: Flask, tenant_id: str, fixture: str
) -> None:
    response = _post(client, fixture)
    assert response.status_code == 400 and b"Fault" in response.data
    assert _inbox(app, tenant_id) == []


def test_wrong_content_type_is_415(client: FlaskClient, tenant_id: str) -> None:
    assert _post(client, "outbound__opportunity.xml", "application/json").status_code == 415


def test_a_database_that_is_down_gets_the_soap_fault_salesforce_retries(app: Flask) -> None:
    from connector.app import create_app
    from connector.store.db import Store

    services = app.extensions["dealradar"]
    down = Store("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})
    client = create_app(services.config, store=down, redis=services.redis).test_client()
    response = _post(client, "outbound__opportunity.xml")
    assert response.status_code == 503
    assert response.mimetype == "text/xml" and b"Fault" in response.data
    assert b"<Ack>true</Ack>" not in response.data
