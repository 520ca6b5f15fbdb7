"""Every SOQL statement the adapter sends, as the emulator's real parser and schema take them:
captured from the wire while the adapter provisions, lists, pulls, places events and acts on a
generated org; then what an unsupported statement gives (a clear MALFORMED_QUERY naming what
is not supported, as InvalidRequest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from adapters.errors import InvalidRequest
from adapters.salesforce.adapter import SalesforceAdapter
from adapters.salesforce.client import SalesforceClient
from adapters.salesforce.provision import provision
from sandbox.salesforce import SalesforceState
from sandbox.salesforce_seed import load_into_salesforce
from sandbox.seed import generate
from tests.adapters.salesforce.conftest import Clock


def _spy(client: SalesforceClient) -> list[tuple[str, int]]:
    """(SOQL, HTTP status) of every query the client sends, GET or inside a Composite."""
    sent: list[tuple[str, int]] = []
    real = client.session.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        response = real(method, url, **kwargs)
        q = (kwargs.get("params") or {}).get("q")
        if q:
            sent.append((q, response.status_code))
        for sub in (kwargs.get("json") or {}).get("compositeRequest", ()):
            found = parse_qs(urlsplit(sub["url"]).query).get("q")
            if found:
                sent.append((unquote(found[0]), response.status_code))
        return response

    client.session.request = request  # type: ignore[method-assign]
    return sent


def test_every_query_the_adapter_sends_is_accepted(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter, clock: Clock
) -> None:
    load_into_salesforce(org, generate(40, 3, clock()))
    sent = _spy(client)
    provision(client)
    listed = adapter.changed_since(None).deal_ids
    pulled = adapter.pull(listed)
    assert len(pulled.bundles) == 40
    assert any(a.kind == "meeting" for b in pulled.bundles for a in b.activities)
    assert any(a.cc for b in pulled.bundles for a in b.activities)
    opp = listed[0]
    with org.lock:
        task = next(t["Id"] for t in org.live("Task") if t["WhatId"] == opp)
        contact = next(r["ContactId"] for r in org.live("OpportunityContactRole"))
    flow = json.dumps({"events": [
        {"id": "e1", "object": "Task", "record_id": task},
        {"id": "e2", "object": "Contact", "record_id": contact},
    ]})  # fmt: skip
    assert opp in adapter.deals_for_events([flow])[0]
    adapter.create_task(opp, owner_id=None, subject="S", body="B",
                        due=datetime.now(UTC) + timedelta(days=1), key="k")  # fmt: skip
    for _ in range(2):  # the second finds the note, and checks its link
        adapter.create_note(opp, body="B", at=datetime.now(UTC), key="k")
    kinds = {q.split(" FROM ")[1].split()[0] for q, _ in sent if " FROM " in q}
    assert kinds >= {
        "CustomField", "PermissionSet", "PermissionSetAssignment", "FieldPermissions",
        "Opportunity", "EventRelation", "TaskRelation", "EmailMessageRelation", "Task",
        "OpportunityContactRole", "ContentNote", "ContentDocumentLink",
    }, kinds  # fmt: skip
    refused = [(q, status) for q, status in sent if status >= 300]
    assert refused == []


@pytest.mark.parametrize(
    ("soql", "named"),
    [
        ("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName", "COUNT"),
        ("SELECT Id FROM Opportunity GROUP BY StageName", "GROUP BY"),
        ("SELECT FIELDS(ALL) FROM Opportunity LIMIT 200", "FIELDS"),
        ("SELECT Id FROM Opportunity WITH SECURITY_ENFORCED", "WITH"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = THIS_QUARTER", "THIS_QUARTER"),
    ],
)
def test_an_unsupported_query_is_a_clear_invalid_request(
    client: SalesforceClient, soql: str, named: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        client.query(soql, "query Opportunity")
    message = str(refused.value)
    assert "400 MALFORMED_QUERY" in message and named in message
    assert "not supported" in message
