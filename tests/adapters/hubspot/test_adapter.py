"""The HubSpot adapter against the emulator over real HTTP, through the official SDK: a seeded
portal pulled into the bundles the world was drawn for, deletions, the search cap, batched
write-back, 429 storms and the resolution of events that name no deal."""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from redis import Redis

from adapters.base import AdapterContext, Pulled, TenantRef
from adapters.errors import InvalidRequest, PermissionDenied, RateLimited
from adapters.hubspot import adapter as hubspot_adapter
from adapters.hubspot import properties
from adapters.hubspot.adapter import HubSpotAdapter
from engine.evaluate import Evaluator
from engine.model import Bundle
from engine.settings import load_settings
from sandbox import hubspot_search
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot_seed import load_into_hubspot
from sandbox.seed import generate
from sandbox.world import World
from tests.adapters.hubspot.refusals import missing_scopes, refusing_inputs
from tests.adapters.hubspot.test_client import Tokens

NOW = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
PORTAL = 62515


def provision(state: HubSpotState) -> None:
    """The Deal Radar properties, as the install's provisioning creates them."""
    state.define_property_group("deals", properties.GROUP["name"], properties.GROUP["label"])
    for d in properties.definitions():
        state.define_property(
            "deals", d["name"], d["label"], d["type"], d["fieldType"],
            group_name=d["groupName"], options=d.get("options", ()), description=d["description"],
        )  # fmt: skip


def make_adapter(
    state: HubSpotState, server: ServerHandle, redis: Redis, **client
) -> HubSpotAdapter:  # type: ignore[no-untyped-def]
    context = AdapterContext(
        tokens=Tokens(state, server.url), redis=redis,
        crm={"HUBSPOT_API_URL": server.url}, clock=lambda: NOW,
    )  # fmt: skip
    adapter = HubSpotAdapter(TenantRef(id="t1", crm="hubspot", account_id=str(PORTAL)), context)
    for name, value in client.items():
        setattr(adapter.client, name, value)
    return adapter


def _pulled(state: HubSpotState, deal_id: str, redis: Redis) -> Bundle:
    """One deal pulled from a portal served for the pull alone."""
    try:
        with serve(state) as server:
            (bundle,) = make_adapter(state, server, redis).pull([deal_id]).bundles
    finally:
        state.webhooks.stop()
    return bundle


class Seeded:
    def __init__(self, world: World, state: HubSpotState, server: ServerHandle, ids: dict) -> None:
        self.world, self.state, self.server, self.ids = world, state, server, ids
        self.deal_ids = {ids[d.id]: d.id for d in world.deals}  # HubSpot id -> world id


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    world = generate(60, seed=11, now=NOW)
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    ids = load_into_hubspot(state, world)
    provision(state)
    try:
        with serve(state) as server:
            yield Seeded(world, state, server, ids)
    finally:
        state.webhooks.stop()


def test_pull_gives_each_seeded_deal_the_alerts_and_grade_it_was_drawn_for(
    seeded: Seeded, redis: Redis
) -> None:
    adapter = make_adapter(seeded.state, seeded.server, redis)
    seeded.state.reset_counts()
    pulled = adapter.pull(list(seeded.deal_ids))

    assert pulled.deleted == [] and len(pulled.bundles) == len(seeded.world.deals)
    evaluate = Evaluator(load_settings({"timezone": "UTC"}), NOW)
    wrong = []
    for bundle in pulled.bundles:
        world_id = seeded.deal_ids[bundle.deal.id]
        result = evaluate(bundle)
        codes = tuple(dict.fromkeys(a.code for a in result.alerts))
        if codes != seeded.world.scenarios[world_id] or (
            result.health.grade != seeded.world.grades[world_id]
        ):
            wrong.append((world_id, seeded.world.scenarios[world_id], codes, result.health.grade))
    assert wrong == []

    counts = seeded.state.counts()
    deals = len(seeded.world.deals)
    assert counts["POST /crm/v3/objects/deals/batch/read"] == math.ceil(deals / 50)
    assert counts["POST /crm/v4/associations/deals/contacts/batch/read"] == 1
    contacts = {c.person_id for d in seeded.world.deals for c in d.contacts}
    assert counts["POST /crm/v3/objects/contacts/batch/read"] == math.ceil(len(contacts) / 100)
    calls = [a for a in seeded.world.activities if a.kind == "call"]
    assert counts["POST /crm/v3/objects/calls/batch/read"] == math.ceil(len(calls) / 100)


