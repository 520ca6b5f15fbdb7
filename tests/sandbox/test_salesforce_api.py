"""The Salesforce emulator's REST API through simple-salesforce over real HTTPS: records,
sObject Collections with partial failures, the daily allowance and its header, expired
sessions, and the OAuth web-server flow with PKCE."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import SalesforceState, ServerHandle
from tests.sandbox.conftest import CLIENT_SECRET, Clock, https_session

REDIRECT = "https://dealradar.example/oauth/salesforce/callback"


@pytest.fixture
def account(sf_state: SalesforceState) -> str:
    return sf_state.insert("Account", {"Name": "Acme"})


def _opportunity(sf: Salesforce, account: str, **extra: object) -> str:
    values = {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2027-01-31"}
    return sf.Opportunity.create({**values, "AccountId": account, **extra})["id"]


def test_create_get_update_delete(sf: Salesforce, account: str, clock: Clock) -> None:
    created = sf.Opportunity.create(
        {
            "Name": "Acme",
            "StageName": "Prospecting",
            "CloseDate": "2027-01-31",
            "AccountId": account,
        }
    )
    assert created["success"] is True and created["errors"] == []
    opp_id = created["id"]
    assert len(opp_id) == 18 and opp_id.startswith("006")
    record = sf.Opportunity.get(opp_id)
    assert record["Probability"] == 10 and record["IsClosed"] is False
    assert record["CreatedDate"] == record["SystemModstamp"]
    clock.advance(minutes=5)
    assert sf.Opportunity.update(opp_id[:15], {"StageName": "Closed Won", "Amount": 1200.5}) == 204
    record = sf.Opportunity.get(opp_id)
    assert (record["IsClosed"], record["IsWon"], record["Probability"]) == (True, True, 100)
    assert record["SystemModstamp"] > record["CreatedDate"]
    history = sf.query(
        "SELECT StageName, Amount FROM OpportunityHistory "
        f"WHERE OpportunityId = '{opp_id}' ORDER BY CreatedDate"
    )
    assert [(h["StageName"], h["Amount"]) for h in history["records"]] == [
        ("Prospecting", None),
        ("Closed Won", 1200.5),
    ]
    assert sf.Opportunity.delete(opp_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(opp_id)


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        ({"Name": "x", "CloseDate": "2027-01-31"}, "REQUIRED_FIELD_MISSING", "StageName"),
        (
            {"Name": "x", "CloseDate": "2027-01-31", "StageName": "Dreaming"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "StageName",
        ),
        (
            {"Name": "x", "CloseDate": "2027-01-31", "StageName": "Prospecting", "Score__c": 1},
            "INVALID_FIELD",
            "Score__c",
        ),
        (
            {"Name": "x", "CloseDate": "2027-01-31", "StageName": "Prospecting", "IsWon": True},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "IsWon",
        ),
        (
            {
                "Name": "x",
                "CloseDate": "2027-01-31",
                "StageName": "Prospecting",
                "AccountId": "003000000000001",
            },
            "INVALID_CROSS_REFERENCE_KEY",
            "AccountId",
        ),
    ],
)
def test_bad_records_are_refused_with_salesforce_codes(
    sf: Salesforce, values: dict, code: str, field: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.create(values)
    error = refused.value.content[0]
    assert error["errorCode"] == code
    assert field in error["message"] or field in error.get("fields", [])


def test_collections_report_each_record(
    sf: Salesforce, account: str, sf_state: SalesforceState
) -> None:
    good = [_opportunity(sf, account, Name=f"Deal {i}") for i in range(3)]
    gone = _opportunity(sf, account, Name="Gone")
    sf.Opportunity.delete(gone)
    records = [
        {"attributes": {"type": "Opportunity"}, "id": good[0], "NextStep": "Call the CFO"},
        {"attributes": {"type": "Opportunity"}, "id": good[1], "StageName": "Dreaming"},
        {"attributes": {"type": "Opportunity"}, "id": gone, "NextStep": "x"},
        {"attributes": {"type": "Opportunity"}, "id": good[2], "Amount": 10},
    ]
    results = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert [r["success"] for r in results] == [True, False, False, True]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[1]["errors"][0]["fields"] == ["StageName"]
    assert results[2]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert sf.Opportunity.get(good[0])["NextStep"] == "Call the CFO"
    assert sf.Opportunity.get(good[2])["Amount"] == 10
    # All or none: one bad record and nothing is saved.
    records[1]["StageName"] = "Dreaming"
    records[0]["NextStep"] = "Changed"
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"allOrNone": True, "records": [records[0], records[1]]},
    )
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.Opportunity.get(good[0])["NextStep"] == "Call the CFO"


def test_collections_create_and_the_200_record_cap(sf: Salesforce, account: str) -> None:
    records = [
        {
            "attributes": {"type": "Task"},
            "Subject": f"T{i}",
            "Status": "Not Started",
            "Priority": "Normal",
        }
        for i in range(200)
    ]
    records[7] = {"attributes": {"type": "Task"}, "Subject": "no status"}
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert sum(r["success"] for r in results) == 199
    assert results[7]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert all(r["id"].startswith("00T") for i, r in enumerate(results) if i != 7)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite/sobjects", method="POST", json={"records": records + records[:1]})
    assert refused.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_daily_allowance_and_the_limit_header(
    sf: Salesforce, sf_state: SalesforceState, sf_server: ServerHandle, clock: Clock
) -> None:
    sf_state.set_daily_limit(5)
    for n in range(1, 6):
        sf.query("SELECT Id FROM Account")
        assert sf.api_usage["api-usage"].used == n
        assert sf.api_usage["api-usage"].total == 5
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    raw = https_session(sf_server).get(
        f"{sf_server.url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {sf.session_id}"},
    )
    assert raw.status_code == 403
    assert raw.headers["Sforce-Limit-Info"] == "api-usage=5/5"
    # A rolling 24 hours: the calls age out and work resumes (with a new session: the old
    # one timed out meanwhile).
    clock.advance(hours=24, seconds=1)
    sf = Salesforce(
        instance_url=sf_server.url,
        session_id=sf_state.issue_session().access_token,
        session=https_session(sf_server),
    )
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 1
    assert sf_state.counts()["GET query"] == 6


def test_expired_session_then_refresh(
    sf_state: SalesforceState, sf_server: ServerHandle, clock: Clock
) -> None:
    issued = sf_state.issue_session()
    http = https_session(sf_server)
    sf = Salesforce(instance_url=sf_server.url, session_id=issued.access_token, session=http)
    sf.query("SELECT Id FROM Account")
    clock.advance(seconds=sf_state.session_seconds)
    with pytest.raises(SalesforceExpiredSession) as refused:
        sf.query("SELECT Id FROM Account")
    assert refused.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    answer = http.post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued.refresh_token,
            "client_id": sf_state.client_id,
            "client_secret": CLIENT_SECRET,
        },
    ).json()
    assert answer["instance_url"] == sf_server.url
    assert "refresh_token" not in answer
    fresh = Salesforce(instance_url=sf_server.url, session_id=answer["access_token"], session=http)
    assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    bad = http.post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "client_id": sf_state.client_id,
        },
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _authorize(
    http: requests.Session, server: ServerHandle, state: SalesforceState, verifier: str
) -> str:
    answer = http.get(
        f"{server.url}/services/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": state.client_id,
            "redirect_uri": REDIRECT,
            "state": "csrf-123",
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["csrf-123"]
    return query["code"][0]


def test_oauth_web_server_flow_with_pkce(
    sf_state: SalesforceState, sf_server: ServerHandle
) -> None:
    http = https_session(sf_server)
    verifier = "v" * 43 + "-pkce-verifier"
    code = _authorize(http, sf_server, sf_state, verifier)
    token_url = f"{sf_server.url}/services/oauth2/token"
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": sf_state.client_id,
        "redirect_uri": REDIRECT,
    }
    wrong = http.post(token_url, data={**form, "code_verifier": "not-the-verifier"})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}
    # The refused exchange used the code up, as Salesforce's one-time codes are.
    code = _authorize(http, sf_server, sf_state, verifier)
    answer = http.post(token_url, data={**form, "code": code, "code_verifier": verifier})
    assert answer.status_code == 200
    body = answer.json()
    assert {"access_token", "refresh_token", "instance_url", "id", "issued_at", "signature"} <= set(
        body
    )
    assert "expires_in" not in body
    assert body["instance_url"] == sf_server.url
    assert body["id"].endswith(f"/{sf_state.org_id}/{sf_state.api_user_id}")
    sf = Salesforce(
        instance_url=body["instance_url"], session_id=body["access_token"], session=http
    )
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    again = http.post(token_url, data={**form, "code": code, "code_verifier": verifier})
    assert again.json()["error"] == "invalid_grant"


def test_unknown_client_is_refused_at_authorize(sf_server: ServerHandle) -> None:
    answer = https_session(sf_server).get(
        f"{sf_server.url}/services/oauth2/authorize",
        params={"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT},
        allow_redirects=False,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_id"


def test_describe_has_the_live_role_picklist(sf: Salesforce, sf_state: SalesforceState) -> None:
    sf_state.add_picklist_value("OpportunityContactRole", "Role", "Champion")
    described = sf.OpportunityContactRole.describe()
    role = next(f for f in described["fields"] if f["name"] == "Role")
    values = [v["value"] for v in role["picklistValues"]]
    assert values[0] == "Business User" and values[-1] == "Champion"
    assert role["restrictedPicklist"] is False
    # The role picklist is not restricted: the org's custom value is accepted on a new role.
    account = sf_state.insert("Account", {"Name": "Acme"})
    contact = sf_state.insert("Contact", {"LastName": "Doe", "AccountId": account})
    opp = _opportunity(sf, account)
    created = sf.OpportunityContactRole.create(
        {"OpportunityId": opp, "ContactId": contact, "Role": "Champion"}
    )
    assert sf.OpportunityContactRole.get(created["id"])["Role"] == "Champion"
    assert described["keyPrefix"] == "00K"
    opportunity = sf.Opportunity.describe()
    assert {c["relationshipName"] for c in opportunity["childRelationships"]} >= {
        "OpportunityContactRoles",
        "OpportunityHistories",
        "Tasks",
        "Events",
    }


def test_https_is_verified_against_the_emulators_certificate(sf_server: ServerHandle) -> None:
    stranger = requests.Session()
    stranger.trust_env = False  # the system's CAs only: the self-signed certificate is refused
    with pytest.raises(requests.exceptions.SSLError):
        stranger.get(f"{sf_server.url}/services/data")
    assert https_session(sf_server).get(f"{sf_server.url}/services/data").status_code == 200


def test_uri_limit_and_composite_queries_past_it(
    sf: Salesforce, sf_state: SalesforceState, account: str
) -> None:
    contacts = [
        sf_state.insert("Contact", {"LastName": f"C{i}", "AccountId": account}) for i in range(800)
    ]
    soql = "SELECT Id FROM Contact WHERE Id IN ({})".format(",".join(f"'{c}'" for c in contacts))
    with pytest.raises(SalesforceGeneralError) as refused:
        sf.query(soql)  # some 20 KB of URI: past the 16,384 bytes a REST call may carry
    assert refused.value.status == 414
    used = sf_state.api_usage()[0]
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/query/?" + urlencode({"q": soql}),
                    "referenceId": "contacts",
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Opportunity",
                    "referenceId": "opp",
                    "body": {
                        "Name": "Via composite",
                        "StageName": "Prospecting",
                        "CloseDate": "2027-03-01",
                        "AccountId": account,
                    },
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/OpportunityContactRole",
                    "referenceId": "role",
                    "body": {
                        "OpportunityId": "@{opp.id}",
                        "ContactId": "@{contacts.records[0].Id}",
                    },
                },
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/sobjects/Opportunity/@{nothing.id}",
                    "referenceId": "broken",
                },
            ]
        },
    )["compositeResponse"]
    assert [a["httpStatusCode"] for a in answer] == [200, 201, 201, 400]
    assert answer[0]["body"]["totalSize"] == 800
    assert answer[3]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    role = sf.OpportunityContactRole.get(answer[2]["body"]["id"])
    assert role["OpportunityId"] == answer[1]["body"]["id"]
    assert role["ContactId"] == answer[0]["body"]["records"][0]["Id"]
    assert sf_state.api_usage()[0] == used + 2  # the composite is one call, then the get
    assert sf_state.counts()["POST composite"] == 1


def test_soql_length_limit(sf: Salesforce) -> None:
    soql = "SELECT Id FROM Contact WHERE " + " OR ".join(["LastName = 'x'"] * 7000)
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/query/?" + urlencode({"q": soql}),
                    "referenceId": "q",
                }
            ]
        },
    )["compositeResponse"][0]
    assert answer["httpStatusCode"] == 400
    assert answer["body"][0]["errorCode"] == "MALFORMED_QUERY"
    assert "100,000 characters" in answer["body"][0]["message"]


def test_a_composite_holds_at_most_five_queries(sf: Salesforce) -> None:
    def query(n: int) -> dict[str, str]:
        url = "/services/data/v59.0/query/?" + urlencode({"q": "SELECT Id FROM Account"})
        return {"method": "GET", "url": url, "referenceId": f"q{n}"}

    five = sf.restful("composite", method="POST", json={
        "compositeRequest": [query(n) for n in range(5)]
        + [{"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "limits"}]
    })["compositeResponse"]  # fmt: skip
    assert [a["httpStatusCode"] for a in five] == [200] * 6
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite", method="POST", json={
            "compositeRequest": [query(n) for n in range(6)]
        })  # fmt: skip
    assert refused.value.status == 400
    assert "at most 5" in str(refused.value.content)


def test_updated_and_deleted_windows(sf: Salesforce, account: str, clock: Clock) -> None:
    start = clock()
    clock.advance(minutes=1)
    kept = _opportunity(sf, account, Name="Kept")
    gone = _opportunity(sf, account, Name="Gone")
    clock.advance(minutes=1)
    sf.Opportunity.delete(gone)
    clock.advance(minutes=1)
    end = clock()
    changed = sf.Opportunity.updated(start, end)
    assert changed["ids"] == [kept]
    removed = sf.Opportunity.deleted(start, end)
    assert [r["id"] for r in removed["deletedRecords"]] == [gone]


def test_a_logged_call_sets_last_activity_but_leaves_the_opportunity_unstamped(
    sf: Salesforce, account: str, clock: Clock
) -> None:
    """Salesforce derives LastActivityDate, which does not move LastModifiedDate, and does not
    document whether SystemModstamp moves: the emulator leaves it, so only the Task shows the
    call to a reader of SystemModstamps (deleted ones too, through queryAll)."""
    opp = _opportunity(sf, account)
    stamped = sf.Opportunity.get(opp)["SystemModstamp"]
    clock.advance(minutes=5)
    since = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    call = sf.Task.create({"WhatId": opp, "Subject": "Call", "Status": "Completed",
                           "Priority": "Normal", "TaskSubtype": "Call",
                           "ActivityDate": clock().date().isoformat()})["id"]  # fmt: skip
    record = sf.Opportunity.get(opp)
    assert record["LastActivityDate"] == clock().date().isoformat()
    assert record["SystemModstamp"] == stamped
    clock.advance(minutes=5)
    sf.Task.delete(call)
    soql = f"SELECT Id, WhatId, IsDeleted FROM Task WHERE SystemModstamp >= {since}"
    assert sf.query(soql)["records"] == []
    [gone] = sf.query_all(soql, include_deleted=True)["records"]
    assert (gone["Id"], gone["WhatId"], gone["IsDeleted"]) == (call, opp, True)


def test_collections_retrieve_and_identity(
    sf: Salesforce, sf_state: SalesforceState, sf_server: ServerHandle, account: str
) -> None:
    opp = _opportunity(sf, account, Name="One")
    rows = sf.restful(
        "composite/sobjects/Opportunity",
        params={"ids": f"{opp},006000000000000AAA", "fields": "Name,stagename"},
    )
    assert rows[0]["Name"] == "One" and rows[0]["StageName"] == "Prospecting"
    assert rows[1] is None
    session = sf_state.issue_session()
    me = https_session(sf_server).get(
        sf_state.id_url(session), headers={"Authorization": f"Bearer {session.access_token}"}
    )
    assert me.status_code == 200
    assert me.json()["organization_id"] == sf_state.org_id
    assert me.json()["username"] == "integration@dealradar.sandbox"


def test_nothing_new_is_given_to_a_deactivated_user(
    sf: Salesforce, sf_state: SalesforceState, account: str
) -> None:
    rep = sf.User.create(
        {"Username": "olga@vendor.example", "LastName": "Rep", "Email": "olga@vendor.example"}
    )["id"]
    opp = _opportunity(sf, account, OwnerId=rep)
    assert sf.User.get(rep)["IsActive"] is True, "a new user is active"
    assert sf.User.update(rep, {"IsActive": False}) == 204  # an admin deactivates her
    soql = f"SELECT Owner.Name, Owner.IsActive FROM Opportunity WHERE Id = '{opp}'"
    (row,) = sf.query(soql)["records"]
    assert (row["Owner"]["Name"], row["Owner"]["IsActive"]) == ("Rep", False)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Task.create({"WhatId": opp, "Subject": "Call", "Status": "Not Started",
                        "Priority": "Normal", "OwnerId": rep})  # fmt: skip
    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": f"operation performed with inactive user [{rep}] as owner of task",
            "errorCode": "INACTIVE_OWNER_OR_USER",
            "fields": [],
        }
    ]
    other = _opportunity(sf, account)
    with pytest.raises(SalesforceMalformedRequest, match="INACTIVE_OWNER_OR_USER"):
        sf.Opportunity.update(other, {"OwnerId": rep})
    assert sf.Opportunity.update(opp, {"Amount": 10.0}) == 204, "what she owns stays editable"
    task = sf.Task.create({"WhatId": opp, "Subject": "Call", "Status": "Not Started",
                           "Priority": "Normal"})["id"]  # fmt: skip
    assert sf.Task.get(task)["OwnerId"] == sf_state.api_user_id, "no owner: its creator's"
