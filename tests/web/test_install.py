"""Installing into HubSpot over real HTTP: our web app and the HubSpot emulator each served on
a port, a client following the redirects as a browser would (our start page, HubSpot's consent,
our callback), on SQLite and PostgreSQL and a real Redis."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select
from werkzeug.serving import make_server

from adapters.errors import AuthExpired
from adapters.hubspot.oauth import SCOPES
from connector import queues
from connector.app import create_app
from connector.config import Config
from connector.store.credentials import load_tokens
from connector.store.db import Store
from connector.store.models import Credential
from connector.store.secrets import TokenBox
from connector.store.tenants import find_tenant, list_api_keys, set_status, tenant_for_api_key
from connector.web.install_flow import InstallError, install_account
from jobs import crm_actions, policy, refresh, schedule, writeback
from jobs import install as install_job
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from tests.web.conftest import SECRET_KEY

PORTAL = 62515
JSON = {"Accept": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Served:
    """Our web app on a real port (its PUBLIC_URL), with the config pointing at HubSpot."""

    def __init__(
        self, store: Store, redis: Redis, hubspot_url: str, prefix: str = "", **crm: str
    ) -> None:
        """`prefix`: served under it, as behind a proxy that strips it (PUBLIC_URL has it)."""
        self.clock = Clock()
        self.prefix = prefix
        self.browser = requests.Session()
        """The admin's browser: keeps our cookie from the start page to the callback."""
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}{prefix}"
        settings = {
            "HUBSPOT_API_URL": hubspot_url,
            "HUBSPOT_AUTHORIZE_URL": hubspot_url + "/oauth/authorize",
        } | crm
        self.config = Config(
            database_url=store.url, secret_keys=(SECRET_KEY,), public_url=self.url, crm=settings
        )
        self.app = create_app(self.config, store=store, redis=redis, clock=self.clock)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.prefix + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not under the prefix"]
        environ["PATH_INFO"] = path[len(self.prefix) :]  # the proxy strips it
        return self.app(environ, start_response)

    def install(self, headers: dict[str, str] | None = None) -> requests.Response:
        return self.browser.get(self.url + "/install/hubspot", headers=headers or JSON, timeout=10)

    def consent(self) -> str:
        """Our start page and HubSpot's consent, stopping before our callback: its URL."""
        start = self.browser.get(self.url + "/install/hubspot", allow_redirects=False, timeout=5)
        assert start.status_code == 302
        consent = self.browser.get(start.headers["Location"], allow_redirects=False, timeout=5)
        assert consent.status_code == 302
        return consent.headers["Location"]

    def stop(self) -> None:
        self.browser.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hubspot() -> Iterator[ServerHandle]:
    state = HubSpotState(portal_id=PORTAL, rate_limit=None, search_rate_limit=None)
    with serve(state) as handle:
        yield handle
    state.webhooks.stop()


@pytest.fixture
def web(store: Store, redis: Redis, hubspot: ServerHandle) -> Iterator[Served]:
    state = hubspot.state
    served = Served(
        store, redis, hubspot.url,
        HUBSPOT_CLIENT_ID=state.client_id, HUBSPOT_CLIENT_SECRET=state.client_secret,
    )  # fmt: skip
    yield served
    served.stop()


def setup_jobs(redis: Redis) -> list:
    return [
        j
        for j in Queue(queues.EVENTS, connection=redis).jobs
        if j.func_name == "jobs.install.setup"
    ]


@pytest.mark.parametrize(
    ("crm", "account_id", "words"),
    [("hubspot", "acme.hubspot.com", "HubSpot portal id"), ("sell", "acme", "Sell account id")],
)
def test_an_install_naming_an_unusable_account_id_installs_nothing(
    app: Flask, store: Store, crm: str, account_id: str, words: str
) -> None:
    """Every install callback creates its tenant through install_account: one for an account
    id no webhook or reinstall would ever name again must not be made."""
    services = app.extensions["dealradar"]
    with pytest.raises(InstallError) as refused:
        install_account(services, crm, account_id, "Acme", {"access_token": "a"}, None,
                        start=f"/install/{crm}")  # fmt: skip
    assert refused.value.status == 502
    assert words in str(refused.value) and f"/install/{crm}" in str(refused.value)
    assert find_tenant(store, crm, account_id) is None


