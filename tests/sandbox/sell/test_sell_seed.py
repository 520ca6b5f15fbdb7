"""A generated World loaded into the Sell emulator and read back over HTTP as a client would:
users, stages, organisations and people, deals with their stage times, associated contacts, the
"Buying role" custom field, calls with their direction, visits, tasks and notes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from sandbox.seed import generate
from sandbox.sell import SellState, serve
from sandbox.sell_seed import ROLE_FIELD, load_into_sell
from sandbox.world import World
from tests.sandbox.sell.support import Sell

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return generate(40, 7, NOW)


@pytest.fixture(scope="module")
def loaded(world: World) -> Iterator[tuple[Sell, dict[str, int]]]:
    state = SellState(clock=lambda: NOW, hourly_limit=None)
    ids = load_into_sell(state, world)
    with serve(state) as server:
        yield Sell(server.url, state.personal_access_token().access_token), ids


def _all(sell: Sell, path: str, **params: object) -> list[dict]:
    out, page = [], 1
    while True:
        body = sell.get(path, page=page, per_page=100, **params).json()
        out += [i["data"] for i in body["items"]]
        if "next_page" not in body["meta"]["links"]:
            return out
        page += 1


def test_users_pipelines_and_stages(world: World, loaded: tuple[Sell, dict[str, int]]) -> None:
    sell, ids = loaded
    users = {u["email"]: u for u in _all(sell, "/v2/users")}
    for rep in world.reps:
        user = users[rep.email]
        assert user["name"] == rep.name
        if rep.manager_id:
            assert user["reports_to"] == ids[rep.manager_id]
    for pipeline in world.pipelines:
        stages = _all(sell, "/v2/stages", pipeline_id=ids[pipeline.id])
        assert [s["name"] for s in stages] == [s.label for s in pipeline.stages]
        assert [s["likelihood"] for s in stages] == [
            round(s.probability * 100) for s in pipeline.stages
        ]
        assert stages[0]["category"] == "incoming"
        assert [s["category"] for s in stages[-2:]] == ["won", "lost"]


def test_contacts_people_and_their_buying_role(
    world: World, loaded: tuple[Sell, dict[str, int]]
) -> None:
    sell, ids = loaded
    orgs = _all(sell, "/v2/contacts", is_organization="true")
    assert sorted(o["name"] for o in orgs) == sorted(c.name for c in world.companies)
    people = {p["id"]: p for p in _all(sell, "/v2/contacts", is_organization="false")}
    assert len(people) == len(world.people)
    field = sell.get("/v2/contact/custom_fields").json()["items"][0]["data"]
    assert (field["name"], field["type"]) == (ROLE_FIELD, "list")
    latest_role: dict[str, tuple[datetime, str]] = {}
    for deal in world.deals:
        for c in deal.contacts:
            if c.roles and latest_role.get(c.person_id, (deal.created_at,))[0] <= deal.created_at:
                latest_role[c.person_id] = (deal.created_at, c.roles[0])
    assert latest_role  # the world draws roles: the check below is not vacuous
    for person in world.people:
        stored = people[ids[person.id]]
        assert stored["contact_id"] == ids[person.company_id]
        assert stored["title"] == (person.job_title or None)
        role = stored["custom_fields"].get(ROLE_FIELD)
        assert (role or {}).get("name") == latest_role.get(person.id, (None, None))[1]


def test_deals_with_stage_times_and_associated_contacts(
    world: World, loaded: tuple[Sell, dict[str, int]]
) -> None:
    sell, ids = loaded
    deals = {d["id"]: d for d in _all(sell, "/v2/deals")}
    assert len(deals) == len(world.deals)
    for deal in world.deals:
        stored = deals[ids[deal.id]]
        assert stored["name"] == deal.name
        assert stored["stage_id"] == ids[f"{deal.pipeline_id}:{deal.stage_id}"]
        entered = deal.stage_entered_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stored["last_stage_change_at"] == entered
        assert stored["owner_id"] == ids[deal.owner_id]
        assert stored["organization_id"] == ids[deal.company_id]
        assert stored["value"] == (deal.amount if deal.amount is not None else 0)
        linked = _all(sell, f"/v2/deals/{stored['id']}/associated_contacts")
        assert sorted(a["contact_id"] for a in linked) == sorted(
            ids[c.person_id] for c in deal.contacts
        )
        assert {a["role"] for a in linked} <= {"involved"}


def test_activities_become_calls_visits_tasks_and_notes(
    world: World, loaded: tuple[Sell, dict[str, int]]
) -> None:
    sell, ids = loaded
    calls = {c["id"]: c for c in _all(sell, "/v2/calls")}
    kinds = {
        "call": calls,
        "meeting": {v["id"]: v for v in _all(sell, "/v2/visits")},
        "task": {t["id"]: t for t in _all(sell, "/v2/tasks")},
        "note": {n["id"]: n for n in _all(sell, "/v2/notes")},
    }
    emails = 0
    for activity in world.activities:
        if activity.kind == "email":
            emails += 1
            assert activity.id not in ids
            continue
        if not activity.deal_ids and not activity.participants:
            continue
        stored = kinds[activity.kind][ids[activity.id]]
        if activity.kind == "call":
            assert stored["incoming"] is (activity.direction == "inbound")
            assert stored["associated_deal_ids"] == [ids[d] for d in activity.deal_ids]
            if activity.participants:
                assert (stored["resource_type"], stored["resource_id"]) == (
                    "contact",
                    ids[activity.participants[0]],
                )
        elif activity.kind == "task":
            assert stored["completed"] is (activity.status == "done")
        elif activity.kind == "meeting":
            assert stored["visited_at"] == activity.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert emails  # the world has emails, and none reached Sell
    assert sum(len(k) for k in kinds.values()) == len(
        [a for a in world.activities if a.kind != "email" and (a.deal_ids or a.participants)]
    )


def test_the_firehose_holds_the_last_72_hours_of_the_world(
    world: World, loaded: tuple[Sell, dict[str, int]]
) -> None:
    sell, _ = loaded
    page = sell.get("/v3/calls/stream", position="tail", limit=100).json()
    times = [i["meta"]["event_time"] for i in page["items"]]
    assert times and times == sorted(times)
    assert all(t >= "2026-11-28T09:00:00Z" for t in times)


def test_the_command_line_serves_a_seeded_account_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.sell", "--port", "0", "--seed-deals", "5"],
        env={**os.environ, "SELL_CLIENT_SECRET": "cli-secret"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in range(4)]
        url = re.search(r" on (http://\S+)$", lines[0])
        assert url, lines
        assert lines[1].startswith("seeded 5 deals")
        token = lines[2].rsplit(" ", 1)[1]
        sell = Sell(url.group(1), token)
        assert len(_all(sell, "/v2/deals")) == 5
        refreshed = requests.post(
            url.group(1) + "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": lines[3].rsplit(" ", 1)[1]},
            auth=("sandbox-client-id", "cli-secret"),  # from SELL_CLIENT_SECRET
            timeout=10,
        )
        assert refreshed.status_code == 200, refreshed.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_the_command_line_says_how_to_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.sell", "--help"], capture_output=True, text=True, check=True
    )
    assert "--seed-deals" in done.stdout
    assert "SELL_CLIENT_SECRET" in done.stdout
