"""The emulator's account information endpoint (`GET /account-info/v3/details`) over real HTTP:
the portal's settings in HubSpot's documented shape, behind the same auth and counts as the CRM
routes, and set from the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from sandbox.hubspot import HubSpotState, serve
from tests.sandbox.test_hubspot_cli import Emulator

DETAILS = "/account-info/v3/details"
FIELDS = {
    "portalId", "accountType", "timeZone", "companyCurrency", "additionalCurrencies",
    "utcOffset", "utcOffsetMilliseconds", "uiDomain", "dataHostingLocation",
}  # fmt: skip


def _details(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url + DETAILS, headers=headers, timeout=10)


def test_details_give_the_portals_zone_currency_and_offset_at_the_moment() -> None:
    now = {"at": datetime(2026, 1, 15, 12, tzinfo=UTC)}
    state = HubSpotState(
        portal_id=777, clock=lambda: now["at"], time_zone="Europe/Paris", currency="EUR"
    )
    token = state.issue_token().access_token
    with serve(state) as server:
        winter = _details(server.url, token)
        now["at"] = datetime(2026, 7, 15, 12, tzinfo=UTC)
        summer = _details(server.url, state.issue_token().access_token).json()
    assert winter.status_code == 200
    body = winter.json()
    assert set(body) == FIELDS
    assert body["portalId"] == 777
    assert body["timeZone"] == "Europe/Paris"
    assert body["companyCurrency"] == "EUR"
    assert (body["utcOffset"], body["utcOffsetMilliseconds"]) == ("+01:00", 3_600_000)
    assert (summer["utcOffset"], summer["utcOffsetMilliseconds"]) == ("+02:00", 7_200_000)
    state.webhooks.stop()


def test_a_default_portal_is_on_us_eastern_in_dollars(server, token) -> None:
    body = _details(server.url, token.access_token).json()
    assert (body["timeZone"], body["companyCurrency"]) == ("US/Eastern", "USD")
    assert body["utcOffsetMilliseconds"] in (-5 * 3_600_000, -4 * 3_600_000)


def test_details_need_a_token_and_are_counted(state, server, token) -> None:
    refused = _details(server.url, None)
    assert refused.status_code == 401
    assert refused.json()["category"] == "INVALID_AUTHENTICATION"
    assert _details(server.url, "not-a-token").status_code == 401
    assert _details(server.url, token.access_token).status_code == 200
    assert state.counts()[f"GET {DETAILS}"] == 3


def test_the_command_line_sets_the_portals_time_zone() -> None:
    emulator = Emulator("--port", "0", "--time-zone", "Europe/Paris", "--currency", "EUR")
    try:
        body = _details(emulator.url, emulator.token).json()
    finally:
        emulator.process.terminate()
        emulator.process.wait(timeout=30)
    assert (body["timeZone"], body["companyCurrency"]) == ("Europe/Paris", "EUR")
