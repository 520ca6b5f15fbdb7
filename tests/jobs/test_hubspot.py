"""The jobs on a HubSpot tenant, end to end: a real tenant in the store with encrypted tokens,
the emulator over HTTP, the web app on a real port receiving the emulator's signed webhooks, and
RQ workers running refresh, write-back, the sweeper's resolution of unresolved events."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest
from cryptography.fernet import Fernet
from rq.job import Job
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.hubspot import properties
from adapters.hubspot.adapter import HubSpotAdapter
from connector import queues
from connector.app import create_app
from connector.config import Config
from connector.store import results, tenants
from connector.store.credentials import load_tokens, save_tokens
from connector.store.models import InboxEvent, SetupRun, SyncCursor
from connector.store.snapshots import load_bundles
from jobs import schedule, sweeper
from jobs.runtime import Runtime
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot import create_app as create_hubspot
from sandbox.hubspot_seed import load_into_hubspot
from sandbox.hubspot_state import Token
from sandbox.seed import generate
from sandbox.world import World
from tests.adapters.hubspot.refusals import missing_scopes, refusing_inputs
from tests.adapters.hubspot.test_adapter import provision
from tests.jobs.conftest import run_jobs

PORTAL = 62515


@dataclass
class Portal:
    state: HubSpotState
    server: ServerHandle
    world: World
    ids: dict[str, str]
    tenant_id: str
    token: Token

    def deal(self, world_id: str) -> str:
        return self.ids[world_id]


@pytest.fixture
def portal(rt: Runtime, clock: Any) -> Iterator[Portal]:
    """A seeded, provisioned portal on the real clock (webhook signatures are checked against
    it), installed as a tenant whose jobs run on the test clock, at the world's `now`."""
    world = generate(8, seed=21, now=clock())
    state = HubSpotState(PORTAL, rate_limit=None, search_rate_limit=None)
    ids = load_into_hubspot(state, world)
    provision(state)
    tenant, _ = tenants.create_tenant(
        rt.store, crm="hubspot", account_id=str(PORTAL), timezone="UTC", now=clock()
    )
    token = state.issue_token()
    save_tokens(
        rt.store, rt.box, tenant.id,  # type: ignore[arg-type]
        {"access_token": token.access_token, "refresh_token": token.refresh_token},
        clock() + timedelta(minutes=30), clock(),
    )  # fmt: skip
    with serve(state) as server:
        rt.crm = {
            "HUBSPOT_API_URL": server.url,
            "HUBSPOT_CLIENT_ID": state.client_id,
            "HUBSPOT_CLIENT_SECRET": state.client_secret,
            "HUBSPOT_APP_ID": str(state.app_id),
        }
        try:
            yield Portal(state, server, world, ids, tenant.id, token)
        finally:
            state.webhooks.stop()


@pytest.fixture
def web(rt: Runtime, portal: Portal) -> Iterator[str]:
    """Our web app on a real port, receiving the emulator's webhooks."""
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),
                         threaded=True)  # fmt: skip
    url = f"http://127.0.0.1:{server.server_port}"
    config = Config(
        database_url=rt.store.url,
        secret_keys=(Fernet.generate_key().decode(),),
        public_url=url,
        crm=dict(rt.crm),
        coalesce_seconds=0.0,
    )
    holder["app"] = create_app(config, store=rt.store, redis=rt.redis, clock=rt.clock)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    portal.state.webhooks.configure(url + "/webhooks/hubspot", batch_delay=0.05)
    try:
        yield url
    finally:
        portal.state.webhooks.disable()
        server.shutdown()
        thread.join(timeout=5)


def _inbox(rt: Runtime, tenant_id: str) -> list[InboxEvent]:
    with rt.store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))
        s.expunge_all()
    return rows


def _refresh(rt: Runtime, portal: Portal, deal_ids: list[str]) -> None:
    queues.request_refresh(rt.redis, portal.tenant_id, deal_ids, window=0)
    run_jobs(rt.redis)


