"""The jobs on a Salesforce tenant: a real tenant with encrypted tokens (instance URL, login
host), the emulator over real HTTPS verified against its certificate (SALESFORCE_CA_BUNDLE),
RQ workers running the setup, refreshes and write-backs; a session that expires (refreshed
through the store once for all workers), the daily allowance past the tenant's share (polling
and the sweep pause, `tenants status` says so, and both resume), polls stopped while the org
pushes, and a write-back the org refuses in part."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.salesforce.fields import BY_FIELD
from connector import queues
from connector.intake import accept_event
from connector.store import results, tenants
from connector.store.credentials import load_tokens, save_tokens
from connector.store.models import (
    AlertEpisode,
    DealContactRow,
    DealRow,
    InboxEvent,
    OutboxEffect,
    SetupRun,
    SweepRun,
    SyncCursor,
)
from connector.store.status import describe, tenant_status
from jobs import digest, refresh, schedule, sweep, users
from jobs.runtime import Runtime
from sandbox.salesforce import SalesforceState, ServerHandle, serve
from sandbox.salesforce_seed import load_into_salesforce
from sandbox.seed import generate
from tests.jobs.conftest import run_jobs

CLIENT_ID = "jobs-consumer-key"
CLIENT_SECRET = "jobs-consumer-secret"
EVALUATED = BY_FIELD["evaluated_at"].api_name
LISTING = "GET queryAll"
"""A poll's listing after the install's: deleted opportunities included."""
ACTIVITIES = "POST composite"
"""A poll's reading of Tasks and Events: one Composite request carrying both queries."""


@dataclass
class Org:
    state: SalesforceState
    server: ServerHandle
    tenant_id: str

    def opportunities(self, *, open_only: bool = False) -> list[str]:
        with self.state.lock:
            return [
                r["Id"] for r in self.state.live("Opportunity")
                if not (open_only and r["IsClosed"])
            ]  # fmt: skip


@pytest.fixture
def org(rt: Runtime, clock: Any) -> Iterator[Org]:
    state = SalesforceState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)
    load_into_salesforce(state, generate(8, seed=21, now=clock()))
    with serve(state) as server:
        tenant, _ = tenants.create_tenant(
            rt.store, crm="salesforce", account_id=state.org_id, timezone="UTC", now=clock()
        )
        session = state.issue_session()
        tokens = {
            "access_token": session.access_token, "refresh_token": session.refresh_token,
            "instance_url": server.url, "login_url": server.url, "id": state.id_url(session),
        }  # fmt: skip
        save_tokens(rt.store, rt.box, tenant.id, tokens, None, clock())  # type: ignore[arg-type]
        rt.crm = {
            "SALESFORCE_CLIENT_ID": CLIENT_ID, "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
            "SALESFORCE_CA_BUNDLE": server.cert_path,
        }  # fmt: skip
        yield Org(state, server, tenant.id)


@pytest.fixture
def installed(rt: Runtime, org: Org) -> Org:
    queues.request_setup(rt.redis, org.tenant_id)
    run_jobs(rt.redis)
    return org


def test_setup_provisions_the_org_then_syncs_and_writes_every_opportunity(
    rt: Runtime, installed: Org
) -> None:
    with rt.store.tenant(installed.tenant_id) as s:
        run = s.get(SetupRun, installed.tenant_id)
        assert run.status == "done", run.detail
        assert run.detail.startswith("fields: 8 created, 0 present, 8 granted")
        assert run.labels["Decision Maker"] == "Decision Maker", "the org's roles, matched"
    with installed.state.lock:
        written = [r[EVALUATED] for r in installed.state.live("Opportunity")]
    assert len(written) == 8 and all(written)


def test_the_tenant_takes_the_org_time_zone(rt: Runtime, installed: Org) -> None:
    assert tenants.get_tenant(rt.store, installed.tenant_id).timezone == "America/Los_Angeles"
    with rt.store.tenant(installed.tenant_id) as s:
        detail = s.get(SetupRun, installed.tenant_id).detail
    assert "time zone America/Los_Angeles (the org's)" in detail


