"""The world generator: deterministic, realistic, and every deal's scenario true in its data.

The facts behind each alert are checked on the raw world (days in UTC, as the default settings
count them), then the whole world goes through Deal Radar's engine in three time zones and must
raise exactly the alerts and the grade each deal was drawn for. Last, a small world is loaded into
the HubSpot emulator and read back record by record.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.evaluate import Evaluator
from engine.model import load_bundle
from engine.settings import DEFAULTS, load_settings
from engine.titles import seniority
from sandbox.hubspot_seed import OBJECT_TYPE, load_into_hubspot
from sandbox.hubspot_state import HubSpotState
from sandbox.seed import ALERT_CODES, ROLE_LABELS, TITLES, generate, main
from sandbox.world import Deal, World

NOW = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
TODAY = NOW.date()
INTERACTIONS = frozenset({"email", "call", "meeting"})
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world() -> World:
    return generate(2000, seed=7, now=NOW)


@pytest.fixture(scope="module")
def acts(world: World) -> dict[str, list]:
    return world.activities_by_deal()


def open_deals(world: World) -> list[Deal]:
    return [d for d in world.deals if d.status == "open"]


def days_ago(when: datetime) -> int:
    """Calendar days from `when` to NOW, in UTC (the default tenant time zone)."""
    return (TODAY - when.astimezone(UTC).date()).days


def interactions(acts: list) -> list:
    """Done emails, calls and meetings up to NOW, oldest first."""
    return [a for a in acts if a.kind in INTERACTIONS and a.status == "done" and a.at <= NOW]


def has(world: World, deal: Deal, code: str) -> bool:
    return code in world.scenarios[deal.id]


# --- determinism and size ------------------------------------------------------------------------


def test_same_seed_same_world() -> None:
    first, second = generate(300, seed=11, now=NOW), generate(300, seed=11, now=NOW)
    assert first == second
    assert first.to_json() == second.to_json()


def test_different_seeds_differ() -> None:
    a, b = generate(300, seed=1, now=NOW), generate(300, seed=2, now=NOW)
    assert [d.name for d in a.deals] != [d.name for d in b.deals]
    assert [p.email for p in a.people] != [p.email for p in b.people]
    assert a.scenarios != b.scenarios


def test_a_2000_deal_world_is_whole_and_consistent(world: World, acts: dict[str, list]) -> None:
    assert [d.id for d in world.deals] == [f"d{i}" for i in range(1, 2001)]
    assert len(world.reps) == 50  # one rep per 40 deals
    assert set(world.scenarios) == set(world.grades) == {d.id for d in world.deals}
    reps = {r.id for r in world.reps}
    people = world.people_by_id()
    companies = {c.id for c in world.companies}
    pipelines = {p.id: p for p in world.pipelines}
    for deal in world.deals:
        assert deal.owner_id in reps and deal.company_id in companies
        assert 2 <= len(deal.contacts) <= 6
        on_deal = {c.person_id for c in deal.contacts}
        assert len(on_deal) == len(deal.contacts)
        assert all(people[pid].company_id == deal.company_id for pid in on_deal)
        assert sum(c.primary for c in deal.contacts) == 1
        for a in acts[deal.id]:
            assert a.rep_id in reps
            assert set(a.participants) <= on_deal and set(a.cc) <= on_deal
            assert not set(a.participants) & set(a.cc)
            assert (a.end is not None) == (a.kind == "meeting")
            assert a.end is None or a.end > a.at
        stage = pipelines[deal.pipeline_id].stage(deal.stage_id)
        assert stage.closed == (deal.status != "open") and stage.won == (deal.status == "won")
        assert deal.stage_history[-1][0] == deal.stage_id
        assert deal.stage_history[0][1] == deal.created_at
        entered = [at for _, at in deal.stage_history]
        assert entered == sorted(entered) and entered[-1] <= NOW
    assert len({a.id for a in world.activities}) == len(world.activities)
    # time order within each deal
    for deal_acts in acts.values():
        assert [a.at for a in deal_acts] == sorted(a.at for a in deal_acts)


def test_small_worlds_still_have_three_reps_and_two_pipelines() -> None:
    small = generate(10, seed=3, now=NOW)
    assert len(small.deals) == 10 and len(small.reps) == 3
    assert [p.label for p in small.pipelines] == ["Sales pipeline", "Renewals"]
    assert generate(0, seed=3, now=NOW).deals == ()
    with pytest.raises(ValueError, match="timezone"):
        generate(10, seed=3, now=NOW.replace(tzinfo=None))


def test_pipelines_have_probabilities_and_every_stage_is_used(world: World) -> None:
    assert [p.label for p in world.pipelines] == ["Sales pipeline", "Renewals", "Enterprise"]
    used = Counter(d.stage_id for d in world.deals)
    for pipeline in world.pipelines:
        probs = [s.probability for s in pipeline.open_stages]
        assert probs == sorted(probs) and all(0 < p < 1 for p in probs)
        assert [(s.won, s.probability) for s in pipeline.stages if s.closed] == [
            (True, 1.0),
            (False, 0.0),
        ]
        assert all(used[s.id] > 0 for s in pipeline.stages), pipeline.id
    statuses = Counter(d.status for d in world.deals)
    assert 0.6 < statuses["open"] / 2000 < 0.8 and statuses["won"] > statuses["lost"] > 0


def test_reps_have_teams_and_managers(world: World) -> None:
    emails = [r.email for r in world.reps]
    assert len(set(emails)) == len(emails)
    managers = {r.manager_id for r in world.reps} - {None}
    assert managers and managers <= {r.id for r in world.reps if r.manager_id is None}
    assert len({r.team for r in world.reps}) > 1


# --- proportions -----------------------------------------------------------------------------


def test_every_alert_and_grade_occurs_in_sensible_proportions(world: World) -> None:
    deals = open_deals(world)
    share = Counter()
    for d in deals:
        share.update(world.scenarios[d.id] or ("(none)",))
    ratio = {code: share[code] / len(deals) for code in (*ALERT_CODES, "(none)")}
    assert 0.25 <= ratio["(none)"] <= 0.45  # about a third healthy
    assert all(ratio[code] >= 0.02 for code in ALERT_CODES), ratio
    assert ratio["no_meeting_scheduled"] == max(ratio[c] for c in ALERT_CODES)
    assert ratio["no_meeting_scheduled"] > 0.35
    assert 0.03 <= ratio["amount_missing"] <= 0.15
    assert ratio["amount_missing"] < ratio["no_activity"] < ratio["no_meeting_scheduled"]
    grades = Counter(world.grades[d.id] for d in deals)
    assert grades["good"] > grades["poor"] > 0 and grades["fair"] > 0.05 * len(deals)
    assert all(world.scenarios[d.id] == () for d in world.deals if d.status != "open")
    closed_grades = Counter(world.grades[d.id] for d in world.deals if d.status != "open")
    assert closed_grades["poor"] > closed_grades["good"]  # a closed deal goes quiet


# --- each scenario's facts, read from the data --------------------------------------------------


def test_no_activity_deals_have_no_interaction_for_10_days(world, acts) -> None:
    threshold = DEFAULTS["alerts"]["no_activity"]["days"]
    for deal in open_deals(world):
        done = interactions(acts[deal.id])
        last = done[-1].at if done else deal.created_at
        assert (days_ago(last) >= threshold) == has(world, deal, "no_activity"), deal.id


def test_no_meeting_scheduled_and_future_activities_are_scheduled(world, acts) -> None:
    for deal in world.deals:
        future = [a for a in acts[deal.id] if a.at > NOW]
        assert all(a.status == "scheduled" for a in future), deal.id
        if deal.status == "open":
            meeting = any(a.kind == "meeting" for a in future)
            assert meeting != has(world, deal, "no_meeting_scheduled"), deal.id


def test_single_threaded_deals_talk_to_one_contact_only(world, acts) -> None:
    threshold = DEFAULTS["alerts"]["single_threaded"]["days"]
    seen = 0
    for deal in open_deals(world):
        threads = [a for a in interactions(acts[deal.id]) if a.participants]
        streak = []
        if threads and len(threads[-1].participants) == 1:
            for a in reversed(threads):
                if a.participants != threads[-1].participants:
                    break
                streak.append(a)
        holds = bool(streak) and days_ago(streak[-1].at) >= threshold
        assert holds == has(world, deal, "single_threaded"), deal.id
        if holds:
            seen += 1
            recent = [a for a in threads if days_ago(a.at) < threshold]
            assert {a.participants for a in recent} <= {threads[-1].participants}
    assert seen > 50


def test_key_role_silent_deals_have_a_role_nobody_heard_from(world, acts) -> None:
    threshold = DEFAULTS["alerts"]["key_role_silent"]["days"]
    for deal in open_deals(world):
        last: dict[str, datetime] = {}
        for a in interactions(acts[deal.id]):
            for pid in a.participants:
                last[pid] = a.at
        silent = False
        for role in ROLE_LABELS:
            holders = [c.person_id for c in deal.contacts if role in c.roles]
            if holders:
                heard = [last[p] for p in holders if p in last]
                silent |= days_ago(max(heard) if heard else deal.created_at) >= threshold
        assert silent == has(world, deal, "key_role_silent"), deal.id


def test_powermap_gap_deals_close_soon_with_no_senior_engaged(world, acts) -> None:
    window = DEFAULTS["alerts"]["powermap_gap"]["days_to_close"]
    people = world.people_by_id()
    for deal in open_deals(world):
        active = {p for a in interactions(acts[deal.id]) for p in a.participants}
        senior = any(seniority(people[p].job_title) for p in active)
        soon = deal.close_date is not None and 0 <= (deal.close_date - TODAY).days <= window
        assert (soon and not senior) == has(world, deal, "powermap_gap"), deal.id


def test_field_alerts_match_the_deal_fields(world) -> None:
    stuck = DEFAULTS["alerts"]["stuck_in_stage"]["days"]
    too_old = DEFAULTS["alerts"]["deal_too_old"]["days"]
    for deal in open_deals(world):
        passed = deal.close_date is not None and deal.close_date < TODAY
        assert passed == has(world, deal, "close_date_passed"), deal.id
        assert (deal.amount is None) == has(world, deal, "amount_missing"), deal.id
        assert (days_ago(deal.stage_entered_at) >= stuck) == has(world, deal, "stuck_in_stage")
        assert (days_ago(deal.created_at) >= too_old) == has(world, deal, "deal_too_old")


def engine_bundle(world: World, deal: Deal, people: dict, deal_acts: list) -> dict:
    """The deal in Deal Radar's canonical JSON form, as a CRM adapter would map it."""
    return {
        "deal": {
            "id": deal.id,
            "pipeline": deal.pipeline_id,
            "stage": deal.stage_id,
            "stage_entered_at": deal.stage_entered_at.isoformat(),
            "amount": deal.amount,
            "close_date": deal.close_date and deal.close_date.isoformat(),
            "created_at": deal.created_at.isoformat(),
            "status": deal.status,
        },
        "contacts": [
            {"id": c.person_id, "title": people[c.person_id].job_title, "roles": list(c.roles)}
            for c in deal.contacts
        ],
        "activities": [
            {
                "id": a.id,
                "kind": a.kind,
                "at": a.at.isoformat(),
                "direction": a.direction,
                "status": a.status,
                "contacts": list(a.participants),
                "cc": list(a.cc),
            }
            for a in deal_acts
        ],
    }


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def test_the_engine_raises_exactly_each_deals_scenario(world, acts, zone: str) -> None:
    """Margins around every threshold keep the scenarios true at UTC+14 and UTC-8 too."""
    evaluate = Evaluator(load_settings({"timezone": zone}), NOW)
    people = world.people_by_id()
    wrong = []
    for deal in world.deals:
        result = evaluate(load_bundle(engine_bundle(world, deal, people, acts[deal.id])))
        codes = tuple(dict.fromkeys(alert.code for alert in result.alerts))
        if codes != world.scenarios[deal.id] or result.health.grade != world.grades[deal.id]:
            wrong.append((deal.id, world.scenarios[deal.id], codes, result.health.grade))
    assert wrong == []


