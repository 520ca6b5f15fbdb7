"""Installing into Salesforce over real HTTP and HTTPS: our web app on a port, the Salesforce
emulator on another with its own certificate (SALESFORCE_CA_BUNDLE), a browser following the
redirects (our start page, Salesforce's consent, our callback), PKCE checked by the org, on
SQLite and PostgreSQL and a real Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from redis import Redis
from rq import Queue
from werkzeug.serving import make_server

from adapters.salesforce.oauth import challenge
from connector import queues
from connector.app import create_app
from connector.config import Config
from connector.store.credentials import load_tokens
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.tenants import find_tenant, list_api_keys
from sandbox.salesforce import SalesforceState, ServerHandle, serve
from tests.web.conftest import SECRET_KEY

JSON = {"Accept": "application/json"}
CLIENT_ID = "sf-install-consumer-key"
CLIENT_SECRET = "sf-install-consumer-secret"


class Served:
    """Our web app on a real port (its PUBLIC_URL), configured for the emulated org."""

    def __init__(self, store: Store, redis: Redis, org: ServerHandle, **crm: str) -> None:
        self.browser = requests.Session()
        self.browser.trust_env = False
        self.browser.verify = org.cert_path  # the admin's browser trusts the org
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        settings = {
            "SALESFORCE_CLIENT_ID": CLIENT_ID, "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
            "SALESFORCE_LOGIN_URL": org.url, "SALESFORCE_CA_BUNDLE": org.cert_path,
        } | crm  # fmt: skip
        self.config = Config(
            database_url=store.url, secret_keys=(SECRET_KEY,), public_url=self.url, crm=settings
        )
        self.app = create_app(
            self.config, store=store, redis=redis, clock=lambda: datetime.now(UTC)
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        return self.app(environ, start_response)

    def install(self, query: str = "") -> requests.Response:
        return self.browser.get(f"{self.url}/install/salesforce{query}", headers=JSON, timeout=10)

    def stop(self) -> None:
        self.browser.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def org() -> Iterator[ServerHandle]:
    state = SalesforceState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with serve(state) as handle:
        yield handle


@pytest.fixture
def web(store: Store, redis: Redis, org: ServerHandle) -> Iterator[Served]:
    served = Served(store, redis, org)
    yield served
    served.stop()


def _setup_jobs(redis: Redis) -> list:
    return [j for j in Queue(queues.EVENTS, connection=redis).jobs
            if j.func_name == "jobs.install.setup"]  # fmt: skip


def test_the_start_page_asks_for_consent_with_a_pkce_challenge(
    web: Served, org: ServerHandle, redis: Redis
) -> None:
    start = web.browser.get(web.url + "/install/salesforce", allow_redirects=False, timeout=5)
    assert start.status_code == 302
    target = urlsplit(start.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}" == org.url
    assert target.path == "/services/oauth2/authorize"
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == web.url + "/install/salesforce/callback"
    assert query["scope"].split() == ["api", "refresh_token"]
    assert query["code_challenge_method"] == "S256"
    (key,) = redis.keys("dealradar:install:pkce:*")
    verifier = redis.get(key).decode()
    assert query["code_challenge"] == challenge(verifier)
    assert verifier not in start.headers["Location"], "the verifier never leaves our side"


def test_a_first_install_stores_the_org_tokens_and_instance(
    web: Served, org: ServerHandle, store: Store, redis: Redis
) -> None:
    answer = web.install()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["sandbox"]) == ("installed", False)
    assert body["api_key"].startswith("drk_")
    tenant = find_tenant(store, "salesforce", org.state.org_id)
    assert tenant is not None and tenant.id == body["tenant_id"]
    tokens = load_tokens(store, TokenBox([SECRET_KEY]), tenant.id)
    assert tokens is not None and tokens.expires_at is None, "Salesforce says no lifetime"
    assert tokens.data["instance_url"] == org.url
    assert tokens.data["login_url"] == org.url
    assert tokens.data["id"].endswith(f"/id/{org.state.org_id}/{org.state.api_user_id}")
    assert org.state.authenticate(tokens.data["access_token"]).user_id == org.state.api_user_id
    assert [j.args for j in _setup_jobs(redis)] == [(tenant.id,)]
    assert redis.keys("dealradar:install:pkce:*") == [], "the verifier is used once"

    again = web.install()
    assert again.json() | {"api_key": None} == body | {"status": "reinstalled", "api_key": None}
    assert len(list_api_keys(store, tenant.id)) == 1


def test_the_html_answer_shows_the_same_facts(web: Served, org: ServerHandle) -> None:
    answer = web.browser.get(
        f"{web.url}/install/salesforce", headers={"Accept": "text/html"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert f"installed in Salesforce org {org.state.org_id}" in answer.text
    assert "drk_" in answer.text and "any step left to an admin" in answer.text


def test_a_sandbox_org_logs_in_at_the_sandbox_host(
    store: Store, redis: Redis, org: ServerHandle
) -> None:
    web = Served(store, redis, org, SALESFORCE_LOGIN_URL="https://127.0.0.1:9",  # nothing there
                 SALESFORCE_SANDBOX_LOGIN_URL=org.url)  # fmt: skip
    try:
        answer = web.install("?sandbox=1")
        assert answer.status_code == 200, answer.text
        assert answer.json()["sandbox"] is True
        tenant = find_tenant(store, "salesforce", org.state.org_id)
        tokens = load_tokens(store, TokenBox([SECRET_KEY]), tenant.id)
        assert tokens.data["login_url"] == org.url, "refreshed where it logged in"
    finally:
        web.stop()


def test_a_lost_verifier_cannot_finish_the_install(web: Served, redis: Redis, store: Store) -> None:
    start = web.browser.get(web.url + "/install/salesforce", allow_redirects=False, timeout=5)
    consent = web.browser.get(start.headers["Location"], allow_redirects=False, timeout=5)
    for key in redis.keys("dealradar:install:pkce:*"):
        redis.delete(key)
    answer = web.browser.get(consent.headers["Location"], headers=JSON, timeout=5)
    assert answer.status_code == 400
    assert "PKCE verifier expired; start again at /install/salesforce" in answer.json()["detail"]
    assert find_tenant(store, "salesforce", "00D") is None


def test_a_refused_consent_and_wrong_credentials(
    store: Store, redis: Redis, org: ServerHandle
) -> None:
    web = Served(store, redis, org, SALESFORCE_CLIENT_SECRET="not-the-apps-secret")
    try:
        answer = web.install()
        assert answer.status_code == 500
        assert "check SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET" in answer.json()["detail"]
        start = web.browser.get(web.url + "/install/salesforce", allow_redirects=False,
                                timeout=5)  # fmt: skip
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        denied = web.browser.get(
            web.url + "/install/salesforce/callback",
            params={"error": "access_denied", "error_description": "end-user denied",
                    "state": state},
            headers=JSON, timeout=5,
        )  # fmt: skip
        assert denied.status_code == 400
        assert "Salesforce did not grant access (end-user denied)" in denied.json()["detail"]
    finally:
        web.stop()


def test_no_connected_app_configured(store: Store, redis: Redis, org: ServerHandle) -> None:
    web = Served(store, redis, org, SALESFORCE_CLIENT_ID="")
    try:
        answer = web.install()
        assert answer.status_code == 500
        assert "set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET" in answer.json()["detail"]
    finally:
        web.stop()