def test_a_seeded_deal_maps_field_by_field(seeded: Seeded, redis: Redis) -> None:
    world = seeded.world
    deal = next(d for d in world.deals if d.status == "open" and len(d.contacts) >= 2)
    (bundle,) = make_adapter(seeded.state, seeded.server, redis).pull([seeded.ids[deal.id]]).bundles

    assert (bundle.deal.name, bundle.deal.pipeline, bundle.deal.stage) == (
        deal.name, deal.pipeline_id, deal.stage_id,
    )  # fmt: skip
    assert bundle.deal.stage_entered_at == deal.stage_entered_at
    assert bundle.deal.owner == seeded.ids[deal.owner_id]
    assert seeded.ids[deal.owner_id] in {u.id for u in bundle.users}
    people = world.people_by_id()
    by_id = {c.id: c for c in bundle.contacts}
    for link in deal.contacts:
        contact = by_id[seeded.ids[link.person_id]]
        assert contact.title == people[link.person_id].job_title
        assert {r.lower() for r in contact.roles} == {r.lower() for r in link.roles}
    expected = {seeded.ids[a.id] for a in world.activities_by_deal()[deal.id]}
    assert {a.id for a in bundle.activities} <= expected
    assert {a.id for a in bundle.activities}, "the deal's activities came along"


def test_text_no_database_stores_comes_out_of_a_pull_replaced(redis: Redis) -> None:
    """A name cut in the middle of an emoji reaches us as a lone surrogate escape in HubSpot's
    JSON: the bundle carries U+FFFD in its place, so the store takes it."""
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    deal = state.create_object("deals", {"dealname": "Renewal \ud83d"})
    bundle = _pulled(state, deal, redis)
    assert bundle.deal.name == "Renewal \ufffd"


def test_a_task_completed_before_its_due_date_is_pulled_as_done_then(redis: Redis) -> None:
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    deal = state.create_object("deals", {"dealname": "Acme"})
    task = {"hs_timestamp": NOW + timedelta(days=7), "hs_task_status": "COMPLETED",
            "hs_task_subject": "Send the proposal"}  # fmt: skip
    state.log_activity("tasks", task, deal_ids=[deal])
    bundle = _pulled(state, deal, redis)
    (done,) = bundle.activities
    assert (done.kind, done.status, done.at) == ("task", "done", NOW)


def test_a_deleted_deal_comes_back_as_deleted(redis: Redis) -> None:
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    kept = state.create_object("deals", {"dealname": "Kept"})
    gone = state.create_object("deals", {"dealname": "Gone"})
    state.archive_object("deals", gone)
    with serve(state) as server:
        pulled = make_adapter(state, server, redis).pull([kept, gone, "99999999"])
    state.webhooks.stop()
    assert [b.deal.id for b in pulled.bundles] == [kept]
    assert list(pulled.deleted) == [gone, "99999999"]


