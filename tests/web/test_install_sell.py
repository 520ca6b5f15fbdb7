"""Installing into Zendesk Sell over real HTTP: our web app and the Sell emulator each on a
port, a browser following the redirects (our start page, Sell's consent, our callback)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from redis import Redis

from connector.store.credentials import load_tokens
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.tenants import find_tenant, tenant_for_api_key
from sandbox.sell import SellState, ServerHandle, serve
from tests.web.conftest import SECRET_KEY
from tests.web.test_install import JSON, Served, setup_jobs

CLIENT_ID, CLIENT_SECRET = "sell-app-id", "sell-app-secret"


@pytest.fixture
def sell() -> Iterator[ServerHandle]:
    state = SellState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, hourly_limit=None)
    with serve(state) as handle:
        yield handle


@pytest.fixture
def web(store: Store, redis: Redis, sell: ServerHandle) -> Iterator[Served]:
    served = Served(
        store, redis, "http://hubspot.invalid", SELL_API_URL=sell.url,
        SELL_AUTHORIZE_URL=sell.url + "/oauth2/authorize", SELL_CLIENT_ID=CLIENT_ID,
        SELL_CLIENT_SECRET=CLIENT_SECRET,
    )  # fmt: skip
    yield served
    served.stop()


def test_an_install_creates_the_tenant_stores_tokens_and_queues_the_setup(
    web: Served, sell: ServerHandle, store: Store, redis: Redis
) -> None:
    start = web.browser.get(web.url + "/install/sell", allow_redirects=False, timeout=5)
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["redirect_uri"] == [web.url + "/install/sell/callback"]
    assert "scope=read+write+profile" in start.headers["Location"]
    answer = web.browser.get(start.headers["Location"], headers=JSON, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    account_id = str(sell.state.account["id"])
    assert body["status"] == "installed" and body["account_id"] == account_id
    tenant = find_tenant(store, "sell", account_id)
    assert tenant is not None and tenant.id == body["tenant_id"]
    assert tenant_for_api_key(store, body["api_key"], web.clock()) == tenant.id
    tokens = load_tokens(store, TokenBox([SECRET_KEY]), tenant.id)
    assert tokens is not None and tokens.data["refresh_token"] and tokens.expires_at
    assert [j.args for j in setup_jobs(redis)] == [(tenant.id,)]
    # Once more: the same tenant, no new key; a replayed callback is refused.
    again = web.browser.get(web.url + "/install/sell", headers=JSON, timeout=10).json()
    assert (again["status"], again["tenant_id"], again["api_key"]) == (
        "reinstalled", tenant.id, None)
    replay = web.browser.get(answer.url, headers=JSON, timeout=10)
    assert replay.status_code == 400 and "/install/sell" in replay.json()["detail"]


def test_without_the_sell_app_configured_the_admin_is_told_what_to_set(
    store: Store, redis: Redis, sell: ServerHandle
) -> None:
    served = Served(store, redis, "http://hubspot.invalid", SELL_API_URL=sell.url)
    try:
        answer = requests.get(served.url + "/install/sell", headers=JSON, timeout=5)
    finally:
        served.stop()
    assert answer.status_code == 500 and "SELL_CLIENT_ID" in answer.json()["detail"]
