"""OAuth, token expiry and revocation, rate limits and request counting in the HubSpot emulator,
seen through plain HTTP and hubspot-api-client."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.deals import PublicObjectSearchRequest
from hubspot.oauth import AccessTokenInfoResponse, TokenResponseIF

from sandbox.hubspot import HubSpotState, ServerHandle
from sandbox.hubspot_state import Token
from tests.sandbox.conftest import API_ERRORS, CLIENT_SECRET, Clock

REDIRECT = "https://dealradar.example/oauth/hubspot/callback"


def _install(server: ServerHandle, state: HubSpotState) -> dict:
    """The marketplace install: authorize (auto-consent), then swap the code for tokens."""
    consent = requests.get(
        f"{server.url}/oauth/authorize",
        params={
            "client_id": state.client_id,
            "redirect_uri": REDIRECT,
            "scope": "oauth crm.objects.deals.read crm.objects.deals.write",
            "state": "csrf-123",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302
    location = urlsplit(consent.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["csrf-123"]
    answer = requests.post(
        f"{server.url}/oauth/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": state.client_id,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sdk(server: ServerHandle, access_token: str) -> HubSpot:
    return HubSpot(access_token=access_token, host=server.url)


def _status_and_body(call) -> tuple[int, dict]:
    with pytest.raises(API_ERRORS) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def test_install_flow_issues_30_minute_tokens_that_work_with_the_sdk(
    state: HubSpotState, server: ServerHandle
) -> None:
    tokens = _install(server, state)
    assert tokens["expires_in"] == 1800
    assert tokens["token_type"] == "bearer"
    assert tokens["hub_id"] == state.portal_id
    sdk = _sdk(server, tokens["access_token"])
    info = sdk.oauth.access_tokens_api.get(tokens["access_token"])
    assert isinstance(info, AccessTokenInfoResponse)
    assert (info.hub_id, info.app_id, info.expires_in) == (state.portal_id, state.app_id, 1800)
    assert "crm.objects.deals.read" in info.scopes
    assert sdk.crm.deals.basic_api.get_page().results == []


def test_a_code_is_single_use_and_bound_to_its_redirect_uri(
    state: HubSpotState, server: ServerHandle
) -> None:
    code = state.oauth.issue_code(REDIRECT)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://elsewhere.example/cb",
        "client_id": state.client_id,
        "client_secret": CLIENT_SECRET,
    }
    wrong = requests.post(f"{server.url}/oauth/v1/token", data=form, timeout=5)
    assert wrong.status_code == 400
    assert wrong.json()["status"] == "BAD_REDIRECT_URI"
    again = requests.post(f"{server.url}/oauth/v1/token", data={**form, "redirect_uri": REDIRECT},
                          timeout=5)  # fmt: skip
    assert again.json()["status"] == "BAD_AUTH_CODE", "the code was spent by the first attempt"
    bad_secret = requests.post(
        f"{server.url}/oauth/v1/token",
        data={**form, "code": state.oauth.issue_code(REDIRECT), "redirect_uri": REDIRECT,
              "client_secret": "nope"},
        timeout=5,
    )  # fmt: skip
    assert bad_secret.json()["status"] == "BAD_CLIENT_SECRET"


def test_access_token_expires_after_30_minutes_and_refresh_gives_a_new_one(
    state: HubSpotState, server: ServerHandle, clock: Clock
) -> None:
    tokens = _install(server, state)
    sdk = _sdk(server, tokens["access_token"])
    clock.advance(minutes=29, seconds=59)
    sdk.crm.deals.basic_api.get_page()
    clock.advance(seconds=1)
    status, body = _status_and_body(sdk.crm.deals.basic_api.get_page)
    assert status == 401
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    refreshed = sdk.oauth.tokens_api.create(
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        client_id=state.client_id,
        client_secret=CLIENT_SECRET,
    )
    assert isinstance(refreshed, TokenResponseIF)
    assert refreshed.expires_in == 1800
    assert refreshed.refresh_token == tokens["refresh_token"]
    assert refreshed.access_token != tokens["access_token"]
    assert _sdk(server, refreshed.access_token).crm.deals.basic_api.get_page().results == []


def test_expire_access_tokens_helper_and_endpoint(
    state: HubSpotState, server: ServerHandle, token: Token
) -> None:
    sdk = _sdk(server, token.access_token)
    assert requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).json() == {"expired": 1}
    status, body = _status_and_body(sdk.crm.deals.basic_api.get_page)
    assert (status, body["category"]) == (401, "EXPIRED_AUTHENTICATION")


def test_revoked_refresh_token_cannot_refresh_and_its_access_token_stops(
    state: HubSpotState, server: ServerHandle
) -> None:
    tokens = _install(server, state)
    revoked = requests.delete(
        f"{server.url}/oauth/v1/refresh-tokens/{tokens['refresh_token']}", timeout=5
    )
    assert revoked.status_code == 204
    again = requests.post(
        f"{server.url}/oauth/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
              "client_id": state.client_id, "client_secret": CLIENT_SECRET},
        timeout=5,
    )  # fmt: skip
    assert again.status_code == 400
    assert again.json()["status"] == "BAD_REFRESH_TOKEN"
    status, body = _status_and_body(
        _sdk(server, tokens["access_token"]).crm.deals.basic_api.get_page
    )
    assert (status, body["category"]) == (401, "INVALID_AUTHENTICATION")


def _v3(server: ServerHandle, path: str, **form: str) -> requests.Response:
    return requests.post(f"{server.url}/oauth/v3/token{path}", data=form, timeout=5)


def test_oauth_v3_takes_everything_in_the_form_body_and_answers_hubspots_fields(
    state: HubSpotState, server: ServerHandle, clock: Clock
) -> None:
    # Shapes: the 2026-03 spec's AccessTokenResponse and PublicAccessTokenInfoResponse (the
    # date-versioned twins of /oauth/v3/token and /oauth/v3/token/introspect).
    code = state.oauth.issue_code(REDIRECT, ("oauth", "crm.objects.deals.read"))
    client = {"client_id": state.client_id, "client_secret": CLIENT_SECRET}
    answer = _v3(server, "", grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                 **client)  # fmt: skip
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"access_token", "refresh_token", "expires_in", "token_type", "token_use"} <= set(tokens)
    assert (tokens["expires_in"], tokens["token_use"], tokens["hub_id"]) == (
        1800, "access_token", state.portal_id,
    )  # fmt: skip
    assert tokens["scopes"] == ["oauth", "crm.objects.deals.read"]

    info = _v3(server, "/introspect", token=tokens["access_token"],
               token_type_hint="access_token", **client).json()  # fmt: skip
    assert (info["active"], info["token_use"], info["hub_id"], info["app_id"]) == (
        True, "access_token", state.portal_id, state.app_id,
    )  # fmt: skip
    assert info["scopes"] == ["oauth", "crm.objects.deals.read"]
    assert info["expires_in"] == 1800 and info["client_id"] == state.client_id
    assert {"user", "user_id", "hub_domain", "signed_access_token", "token_type"} <= set(info)
    refresh = _v3(server, "/introspect", token=tokens["refresh_token"],
                  token_type_hint="refresh_token", **client).json()  # fmt: skip
    assert (refresh["active"], refresh["token_use"], refresh["hub_id"]) == (
        True, "refresh_token", state.portal_id,
    )  # fmt: skip
    assert "expires_in" not in refresh

    clock.advance(minutes=30)
    expired = _v3(server, "/introspect", token=tokens["access_token"], **client)
    assert (expired.status_code, expired.json()) == (200, {"active": False})
    renewed = _v3(server, "", grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                  **client).json()  # fmt: skip
    assert renewed["refresh_token"] == tokens["refresh_token"]
    assert renewed["access_token"] != tokens["access_token"]
    assert state.counts() == {"POST /oauth/v3/token": 2, "POST /oauth/v3/token/introspect": 3}


def test_oauth_refusals_carry_rfc_6749_fields_beside_hubspots(
    state: HubSpotState, server: ServerHandle
) -> None:
    wrong = {"client_id": state.client_id, "client_secret": "nope"}
    for path, form in (
        ("", {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT}),
        ("/introspect", {"token": "x"}),
        ("/revoke", {"token": "x"}),
    ):
        refused = _v3(server, path, **form, **wrong)
        assert refused.status_code == 400, path
        body = refused.json()
        assert (body["error"], body["status"]) == ("invalid_client", "BAD_CLIENT_SECRET"), path
        assert body["error_description"] == body["message"]
    v1 = requests.post(f"{server.url}/oauth/v1/token", data={"grant_type": "password"}, timeout=5)
    assert (v1.status_code, v1.json()["error"], v1.json()["status"]) == (
        400, "unsupported_grant_type", "BAD_GRANT_TYPE",
    )  # fmt: skip


def test_a_refresh_token_revoked_through_v3_refreshes_no_more(
    state: HubSpotState, server: ServerHandle, token: Token
) -> None:
    client = {"client_id": state.client_id, "client_secret": CLIENT_SECRET}
    revoked = _v3(server, "/revoke", token=token.refresh_token, token_type_hint="refresh_token",
                  **client)  # fmt: skip
    assert revoked.status_code == 200
    assert _v3(server, "/revoke", token="na1-unknown", **client).status_code == 200  # RFC 7009
    again = _v3(server, "", grant_type="refresh_token", refresh_token=token.refresh_token,
                **client)  # fmt: skip
    assert again.status_code == 400
    assert (again.json()["error"], again.json()["status"]) == ("invalid_grant", "BAD_REFRESH_TOKEN")
    gone = _v3(server, "/introspect", token=token.access_token, **client).json()
    assert gone == {"active": False}


def test_missing_or_unknown_token_is_401(server: ServerHandle) -> None:
    bare = requests.get(f"{server.url}/crm/v3/objects/deals", timeout=5)
    assert bare.status_code == 401
    assert bare.json()["category"] == "INVALID_AUTHENTICATION"
    status, body = _status_and_body(_sdk(server, "not-a-token").crm.deals.basic_api.get_page)
    assert (status, body["category"]) == (401, "INVALID_AUTHENTICATION")


# ---- rate limits -----------------------------------------------------------------------------


def test_burst_limit_is_110_per_rolling_ten_seconds(
    state: HubSpotState, server: ServerHandle, token: Token, clock: Clock
) -> None:
    state.rate_limit = 110
    url = f"{server.url}/crm/v3/objects/deals"
    headers = {"Authorization": f"Bearer {token.access_token}"}
    remaining = []
    for _ in range(110):
        answer = requests.get(url, headers=headers, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "110"
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(answer.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining[0] == 109 and remaining[-1] == 0
    refused = requests.get(url, headers=headers, timeout=5)
    assert refused.status_code == 429
    body = refused.json()
    assert (body["status"], body["errorType"], body["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    status, _ = _status_and_body(_sdk(server, token.access_token).crm.deals.basic_api.get_page)
    assert status == 429, "the SDK sees the same refusal"
    clock.advance(seconds=10)
    assert requests.get(url, headers=headers, timeout=5).status_code == 200


def test_search_has_its_own_per_second_limit(
    state: HubSpotState, server: ServerHandle, token: Token, clock: Clock
) -> None:
    state.rate_limit = 110
    state.search_rate_limit = 5
    sdk = _sdk(server, token.access_token)
    for _ in range(5):
        sdk.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))
    status, body = _status_and_body(
        lambda: sdk.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))
    )
    assert (status, body["policyName"]) == (429, "SECONDLY")
    listing = requests.get(
        f"{server.url}/crm/v3/objects/deals",
        headers={"Authorization": f"Bearer {token.access_token}"},
        timeout=5,
    )
    assert listing.status_code == 200
    assert listing.headers["X-HubSpot-RateLimit-Remaining"] == "109", "searches are not counted"
    clock.advance(seconds=1)
    sdk.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))


def test_limits_can_be_switched_off(
    state: HubSpotState, server: ServerHandle, token: Token
) -> None:
    state.rate_limit = None
    headers = {"Authorization": f"Bearer {token.access_token}"}
    codes = {
        requests.get(f"{server.url}/crm/v3/objects/deals", headers=headers, timeout=5).status_code
        for _ in range(120)
    }
    assert codes == {200}


# ---- request counting ------------------------------------------------------------------------


def test_requests_are_counted_by_route_template(
    state: HubSpotState, server: ServerHandle, client: HubSpot
) -> None:
    deal = state.create_object("deals", {"dealname": "Counted"})
    client.crm.deals.basic_api.get_by_id(deal)
    client.crm.deals.basic_api.get_by_id(deal)
    client.crm.deals.batch_api.read({"inputs": [{"id": deal}], "properties": []})
    client.crm.associations.v4.batch_api.get_page("deal", "contact", {"inputs": [{"id": deal}]})
    expected = {
        "GET /crm/v3/objects/deals/{objectId}": 2,
        "POST /crm/v3/objects/deals/batch/read": 1,
        "POST /crm/v4/associations/deals/contacts/batch/read": 1,
    }
    assert state.counts() == expected
    assert requests.get(f"{server.url}/_sandbox/counts", timeout=5).json() == expected
    requests.post(f"{server.url}/_sandbox/counts/reset", timeout=5)
    assert state.counts() == {}


def test_an_unknown_token_still_counts_as_a_call(state: HubSpotState, server: ServerHandle) -> None:
    requests.get(f"{server.url}/crm/v3/objects/deals", timeout=5)
    assert state.counts() == {"GET /crm/v3/objects/deals": 1}


def test_token_info_for_an_expired_token_is_not_found(
    state: HubSpotState, server: ServerHandle, token: Token, clock: Clock
) -> None:
    clock.advance(minutes=31)
    answer = requests.get(f"{server.url}/oauth/v1/access-tokens/{token.access_token}", timeout=5)
    assert answer.status_code == 404
    assert timedelta(minutes=30) == token.expires_at - token.issued_at


def test_a_shorter_window_can_be_configured(
    state: HubSpotState, server: ServerHandle, token: Token, clock: Clock
) -> None:
    state.rate_limit, state.rate_window = 3, timedelta(seconds=1)
    url = f"{server.url}/crm/v3/objects/deals"
    headers = {"Authorization": f"Bearer {token.access_token}"}
    answers = [requests.get(url, headers=headers, timeout=5) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    clock.advance(seconds=1)
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