def test_a_refresh_writes_each_deals_alerts_into_hubspot_and_ignores_the_echo(
    rt: Runtime, portal: Portal, web: str
) -> None:
    deal_ids = [portal.deal(d.id) for d in portal.world.deals]
    portal.state.reset_counts()
    _refresh(rt, portal, deal_ids)

    counts = portal.state.counts()
    assert counts["POST /crm/v3/objects/deals/batch/update"] == 1
    for d in portal.world.deals:
        stored = portal.state.get_object("deals", portal.deal(d.id))
        wanted = ";".join(sorted(portal.world.scenarios[d.id]))
        assert stored.get("dealradar_alerts", "") == wanted, d.id
        assert stored["dealradar_health_grade"] == portal.world.grades[d.id]
    with rt.store.tenant(portal.tenant_id) as s:
        written = results.written_values(s, deal_ids)
    assert set(written) == set(deal_ids)

    # HubSpot tells us about our own writes; the webhook half drops them as ours.
    assert portal.state.webhooks.flush()
    echoes = [
        e for e in portal.state.webhooks.delivered_events()
        if str(e.get("propertyName", "")).startswith(properties.PREFIX)
    ]  # fmt: skip
    assert echoes and {e["changeSource"] for e in echoes} == {"INTEGRATION"}
    assert _inbox(rt, portal.tenant_id) == []


def test_a_call_logged_on_a_known_deal_is_placed_and_refreshes_it(
    rt: Runtime, portal: Portal, web: str
) -> None:
    deal = next(d for d in portal.world.deals if d.contacts and d.status == "open")
    deal_id = portal.deal(deal.id)
    _refresh(rt, portal, [deal_id])
    person = portal.deal(deal.contacts[0].person_id)
    call = portal.state.log_activity(
        "calls",
        {"hs_timestamp": rt.clock() - timedelta(hours=1), "hs_call_direction": "OUTBOUND",
         "hs_call_status": "COMPLETED", "hubspot_owner_id": portal.deal(deal.owner_id)},
        deal_ids=[deal_id], contact_ids=[person],
    )  # fmt: skip
    assert portal.state.webhooks.flush()
    unresolved = [e for e in _inbox(rt, portal.tenant_id) if e.status == "unresolved"]
    assert unresolved, "the call's creation names no deal the snapshot knows"

    sweeper.run()
    run_jobs(rt.redis)

    placed = {e.id: e for e in _inbox(rt, portal.tenant_id)}
    for event in unresolved:
        assert placed[event.id].status == "done" and placed[event.id].deal_ids == [deal_id]
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [deal_id])
    assert call in {a.id for a in bundle.activities}


def test_a_contact_whose_title_changes_re_evaluates_its_deals(
    rt: Runtime, portal: Portal, web: str
) -> None:
    """The contact's deal was never pulled (no snapshot row links them): the event is placed
    through HubSpot's associations and the deal is refreshed with the new title."""
    deal = next(d for d in portal.world.deals if d.contacts)
    deal_id, person = portal.deal(deal.id), portal.deal(deal.contacts[0].person_id)
    deals_of_person = {
        portal.deal(d.id) for d in portal.world.deals
        if deal.contacts[0].person_id in {c.person_id for c in d.contacts}
    }  # fmt: skip
    portal.state.update_object("contacts", person, {"jobtitle": "Chief Executive Officer"})
    assert portal.state.webhooks.flush()
    (event,) = _inbox(rt, portal.tenant_id)
    assert event.status == "unresolved"

    sweeper.run()
    run_jobs(rt.redis)

    (event,) = _inbox(rt, portal.tenant_id)
    assert (event.status, set(event.deal_ids)) == ("done", deals_of_person)
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [deal_id])
    assert bundle.contact(person).title == "Chief Executive Officer"


def test_an_event_about_a_contact_without_deals_is_done_without_a_refresh(
    rt: Runtime, portal: Portal, web: str
) -> None:
    loner = portal.state.create_object("contacts", {"firstname": "Lone", "email": "l@x.example"})
    assert portal.state.webhooks.flush()
    assert [e.status for e in _inbox(rt, portal.tenant_id)] == ["unresolved"]
    sweeper.run()
    run_jobs(rt.redis)
    (event,) = _inbox(rt, portal.tenant_id)
    assert (event.status, event.deal_ids, event.last_error) == ("done", [], "concerns no deal")
    assert rt.redis.scard(queues.pending_key(portal.tenant_id)) == 0
    del loner


