"""HubSpot OAuth against the emulator over real HTTP: the consent redirect, the code exchange,
token info, and how each refusal is translated."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from adapters.errors import InvalidRequest, NotFound, Transient
from adapters.hubspot.oauth import (
    OPTIONAL_SCOPES,
    SCOPES,
    RedactTokenPaths,
    authorize_url,
    exchange_code,
    refresh_grant,
    token_info,
)
from sandbox.hubspot import HubSpotState, ServerHandle, serve

PORTAL = 62515
REDIRECT = "https://dealradar.example/install/hubspot/callback"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def state() -> Iterator[HubSpotState]:
    portal = HubSpotState(portal_id=PORTAL, rate_limit=None, search_rate_limit=None)
    yield portal
    portal.webhooks.stop()


@pytest.fixture
def server(state: HubSpotState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


def consent(server: ServerHandle, state: HubSpotState, scopes=SCOPES, redirect=REDIRECT) -> dict:
    """Follow the consent screen as a browser would, up to (not into) our callback."""
    url = authorize_url(
        client_id=state.client_id, redirect_uri=redirect, state="s1gned",
        base=server.url + "/oauth/authorize", scopes=scopes,
    )  # fmt: skip
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(server: ServerHandle, state: HubSpotState, code: str, **overrides):
    args = {
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "redirect_uri": REDIRECT,
        "host": server.url,
        "now": lambda: NOW,
    } | overrides
    return exchange_code(code, **args)


def test_the_authorize_url_asks_for_our_scopes_and_carries_the_state() -> None:
    url = authorize_url(client_id="cid", redirect_uri=REDIRECT, state="abc.def")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.hubspot.com/oauth/authorize"
    )
    assert query["client_id"] == ["cid"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"][0].split(" ") == list(SCOPES)
    assert query["optional_scope"][0].split(" ") == list(OPTIONAL_SCOPES)
    assert query["state"] == ["abc.def"]
    assert {"crm.objects.deals.write", "crm.schemas.deals.write", "crm.objects.owners.read"} <= set(
        SCOPES
    )


def test_a_code_becomes_tokens_for_the_portal_with_the_scopes_granted(state, server) -> None:  # type: ignore[no-untyped-def]
    answer = consent(server, state)
    assert answer["state"] == "s1gned"
    tokens, expires_at = exchange(server, state, answer["code"])
    assert expires_at == NOW + timedelta(minutes=30)
    assert tokens["access_token"] and tokens["refresh_token"]
    info = token_info(tokens["access_token"], host=server.url)
    assert info.portal_id == str(PORTAL)
    assert set(info.scopes) == set(SCOPES)
    assert info.missing() == []
    assert 0 < info.expires_in <= 1800
    # The refresh grant of the same module renews them.
    renewed, _ = refresh_grant(
        tokens["refresh_token"], client_id=state.client_id, client_secret=state.client_secret,
        host=server.url, now=lambda: NOW,
    )  # fmt: skip
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] == tokens["refresh_token"]


def test_scopes_not_granted_are_named(state, server) -> None:  # type: ignore[no-untyped-def]
    fewer = tuple(s for s in SCOPES if s != "crm.schemas.deals.write")
    tokens, _ = exchange(server, state, consent(server, state, scopes=fewer)["code"])
    assert token_info(tokens["access_token"], host=server.url).missing() == [
        "crm.schemas.deals.write"
    ]


def test_a_code_used_twice_is_refused(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    exchange(server, state, code)
    with pytest.raises(InvalidRequest, match="BAD_AUTH_CODE"):
        exchange(server, state, code)


def test_a_redirect_uri_other_than_the_consents_is_refused(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    with pytest.raises(InvalidRequest, match="BAD_REDIRECT_URI"):
        exchange(server, state, code, redirect_uri="https://elsewhere.example/callback")


def test_a_wrong_client_secret_is_refused_as_our_configuration(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    with pytest.raises(InvalidRequest, match="BAD_CLIENT_SECRET"):
        exchange(server, state, code, client_secret="not-the-secret")


def test_hubspot_down_is_transient(state) -> None:  # type: ignore[no-untyped-def]
    with serve(state) as gone:
        url = gone.url
    with pytest.raises(Transient):
        exchange_code(
            "any", client_id=state.client_id, client_secret=state.client_secret,
            redirect_uri=REDIRECT, host=url, now=lambda: NOW,
        )  # fmt: skip
    with pytest.raises(Transient) as down:
        token_info("CJSECRET-access-token", host=url)
    told, error = [], down.value
    while error is not None:  # what a logged or stored traceback prints of each exception
        told.append(repr(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert not any("CJSECRET" in t for t in told), "no token in the traceback's messages"


def test_an_unknown_access_token_is_not_found(state, server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        token_info("CO-not-a-token", host=server.url)


def test_token_info_keeps_the_token_out_of_the_logs(state, server, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    tokens, _ = exchange(server, state, consent(server, state)["code"])
    token_info(tokens["access_token"], host=server.url)
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if tokens["access_token"] in line]
    assert not [line for line in lines if tokens["refresh_token"] in line]


def test_a_token_in_an_oauth_url_is_redacted_from_http_log_lines() -> None:
    # urllib3 logs each request line at DEBUG; HubSpot's token-info path carries the token.
    record = logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1, '%s://%s:%s "%s %s %s" %s %s',
        ("https", "api.hubapi.com", 443, "GET", "/oauth/v1/access-tokens/COabc-123_x", "HTTP/1.1",
         200, 512), None,
    )  # fmt: skip
    assert RedactTokenPaths().filter(record)
    assert record.getMessage() == (
        'https://api.hubapi.com:443 "GET /oauth/v1/access-tokens/*** HTTP/1.1" 200 512'
    )