def test_an_org_zone_python_does_not_know_is_reported_and_not_taken(rt: Runtime, org: Org) -> None:
    with org.state.lock:
        org.state.records["Organization"][org.state.org_id]["TimeZoneSidKey"] = "Mars/Olympus"
    queues.request_setup(rt.redis, org.tenant_id)
    run_jobs(rt.redis)
    with rt.store.tenant(org.tenant_id) as s:
        run = s.get(SetupRun, org.tenant_id)
    assert run.status == "done" and "org time zone 'Mars/Olympus' unknown" in run.detail
    assert tenants.get_tenant(rt.store, org.tenant_id).timezone == "UTC"


def test_an_expired_session_is_refreshed_once_and_stored(rt: Runtime, installed: Org) -> None:
    before = load_tokens(rt.store, rt.box, installed.tenant_id)  # type: ignore[arg-type]
    opp = installed.opportunities()[0]
    installed.state.update("Opportunity", opp, {"Amount": 123456})
    installed.state.expire_sessions()
    queues.request_refresh(rt.redis, installed.tenant_id, [opp], window=0)
    run_jobs(rt.redis)
    after = load_tokens(rt.store, rt.box, installed.tenant_id)  # type: ignore[arg-type]
    assert after.version == before.version + 1
    assert after.data["access_token"] != before.data["access_token"]
    assert after.data["refresh_token"] == before.data["refresh_token"]
    assert installed.state.authenticate(after.data["access_token"])
    with rt.store.tenant(installed.tenant_id) as s:
        assert results.latest_fields(s, [opp])[opp]["alerts"] is not None
    assert tenants.get_tenant(rt.store, installed.tenant_id).status == "active"


def test_past_the_share_polls_and_sweeps_pause_then_resume(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    tenant_id, state = installed.tenant_id, installed.state
    used, _ = state.api_usage()
    state.set_daily_limit(int(used / 0.85))  # 85% used: past the default share of 80%
    clock.now += timedelta(minutes=11)  # the last reading is stale: read again
    state.reset_counts()
    assert schedule.poll(tenant_id) == 0
    assert state.counts() == {"GET limits": 1}, "one look at the usage, no listing"
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert any("past the share of 80%: polling and the daily sweep paused since" in line
               for line in lines), lines  # fmt: skip

    day = clock().date().isoformat()
    assert sweep.start(tenant_id, day)
    run_jobs(rt.redis)
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SweepRun, (tenant_id, date.fromisoformat(day))).status == "paused"
    swept = queues.queue(rt.redis, queues.SWEEP).scheduled_job_registry.get_job_ids()
    assert len(swept) == 1, "the sweep looks again later"

    state.set_daily_limit(100_000)  # usage falls back under the share
    clock.now += timedelta(minutes=11)
    state.reset_counts()
    schedule.poll(tenant_id)
    assert state.counts()[LISTING] >= 1, "polling again"
    sweep.chunk(tenant_id, day, "")  # the paused chunk, run when it comes due
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SweepRun, (tenant_id, date.fromisoformat(day))).status == "done"
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert not any("paused" in line for line in lines), lines
    assert any("API usage:" in line and "non-urgent work pauses at 80%" in line for line in lines)