MISSING_COMPANIES_SCOPE = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call.",
    "correlationId": "6f0c2b7e-0000-4000-8000-000000000000",
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredScopes": ["crm.objects.companies.read"]},
        }
    ],
    "category": "MISSING_SCOPES",
}


COMPANIES_DEALS = "/crm/v4/associations/companies/deals/batch/read"


@pytest.fixture(params=["403", "207"])
def without_companies_scope(
    request: pytest.FixtureRequest, rt: Runtime, portal: Portal
) -> Iterator[Callable[[], int]]:
    """HubSpot's MISSING_SCOPES to the companies -> deals associations read, which Deal Radar's
    required scopes do not cover (the emulator ignores scopes, and HubSpot's spec lists the
    endpoint's scopes as "one of"): a 403 for the whole read, or a 207 refusing its every
    input; every other call is the emulator's. Gives the number of such reads so far."""
    if request.param == "207":
        refusal = partial(missing_scopes, scope="crm.objects.companies.read")
        with refusing_inputs(portal.state, COMPANIES_DEALS, None, refusal) as front:
            rt.crm = {**rt.crm, "HUBSPOT_API_URL": front.url}
            yield lambda: portal.state.counts().get(f"POST {COMPANIES_DEALS}", 0)
        return
    with _companies_refused(rt, portal, MISSING_COMPANIES_SCOPE) as count:
        yield count


