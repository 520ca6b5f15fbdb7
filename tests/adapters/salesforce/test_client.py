"""The Salesforce client over real HTTPS: the org's certificate, token renewal on
INVALID_SESSION_ID, Sforce-Limit-Info, the daily allowance, queries too long for a URI, child
results larger than a batch, and Salesforce's errors in adapters.errors' words."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import ApiUsage
from adapters.errors import InvalidRequest, NotFound, PermissionDenied, RateLimited, Transient
from adapters.salesforce.client import DAILY_LIMIT_RETRY, TIMEOUT, SalesforceClient
from sandbox.salesforce import SalesforceState, ServerHandle, make_certificate
from tests.adapters.salesforce.conftest import OrgTokens


def _opportunity(org: SalesforceState, name: str = "Acme renewal") -> str:
    return org.insert(
        "Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2030-01-01"}
    )


def test_every_answer_reports_the_orgs_usage(
    org: SalesforceState, client: SalesforceClient, usage: list[ApiUsage]
) -> None:
    client.query("SELECT Id FROM Opportunity", "query Opportunity")
    client.query("SELECT Id FROM Account", "query Account")
    used, limit = org.api_usage()
    assert usage[-1] == ApiUsage(used, limit) == client.usage
    assert [u.used for u in usage] == [used - 1, used]


def test_an_expired_session_is_renewed_once_through_the_refresh_grant(
    org: SalesforceState, client: SalesforceClient, tokens: OrgTokens
) -> None:
    _opportunity(org)
    before = tokens.current()
    org.expire_sessions()
    rows = client.query("SELECT Id, Name FROM Opportunity", "query Opportunity")
    assert [r["Name"] for r in rows] == ["Acme renewal"]
    assert tokens.renewed == 1 and tokens.current() != before
    assert tokens.detail("refresh_token"), "Salesforce sends no new refresh token: ours stays"


def test_a_rotated_refresh_token_replaces_the_old_one(
    org: SalesforceState, client: SalesforceClient, tokens: OrgTokens
) -> None:
    """With Refresh Token Rotation on, each refresh answers a new refresh token and the old one
    is revoked: keeping the old one would fail the second refresh and suspend the tenant."""
    org.rotate_refresh_tokens = True
    _opportunity(org)
    first = tokens.detail("refresh_token")
    for renewal in (1, 2):
        org.expire_sessions()
        rows = client.query("SELECT Id, Name FROM Opportunity", "query Opportunity")
        assert [r["Name"] for r in rows] == ["Acme renewal"]
        assert tokens.renewed == renewal
    assert tokens.detail("refresh_token") not in ("", first)


def test_a_revoked_refresh_token_means_install_again(
    org: SalesforceState, client: SalesforceClient, tokens: OrgTokens
) -> None:
    org.revoke(tokens.tokens["refresh_token"])
    org.expire_sessions()
    with pytest.raises(PermissionDenied, match="install Deal Radar again"):
        client.query("SELECT Id FROM Opportunity", "query Opportunity")


def test_the_daily_allowance_spent_is_rate_limited_and_reported_full(
    org: SalesforceState, client: SalesforceClient, usage: list[ApiUsage]
) -> None:
    client.query("SELECT Id FROM Opportunity", "query Opportunity")
    org.set_daily_limit(org.api_usage()[0] + 1)
    client.query("SELECT Id FROM Opportunity", "query Opportunity")
    with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED") as refused:
        client.query("SELECT Id FROM Opportunity", "query Opportunity")
    assert refused.value.retry_after == DAILY_LIMIT_RETRY
    assert usage[-1].used == usage[-1].limit == org.api_usage()[1]
    assert client.calls["query Opportunity"] == 3, "a spent allowance is not retried in a call"


def test_a_query_too_long_for_a_uri_goes_through_composite(
    org: SalesforceState, client: SalesforceClient
) -> None:
    ids = [_opportunity(org, f"Deal {i}") for i in range(800)]
    soql = "SELECT Id FROM Opportunity WHERE Id IN ({})".format(", ".join(f"'{i}'" for i in ids))
    assert len(soql) > 16_384, "a GET would be refused with 414"
    rows = client.query(soql, "query Opportunity")
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    assert org.counts() == {"POST composite": 1}


def test_child_results_larger_than_a_batch_are_read_to_their_end(
    org: SalesforceState, client: SalesforceClient
) -> None:
    opp = _opportunity(org)
    for i in range(2_100):
        org.insert("Task", {"WhatId": opp, "Subject": f"t{i}", "Status": "Completed",
                            "Priority": "Normal"})  # fmt: skip
    rows = client.query("SELECT Id, (SELECT Id FROM Tasks) FROM Opportunity", "query Opportunity")
    tasks = rows[0]["Tasks"]
    assert len(tasks["records"]) == 2_100 and tasks["done"]
    assert client.calls["query Opportunity (children Tasks)"] == 1


def test_salesforce_errors_in_our_words(org: SalesforceState, client: SalesforceClient) -> None:
    with pytest.raises(NotFound):
        client.call(
            "read Opportunity",
            lambda sf: sf.restful(f"sobjects/Opportunity/006{'0' * 15}", timeout=TIMEOUT),
        )
    with pytest.raises(InvalidRequest, match="INVALID_FIELD"):
        client.query("SELECT Nonsense__c FROM Opportunity", "query Opportunity")


def test_the_orgs_certificate_is_verified(
    org: SalesforceState, server: ServerHandle, tokens: OrgTokens, tmp_path: Path
) -> None:
    other, _key = make_certificate(tmp_path)  # a certificate the org does not use
    stranger = SalesforceClient(
        org.org_id, tokens, ca_bundle=str(other), sleep=lambda s: None, attempts=2
    )
    with pytest.raises(Transient, match="SSLError"):
        stranger.query("SELECT Id FROM Opportunity", "query Opportunity")
    assert org.counts() == {}, "nothing reached the org"


def test_limits_reads_the_usage_in_one_call(org: SalesforceState, client: SalesforceClient) -> None:
    got = client.limits()
    assert got == ApiUsage(*org.api_usage())
    assert org.counts() == {"GET limits": 1}