def test_the_start_page_sends_the_browser_to_hubspots_consent(web: Served) -> None:
    start = requests.get(web.url + "/install/hubspot", allow_redirects=False, timeout=5)
    assert start.status_code == 302
    target = urlsplit(start.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/oauth/authorize"
    assert query["client_id"] == web.config.crm["HUBSPOT_CLIENT_ID"]
    assert query["redirect_uri"] == web.url + "/install/hubspot/callback"
    assert query["scope"].split() == list(SCOPES)
    assert query["state"]


def test_a_first_install(
    web: Served, hubspot: ServerHandle, store: Store, redis: Redis, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    answer = web.install()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "installed"
    assert body["portal_id"] == str(PORTAL)
    assert body["api_key"].startswith("drk_")
    tenant = find_tenant(store, "hubspot", str(PORTAL))
    assert tenant is not None and tenant.id == body["tenant_id"] and tenant.status == "active"
    assert tenant_for_api_key(store, body["api_key"], web.clock()) == tenant.id
    # The tokens work against HubSpot, and are stored encrypted.
    tokens = load_tokens(store, TokenBox([SECRET_KEY]), tenant.id)
    assert tokens is not None and tokens.expires_at is not None
    access, refresh = tokens.data["access_token"], tokens.data["refresh_token"]
    assert hubspot.state.oauth.authenticate(access).scopes == SCOPES
    with store.tenant(tenant.id) as s:
        ciphertext = s.scalars(select(Credential.ciphertext)).one()
    assert access not in ciphertext and refresh not in ciphertext
    # The setup job waits on a queue `dealradar worker` serves.
    [job] = setup_jobs(redis)
    assert job.args == (tenant.id,)
    assert queues.EVENTS in queues.QUEUES
    # Nothing secret in any log line.
    lines = [r.getMessage() for r in caplog.records]
    assert any("installed as tenant" in line for line in lines)
    for secret in (access, refresh, body["api_key"], hubspot.state.client_secret):
        assert not [line for line in lines if secret in line]
    # HubSpot's OAuth v3 (v1 retires on 2027-02-16): the code exchange, then the portal's id.
    oauth = {k: n for k, n in hubspot.state.counts().items() if "/oauth/" in k}
    assert oauth == {
        "GET /oauth/authorize": 1,
        "POST /oauth/2026-03/token": 1,
        "POST /oauth/2026-03/token/introspect": 1,
    }


def test_a_reinstall_keeps_the_tenant_and_its_keys_and_replaces_the_tokens(
    web: Served, store: Store, redis: Redis
) -> None:  # type: ignore[no-untyped-def]
    first = web.install().json()
    box = TokenBox([SECRET_KEY])
    before = load_tokens(store, box, first["tenant_id"])
    set_status(store, first["tenant_id"], "suspended", "HubSpot refused our token", web.clock())
    redis.delete(queues.scheduled_key(first["tenant_id"], "setup"))  # the first setup ran
    again = web.install()
    assert again.status_code == 200
    assert again.json() == {
        "tenant_id": first["tenant_id"], "portal_id": str(PORTAL), "status": "reinstalled",
        "api_key": None,
    }  # fmt: skip
    after = load_tokens(store, box, first["tenant_id"])
    assert after.data["access_token"] != before.data["access_token"]
    assert after.version == before.version + 1
    assert len(list_api_keys(store, first["tenant_id"])) == 1
    tenant = find_tenant(store, "hubspot", str(PORTAL))
    assert (tenant.status, tenant.status_reason) == ("active", None)
    assert len(setup_jobs(redis)) == 2


def test_a_reinstall_is_not_suspended_by_its_first_expired_token(
    web: Served, store: Store, redis: Redis
) -> None:
    """Three expired tokens suspended the tenant, saying to reinstall; the reinstall's new grant
    gets the same three tries, in every job that counts them."""
    tenant_id = web.install().json()["tenant_id"]
    runs = [
        refresh._attempts_key(tenant_id),
        schedule._attempts_key(tenant_id),
        install_job._attempts_key(tenant_id),
        writeback._attempts_key(tenant_id),
        crm_actions._auth_failures_key(tenant_id),
        f"dealradar:users:attempts:{tenant_id}",  # jobs.users names it inline
    ]
    for run in runs:
        decisions = [policy.decide_attempt(redis, run, AuthExpired("401")) for _ in range(3)]
        assert decisions[-1].action == "suspend", run
    set_status(store, tenant_id, "suspended", decisions[-1].reason, web.clock())
    assert web.install().json()["status"] == "reinstalled"
    for run in runs:
        assert policy.decide_attempt(redis, run, AuthExpired("401")).action == "retry", run


def test_an_install_behind_a_proxy_that_serves_the_app_under_a_prefix(
    store: Store, redis: Redis, hubspot: ServerHandle
) -> None:
    """PUBLIC_URL https://host/radar: the browser comes back to /radar/install/hubspot/callback,
    and must bring the install's cookie with it."""
    state = hubspot.state
    served = Served(
        store, redis, hubspot.url, prefix="/radar",
        HUBSPOT_CLIENT_ID=state.client_id, HUBSPOT_CLIENT_SECRET=state.client_secret,
    )  # fmt: skip
    try:
        answer = served.install()
    finally:
        served.stop()
    assert answer.status_code == 200, answer.text
    assert answer.url.startswith(served.url + "/install/hubspot/callback")
    assert answer.json()["status"] == "installed"


def test_the_html_answer_shows_the_same_facts(web: Served) -> None:
    answer = web.install(headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "installed in HubSpot portal 62515" in answer.text
    assert "drk_" in answer.text


def test_the_answer_showing_the_api_key_is_kept_by_no_cache(web: Served) -> None:
    """The key is shown once: neither the browser's cache (the back button, a shared computer)
    nor a proxy may keep the page or the JSON that carry it (RFC 6749 5.1 asks the same of
    token answers)."""
    for accept in ("text/html", "application/json"):
        answer = web.install(headers={"Accept": accept})
        assert answer.status_code == 200
        assert answer.headers.get("Cache-Control") == "no-store"


def test_a_forged_state_is_refused(web: Served, store: Store) -> None:
    callback = urlsplit(web.consent())
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    forged = web.browser.get(
        web.url + callback.path, params={"code": query["code"], "state": query["state"] + "x"},
        headers=JSON, timeout=5,
    )  # fmt: skip
    assert forged.status_code == 400
    assert "/install/hubspot" in forged.json()["detail"]
    missing = web.browser.get(web.url + callback.path, params={"code": query["code"]}, headers=JSON)
    assert missing.status_code == 400
    assert find_tenant(store, "hubspot", str(PORTAL)) is None


def test_an_expired_state_is_refused(web: Served, store: Store) -> None:
    callback = web.consent()
    web.clock.now += timedelta(minutes=11)
    late = web.browser.get(callback, headers=JSON, timeout=5)
    assert late.status_code == 400
    assert "longer than 10 minutes" in late.json()["detail"]
    assert find_tenant(store, "hubspot", str(PORTAL)) is None


def test_a_callback_opened_in_another_browser_is_refused(web: Served, store: Store) -> None:
    callback = web.consent()
    elsewhere = requests.get(callback, headers=JSON, timeout=5)  # no cookie of ours
    assert elsewhere.status_code == 400
    assert "started in another browser" in elsewhere.json()["detail"]
    assert f"open {web.url}/install/hubspot in this browser" in elsewhere.json()["detail"]
    assert find_tenant(store, "hubspot", str(PORTAL)) is None
    # The admin's own browser still completes it.
    assert web.browser.get(callback, headers=JSON, timeout=5).status_code == 200


def test_a_state_used_twice_is_refused(web: Served) -> None:
    callback = web.consent()
    cookie = web.browser.cookies.get("dealradar_install")
    assert web.browser.get(callback, headers=JSON, timeout=5).status_code == 200
    assert web.browser.cookies.get("dealradar_install") is None  # spent
    # Even with the cookie put back (a copy of the whole request), the state works once.
    replay = requests.get(callback, headers=JSON, cookies={"dealradar_install": cookie}, timeout=5)
    assert replay.status_code == 400
    assert "used already" in replay.json()["detail"]


def test_a_code_hubspot_refuses_is_a_400_saying_what_to_do(web: Served, store: Store) -> None:
    callback = urlsplit(web.consent())
    state = parse_qs(callback.query)["state"][0]
    refused = web.browser.get(
        web.url + callback.path, params={"code": "not-a-code", "state": state}, headers=JSON
    )
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "refused the authorization code" in detail and "BAD_AUTH_CODE" in detail
    assert "start again at /install/hubspot" in detail
    assert find_tenant(store, "hubspot", str(PORTAL)) is None


def test_a_consent_the_admin_declined_is_a_400(web: Served) -> None:
    callback = urlsplit(web.consent())
    state = parse_qs(callback.query)["state"][0]
    declined = web.browser.get(
        web.url + callback.path, headers=JSON,
        params={"error": "access_denied", "error_description": "the user declined", "state": state},
    )  # fmt: skip
    assert declined.status_code == 400
    assert "the user declined" in declined.json()["detail"]


def test_hubspot_down_is_a_502(store: Store, redis: Redis, hubspot: ServerHandle) -> None:
    with serve(hubspot.state) as gone:
        dead = gone.url
    state = hubspot.state
    web = Served(
        store, redis, hubspot.url, HUBSPOT_API_URL=dead,
        HUBSPOT_CLIENT_ID=state.client_id, HUBSPOT_CLIENT_SECRET=state.client_secret,
    )  # fmt: skip
    try:
        down = web.install()
    finally:
        web.stop()
    assert down.status_code == 502
    assert "try again in a few minutes" in down.json()["detail"]
    assert find_tenant(store, "hubspot", str(PORTAL)) is None


def test_an_unconfigured_app_says_which_settings_to_set(
    store: Store, redis: Redis, hubspot: ServerHandle
) -> None:  # type: ignore[no-untyped-def]
    web = Served(store, redis, hubspot.url)
    try:
        answer = web.install()
    finally:
        web.stop()
    assert answer.status_code == 500
    assert "HUBSPOT_CLIENT_ID" in answer.json()["detail"]


def test_a_wrong_client_secret_says_which_settings_to_check(
    store: Store, redis: Redis, hubspot: ServerHandle
) -> None:  # type: ignore[no-untyped-def]
    web = Served(
        store, redis, hubspot.url,
        HUBSPOT_CLIENT_ID=hubspot.state.client_id, HUBSPOT_CLIENT_SECRET="not-the-secret",
    )  # fmt: skip
    try:
        answer = web.install()
    finally:
        web.stop()
    assert answer.status_code == 500
    detail = answer.json()["detail"]
    assert "refused Deal Radar's app credentials" in detail and "HUBSPOT_CLIENT_SECRET" in detail
    assert "not-the-secret" not in detail
    assert find_tenant(store, "hubspot", str(PORTAL)) is None