@contextmanager
def _companies_refused(
    rt: Runtime, portal: Portal, answer: dict[str, Any]
) -> Iterator[Callable[[], int]]:
    """A 403 with `answer` to the companies -> deals associations read, in front of the
    emulator, which answers every other call. Gives the number of such reads so far."""
    emulator = create_hubspot(portal.state)
    refused: list[str] = []

    @Request.application
    def refusing(request: Request) -> Response:
        if request.path == COMPANIES_DEALS:
            refused.append(request.path)
            return Response(json.dumps(answer), 403, content_type="application/json")
        return emulator

    server = make_server("127.0.0.1", 0, refusing, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    rt.crm = {**rt.crm, "HUBSPOT_API_URL": f"http://127.0.0.1:{server.server_port}"}
    try:
        yield lambda: len(refused)
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_company_hubspot_refuses_without_its_scope_suspends_nothing_and_deals_refresh(
    rt: Runtime,
    portal: Portal,
    web: str,
    without_companies_scope: Callable[[], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rep links a contact to a company. The contact's deals read fine but HubSpot refuses
    the company's (a scope the app does not require): the company part of the events is
    dropped, said once with what to grant, and the contact's deals are refreshed; the tenant
    is not suspended for a hint it can do without."""
    deal = next(d for d in portal.world.deals if d.contacts and d.status == "open")
    deal_id, person = portal.deal(deal.id), portal.deal(deal.contacts[0].person_id)
    deals_of_person = {
        portal.deal(d.id) for d in portal.world.deals
        if deal.contacts[0].person_id in {c.person_id for c in d.contacts}
    }  # fmt: skip
    company = portal.state.create_object("companies", {"name": "Initech"})
    portal.state.associate("contacts", person, "companies", company)
    assert portal.state.webhooks.flush()
    unresolved = [e for e in _inbox(rt, portal.tenant_id) if e.status == "unresolved"]
    assert len(unresolved) >= 2, "the company's creation and the contact's association"

    sweeper.run()
    run_jobs(rt.redis)

    assert tenants.get_tenant(rt.store, portal.tenant_id).status == "active"
    placed = {e.id: e for e in _inbox(rt, portal.tenant_id)}
    assert {placed[e.id].status for e in unresolved} == {"done"}
    assert set().union(*(placed[e.id].deal_ids for e in unresolved)) == deals_of_person
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [deal_id])  # never pulled before: the refresh pulled it
    assert person in {c.id for c in bundle.contacts}
    said = [r.getMessage() for r in caplog.records]
    said = [m for m in said if "crm.objects.companies.read" in m]
    assert len(said) == 1 and "grant" in said[0], said


def test_a_deals_contacts_refused_for_a_scope_suspend_the_tenant_instead_of_losing_them(
    rt: Runtime, portal: Portal
) -> None:
    """HubSpot serves a deal's calls and emails but refuses its contacts for a scope the grant
    lacks, in a 207: the deal is not evaluated as a deal with nobody on it (its fields and
    tasks written so); the tenant is suspended, saying which scope to grant."""
    deal = next(d for d in portal.world.deals if d.contacts and d.status == "open")
    deal_id = portal.deal(deal.id)
    refusal = partial(missing_scopes, scope="crm.objects.contacts.read")
    path = "/crm/v4/associations/deals/contacts/batch/read"
    with refusing_inputs(portal.state, path, {deal_id}, refusal) as front:
        rt.crm = {**rt.crm, "HUBSPOT_API_URL": front.url}
        _refresh(rt, portal, [deal_id])

    tenant = tenants.get_tenant(rt.store, portal.tenant_id)
    assert tenant.status == "suspended"
    assert "crm.objects.contacts.read" in (tenant.status_reason or "")
    assert "install Deal Radar again" in (tenant.status_reason or "")
    with rt.store.tenant(portal.tenant_id) as s:
        assert load_bundles(s, [deal_id]) == []
    assert "dealradar_alerts" not in portal.state.get_object("deals", deal_id)


def test_a_refused_company_read_is_not_asked_again_for_an_hour(
    rt: Runtime,
    portal: Portal,
    web: str,
    clock: Any,
    without_companies_scope: Callable[[], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every batch of company events would otherwise spend one more call of the portal's rate
    budget on a read HubSpot refused a moment ago: the refusal holds for the tenant for an
    hour, the company part of later events is dropped without asking, then it is asked again
    (the scope may have been granted meanwhile)."""
    person = portal.deal(next(d for d in portal.world.deals if d.contacts).contacts[0].person_id)

    def link_a_company(name: str) -> None:
        company = portal.state.create_object("companies", {"name": name})
        portal.state.associate("contacts", person, "companies", company)
        assert portal.state.webhooks.flush()
        sweeper.run()
        run_jobs(rt.redis)
        unresolved = [e for e in _inbox(rt, portal.tenant_id) if e.status == "unresolved"]
        assert unresolved == [], "the company's events are settled, its part dropped"

    link_a_company("Initech")
    assert without_companies_scope() == 1
    clock.now += timedelta(minutes=59)
    link_a_company("Globex")
    assert without_companies_scope() == 1, "refused 59 minutes ago: not asked"
    clock.now += timedelta(minutes=2)
    link_a_company("Umbrella")
    assert without_companies_scope() == 2, "an hour on, asked again"
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "crm.objects.companies.read" in m]) == 2
    assert tenants.get_tenant(rt.store, portal.tenant_id).status == "active"


LOST_DEALS_SCOPE = {
    **MISSING_COMPANIES_SCOPE,
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredScopes": ["crm.objects.deals.read"]},
        }
    ],
}
"""The same refusal naming a scope Deal Radar requires (the grant lost it): only a new
install mends it."""
NOT_A_SCOPE = {"status": "error", "message": "Forbidden"}
"""A 403 HubSpot does not give as a missing scope (every field of its error body is
optional): a user's or the portal's access, which only an admin can mend."""


@pytest.mark.parametrize("answer", [LOST_DEALS_SCOPE, NOT_A_SCOPE], ids=["deals-scope", "other"])
def test_a_company_refused_for_anything_but_its_own_scope_suspends_and_keeps_the_events(
    rt: Runtime, portal: Portal, web: str, answer: dict[str, Any]
) -> None:
    """A company's deals refused for another reason than the companies scope the app does
    not ask for is access an admin must restore: the tenant is suspended with the reason, and
    the events wait, unresolved, for the new install, instead of being dropped as done."""
    company = portal.state.create_object("companies", {"name": "Initech"})
    assert portal.state.webhooks.flush()
    unresolved = [e.id for e in _inbox(rt, portal.tenant_id) if e.status == "unresolved"]
    assert unresolved, "the company's creation names no deal"

    with _companies_refused(rt, portal, answer):
        sweeper.run()
        run_jobs(rt.redis)

    tenant = tenants.get_tenant(rt.store, portal.tenant_id)
    assert tenant.status == "suspended", tenant.status_reason
    waiting = {e.id: e.status for e in _inbox(rt, portal.tenant_id)}
    assert {waiting[i] for i in unresolved} == {"unresolved"}
    del company


