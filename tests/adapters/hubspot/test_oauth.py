"""HubSpot OAuth against the emulator over real HTTP: the consent redirect, the code exchange,
token info, and how each refusal is translated. Every call goes to OAuth v3 (HubSpot retires v1
on 2027-02-16): the emulator's request counts prove no v1 route is called."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.errors import InvalidRequest, NotFound, PermissionDenied, Transient
from adapters.hubspot.oauth import (
    OPTIONAL_SCOPES,
    SCOPES,
    authorize_url,
    exchange_code,
    refresh_grant,
    token_info,
)
from sandbox.hubspot import HubSpotState, ServerHandle, create_app, serve

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


def info_of(state: HubSpotState, url: str, access_token: str, **overrides):
    args = {"client_id": state.client_id, "client_secret": state.client_secret, "host": url}
    return token_info(access_token, **(args | overrides))


def refresh(state: HubSpotState, url: str, refresh_token: str):
    return refresh_grant(
        refresh_token, client_id=state.client_id, client_secret=state.client_secret, host=url,
        now=lambda: NOW,
    )  # fmt: skip


@contextmanager
def answering(state: HubSpotState, path: str, status: int, body: dict) -> Iterator[str]:
    """The emulator, except that `path` answers `status` and `body` (a shape HubSpot may send
    that the emulator does not); yields its URL. `{token}` in the body is the form's token."""
    emulator = create_app(state)

    @Request.application
    def app(request: Request) -> Response:
        if request.path != path:
            return emulator
        text = json.dumps(body).replace("{token}", request.form.get("token", ""))
        return Response(text, status, content_type="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


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
    info = info_of(state, server.url, tokens["access_token"])
    assert info.portal_id == str(PORTAL)
    assert set(info.scopes) == set(SCOPES)
    assert info.missing() == []
    assert 0 < info.expires_in <= 1800
    assert info.hub_domain and info.user
    # The refresh grant of the same module renews them.
    renewed, _ = refresh(state, server.url, tokens["refresh_token"])
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] == tokens["refresh_token"]


def test_every_call_goes_to_oauth_v3_not_v1(state, server) -> None:  # type: ignore[no-untyped-def]
    state.reset_counts()
    tokens, _ = exchange(server, state, consent(server, state)["code"])
    info_of(state, server.url, tokens["access_token"])
    refresh(state, server.url, tokens["refresh_token"])
    assert state.counts() == {
        "GET /oauth/authorize": 1,
        "POST /oauth/2026-03/token": 2,
        "POST /oauth/2026-03/token/introspect": 1,
    }


def test_scopes_not_granted_are_named(state, server) -> None:  # type: ignore[no-untyped-def]
    fewer = tuple(s for s in SCOPES if s != "crm.schemas.deals.write")
    tokens, _ = exchange(server, state, consent(server, state, scopes=fewer)["code"])
    assert info_of(state, server.url, tokens["access_token"]).missing() == [
        "crm.schemas.deals.write"
    ]