# --- people, titles, roles ----------------------------------------------------------------------


def test_title_table_agrees_with_deal_radars_title_rules() -> None:
    for level, titles in TITLES.items():
        expected = None if level == "staff" else level
        assert {t: seniority(t) for t in titles} == dict.fromkeys(titles, expected)


def test_titles_in_english_and_french_at_every_level(world: World) -> None:
    titles = Counter(p.job_title for p in world.people)
    for title in (
        "VP of Sales",
        "Directeur commercial",
        "Responsable des achats",
        "Chief Financial Officer",
        "Head of IT",
        "Office Manager",
        "Acheteuse",
        "DSI",
        "Directrice générale",
    ):
        assert titles[title] > 0, title
    levels = Counter(seniority(t) for t in titles.elements())
    assert all(levels[level] > 0 for level in ("c_level", "vp", "director", None))
    assert 0 < titles[""] < 0.15 * len(world.people)  # some contacts have no title
    languages = Counter(p.language for p in world.people)
    assert languages["fr"] > 0.25 * len(world.people) and languages["en"] > languages["fr"]


def test_roles_and_shared_contacts(world: World) -> None:
    roles = Counter(r for d in world.deals for c in d.contacts for r in c.roles)
    assert set(roles) == set(ROLE_LABELS)
    assert roles["Champion"] > roles["Decision maker"] > roles["Economic buyer"]
    without = sum(1 for d in world.deals if not any(c.roles for c in d.contacts))
    assert 0.1 * len(world.deals) < without < 0.4 * len(world.deals)
    deals_per_person = Counter(c.person_id for d in world.deals for c in d.contacts)
    assert sum(1 for n in deals_per_person.values() if n > 1) > 100
    assert len({p.email for p in world.people}) == len(world.people)