def test_a_company_event_after_the_app_was_uninstalled_suspends_the_tenant(
    rt: Runtime, portal: Portal, web: str
) -> None:
    """The customer uninstalls the app just after editing a company: the company's deals are
    the first read, and HubSpot refuses its token (401, then the refresh token). That is no
    scope to grant: the tenant is suspended and the event waits for the new install."""
    company = portal.state.create_object("companies", {"name": "Initech"})
    assert portal.state.webhooks.flush()
    unresolved = [e.id for e in _inbox(rt, portal.tenant_id) if e.status == "unresolved"]
    assert unresolved
    assert portal.state.revoke_refresh_token(portal.token.refresh_token)

    sweeper.run()
    run_jobs(rt.redis)

    tenant = tenants.get_tenant(rt.store, portal.tenant_id)
    assert tenant.status == "suspended", tenant.status_reason
    assert "install Deal Radar again" in (tenant.status_reason or "")
    waiting = {e.id: e.status for e in _inbox(rt, portal.tenant_id)}
    assert {waiting[i] for i in unresolved} == {"unresolved"}
    del company


def test_an_expired_access_token_is_renewed_through_oauth_v3(rt: Runtime, portal: Portal) -> None:
    portal.state.expire_access_tokens()
    portal.state.reset_counts()
    _refresh(rt, portal, [portal.deal("d1")])

    oauth = {k: n for k, n in portal.state.counts().items() if "/oauth/" in k}
    assert oauth == {"POST /oauth/2026-03/token": 1}, "the refresh grant, not v1 (retired 2027)"
    stored = load_tokens(rt.store, rt.box, portal.tenant_id)  # type: ignore[arg-type]
    assert stored is not None and stored.data["access_token"] != portal.token.access_token
    assert stored.data["refresh_token"] == portal.token.refresh_token
    assert tenants.get_tenant(rt.store, portal.tenant_id).status == "active"


def test_a_revoked_grant_suspends_the_tenant_and_keeps_its_work(
    rt: Runtime, portal: Portal
) -> None:
    deal_ids = [portal.deal(d.id) for d in portal.world.deals]
    portal.state.revoke_refresh_token(portal.token.refresh_token)
    portal.state.expire_access_tokens()
    _refresh(rt, portal, deal_ids)

    tenant = tenants.get_tenant(rt.store, portal.tenant_id)
    assert tenant.status == "suspended"
    assert "install Deal Radar again" in (tenant.status_reason or "")
    with rt.store.tenant(portal.tenant_id) as s:
        assert load_bundles(s, deal_ids) == []


def test_without_the_app_credentials_the_worker_says_what_to_set(
    rt: Runtime, portal: Portal
) -> None:
    portal.state.expire_access_tokens()
    rt.crm = {"HUBSPOT_API_URL": portal.server.url}
    queues.request_refresh(rt.redis, portal.tenant_id, [portal.deal("d1")], window=0)
    run_jobs(rt.redis)
    failed = queues.queue(rt.redis, queues.REFRESH).failed_job_registry
    (job_id,) = failed.get_job_ids()
    result = Job.fetch(job_id, connection=rt.redis).latest_result()
    assert result is not None and "HUBSPOT_CLIENT_ID" in (result.exc_string or "")