def test_a_code_used_twice_is_refused(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    exchange(server, state, code)
    with pytest.raises(InvalidRequest, match="BAD_AUTH_CODE, invalid_grant") as refused:
        exchange(server, state, code)
    assert code not in str(refused.value)


def test_a_redirect_uri_other_than_the_consents_is_refused(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    with pytest.raises(InvalidRequest, match="BAD_REDIRECT_URI"):
        exchange(server, state, code, redirect_uri="https://elsewhere.example/callback")


def test_a_wrong_client_secret_is_refused_as_our_configuration(state, server) -> None:  # type: ignore[no-untyped-def]
    code = consent(server, state)["code"]
    with pytest.raises(InvalidRequest, match="BAD_CLIENT_SECRET, invalid_client"):
        exchange(server, state, code, client_secret="not-the-secret")
    tokens, _ = exchange(server, state, consent(server, state)["code"])
    with pytest.raises(InvalidRequest, match="BAD_CLIENT_SECRET"):
        info_of(state, server.url, tokens["access_token"], client_secret="not-the-secret")


def test_a_401_from_the_token_endpoint_is_our_credentials_not_a_token(state) -> None:  # type: ignore[no-untyped-def]
    # RFC 6749 lets a server answer invalid_client with a 401; that is our app's id or secret.
    body = {"error": "invalid_client", "error_description": "client authentication failed"}
    with (
        answering(state, "/oauth/2026-03/token", 401, body) as url,
        pytest.raises(InvalidRequest, match="HUBSPOT_CLIENT_ID") as refused,
    ):
        exchange_code(
            "a-code", client_id=state.client_id, client_secret=state.client_secret,
            redirect_uri=REDIRECT, host=url, now=lambda: NOW,
        )  # fmt: skip
    assert "invalid_client" in str(refused.value)
    assert "client authentication failed" in str(refused.value)


def test_a_revoked_refresh_token_needs_a_new_install(state, server) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = exchange(server, state, consent(server, state)["code"])
    state.revoke_refresh_token(tokens["refresh_token"])
    with pytest.raises(PermissionDenied, match="install Deal Radar again"):
        refresh(state, server.url, tokens["refresh_token"])


def test_a_refresh_refused_with_only_rfc_6749_fields_needs_a_new_install(state) -> None:  # type: ignore[no-untyped-def]
    body = {"error": "invalid_grant", "error_description": "refresh token is invalid"}
    with (
        answering(state, "/oauth/2026-03/token", 400, body) as url,
        pytest.raises(PermissionDenied, match="install Deal Radar again"),
    ):
        refresh(state, url, "na1-revoked")


def test_hubspot_down_is_transient(state) -> None:  # type: ignore[no-untyped-def]
    with serve(state) as gone:
        url = gone.url
    with pytest.raises(Transient):
        exchange_code(
            "any", client_id=state.client_id, client_secret=state.client_secret,
            redirect_uri=REDIRECT, host=url, now=lambda: NOW,
        )  # fmt: skip
    with pytest.raises(Transient) as down:
        info_of(state, url, "CJSECRET-access-token")
    told, error = [], down.value
    while error is not None:  # what a logged or stored traceback prints of each exception
        told.append(repr(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert not any("CJSECRET" in t for t in told), "no token in the traceback's messages"
    assert not any(state.client_secret in t for t in told)


def test_an_unknown_or_expired_access_token_is_not_found(state, server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        info_of(state, server.url, "CO-not-a-token")
    tokens, _ = exchange(server, state, consent(server, state)["code"])
    state.expire_access_tokens()
    with pytest.raises(NotFound, match="not active"):
        info_of(state, server.url, tokens["access_token"])


def test_an_introspection_refusal_never_repeats_the_token(state) -> None:  # type: ignore[no-untyped-def]
    # What HubSpot answers for an unknown token is not documented: maybe a 400 naming it.
    body = {"status": "error", "message": "Token {token} is invalid", "category": "OAUTH"}
    with (
        answering(state, "/oauth/2026-03/token/introspect", 400, body) as url,
        pytest.raises(InvalidRequest) as refused,
    ):
        info_of(state, url, "COsecret-token-123")
    assert "COsecret-token-123" not in str(refused.value)
    assert "Token *** is invalid" in str(refused.value)


def test_an_active_answer_without_the_portal_is_refused_loudly(state) -> None:  # type: ignore[no-untyped-def]
    # The v3 reference page's example is only {"active": true}; the 2026-03 spec adds hub_id.
    with (
        answering(state, "/oauth/2026-03/token/introspect", 200, {"active": True}) as url,
        pytest.raises(InvalidRequest, match="names no hub_id"),
    ):
        info_of(state, url, "CO-token")


def test_no_token_or_secret_in_any_log_line(state, server, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # another test may have raised its level
    code = consent(server, state)["code"]
    tokens, _ = exchange(server, state, code)
    info_of(state, server.url, tokens["access_token"])
    refresh(state, server.url, tokens["refresh_token"])
    lines = [r.getMessage() for r in caplog.records]
    assert any("/oauth/2026-03/token/introspect" in line for line in lines), "urllib3 logged"
    for secret in (code, tokens["access_token"], tokens["refresh_token"], state.client_secret):
        assert not [line for line in lines if secret in line]