def test_while_the_org_pushes_it_is_polled_hourly_and_nothing_unpushed_is_missed(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """A change no push carried (the Outbound Message rule's criteria do not match it) is found
    by the hourly safety-net poll, from where the last poll stopped."""
    tenant_id, state = installed.tenant_id, installed.state
    pending = queues.pending_key(tenant_id)

    def pushed() -> None:
        accept_event(
            rt.store, rt.redis, tenant_id, dedupe_key=f"org:{clock().timestamp()}",
            source="salesforce", body="<soap/>", deal_ids=[installed.opportunities()[0]],
            now=clock(), window=0,
        )  # fmt: skip
        run_jobs(rt.redis)

    pushed()
    schedule.poll(tenant_id)  # the first poll since the install: the safety net runs
    rt.redis.delete(pending)
    clock.now += timedelta(minutes=5)
    changed = installed.opportunities()[1]
    state.update("Opportunity", changed, {"Amount": 99})  # and no push for it
    clock.now += timedelta(minutes=5)
    pushed()
    state.reset_counts()
    assert schedule.poll(tenant_id) == 0, "pushes arrive: no poll within the hour"
    assert LISTING not in state.counts()
    clock.now += schedule.PUSH_POLL
    pushed()
    assert schedule.poll(tenant_id) >= 1, "the hourly safety net reads what was not pushed"
    assert changed in {i.decode() for i in rt.redis.smembers(pending)}


def test_an_org_that_never_pushed_is_polled_at_its_pace_after_a_poll_found_changes(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """The polls' own pages are inbox events: they must not make the org look like one that
    pushes, which is polled only hourly (without Outbound Messages or Flows, every edit would
    wait up to an hour instead of `schedule.poll_minutes`)."""
    tenant_id, state = installed.tenant_id, installed.state
    clock.now += schedule.PUSH_FRESH + timedelta(hours=1)  # the install's listing long past
    first, second = installed.opportunities()[:2]
    state.update("Opportunity", first, {"Amount": 98})
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) >= 1, "the poll finds the edit"
    clock.now += timedelta(minutes=5)
    state.update("Opportunity", second, {"Amount": 99})
    clock.now += timedelta(minutes=5)
    state.reset_counts()
    assert schedule.poll(tenant_id) >= 1, "five minutes on, the next poll reads again"
    assert LISTING in state.counts()


def test_a_poll_after_nothing_changed_refreshes_nothing_and_costs_two_calls(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """The poll before read its listings to the end: the last opportunity it saw is not listed
    again (its refresh would cost a pull, four queries, every few minutes), yet an edit made
    since is found. Two calls: the opportunities' query, and one Composite for the Tasks' and
    the Events' (one call for Salesforce), as the README's Salesforce section says."""
    tenant_id, state = installed.tenant_id, installed.state
    clock.now += timedelta(minutes=5)
    schedule.poll(tenant_id)  # what the install's write-backs stamped, behind the index lag
    run_jobs(rt.redis)
    clock.now += timedelta(minutes=5)
    state.reset_counts()
    assert schedule.poll(tenant_id) == 0
    run_jobs(rt.redis)
    assert state.counts() == {LISTING: 1, ACTIVITIES: 1}
    edited = installed.opportunities()[0]
    state.update("Opportunity", edited, {"Amount": 97})
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) == 1


def test_an_opportunity_deleted_in_salesforce_is_forgotten_at_the_next_poll(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    tenant_id, state = installed.tenant_id, installed.state
    gone = installed.opportunities(open_only=True)[0]
    clock.now += schedule.PUSH_FRESH + timedelta(hours=1)
    state.delete("Opportunity", gone)  # no push tells of it
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) >= 1
    run_jobs(rt.redis)
    with rt.store.tenant(tenant_id) as s:
        assert s.get(DealRow, (tenant_id, gone)) is None, "forgotten, out of sweeps and digests"
        still_open = AlertEpisode.deal_id == gone, AlertEpisode.ended_at.is_(None)
        open_episodes = s.scalars(select(AlertEpisode).where(*still_open)).all()
    assert open_episodes == [], "its alerts ended"


# --- activities seen by polls --------------------------------------------------------------------


def _quiet(rt: Runtime, org: Org, clock: Any) -> None:
    """The install's backlog polled away, then five quiet minutes: the next poll is routine."""
    clock.now += timedelta(minutes=5)
    schedule.poll(org.tenant_id)
    run_jobs(rt.redis)
    clock.now += timedelta(minutes=5)


def _alerts(rt: Runtime, tenant_id: str, opp: str) -> set[str]:
    with rt.store.tenant(tenant_id) as s:
        return set(results.latest_fields(s, [opp])[opp]["alerts"] or ())


def _polled_deals(rt: Runtime, tenant_id: str, since: Any) -> set[str]:
    """The deals the polls since `since` requested (their pages' pending inbox events)."""
    with rt.store.tenant(tenant_id) as s:
        rows = s.scalars(
            select(InboxEvent.deal_ids).where(
                InboxEvent.source == schedule.POLLED, InboxEvent.received_at >= since
            )
        ).all()
    return {d for ids in rows for d in ids}


def _call(org: Org, **on: str) -> str:
    return org.state.insert("Task", {
        "Subject": "Call", "Status": "Completed", "Priority": "Normal", "TaskSubtype": "Call",
        "ActivityDate": org.state.clock().date().isoformat(), **on,
    }, by=org.state.records["Opportunity"][org.opportunities()[0]]["OwnerId"])  # fmt: skip


def test_a_call_logged_on_a_silent_opportunity_ends_no_activity_at_the_next_poll(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """No Outbound Message, no Flow, no sweep: the poll sees the Task, the opportunity's
    refresh reads the call, `no_activity` ends; the call deleted, the next poll brings it back
    (queryAll: a deletion stamps the Task and nothing else tells of it)."""
    tenant_id = installed.tenant_id
    silent = next(
        o for o in installed.opportunities(open_only=True)
        if "no_activity" in _alerts(rt, tenant_id, o)
    )  # fmt: skip
    _quiet(rt, installed, clock)
    call = _call(installed, WhatId=silent)
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) >= 1
    run_jobs(rt.redis)
    assert "no_activity" not in _alerts(rt, tenant_id, silent)

    installed.state.delete("Task", call)
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) >= 1
    run_jobs(rt.redis)
    assert "no_activity" in _alerts(rt, tenant_id, silent)