def test_a_poll_requests_every_deal_and_keeps_a_millisecond_cursor(
    rt: Runtime, portal: Portal
) -> None:
    """What the install's initial sync reuses: every deal requested, the cursor HubSpot's
    epoch milliseconds of the last change seen, never later than the poll's start less the
    search index's lag."""
    requested = schedule.poll(portal.tenant_id)
    deal_ids = {portal.deal(d.id) for d in portal.world.deals}
    assert requested == len(deal_ids)
    pending = {m.decode() for m in rt.redis.smembers(queues.pending_key(portal.tenant_id))}
    assert pending == deal_ids
    with rt.store.tenant(portal.tenant_id) as s:
        cursor = s.get(SyncCursor, (portal.tenant_id, schedule.DEALS_CURSOR)).value
    newest = max(portal.state.record("deals", d).updated_at for d in deal_ids)
    horizon_ms = int((rt.clock().timestamp() - HubSpotAdapter.index_lag_seconds) * 1000)
    assert int(cursor) == min(int(newest.timestamp() * 1000), horizon_ms)


def test_an_admin_remaps_a_label_in_the_settings_over_the_install(
    rt: Runtime, portal: Portal
) -> None:
    """Install matched "Champion" to Champion; the admin says that in this portal the label
    means the Economic Buyer, and ignores another label: the next refresh reads it so."""
    deal = next(d for d in portal.world.deals if any("Champion" in c.roles for c in d.contacts))
    champion = next(c.person_id for c in deal.contacts if "Champion" in c.roles)
    with rt.store.tenant(portal.tenant_id) as s:
        s.add(SetupRun(tenant_id=portal.tenant_id, status="done",
                       labels={"Champion": "Champion"}, started_at=rt.clock(),
                       updated_at=rt.clock()))  # fmt: skip
    _refresh(rt, portal, [portal.deal(deal.id)])
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [portal.deal(deal.id)])
    assert "Champion" in bundle.contact(portal.deal(champion)).roles

    tenants.save_settings(
        rt.store, portal.tenant_id, {"role_labels": {"Champion": "Economic Buyer"}}, "admin",
        rt.clock(),
    )  # fmt: skip
    _refresh(rt, portal, [portal.deal(deal.id)])
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [portal.deal(deal.id)])
    roles = bundle.contact(portal.deal(champion)).roles
    assert "Economic Buyer" in roles and "Champion" not in roles

    tenants.save_settings(
        rt.store, portal.tenant_id, {"role_labels": {"Champion": ""}}, "admin", rt.clock()
    )
    _refresh(rt, portal, [portal.deal(deal.id)])
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [portal.deal(deal.id)])
    roles = bundle.contact(portal.deal(champion)).roles
    assert "Champion" not in roles and "Economic Buyer" not in roles


def test_contact_roles_follow_the_labels_mapped_at_install(rt: Runtime, portal: Portal) -> None:
    """An admin mapped HubSpot's "Champion" label to the tenant's "Economic Buyer" role."""
    deal = next(d for d in portal.world.deals if any("Champion" in c.roles for c in d.contacts))
    champion = next(c.person_id for c in deal.contacts if "Champion" in c.roles)
    with rt.store.tenant(portal.tenant_id) as s:
        s.add(SetupRun(tenant_id=portal.tenant_id, status="done",
                       labels={"Champion": "Economic Buyer"}, started_at=rt.clock(),
                       updated_at=rt.clock()))  # fmt: skip
    _refresh(rt, portal, [portal.deal(deal.id)])
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [portal.deal(deal.id)])
    roles = bundle.contact(portal.deal(champion)).roles
    assert "Economic Buyer" in roles and "Champion" not in roles


def test_a_close_date_reads_as_the_tenants_reps_see_it(rt: Runtime, portal: Portal) -> None:
    """A Paris team's close date of 1 May is stored by HubSpot as 30 April 22:00 UTC."""
    tenants.save_settings(rt.store, portal.tenant_id, {"timezone": "Europe/Paris"}, "admin",
                          rt.clock())  # fmt: skip
    deal = portal.deal(portal.world.deals[0].id)
    portal.state.update_object("deals", deal, {"closedate": "2026-04-30T22:00:00.000Z"})
    _refresh(rt, portal, [deal])
    with rt.store.tenant(portal.tenant_id) as s:
        (bundle,) = load_bundles(s, [deal])
    assert bundle.deal.close_date == date(2026, 5, 1)
