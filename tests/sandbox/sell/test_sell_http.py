"""The Sell emulator over real HTTP with `requests`: envelopes, paging, filters, custom fields,
errors, the User-Agent rule, the hourly allowance, OAuth and request counts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from urllib3.util import SKIP_HEADER

from sandbox.sell import SellState, ServerHandle
from tests.sandbox.sell.support import (
    CLIENT_ID,
    CLIENT_SECRET,
    Clock,
    Sell,
    error_code,
)


def _org(sell: Sell, name: str = "Acme") -> int:
    response = sell.post("/v2/contacts", {"is_organization": True, "name": name})
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def test_a_created_deal_comes_back_in_the_data_envelope(
    sell: Sell, pipeline: dict[str, int]
) -> None:
    org = _org(sell)
    created = sell.post(
        "/v2/deals",
        {
            "name": "Acme renewal",
            "contact_id": org,
            "value": 5000,
            "stage_id": pipeline["Proposal"],
            "estimated_close_date": "2027-01-31",
            "not_a_field": 1,
        },
    )
    assert created.status_code == 200
    body = created.json()
    assert body["meta"] == {"type": "deal"}
    deal = body["data"]
    assert deal["value"] == 5000
    assert deal["organization_id"] == org
    assert deal["estimated_close_date"] == "2027-01-31"
    assert deal["last_stage_change_at"] == "2026-12-01T09:00:00Z"
    assert "not_a_field" not in deal
    fetched = sell.get(f"/v2/deals/{deal['id']}").json()
    assert fetched == body


def test_lists_page_by_25_by_default_and_at_most_100(sell: Sell, state: SellState) -> None:
    for i in range(30):
        state.create("contacts", {"last_name": f"Person {i:02}"})
    first = sell.get("/v2/contacts").json()
    assert first["meta"]["type"] == "collection"
    assert first["meta"]["count"] == 25
    assert [i["meta"]["type"] for i in first["items"]] == ["contact"] * 25
    next_url = first["meta"]["links"]["next_page"]
    assert parse_qs(urlsplit(next_url).query)["page"] == ["2"]
    second = sell.session.get(next_url, timeout=10).json()
    assert second["meta"]["count"] == 5
    assert "next_page" not in second["meta"]["links"]
    seen = [i["data"]["last_name"] for i in first["items"] + second["items"]]
    assert seen == [f"Person {i:02}" for i in range(30)]
    assert sell.get("/v2/contacts", per_page=100).json()["meta"]["count"] == 30
    too_many = sell.get("/v2/contacts", per_page=101)
    assert too_many.status_code == 400
    assert error_code(too_many) == "invalid_param"


def test_filters_narrow_lists(sell: Sell, state: SellState, pipeline: dict[str, int]) -> None:
    org = _org(sell)
    ann = state.create("contacts", {"last_name": "Lee", "contact_id": org})
    won = state.create("deals", {"name": "A", "stage_id": pipeline["Won"], "contact_id": ann["id"]})
    other = state.create("deals", {"name": "B", "stage_id": pipeline["Qualified"]})
    state.create(
        "tasks", {"content": "call back", "resource_type": "deal", "resource_id": won["id"]}
    )
    state.create(
        "tasks",
        {"content": "done", "resource_type": "deal", "resource_id": other["id"], "completed": True},
    )

    def ids(path: str, **params: object) -> list[int]:
        response = sell.get(path, **params)
        assert response.status_code == 200, response.text
        return [i["data"]["id"] for i in response.json()["items"]]

    assert ids("/v2/deals", stage_id=pipeline["Won"]) == [won["id"]]
    assert ids("/v2/deals", contact_id=ann["id"]) == [won["id"]]
    assert ids("/v2/deals", ids=f"{other['id']},{won['id']}") == [won["id"], other["id"]]
    assert ids("/v2/contacts", is_organization="true") == [org]
    assert ids("/v2/contacts", contact_id=org) == [ann["id"]]
    assert len(ids("/v2/tasks", resource_type="deal", resource_id=won["id"])) == 1
    assert len(ids("/v2/tasks", completed="true")) == 1
    assert ids("/v2/stages", pipeline_id=pipeline["pipeline"]) == [
        pipeline["Qualified"],
        pipeline["Proposal"],
        pipeline["Won"],
    ]
    assert ids("/v2/deals", sort_by="name:desc") == [other["id"], won["id"]]
    refused = sell.get("/v2/deals", sort_by="last_activity_at:desc")
    assert refused.status_code == 400


def test_custom_fields_are_listed_written_and_an_unknown_one_refused(
    sell: Sell, state: SellState, pipeline: dict[str, int]
) -> None:
    state.define_custom_field("deal", "Deal Radar alerts", "text")
    state.define_custom_field("deal", "Deal Radar health", "list", ["Good", "Fair", "Poor"])
    listed = sell.get("/v2/deal/custom_fields").json()
    assert [(i["data"]["name"], i["data"]["type"]) for i in listed["items"]] == [
        ("Deal Radar alerts", "text"),
        ("Deal Radar health", "list"),
    ]
    assert sell.get("/v2/custom_fields", resource_type="deal").json() == listed
    assert sell.get("/v2/contact/custom_fields").json()["items"] == []
    deal = sell.post("/v2/deals", {"name": "Acme"}).json()["data"]

    updated = sell.put(
        f"/v2/deals/{deal['id']}",
        {"custom_fields": {"Deal Radar alerts": "no_activity", "Deal Radar health": "Poor"}},
    )
    assert updated.status_code == 200
    fields = sell.get(f"/v2/deals/{deal['id']}").json()["data"]["custom_fields"]
    assert fields["Deal Radar alerts"] == "no_activity"
    assert fields["Deal Radar health"]["name"] == "Poor"

    refused = sell.put(f"/v2/deals/{deal['id']}", {"custom_fields": {"Deal Radar score": "3"}})
    assert refused.status_code == 422
    assert error_code(refused) == "invalid"
    assert refused.json()["errors"][0]["error"]["field"] == "/data/custom_fields/Deal Radar score"
    assert sell.get(f"/v2/deals/{deal['id']}").json()["data"]["custom_fields"] == fields


def test_malformed_and_missing_things_get_sells_error_envelope(
    sell: Sell, pipeline: dict[str, int]
) -> None:
    unwrapped = sell.session.post(sell.url + "/v2/deals", json={"name": "x"}, timeout=10)
    assert unwrapped.status_code == 400
    assert error_code(unwrapped) == "invalid_envelope"
    missing = sell.get("/v2/deals/999")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
    nameless = sell.post("/v2/deals", {"value": 10})
    assert nameless.status_code == 422
    assert nameless.json()["errors"][0]["error"]["field"] == "/data/name"
    read_only = sell.post("/v2/stages", {"name": "x"})
    assert read_only.status_code == 405


def test_deleting_a_deal_answers_204_then_404(sell: Sell, pipeline: dict[str, int]) -> None:
    deal = sell.post("/v2/deals", {"name": "Acme"}).json()["data"]
    assert sell.delete(f"/v2/deals/{deal['id']}").status_code == 204
    assert sell.get(f"/v2/deals/{deal['id']}").status_code == 404


def test_associated_contacts_are_involved_only(sell: Sell, pipeline: dict[str, int]) -> None:
    deal = sell.post("/v2/deals", {"name": "Acme"}).json()["data"]
    person = sell.post("/v2/contacts", {"first_name": "Ann", "last_name": "Lee"}).json()["data"]
    path = f"/v2/deals/{deal['id']}/associated_contacts"
    added = sell.post(path, {"contact_id": person["id"], "role": "involved"})
    assert added.status_code == 200
    assert added.json()["data"]["role"] == "involved"
    champion = sell.post(path, {"contact_id": person["id"], "role": "champion"})
    assert champion.status_code == 422
    listed = sell.get(path).json()
    assert [(i["data"]["contact_id"], i["meta"]["type"]) for i in listed["items"]] == [
        (person["id"], "associated_contact")
    ]
    assert sell.delete(f"{path}/{person['id']}").status_code == 204
    assert sell.get(path).json()["items"] == []


def test_users_self_is_the_tokens_user(sell: Sell, state: SellState) -> None:
    me = sell.get("/v2/users/self").json()
    assert me["meta"]["type"] == "user"
    assert me["data"]["id"] == state.admin_id
    assert me["data"]["role"] == "admin"


def test_a_request_without_user_agent_is_refused(sell: Sell) -> None:
    response = sell.session.get(
        sell.url + "/v2/deals", headers={"User-Agent": SKIP_HEADER}, timeout=10
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_user_agent"
    assert sell.get("/v2/deals").status_code == 200


def test_missing_unknown_and_expired_tokens_get_401(
    server: ServerHandle, state: SellState, clock: Clock
) -> None:
    assert Sell(server.url, None).get("/v2/deals").status_code == 401
    assert error_code(Sell(server.url, "0" * 64).get("/v2/deals")) == "invalid_token"
    token = state.issue_token()
    clock.advance(seconds=3600)
    expired = Sell(server.url, token.access_token).get("/v2/deals")
    assert (expired.status_code, error_code(expired)) == (401, "token_expired")
    personal = state.personal_access_token()
    assert len(personal.access_token) == 64
    assert Sell(server.url, personal.access_token).get("/v2/deals").status_code == 200


def test_429_past_the_hourly_allowance_until_the_window_resets(
    server: ServerHandle, state: SellState, clock: Clock
) -> None:
    state.allowance.limit = 3
    sell = Sell(server.url, state.personal_access_token().access_token)  # outlives the hour
    remaining = [sell.get("/v2/deals").headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = sell.get("/v2/deals")
    assert refused.status_code == 429
    assert error_code(refused) == "rate_limit_exceeded"
    assert refused.headers["Retry-After"] == "3600"
    assert refused.headers["X-RateLimit-Limit"] == "3"
    clock.advance(minutes=59)
    assert sell.get("/v2/deals").status_code == 429
    clock.advance(minutes=1)
    assert sell.get("/v2/deals").status_code == 200
    for _ in range(3):
        sell.get("/v2/deals")
    other = Sell(server.url, state.issue_token().access_token)  # the allowance is per token
    assert other.get("/v2/deals").status_code == 200


def test_oauth_code_exchange_and_refresh(server: ServerHandle, state: SellState) -> None:
    consent = requests.get(
        server.url + "/oauth2/authorize",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "state": "xyz",
            "redirect_uri": "https://app.example/cb",
            "scope": "read+write+sync",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert consent.status_code == 302
    location = urlsplit(consent.headers["Location"])
    assert location.netloc == "app.example"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    form = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": "https://app.example/cb",
    }
    wrong = requests.post(
        server.url + "/oauth2/token", data=form, auth=(CLIENT_ID, "nope"), timeout=10
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    issued = requests.post(
        server.url + "/oauth2/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
    )
    assert issued.status_code == 200
    tokens = issued.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3599
    assert tokens["scope"] == "read write sync"
    again = requests.post(
        server.url + "/oauth2/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
    )
    assert again.json()["error"] == "invalid_grant"  # a code is single use
    assert Sell(server.url, tokens["access_token"]).get("/v2/users/self").status_code == 200

    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    refreshed = requests.post(server.url + "/oauth2/token", data=refresh, timeout=10).json()
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert Sell(server.url, refreshed["access_token"]).get("/v2/deals").status_code == 200
    reused = requests.post(server.url + "/oauth2/token", data=refresh, timeout=10)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_requests_are_counted_by_route(sell: Sell, state: SellState, server: ServerHandle) -> None:
    sell.get("/v2/deals")
    sell.get("/v2/deals/5")
    sell.get("/v2/deals/6")
    sell.get("/v3/deals/stream", position="top")
    counts = requests.get(server.url + "/_sandbox/counts", timeout=10).json()
    assert counts == {
        "GET /v2/deals": 1,
        "GET /v2/deals/{record_id}": 2,
        "GET /v3/deals/stream": 1,
    }
    assert counts == state.counts()


def test_the_account_answers_its_id_and_name(sell: Sell, state: SellState) -> None:
    body = sell.get("/v2/accounts/self").json()
    assert body["meta"] == {"type": "account"}
    assert body["data"]["id"] == state.account["id"]
    assert body["data"]["name"] == state.account["name"]


def test_a_renamed_custom_field_keeps_its_values_and_reaches_the_firehose(
    sell: Sell, state: SellState
) -> None:
    state.define_custom_field("contact", "Buying role", "list", ["Champion"])
    ann = state.create(
        "contacts", {"last_name": "Lee", "custom_fields": {"Buying role": "Champion"}}
    )
    top = sell.get("/v3/custom_fields/stream", position="top").json()["meta"]["position"]
    state.rename_custom_field("contact", "Buying role", "Role")
    fields = sell.get("/v2/contact/custom_fields").json()["items"]
    assert [f["data"]["name"] for f in fields] == ["Role"]
    contact = sell.get(f"/v2/contacts/{ann['id']}").json()["data"]
    assert contact["custom_fields"] == {"Role": {"id": fields[0]["data"]["choices"][0]["id"],
                                               "name": "Champion"}}  # fmt: skip
    (event,) = sell.get("/v3/custom_fields/stream", position=top).json()["items"]
    assert event["meta"]["event_type"] == "updated"
    assert event["meta"]["previous"] == {"name": "Buying role"}
    state.delete_custom_field("contact", "Role")
    assert sell.get("/v2/contact/custom_fields").json()["items"] == []
    assert sell.get(f"/v2/contacts/{ann['id']}").json()["data"]["custom_fields"] == {}


def test_a_deactivated_user_stays_listed_inactive_and_loses_their_token(
    server: ServerHandle, sell: Sell, state: SellState
) -> None:
    rep = state.add_user("Sam Reed", "sam@example.com")
    rep_token = state.personal_access_token(rep).access_token
    assert Sell(server.url, rep_token).get("/v2/users/self").status_code == 200

    answer = requests.post(f"{server.url}/_sandbox/users/{rep}/deactivate", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["data"]["status"] == "inactive"

    listed = {i["data"]["id"]: i["data"]["status"] for i in sell.get("/v2/users").json()["items"]}
    assert listed == {state.admin_id: "active", rep: "inactive"}
    only_active = sell.get("/v2/users", status="active").json()["items"]
    assert [i["data"]["id"] for i in only_active] == [state.admin_id]
    only_inactive = sell.get("/v2/users", status="inactive").json()["items"]
    assert [i["data"]["id"] for i in only_inactive] == [rep]
    assert error_code(Sell(server.url, rep_token).get("/v2/users/self")) == "invalid_token"

    back = requests.post(f"{server.url}/_sandbox/users/{rep}/reactivate", timeout=10)
    assert back.json()["data"]["status"] == "active"
    assert sell.get(f"/v2/users/{rep}").json()["data"]["status"] == "active"


def test_the_account_owner_cannot_be_deactivated(server: ServerHandle, state: SellState) -> None:
    answer = requests.post(f"{server.url}/_sandbox/users/{state.admin_id}/deactivate", timeout=10)
    assert answer.status_code == 400
    assert state.get("users", state.admin_id)["status"] == "active"
    missing = requests.post(f"{server.url}/_sandbox/users/999/deactivate", timeout=10)
    assert missing.status_code == 404
