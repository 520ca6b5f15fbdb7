"""Sell OAuth against the emulator: consent URL, code and refresh grants, the account a token
names, personal access tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from adapters.errors import InvalidRequest, PermissionDenied
from adapters.sell import oauth
from sandbox.sell import SellState, serve
from tests.sandbox.sell.support import CLIENT_ID, CLIENT_SECRET, Clock

REDIRECT = "https://dealradar.example/install/sell/callback"


def test_consent_code_tokens_refresh_and_account(state: SellState, clock: Clock) -> None:
    with serve(state) as server:
        url = oauth.authorize_url(client_id=CLIENT_ID, redirect_uri=REDIRECT, state="s1",
                                  base=f"{server.url}/oauth2/authorize")  # fmt: skip
        assert "scope=read+write+profile" in url, "Sell wants + between scopes"
        consent = requests.get(url, allow_redirects=False, timeout=10)
        query = parse_qs(urlsplit(consent.headers["Location"]).query)
        assert query["state"] == ["s1"]
        tokens, expires = oauth.exchange_code(
            query["code"][0], client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT, host=server.url, now=clock,
        )  # fmt: skip
        assert (expires - clock()).total_seconds() == 3599
        account = oauth.account(tokens["access_token"], host=server.url)
        assert account == oauth.Account(str(state.account["id"]), state.account["name"])
        renewed, _ = oauth.refresh_grant(tokens, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                         host=server.url, now=clock)  # fmt: skip
        assert renewed["access_token"] != tokens["access_token"]
        with pytest.raises(PermissionDenied, match="install Deal Radar again"):
            oauth.refresh_grant(tokens, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                host=server.url, now=clock)  # the old refresh token is spent
        with pytest.raises(InvalidRequest, match="SELL_CLIENT_ID"):
            oauth.refresh_grant(renewed, client_id=CLIENT_ID, client_secret="wrong",
                                host=server.url, now=clock)  # fmt: skip


def test_a_personal_token_is_stored_marked_and_never_renewed(state: SellState) -> None:
    token = state.personal_access_token().access_token
    stored = oauth.personal_tokens(f"  {token}\n")
    assert stored == {"access_token": token, "personal": True}
    with pytest.raises(ValueError, match="64 letters and digits"):
        oauth.personal_tokens("short")
    with pytest.raises(PermissionDenied, match="--token-stdin"):
        oauth.refresh_grant(stored, client_id="", client_secret="", now=lambda: None)  # type: ignore[arg-type]


@responses.activate
def test_a_refresh_answered_without_a_refresh_token_keeps_the_old_one() -> None:
    responses.post("https://api.getbase.com/oauth2/token", json={
        "access_token": "a2", "token_type": "bearer", "expires_in": 3599,
    })  # fmt: skip
    stored = {"access_token": "a1", "refresh_token": "r1"}
    renewed, _ = oauth.refresh_grant(stored, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                     now=lambda: datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    assert renewed == {"access_token": "a2", "refresh_token": "r1"}
