"""The Sell adapter against the Sell emulator over real HTTP, with its record mirror in a real
store (SQLite, and PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from adapters.base import AdapterContext, TenantRef
from adapters.sell.adapter import SellAdapter
from adapters.sell.fields import FIELDS
from connector.store.db import Store
from connector.store.mirror import StoreMirror, StoreNotices, notices
from connector.store.tenants import create_tenant
from sandbox.seed import generate
from sandbox.sell import SellState, ServerHandle, serve
from sandbox.sell_seed import load_into_sell
from tests.sandbox.sell.support import CLIENT_ID, CLIENT_SECRET, Clock


class StaticToken:
    """A token that never expires (a personal access token); `renew` counts refusals."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.renewed: list[str] = []

    def current(self) -> str:
        return self.token

    def renew(self, rejected: str) -> str:
        self.renewed.append(rejected)
        return self.token


def provision_fields(state: SellState, *, skip: tuple[str, ...] = ()) -> None:
    """What an admin creates in Sell's settings: the Deal Radar deal custom fields."""
    for spec in FIELDS:
        if spec.name not in skip:
            state.define_custom_field("deal", spec.name, spec.type, spec.choices)


@dataclass
class Account:
    state: SellState
    server: ServerHandle
    clock: Clock
    store: Store
    tenant_id: str
    ids: dict[str, int]
    token: StaticToken
    extra: dict = field(default_factory=dict)

    def adapter(self, **extra: object) -> SellAdapter:
        context = AdapterContext(
            tokens=self.token, redis=None, crm={"SELL_API_URL": self.server.url},
            clock=self.clock, mirror=StoreMirror(self.store, self.tenant_id, self.clock),
            notices=StoreNotices(self.store, self.tenant_id, self.clock),
        )  # fmt: skip
        ref = TenantRef(self.tenant_id, "sell", "7000001", extra={**self.extra, **extra})
        return SellAdapter(ref, context)

    def sync(self, adapter: SellAdapter | None = None, cursor: str | None = None,
             pages: int = 10_000) -> tuple[list[str], str | None]:  # fmt: skip
        """Follow the feed to its top as the jobs do: (deal ids in order, the last cursor)."""
        adapter = adapter or self.adapter()
        found: list[str] = []
        for _ in range(pages):
            changes = adapter.changed_since(cursor)
            found += changes.deal_ids
            cursor = changes.cursor
            if not changes.more:
                break
        return found, cursor

    def notices(self) -> dict[str, str]:
        return notices(self.store, self.tenant_id)

    def sell_id(self, world_id: str) -> str:
        return str(self.ids[world_id])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SellState:
    return SellState(
        clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, hourly_limit=None
    )


@pytest.fixture
def make_account(
    state: SellState, clock: Clock, store: Store
) -> Iterator[Callable[..., Account]]:
    servers: list[ServerHandle] = []

    def make(deals: int = 12, seed: int = 4, fields: bool = True) -> Account:
        ids = load_into_sell(state, generate(deals, seed, clock()))
        if fields:
            provision_fields(state)
        tenant, _ = create_tenant(store, crm="sell", account_id="7000001", now=clock())
        server = serve(state)
        servers.append(server)
        token = StaticToken(state.personal_access_token().access_token)
        return Account(state, server, clock, store, tenant.id, ids, token)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()