def test_a_deal_of_a_rep_who_left_names_them_as_an_inactive_user(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archived owners (deactivated users) are only in `GET /crm/v3/owners?archived=true`: the
    pull reads that listing too, paged like the active one, once per adapter."""
    monkeypatch.setattr(hubspot_adapter, "OWNERS_PAGE", 2)
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    ann, bob, cid, dee, eve = (
        state.add_owner(f"{n.lower()}@seller.example", n, "Rep")
        for n in ("Ann", "Bob", "Cid", "Dee", "Eve")
    )  # fmt: skip
    left = state.create_object("deals", {"dealname": "Bob's deal", "hubspot_owner_id": bob})
    kept = state.create_object("deals", {"dealname": "Cid's deal", "hubspot_owner_id": cid})
    for deal, by in ((left, ann), (kept, dee)):
        note = {"hs_note_body": "Spoke to them", "hs_timestamp": NOW, "hubspot_owner_id": by}
        state.log_activity("notes", note, deal_ids=[deal])

    def users(pulled: Pulled) -> dict[str, set[tuple[str, str, bool]]]:
        return {
            b.deal.id: {(u.id, u.name, u.active) for u in b.users} for b in pulled.bundles
        }  # fmt: skip

    try:
        with serve(state) as server:
            before = make_adapter(state, server, redis).pull([left, kept])
            for gone in (bob, dee, eve):
                state.archive_owner(gone)
            adapter = make_adapter(state, server, redis)
            state.reset_counts()
            after = adapter.pull([left, kept])
            owner_calls = state.counts()["GET /crm/v3/owners/"]
            again = adapter.pull([left])
            owner_calls_again = state.counts()["GET /crm/v3/owners/"]
    finally:
        state.webhooks.stop()

    assert users(before) == {
        left: {(ann, "Ann Rep", True), (bob, "Bob Rep", True)},
        kept: {(cid, "Cid Rep", True), (dee, "Dee Rep", True)},
    }
    assert users(after) == {
        left: {(ann, "Ann Rep", True), (bob, "Bob Rep", False)},
        kept: {(cid, "Cid Rep", True), (dee, "Dee Rep", False)},
    }
    assert [b.deal.owner for b in after.bundles] == [bob, cid]
    assert users(again) == {left: users(after)[left]}
    assert owner_calls == 1 + 2  # two active owners: one page; three archived: two pages
    assert owner_calls_again == owner_calls, "owners are read once per adapter"
    assert eve not in {u.id for b in after.bundles for u in b.users}, "only the deals' users"
    directory = {i: u.active for i, u in adapter.users_by_id([ann, eve, "404"]).items()}
    assert directory == {ann: True, eve: False}, "the daily read of who left, unknown left out"


def test_a_prospects_voicemail_on_a_missed_call_counts_as_their_call(redis: Redis) -> None:
    """HubSpot logs an inbound call that left a voicemail as MISSED with hs_call_has_voicemail:
    the prospect reached out, so it is a done inbound call; a missed call without one is not."""
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    deal = state.create_object("deals", {"dealname": "Acme"})
    for voicemail in ("true", "false"):
        call = {"hs_timestamp": NOW - timedelta(days=1), "hs_call_direction": "INBOUND",
                "hs_call_status": "MISSED", "hs_call_has_voicemail": voicemail}  # fmt: skip
        state.log_activity("calls", call, deal_ids=[deal])
    bundle = _pulled(state, deal, redis)
    assert [(a.kind, a.status, a.direction) for a in bundle.activities] == [
        ("call", "done", "inbound")
    ]


class TickingClock:
    """Moves one millisecond every `every` readings: many deals share a timestamp, as in a
    bulk import, and the search's restart point falls among them."""

    def __init__(self, every: int) -> None:
        self.start = NOW - timedelta(days=1)
        self.readings = itertools.count()
        self.every = every

    def __call__(self) -> datetime:
        return self.start + timedelta(milliseconds=next(self.readings) // self.every)


@pytest.mark.parametrize("cap", [1_000, hubspot_search.MAX_RESULTS])
def test_changed_since_crosses_the_search_cap_without_missing_or_repeating_a_deal(
    redis: Redis, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    """At the real 10,000 cap with 10,350 deals, and at a lowered cap (emulator and adapter
    alike) with several restarts."""
    monkeypatch.setattr(hubspot_search, "MAX_RESULTS", cap)
    monkeypatch.setattr(hubspot_adapter, "SEARCH_CAP", cap)
    total = cap + 350 if cap == hubspot_search.MAX_RESULTS else 2_750
    state = HubSpotState(PORTAL, clock=TickingClock(every=7), rate_limit=None,
                         search_rate_limit=None)  # fmt: skip
    created = [state.create_object("deals", {"dealname": f"D{i}"}) for i in range(total)]
    with serve(state) as server:
        adapter = make_adapter(state, server, redis)
        seen: list[str] = []
        cursor, more, pages = None, True, 0
        while more:
            changes = adapter.changed_since(cursor)
            seen += changes.deal_ids
            cursor, more, pages = changes.cursor, changes.more, pages + 1
            assert pages < 100
        searches = state.counts()["POST /crm/v3/objects/deals/search"]
        again = adapter.changed_since(cursor)
    state.webhooks.stop()
    assert Counter(seen) == Counter(created)
    assert searches == pages <= math.ceil(total / 200) + total // cap
    # Nothing changed since: the last cursor finds nothing it has not returned already.
    assert (again.deal_ids, again.more) == ([], False)


def test_a_deal_edited_while_the_sync_pages_on_makes_no_other_deal_missed(redis: Redis) -> None:
    """The install's listing pages while reps work: a deal already listed and edited again
    moves to the end of the ordering. Had the pages followed one search's offsets, the deal
    shifted back onto the page already read would never be listed, nor found afterwards (the
    cursor is past it), and never swept."""
    clock = {"now": NOW - timedelta(days=1)}
    state = HubSpotState(PORTAL, clock=lambda: clock["now"], rate_limit=None,
                         search_rate_limit=None)  # fmt: skip
    created = []
    for i in range(450):
        clock["now"] += timedelta(seconds=1)
        created.append(state.create_object("deals", {"dealname": f"D{i}"}))
    listed: list[str] = []
    try:
        with serve(state) as server:
            adapter = make_adapter(state, server, redis)
            changes = adapter.changed_since(None)
            listed += changes.deal_ids
            clock["now"] += timedelta(seconds=1)
            state.update_object("deals", created[5], {"dealname": "D5, edited"})
            while changes.more:
                changes = adapter.changed_since(changes.cursor)
                listed += changes.deal_ids
    finally:
        state.webhooks.stop()
    assert set(listed) == set(created)
    assert listed.count(created[5]) == 2, "listed again once edited, which is right"


def test_write_back_writes_only_the_given_values_in_batches_of_100(
    seeded: Seeded, redis: Redis
) -> None:
    adapter = make_adapter(seeded.state, seeded.server, redis)
    deal_ids = list(seeded.deal_ids)[:55]
    extra = [seeded.state.create_object("deals", {"dealname": f"More {i}"}) for i in range(70)]
    at = NOW.isoformat()
    values = {
        d: {"alerts": ["no_activity"], "alert_count": 1, "evaluated_at": at} for d in deal_ids
    }
    values |= {d: {"health_grade": "poor"} for d in extra}
    seeded.state.reset_counts()
    adapter.write_back(values)

    assert seeded.state.counts()["POST /crm/v3/objects/deals/batch/update"] == 2
    for d in deal_ids:
        props = seeded.state.get_object("deals", d)
        assert props["dealradar_alerts"] == "no_activity"
        assert props["dealradar_alert_count"] == "1"
        assert props["dealradar_evaluated_at"].startswith("2026-11-25T08:30:00")
        assert props.get("dealradar_health_grade") in (None, "")
    for d in extra:
        props = seeded.state.get_object("deals", d)
        assert props["dealradar_health_grade"] == "poor"
        assert props.get("dealradar_alerts") in (None, "")


def test_write_back_skips_a_deal_deleted_meanwhile_and_writes_the_others(
    seeded: Seeded, redis: Redis
) -> None:
    adapter = make_adapter(seeded.state, seeded.server, redis)
    kept, gone = (seeded.state.create_object("deals", {"dealname": n}) for n in ("Kept", "Gone"))
    seeded.state.archive_object("deals", gone)
    result = adapter.write_back({kept: {"alert_count": 3}, gone: {"alert_count": 2}})
    assert seeded.state.get_object("deals", kept)["dealradar_alert_count"] == "3"
    assert result.deleted == (gone,), "named, for the jobs to forget it"
    assert result.failed == {gone: "deleted in HubSpot"}, "not recorded as written"


def test_an_option_an_admin_removed_is_put_back_and_every_deal_written(
    seeded: Seeded, redis: Redis
) -> None:
    """An admin removed `no_activity` from the Deal Radar alerts property: HubSpot refuses the
    whole batch of 100 for the deals carrying it. The property is put back as provisioning
    made it, and the batch goes."""
    adapter = make_adapter(seeded.state, seeded.server, redis)
    prop = next(p for p in seeded.state.properties("deals") if p["name"] == "dealradar_alerts")
    options = [o for o in prop["options"] if o["value"] != "no_activity"]
    seeded.state.update_property("deals", "dealradar_alerts", {"options": options})
    deal_ids = list(seeded.deal_ids)[:30]
    values = {d: {"alerts": ["no_activity"] if i % 5 == 0 else [], "alert_count": int(i % 5 == 0)}
              for i, d in enumerate(deal_ids)}  # fmt: skip
    result = adapter.write_back(values)
    assert result.failed == {}
    for i, d in enumerate(deal_ids):
        wanted = "no_activity" if i % 5 == 0 else ""
        assert seeded.state.get_object("deals", d).get("dealradar_alerts") in (wanted, None)
    assert seeded.state.get_object("deals", deal_ids[0])["dealradar_alerts"] == "no_activity"


def test_a_deal_whose_value_is_refused_holds_back_none_of_the_others(
    seeded: Seeded, redis: Redis
) -> None:
    adapter = make_adapter(seeded.state, seeded.server, redis)
    deal_ids = list(seeded.deal_ids)[:40]
    values: dict[str, dict] = {d: {"alert_count": 2} for d in deal_ids}
    values[deal_ids[17]] = {"alerts": ["not_an_alert_of_ours"]}  # no option, whatever repair
    result = adapter.write_back(values)
    assert list(result.failed) == [deal_ids[17]]
    assert "not_an_alert_of_ours" in result.failed[deal_ids[17]]
    assert result.deleted == ()
    written = [d for d in deal_ids if seeded.state.get_object("deals", d).get(
        "dealradar_alert_count") == "2"]  # fmt: skip
    assert len(written) == 39


class FlowingClock:
    """Real time, from NOW: the emulator's rate window moves while the test waits."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> datetime:
        return NOW + timedelta(seconds=time.monotonic() - self.started)


def test_a_429_storm_is_waited_out_and_nothing_is_lost(redis: Redis) -> None:
    """The emulator allows 3 requests per 0.3 s: the pull's calls meet 429s, the client waits
    them out, and the pull is whole and equal to a quiet one."""
    world = generate(12, seed=3, now=NOW)
    state = HubSpotState(PORTAL, clock=FlowingClock(), rate_limit=None, search_rate_limit=None)
    ids = load_into_hubspot(state, world)
    deal_ids = [ids[d.id] for d in world.deals]
    try:
        with serve(state) as server:
            quiet = make_adapter(state, server, redis).pull(deal_ids)
            calm = sum(state.counts().values())
            state.reset_counts()
            state.rate_limit, state.rate_window = 3, timedelta(seconds=0.3)
            stormy = make_adapter(state, server, redis, budget=None, attempts=12).pull(deal_ids)
            received = sum(state.counts().values())
    finally:
        state.webhooks.stop()
    assert received > calm, "the storm refused some requests"
    assert stormy == quiet and len(stormy.bundles) == len(world.deals)


def test_a_storm_that_outlasts_the_client_is_rate_limited_for_the_job(
    seeded: Seeded, redis: Redis
) -> None:
    sleeps: list[float] = []
    adapter = make_adapter(seeded.state, seeded.server, redis, budget=None, sleep=sleeps.append)
    seeded.state.rate_limit = 0
    try:
        with pytest.raises(RateLimited):
            adapter.pull(list(seeded.deal_ids)[:3])
    finally:
        seeded.state.rate_limit = None
    assert len(sleeps) == adapter.client.attempts - 1


def test_deals_of_contacts_and_activities(seeded: Seeded, redis: Redis) -> None:
    world = seeded.world
    deal = next(d for d in world.deals if d.contacts)
    person = deal.contacts[0].person_id
    activity = world.activities_by_deal()[deal.id][0]
    kind = {"call": "calls", "email": "emails", "meeting": "meetings", "task": "tasks",
            "note": "notes"}[activity.kind]  # fmt: skip
    adapter = make_adapter(seeded.state, seeded.server, redis)
    of_contact = adapter.deals_of("contacts", [seeded.ids[person]])
    expected = {
        seeded.ids[d.id] for d in world.deals if person in {c.person_id for c in d.contacts}
    }
    assert set(of_contact[seeded.ids[person]]) == expected
    of_activity = adapter.deals_of(kind, [seeded.ids[activity.id]])
    assert set(of_activity[seeded.ids[activity.id]]) == {seeded.ids[d] for d in activity.deal_ids}


CONTACTS_READ = "crm.objects.contacts.read"


def test_a_deal_hubspot_refuses_in_a_207_is_not_taken_for_deleted(
    seeded: Seeded, redis: Redis
) -> None:
    """HubSpot's objects batch read answers 207 OBJECT_NOT_FOUND for a deal that is gone: that
    deal is deleted. Refused for another reason (a scope), the deal is still there: taken for
    deleted, it would be forgotten with its alert history and its open tasks left behind."""
    deals = [seeded.ids[d.id] for d in seeded.world.deals][:2]
    path = "/crm/v3/objects/deals/batch/read"
    refusal = partial(missing_scopes, scope="crm.objects.deals.read", context="ids")
    with refusing_inputs(seeded.state, path, {deals[0]}, refusal) as front:
        adapter = make_adapter(seeded.state, front, redis)  # type: ignore[arg-type]
        with pytest.raises(PermissionDenied, match=r"crm\.objects\.deals\.read"):
            adapter.pull(deals)

    pulled = make_adapter(seeded.state, seeded.server, redis).pull([*deals, "999999999"])
    assert [b.deal.id for b in pulled.bundles] == deals
    assert pulled.deleted == ["999999999"], "a deal HubSpot does not find is deleted"


@pytest.mark.parametrize(
    ("refusal", "raised", "said"),
    [
        (lambda ids: missing_scopes(ids, CONTACTS_READ), PermissionDenied, CONTACTS_READ),
        (
            lambda ids: {**missing_scopes(ids, CONTACTS_READ), "category": "SOMETHING_NEW",
                         "message": "Something HubSpot has not documented", "errors": []},
            InvalidRequest, "Something HubSpot has not documented",
        ),
    ],
    ids=["missing scope", "unknown category"],
)  # fmt: skip
def test_a_deals_contacts_hubspot_refuses_in_a_207_fail_the_pull_instead_of_vanishing(
    seeded: Seeded,
    redis: Redis,
    refusal: Callable[[list[str]], dict],
    raised: type[Exception],
    said: str,
) -> None:
    """HubSpot serves the other deals' contacts but refuses one deal's (a 207): pulled as it
    was, that deal would be evaluated as having no contacts at all (single-threaded, no key
    role) and its fields rewritten so. Records without associations stay fine (every seeded
    deal has activity types it lacks: the emulator's NO_ASSOCIATIONS_FOUND errors)."""
    with_contacts = [seeded.ids[d.id] for d in seeded.world.deals if d.contacts][:2]
    path = "/crm/v4/associations/deals/contacts/batch/read"
    with refusing_inputs(seeded.state, path, {with_contacts[0]}, refusal) as front:
        adapter = make_adapter(seeded.state, front, redis)  # type: ignore[arg-type]
        with pytest.raises(raised) as caught:
            adapter.pull(with_contacts)
    assert said in str(caught.value) and "deals.contacts" in str(caught.value)

    pulled = make_adapter(seeded.state, seeded.server, redis).pull(with_contacts)
    assert all(b.contacts for b in pulled.bundles), "unrefused, the same deals have contacts"