def test_emails_copy_people_and_meetings_are_past_and_scheduled(world: World) -> None:
    emails = [a for a in world.activities if a.kind == "email"]
    assert sum(1 for a in emails if a.cc) > 0.1 * len(emails)
    assert sum(1 for a in emails if len(a.participants) > 1) > 0
    meetings = [a for a in world.activities if a.kind == "meeting"]
    assert any(a.status == "scheduled" and a.at > NOW for a in meetings)
    assert any(a.status == "done" for a in meetings)
    kinds = Counter(a.kind for a in world.activities)
    assert all(kinds[k] > 0 for k in ("email", "call", "meeting", "task", "note"))
    tasks = [a for a in world.activities if a.kind == "task"]
    assert any(a.status == "scheduled" and a.at < NOW for a in tasks)  # overdue
    assert {a.direction for a in world.activities} == {"inbound", "outbound", "internal"}


# --- JSON and the command line ------------------------------------------------------------------


def test_json_round_trip(world: World, tmp_path: Path) -> None:
    text = world.to_json()
    again = World.from_json(text)
    assert again == world
    assert again.deals[0].close_date is None or isinstance(again.deals[0].close_date, date)
    with (tmp_path / "w.json").open("w", encoding="utf-8") as f:
        world.write_json(f)
    assert (tmp_path / "w.json").read_text(encoding="utf-8") == text
    data = json.loads(text)
    data["version"] = 2
    with pytest.raises(ValueError, match="version 2"):
        World.from_dict(data)


