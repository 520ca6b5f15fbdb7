"""The install's setup job through a real RQ worker, against the HubSpot emulator over real HTTP
with a seeded portal: provisioning, then the initial sync requesting every deal's refresh;
a grant without the scopes Deal Radar needs suspends the tenant with what to do; HubSpot down
schedules the setup again; the tenant takes the portal's time zone unless an admin chose one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from adapters.hubspot.oauth import SCOPES
from adapters.hubspot.properties import GROUP, NAMES
from connector import queues
from connector.store.credentials import save_tokens
from connector.store.models import SetupRun
from connector.store.status import describe, tenant_status
from connector.store.tenants import create_tenant, current_settings, get_tenant, save_settings
from jobs.runtime import Runtime
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot_seed import load_into_hubspot
from sandbox.seed import generate
from tests.jobs.conftest import Clock, run_jobs

PORTAL = 62515


class Portal:
    def __init__(self, state: HubSpotState, server: ServerHandle, ids: dict[str, str]) -> None:
        self.state, self.server, self.ids = state, server, ids


@pytest.fixture
def portal(clock: Clock, request: pytest.FixtureRequest) -> Iterator[Portal]:
    world = generate(24, seed=7, now=clock())
    zone = getattr(request, "param", "US/Eastern")  # the portal's time zone (indirect parameter)
    state = HubSpotState(
        PORTAL, clock=clock, rate_limit=None, search_rate_limit=None, time_zone=zone
    )
    ids = load_into_hubspot(state, world)
    portal = Portal(state, None, ids)  # type: ignore[arg-type]
    portal.open = {ids[d.id] for d in world.deals if d.status == "open"}  # type: ignore[attr-defined]
    portal.all = {ids[d.id] for d in world.deals}  # type: ignore[attr-defined]
    try:
        with serve(state) as server:
            portal.server = server
            yield portal
    finally:
        state.webhooks.stop()


def install(rt: Runtime, portal: Portal, clock: Clock, scopes: tuple[str, ...] = ()) -> str:
    """What the install callback leaves behind: the tenant, its tokens, the setup queued."""
    state = portal.state
    rt.crm = {
        "HUBSPOT_API_URL": portal.server.url,
        "HUBSPOT_CLIENT_ID": state.client_id,
        "HUBSPOT_CLIENT_SECRET": state.client_secret,
    }
    tenant, _key = create_tenant(rt.store, crm="hubspot", account_id=str(PORTAL), now=clock())
    token = state.issue_token(scopes)
    save_tokens(
        rt.store, rt.box, tenant.id,
        {"access_token": token.access_token, "refresh_token": token.refresh_token},
        clock() + timedelta(minutes=30), clock(),
    )  # fmt: skip
    assert queues.request_setup(rt.redis, tenant.id)
    return tenant.id


def run_setup(redis: Redis) -> None:
    """Only the setup's queue: what it requested is still waiting afterwards."""
    SimpleWorker([Queue(queues.EVENTS, connection=redis)], connection=redis).work(burst=True)


def pending(redis: Redis, tenant_id: str) -> set[str]:
    return {m.decode() for m in redis.smembers(queues.pending_key(tenant_id))}


def setup_row(rt: Runtime, tenant_id: str) -> SetupRun:
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SetupRun, tenant_id)
        assert row is not None
        s.expunge(row)
        return row


def test_setup_provisions_then_requests_every_deal(
    rt: Runtime, portal: Portal, clock: Clock
) -> None:  # type: ignore[no-untyped-def]
    tenant_id = install(rt, portal, clock)
    run_setup(rt.redis)
    # Provisioned: the group and every property, and the portal's labels matched to roles.
    state = portal.state
    assert any(g["name"] == GROUP["name"] for g in state.property_groups("deals"))
    assert set(NAMES) <= {p["name"] for p in state.properties("deals")}
    # Every seeded open deal (and the closed ones: they may still hold past alerts) requested.
    assert portal.open and portal.open <= pending(rt.redis, tenant_id)
    assert pending(rt.redis, tenant_id) == portal.all
    row = setup_row(rt, tenant_id)
    assert (row.status, row.requested, row.finished_at is not None) == (
        "done",
        len(portal.all),
        True,
    )
    assert row.labels.get("Champion") == "Champion"
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert any(
        "setup: done" in line and f"{len(portal.all)} deals requested in 1 page" in line
        and "pages" not in line
        for line in lines
    )  # fmt: skip
    assert any("contact labels:" in line and "Champion -> Champion" in line for line in lines)
    assert get_tenant(rt.store, tenant_id).status == "active"
    # The refreshes it asked for run, and write Deal Radar's fields on every open deal.
    run_jobs(rt.redis)
    for deal_id in portal.open:
        assert state.get_object("deals", deal_id).get("dealradar_evaluated_at"), deal_id


