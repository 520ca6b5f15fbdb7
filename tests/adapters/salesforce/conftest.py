"""The Salesforce adapter against the emulator over real HTTPS: an org served with its own
certificate (the client verifies against it, as SALESFORCE_CA_BUNDLE would make it), tokens
from the emulator's real OAuth grants, and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.base import AdapterContext, ApiUsage, TenantRef
from adapters.salesforce.adapter import SalesforceAdapter
from adapters.salesforce.client import SalesforceClient, https_session
from adapters.salesforce.oauth import refresh_grant
from sandbox.salesforce import SalesforceState, ServerHandle, serve
from tests.sandbox.conftest import Clock

CLIENT_ID = "sandbox-consumer-key"
CLIENT_SECRET = "sf-adapter-test-secret"


class OrgTokens:
    """A TokenSource on the emulator: refreshed through the real refresh grant when renewed."""

    def __init__(self, state: SalesforceState, server: ServerHandle) -> None:
        session = state.issue_session()
        self.server = server
        self.tokens: dict[str, Any] = {
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "instance_url": state.instance_url,
            "login_url": server.url,
            "id": state.id_url(session),
        }
        self.renewed = 0

    def current(self) -> str:
        return self.tokens["access_token"]

    def renew(self, rejected: str) -> str:
        self.tokens = refresh_grant(
            self.tokens, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            session=https_session(self.server.cert_path),
        )  # fmt: skip
        self.renewed += 1
        return self.tokens["access_token"]

    def detail(self, name: str) -> str | None:
        return self.tokens.get(name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def org(clock: Clock) -> SalesforceState:
    return SalesforceState(clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def server(org: SalesforceState) -> Iterator[ServerHandle]:
    with serve(org) as handle:
        yield handle


@pytest.fixture
def tokens(org: SalesforceState, server: ServerHandle) -> OrgTokens:
    return OrgTokens(org, server)


@pytest.fixture
def usage() -> list[ApiUsage]:
    return []


@pytest.fixture
def client(
    org: SalesforceState, server: ServerHandle, tokens: OrgTokens, usage: list[ApiUsage]
) -> SalesforceClient:
    return SalesforceClient(
        org.org_id, tokens, ca_bundle=server.cert_path, usage=usage.append, sleep=lambda s: None
    )


@pytest.fixture
def adapter(org: SalesforceState, client: SalesforceClient, clock: Clock) -> SalesforceAdapter:
    return make_adapter(org, client, clock)


def make_adapter(
    org: SalesforceState,
    client: SalesforceClient,
    clock: Clock,
    label_roles: dict[str, str] | None = None,
) -> SalesforceAdapter:
    tenant = TenantRef(
        id="t-sf", crm="salesforce", account_id=org.org_id,
        extra={"label_roles": label_roles} if label_roles else {},
    )  # fmt: skip
    context = AdapterContext(tokens=None, redis=None, crm={}, clock=clock)
    return SalesforceAdapter(tenant, context, client=client)