def test_cli_writes_the_world_for_its_arguments(tmp_path: Path) -> None:
    out = tmp_path / "world.json"
    main(["--deals", "25", "--seed", "4", "--now", "2026-11-25T09:30:00+01:00", "--out", str(out)])
    written = World.from_json(out.read_text(encoding="utf-8"))
    assert written == generate(25, seed=4, now=NOW)


def test_cli_help_and_bad_input() -> None:
    run = [sys.executable, "-m", "sandbox.seed"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=REPO)
    assert shown.returncode == 0 and "--deals" in shown.stdout and "--now" in shown.stdout
    bad = subprocess.run([*run, "--now", "yesterday"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "--now" in bad.stderr
    naive = subprocess.run(
        [*run, "--deals", "3", "--now", "2026-11-25T09:00"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert naive.returncode == 2 and "offset" in naive.stderr
    printed = subprocess.run(
        [*run, "--deals", "3", "--now", "2026-11-25T08:30:00Z"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert printed.returncode == 0
    assert World.from_json(printed.stdout) == generate(3, seed=7, now=NOW)


# --- loading into the HubSpot emulator -------------------------------------------------------


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[World, HubSpotState, dict[str, str]]]:
    small = generate(150, seed=5, now=NOW)
    state = HubSpotState(clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    ids = load_into_hubspot(state, small)
    yield small, state, ids
    state.webhooks.stop()


def test_hubspot_holds_every_record_once(portal) -> None:
    world, state, ids = portal
    with state.lock:
        counts = {kind: len(state.records(kind)) for kind in ("deals", "contacts", "companies")}
        by_kind = {kind: len(state.records(kind)) for kind in OBJECT_TYPE.values()}
    assert counts == {
        "deals": len(world.deals),
        "contacts": len(world.people),
        "companies": len(world.companies),
    }
    assert by_kind == {
        OBJECT_TYPE[k]: n for k, n in Counter(a.kind for a in world.activities).items()
    }
    assert sorted(o["email"] for o in state.owners()) == sorted(r.email for r in world.reps)
    assert len(set(ids.values())) == len(ids)
    assert {p["id"] for p in state.pipelines()} >= {p.id for p in world.pipelines}


def test_hubspot_deals_carry_amount_stage_history_and_owner(portal) -> None:
    world, state, ids = portal
    owners = {o["id"]: o["email"] for o in state.owners()}
    reps = {r.id: r.email for r in world.reps}
    for deal in world.deals:
        props = state.get_object("deals", ids[deal.id])
        assert props.get("amount") == (None if deal.amount is None else str(deal.amount))
        assert (props["pipeline"], props["dealstage"]) == (deal.pipeline_id, deal.stage_id)
        assert owners[props["hubspot_owner_id"]] == reps[deal.owner_id]
        entered = datetime.fromisoformat(props[f"hs_date_entered_{deal.stage_id}"])
        assert entered == deal.stage_entered_at
        assert datetime.fromisoformat(props["createdate"]) == deal.created_at
        closedate = props.get("closedate")
        assert (closedate and datetime.fromisoformat(closedate).date()) == deal.close_date
        assert props["hs_is_closed"] == ("false" if deal.status == "open" else "true")
        assert props["hs_is_closed_won"] == ("true" if deal.status == "won" else "false")
    assert any(d.amount is None for d in world.deals)


def test_hubspot_roles_are_user_defined_deal_contact_labels(portal) -> None:
    world, state, ids = portal
    defined = {d.label: d for d in state.association_labels("deals", "contacts") if d.label}
    assert set(defined) == set(ROLE_LABELS)
    assert {d.category for d in defined.values()} == {"USER_DEFINED"}
    people = world.people_by_id()
    labelled = 0
    for deal in world.deals:
        links = state.associations("deals", ids[deal.id], "contacts")
        expected = {ids[c.person_id]: set(c.roles) for c in deal.contacts}
        got = {
            cid: {t.label for t in types if t.category == "USER_DEFINED"}
            for cid, types in links.items()
        }
        assert got == expected, deal.id
        labelled += sum(map(len, got.values()))
        for c in deal.contacts:
            props = state.get_object("contacts", ids[c.person_id])
            assert props.get("jobtitle", "") == people[c.person_id].job_title
            assert props["email"] == people[c.person_id].email
    assert labelled == sum(len(c.roles) for d in world.deals for c in d.contacts) > 0


def test_hubspot_activities_keep_to_vs_cc_outcomes_and_links(portal) -> None:
    world, state, ids = portal
    people = world.people_by_id()
    emails_with_cc = 0
    for a in world.activities:
        kind = OBJECT_TYPE[a.kind]
        props = state.get_object(kind, ids[a.id])
        assert datetime.fromisoformat(props["hs_timestamp"]) == a.at
        assert set(state.associations(kind, ids[a.id], "deals")) == {ids[d] for d in a.deal_ids}
        linked = set(state.associations(kind, ids[a.id], "contacts"))
        assert linked == {ids[p] for p in (*a.participants, *a.cc)}
        if a.kind == "email":
            to = props["hs_email_to_email"].split(";")
            cc = props.get("hs_email_cc_email", "").split(";") if a.cc else []
            contacts_to = [people[p].email for p in a.participants]
            if a.direction == "inbound":
                assert props["hs_email_direction"] == "INCOMING_EMAIL"
                assert [props["hs_email_from_email"], *to[1:]] == contacts_to
            elif a.participants:
                assert props["hs_email_direction"] == "EMAIL" and to == contacts_to
            assert cc == [people[p].email for p in a.cc]
            headers = json.loads(props["hs_email_headers"])
            assert [x["email"] for x in headers["cc"]] == cc
            assert [x["email"] for x in headers["to"]] == to
            emails_with_cc += bool(cc)
        elif a.kind == "meeting":
            outcome = "COMPLETED" if a.status == "done" else "SCHEDULED"
            assert props["hs_meeting_outcome"] == outcome
            assert datetime.fromisoformat(props["hs_meeting_start_time"]) == a.at
            assert datetime.fromisoformat(props["hs_meeting_end_time"]) == a.end
        elif a.kind == "task":
            status = "COMPLETED" if a.status == "done" else "NOT_STARTED"
            assert props["hs_task_status"] == status
        elif a.kind == "call":
            direction = "INBOUND" if a.direction == "inbound" else "OUTBOUND"
            assert (props["hs_call_direction"], props["hs_call_status"]) == (direction, "COMPLETED")
        else:
            assert props["hs_note_body"] == a.body
    assert emails_with_cc > 0