def test_a_second_setup_rewrites_nothing(rt: Runtime, portal: Portal, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    tenant_id = install(rt, portal, clock)
    run_setup(rt.redis)
    portal.state.reset_counts()
    assert queues.request_setup(rt.redis, tenant_id)
    run_setup(rt.redis)
    writes = {
        k for k in portal.state.counts() if k.startswith(("POST /crm/v3/properties", "PATCH"))
    }
    assert writes == set()
    assert setup_row(rt, tenant_id).status == "done"
    # The scope check introspects the token with the app's credentials (OAuth v3, not v1).
    oauth = {k: n for k, n in portal.state.counts().items() if "/oauth/" in k}
    assert oauth == {"POST /oauth/2026-03/token/introspect": 1}


def test_a_grant_without_the_schema_scope_suspends_the_tenant_saying_what_to_do(
    rt: Runtime, portal: Portal, clock: Clock
) -> None:  # type: ignore[no-untyped-def]
    fewer = tuple(s for s in SCOPES if s != "crm.schemas.deals.write")
    tenant_id = install(rt, portal, clock, scopes=fewer)
    run_setup(rt.redis)
    tenant = get_tenant(rt.store, tenant_id)
    assert tenant.status == "suspended"
    assert "crm.schemas.deals.write" in tenant.status_reason
    assert "install Deal Radar again from /install/hubspot" in tenant.status_reason
    assert pending(rt.redis, tenant_id) == set()  # no sync on a half-provisioned portal
    row = setup_row(rt, tenant_id)
    assert row.status == "failed" and "crm.schemas.deals.write" in row.detail
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert any(line.startswith("  why:") and "crm.schemas.deals.write" in line for line in lines)


def test_hubspot_down_schedules_the_setup_again(rt: Runtime, portal: Portal, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    tenant_id = install(rt, portal, clock)
    with serve(portal.state) as gone:
        rt.crm = dict(rt.crm, HUBSPOT_API_URL=gone.url)
    run_setup(rt.redis)
    assert get_tenant(rt.store, tenant_id).status == "active"
    events = Queue(queues.EVENTS, connection=rt.redis)
    assert events.scheduled_job_registry.count == 1  # the retry, after the policy's backoff
    row = setup_row(rt, tenant_id)
    assert row.status == "provisioning" and row.detail.startswith("waiting to retry")


PARIS = pytest.mark.parametrize("portal", ["Europe/Paris"], indirect=True)


@PARIS
def test_a_first_install_takes_the_portals_time_zone(
    rt: Runtime, portal: Portal, clock: Clock
) -> None:  # type: ignore[no-untyped-def]
    tenant_id = install(rt, portal, clock)
    assert get_tenant(rt.store, tenant_id).timezone == "UTC"
    run_setup(rt.redis)
    assert get_tenant(rt.store, tenant_id).timezone == "Europe/Paris"
    assert current_settings(rt.store, tenant_id).timezone == "Europe/Paris"
    assert portal.state.counts()["GET /account-info/v3/details"] == 1
    row = setup_row(rt, tenant_id)
    assert row.status == "done" and "time zone Europe/Paris (the portal's)" in row.detail
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert any("setup: done" in line and "time zone Europe/Paris" in line for line in lines)
    # Taken once: the portal's later changes are not followed (an admin may have relied on it).
    portal.state.time_zone = "US/Pacific"
    assert queues.request_setup(rt.redis, tenant_id)
    run_setup(rt.redis)
    assert get_tenant(rt.store, tenant_id).timezone == "Europe/Paris"


@PARIS
def test_a_reinstall_keeps_the_zone_an_admin_chose(
    rt: Runtime, portal: Portal, clock: Clock
) -> None:  # type: ignore[no-untyped-def]
    # Installed before Deal Radar read the portal's zone: the admin set theirs in the settings.
    tenant_id = install(rt, portal, clock)
    save_settings(rt.store, tenant_id, {"timezone": "America/New_York"}, "admin@acme", clock())
    run_setup(rt.redis)
    assert current_settings(rt.store, tenant_id).timezone == "America/New_York"
    assert get_tenant(rt.store, tenant_id).timezone == "UTC"
    detail = setup_row(rt, tenant_id).detail
    assert "time zone America/New_York kept (the portal's is Europe/Paris)" in detail


@pytest.mark.parametrize("portal", ["Mars/Olympus_Mons"], indirect=True)
def test_a_zone_python_does_not_know_leaves_utc_and_the_setup_completes(
    rt: Runtime, portal: Portal, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    tenant_id = install(rt, portal, clock)
    with caplog.at_level(logging.WARNING, logger="jobs.install"):
        run_setup(rt.redis)
    assert get_tenant(rt.store, tenant_id).timezone == "UTC"
    row = setup_row(rt, tenant_id)
    assert row.status == "done" and "'Mars/Olympus_Mons' unknown, not taken" in row.detail
    assert pending(rt.redis, tenant_id) == portal.all
    assert any(
        "Mars/Olympus_Mons" in r.getMessage() and "not one Deal Radar can read" in r.getMessage()
        for r in caplog.records
    )