def test_a_call_logged_on_a_contact_alone_refreshes_the_deals_the_contact_is_on(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """No WhatId: the deals are those the store links the contact to, as for an Outbound
    Message or a Flow callout naming such a call."""
    tenant_id = installed.tenant_id
    _quiet(rt, installed, clock)
    with rt.store.tenant(tenant_id) as s:
        links = s.execute(select(DealContactRow.contact_id, DealContactRow.deal_id)).all()
    contact = links[0][0]
    on = {deal for c, deal in links if c == contact}
    assert on != {deal for _, deal in links}, "the contact is not on every deal"
    since = clock()
    _call(installed, WhoId=contact)
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) == len(on)
    assert _polled_deals(rt, tenant_id, since) == on


def test_the_first_poll_after_the_upgrade_reads_activities_from_the_last_poll_on(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """A tenant polled before activities were: no activity cursor yet. Its first poll starts
    them at the previous poll (less the index lag), not at the org's first activity."""
    tenant_id = installed.tenant_id
    _quiet(rt, installed, clock)
    with rt.store.tenant(tenant_id) as s:
        for row in s.scalars(select(SyncCursor).where(SyncCursor.name.like("activities%"))):
            s.delete(row)
    since = clock()
    called = installed.opportunities(open_only=True)[0]
    _call(installed, WhatId=called)
    clock.now += timedelta(minutes=5)
    installed.state.reset_counts()
    schedule.poll(tenant_id)
    assert _polled_deals(rt, tenant_id, since) == {called}, "not every deal with a past call"
    assert installed.state.counts() == {LISTING: 1, ACTIVITIES: 1}


def test_a_contact_role_added_in_salesforce_reaches_its_deal_at_the_next_poll(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """A role given to a contact is not documented to stamp the opportunity: the poll follows
    the roles, and the deal's next evaluation has its new buyer; the role removed, it has not.
    The idle poll still costs two calls."""
    tenant_id, state = installed.tenant_id, installed.state
    opp = installed.opportunities(open_only=True)[0]
    _quiet(rt, installed, clock)
    buyer = state.insert("Contact", {"LastName": "Okafor", "Title": "CFO"})
    role = state.insert("OpportunityContactRole", {
        "OpportunityId": opp, "ContactId": buyer, "Role": "Economic Buyer", "IsPrimary": False,
    })  # fmt: skip

    def contacts() -> set[str]:
        with rt.store.tenant(tenant_id) as s:
            return set(s.scalars(select(DealContactRow.contact_id).where(
                DealContactRow.deal_id == opp
            )))  # fmt: skip

    clock.now += timedelta(minutes=5)
    state.reset_counts()
    assert schedule.poll(tenant_id) >= 1
    assert state.counts() == {LISTING: 1, ACTIVITIES: 1}
    run_jobs(rt.redis)
    assert buyer in contacts()

    state.delete("OpportunityContactRole", role)
    clock.now += timedelta(minutes=5)
    assert schedule.poll(tenant_id) >= 1
    run_jobs(rt.redis)
    assert buyer not in contacts()


def test_a_record_the_org_refuses_is_not_recorded_as_written(rt: Runtime, installed: Org) -> None:
    tenant_id, state = installed.tenant_id, installed.state
    kept, gone = installed.opportunities(open_only=True)[:2]
    for opp in (kept, gone):
        state.update("Opportunity", opp, {"Amount": None})  # amount_missing comes
    refresh.refresh(tenant_id, [kept, gone])  # evaluated and proposed for write-back
    state.delete("Opportunity", gone)  # gone before the flush reaches Salesforce
    run_jobs(rt.redis)
    with rt.store.tenant(tenant_id) as s:
        written = results.written_values(s, [kept, gone])
        outcome = s.scalars(
            select(OutboxEffect.result).where(OutboxEffect.kind == "writeback")
            .order_by(OutboxEffect.id.desc())
        ).first()  # fmt: skip
    assert "amount_missing" in written[kept]["alerts"]
    assert gone not in written, "never recorded as written, and forgotten with the deal"
    assert outcome["written"] == [kept]
    assert outcome["failed"][gone].startswith(("ENTITY_IS_DELETED", "NOT_FOUND"))
    # Salesforce sends nothing when an opportunity is deleted: the write-back is how Deal Radar
    # learns it, and forgets the deal as a pull would, its alerts ended, gone from the API.
    with rt.store.tenant(tenant_id) as s:
        assert s.get(DealRow, (tenant_id, gone)) is None
        assert s.get(DealRow, (tenant_id, kept)) is not None
        assert not s.scalars(
            select(AlertEpisode).where(
                AlertEpisode.deal_id == gone, AlertEpisode.ended_at.is_(None)
            )
        ).all()
    assert "amount_missing" in state.records["Opportunity"][kept][BY_FIELD["alerts"].api_name]


# --- settings naming users by their 15-character ids ---------------------------------------------


def _mails(rt: Runtime) -> dict[str, str]:
    """The mails in the outbox, the plain text of each by recipient."""
    found = {}
    for path in Path(rt.notify.outbox_dir).rglob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[message["To"]] = message.get_body(("plain",)).get_content()  # type: ignore
    return found


def _rep_and_manager(org: Org) -> tuple[str, str, dict[str, Any]]:
    """An open opportunity with an amount, its owner, and another rep who owns one too: the
    manager whose 18-character id Salesforce's API sends, and whose 15-character id the admin
    copied from the Salesforce UI or a report."""
    with org.state.lock:
        opps = [r for r in org.state.live("Opportunity") if not r["IsClosed"] and r["Amount"]]
        rep = opps[0]["OwnerId"]
        manager = next(r["OwnerId"] for r in org.state.live("Opportunity") if r["OwnerId"] != rep)
        user = dict(org.state.records["User"][manager])
    assert len(rep) == len(manager) == 18 and manager[:15] != manager
    return opps[0]["Id"], manager, user


def _amount_cleared(rt: Runtime, org: Org, opp: str) -> None:
    """A rep empties an opportunity's amount: `amount_missing` starts, with its task."""
    org.state.update("Opportunity", opp, {"Amount": None})
    queues.request_refresh(rt.redis, org.tenant_id, [opp], window=0)
    run_jobs(rt.redis)


def _tasks_on(org: Org, opp: str) -> list[dict[str, Any]]:
    with org.state.lock:
        return [dict(t) for t in org.state.live("Task") if t.get("WhatId") == opp]


def test_a_fallback_owner_given_by_a_15_character_id_takes_the_tasks_and_the_mail(
    rt: Runtime, installed: Org
) -> None:
    """The rep left; the admin named the sales manager as `tasks.fallback_owner` with the id
    the Salesforce UI shows (15 characters): the task and the notification of the rep's
    rotting deal are the manager's, as with the 18-character id."""
    opp, manager, user = _rep_and_manager(installed)
    rep = installed.state.records["Opportunity"][opp]["OwnerId"]
    with installed.state.lock:
        installed.state.records["User"][rep]["IsActive"] = False
    document = {"tasks": {"fallback_owner": manager[:15]},
                "notifications": {"channels": ["email"]}}  # fmt: skip
    tenants.save_settings(rt.store, installed.tenant_id, document, "admin", rt.clock())

    _amount_cleared(rt, installed, opp)

    [task] = [t for t in _tasks_on(installed, opp) if "amount" in t["Subject"].lower()]
    assert task["OwnerId"] == manager
    mails = _mails(rt)
    assert [to for to in mails if user["Email"] in to], f"no mail to the manager: {list(mails)}"


def test_per_rep_choices_and_managers_reps_given_by_15_character_ids_apply(
    rt: Runtime, installed: Org, clock: Any
) -> None:
    """`notifications.reps.<id>` and `digest.managers[].reps` name reps by the ids an admin
    copied from a Salesforce report: the rep who turned the digest off gets none, and the
    manager's digest lists the rep's deals."""
    opp, _, _ = _rep_and_manager(installed)
    rep = installed.state.records["Opportunity"][opp]["OwnerId"]
    _amount_cleared(rt, installed, opp)  # the rep has an alerting deal, for sure
    document = {
        "notifications": {"reps": {rep[:15]: {"digest": False}}},
        "digest": {"managers": [{"email": "boss@vendor.example", "reps": [rep[:15]]}]},
    }
    tenants.save_settings(rt.store, installed.tenant_id, document, "admin", clock())
    settings = tenants.current_settings(rt.store, installed.tenant_id)
    local = clock().astimezone(settings.zone)
    assert sweep.start(installed.tenant_id, local.date().isoformat())
    run_jobs(rt.redis)
    assert digest.plan(installed.tenant_id, settings, local.replace(hour=9))
    run_jobs(rt.redis)

    mails = _mails(rt)
    with installed.state.lock:
        email = installed.state.records["User"][rep]["Email"]
        name = installed.state.records["User"][rep]["Name"]
    assert not [to for to in mails if email in to], "the rep turned their digest off"
    assert "boss@vendor.example" in mails, f"no digest for the manager: {list(mails)}"
    assert name in mails["boss@vendor.example"]


def test_team_members_given_by_15_character_ids_hand_over_when_they_leave(
    rt: Runtime, installed: Org
) -> None:
    """A team listed with the ids of a Salesforce report: a member who leaves hands their open
    team tasks to the next member once the users are read, as with 18-character ids."""
    opp, second, _ = _rep_and_manager(installed)
    first = next(
        u["Id"] for u in installed.state.live("User")
        if u["IsActive"] and u["Id"] not in (second, installed.state.api_user_id)
    )  # fmt: skip
    document = {"tasks": {"teams": {"desk": [first[:15], second[:15]]},
                          "alerts": {"amount_missing": {"team": "desk"}}}}  # fmt: skip
    tenants.save_settings(rt.store, installed.tenant_id, document, "admin", rt.clock())
    _amount_cleared(rt, installed, opp)
    [task] = [t for t in _tasks_on(installed, opp) if "amount" in t["Subject"].lower()]
    assert task["OwnerId"] == first, "the team's first turn"

    with installed.state.lock:
        installed.state.records["User"][first]["IsActive"] = False
    users.refresh(installed.tenant_id)
    run_jobs(rt.redis)

    [task] = [t for t in _tasks_on(installed, opp) if "amount" in t["Subject"].lower()]
    assert task["OwnerId"] == second, "handed to the next member"
