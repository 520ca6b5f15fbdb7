"""Alerts whose CRM tasks go round robin to a team (`tasks.teams`) instead of the deal's owner,
through the real jobs: refresh, the CRM actions run, the daily reading of the CRM's users; a
real Redis and RQ worker, the folder CRM, the store on SQLite (and PostgreSQL when
DATABASE_URL names one)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from redis import Redis

from adapters.folder.client import FolderClient
from connector.store import tenants
from connector.store.models import UserRow
from engine.model import dump_bundle
from engine.settings import ALERT_CODES
from jobs import users
from jobs.crm_effects import TASK
from jobs.policy import BACKOFF_CAP
from jobs.runtime import Runtime
from tests.jobs.conftest import Clock, log_a_call
from tests.jobs.test_crm_actions import (
    _after_stale,
    _effects,
    _episode,
    _episodes,
    _hand_to,
    _open_tasks_of,
    _refresh,
)

TEAM = ["u-ana", "u-ben", "u-cy"]


def _team_takes(
    rt: Runtime, tenant_id: str, clock: Clock, codes: Sequence[str] = ALERT_CODES,
    team: Sequence[str] = TEAM, name: str = "revops",
) -> None:  # fmt: skip
    document = {"tasks": {"teams": {name: list(team)},
                          "alerts": {code: {"team": name} for code in codes}}}  # fmt: skip
    tenants.save_settings(rt.store, tenant_id, document, changed_by="test", now=clock())


def _turns(rt: Runtime, tenant_id: str) -> dict[str, tuple[int, str]]:
    """Each team task's turn and holder, by task id, as the episodes recorded them."""
    return {
        e.crm_refs["task"]: (e.crm_refs["task_turn"], e.crm_refs["task_assignee"])
        for e in _episodes(rt, tenant_id) if e.crm_refs.get("task_team")
    }  # fmt: skip


def test_a_teams_tasks_go_to_its_members_in_turn_not_to_the_deals_owners(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _team_takes(rt, tenant_id, clock)
    _refresh(redis, tenant_id)

    tasks = crm.tasks()
    assert len(tasks) > 5
    held = Counter(t["owner_id"] for t in tasks.values())
    assert set(held) == set(TEAM), "none for Tom or Claire, who own the deals"
    assert max(held.values()) - min(held.values()) <= 1, "shared out evenly"
    turns = _turns(rt, tenant_id)
    assert sorted(turn for turn, _ in turns.values()) == list(range(1, len(tasks) + 1))
    for task_id, (turn, holder) in turns.items():
        assert tasks[task_id]["owner_id"] == holder == TEAM[(turn - 1) % len(TEAM)]


def test_only_the_alerts_given_to_the_team_go_to_it(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _team_takes(rt, tenant_id, clock, codes=["no_activity"])
    _refresh(redis, tenant_id)

    episode = _episode(rt, tenant_id, "d-1002", "no_activity")
    assert crm.tasks()[episode.crm_refs["task"]]["owner_id"] == "u-ana", "the team's first turn"
    others = [t for i, t in crm.tasks().items() if i != episode.crm_refs["task"]]
    assert others and {t["owner_id"] for t in others} <= {"u-tom", "u-claire"}


def test_a_member_who_left_is_skipped_and_a_retry_asks_the_same_member(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _team_takes(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:  # the last reading of the CRM's users: Ben left
        s.add(UserRow(tenant_id=tenant_id, crm_id="u-ben", active=False))
    crm.add_fault("create_task", error="transient")  # the first try reaches nobody
    _refresh(redis, tenant_id)
    _after_stale(rt, clock, BACKOFF_CAP)

    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))
    tasks = crm.tasks()
    turns = _turns(rt, tenant_id)
    assert sorted(turn for turn, _ in turns.values()) == list(range(1, len(tasks) + 1)), (
        "the retried task kept the turn it drew: none drawn twice, none skipped"
    )
    assert {t["owner_id"] for t in tasks.values()} == {"u-ana", "u-cy"}
    assert "u-ben" not in [c.get("owner") for c in crm.calls("create_task")]


def test_a_teams_task_stays_with_its_member_when_the_deal_changes_hands(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _team_takes(rt, tenant_id, clock, codes=["no_activity"])
    _refresh(redis, tenant_id)
    team_task = _episode(rt, tenant_id, "d-1002", "no_activity").crm_refs["task"]

    _hand_to(crm, "d-1002", "u-claire")
    _refresh(redis, tenant_id, ["d-1002"])

    open_ = {t["key"]: t["owner_id"] for t in _open_tasks_of(crm, "d-1002")}
    assert crm.tasks()[team_task]["owner_id"] == "u-ana"
    assert team_task not in {c["id"] for c in crm.calls("reassign_task")}, "not even asked"
    assert len(open_) > 1 and set(open_.values()) == {"u-ana", "u-claire"}, (
        "the deal's other tasks, Tom's, went to Claire with it"
    )


def _known_to_the_crm(crm: FolderClient, user_id: str, *, active: bool) -> None:
    """The CRM's users include this one (on no deal of theirs)."""
    doc = dump_bundle(crm.pull(["d-1001"]).bundles[0])
    doc["users"] = [u for u in doc["users"] if u["id"] != user_id] + [
        {"id": user_id, "name": user_id, "email": f"{user_id}@example.com", "active": active}
    ]
    crm.put_deal(doc)


def test_a_member_who_leaves_hands_their_open_team_tasks_to_the_next_member(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _team_takes(rt, tenant_id, clock, team=["u-ana", "u-ben"])
    _refresh(redis, tenant_id)
    anas = {i for i, t in crm.tasks().items() if t["owner_id"] == "u-ana"}
    bens = {i for i, t in crm.tasks().items() if t["owner_id"] == "u-ben"}
    assert anas and bens

    _known_to_the_crm(crm, "u-ana", active=False)  # she owns no deal: read as a team member
    users.refresh(tenant_id)
    _refresh(redis, tenant_id, [])

    tasks = crm.tasks()
    assert {tasks[i]["owner_id"] for i in anas | bens} == {"u-ben"}
    assert {_turns(rt, tenant_id)[i][1] for i in anas} == {"u-ben"}
    handed = len(crm.calls("reassign_task"))
    assert handed == len(anas), "Ben's own tasks were not touched"

    users.refresh(tenant_id)  # the next day: nothing more to do
    _refresh(redis, tenant_id, [])
    assert len(crm.calls("reassign_task")) == handed


def test_an_alert_over_before_its_task_was_tried_takes_no_turn(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """The CRM refused the first task (a rate limit) and a call logged meanwhile ended some of
    d-1002's alerts: those get no task, and must not use up a member's turn, or the team's
    tasks are no longer shared in turn (with two members, one could get them all)."""
    _team_takes(rt, tenant_id, clock, team=["u-ana", "u-ben"])
    crm.add_fault("create_task", error="rate_limited", retry_after=120)
    _refresh(redis, tenant_id, ["d-1002"])
    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")
    _refresh(redis, tenant_id, ["d-1002"])
    _after_stale(rt, clock, 120)
    _after_stale(rt, clock, 0)

    skipped = [e for e in _effects(rt, tenant_id, TASK) if "skipped" in (e.result or {})]
    assert skipped, "some alerts ended before their first try"
    tasks = crm.tasks()
    turns = _turns(rt, tenant_id)
    assert sorted(turn for turn, _ in turns.values()) == list(range(1, len(tasks) + 1)), (
        "the turns went to the tasks made, none to the alerts that got none"
    )
    held = Counter(t["owner_id"] for t in tasks.values())
    assert max(held.values()) - min(held.values()) <= 1, f"shared out evenly: {held}"


def test_a_member_taken_off_the_team_as_they_leave_still_hands_their_open_tasks_on(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """Ana leaves the company: the admin takes her off the team and the CRM deactivates her.
    Her open team tasks must still go to the team, not stay with a user nobody sees."""
    _team_takes(rt, tenant_id, clock, team=["u-ana", "u-ben"])
    _refresh(redis, tenant_id)
    anas = {i for i, t in crm.tasks().items() if t["owner_id"] == "u-ana"}
    assert anas

    _team_takes(rt, tenant_id, clock, team=["u-ben"])
    _known_to_the_crm(crm, "u-ana", active=False)  # she owns no deal
    users.refresh(tenant_id)
    _refresh(redis, tenant_id, [])

    tasks = crm.tasks()
    assert {tasks[i]["owner_id"] for i in anas} == {"u-ben"}


def test_a_departed_members_task_of_a_team_renamed_since_goes_the_owners_way(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """README, Known limits: a team renamed while its tasks are open is a new team. Its tasks
    are the old team's, which no longer has members: a departed holder's go to the deal's
    owner, not to the members of whichever team the alert names now."""
    _team_takes(rt, tenant_id, clock, team=["u-ana", "u-ben"])
    _refresh(redis, tenant_id)
    anas = {i: t["deal_id"] for i, t in crm.tasks().items() if t["owner_id"] == "u-ana"}
    assert anas

    _team_takes(rt, tenant_id, clock, team=["u-ana", "u-ben"], name="sdr")
    _known_to_the_crm(crm, "u-ana", active=False)  # she owns no deal
    users.refresh(tenant_id)
    _refresh(redis, tenant_id, [])

    tasks = crm.tasks()
    owners = {d: crm.pull([d]).bundles[0].deal.owner for d in set(anas.values())}
    assert {i: tasks[i]["owner_id"] for i in anas} == {i: owners[d] for i, d in anas.items()}
    assert set(owners.values()) <= {"u-tom", "u-claire"}


def test_a_crm_outage_reading_the_teams_is_not_asked_again_member_by_member(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """The owners are read, then the CRM fails: the team's members wait for the next reading
    rather than being asked one by one, each call failing in turn."""
    _team_takes(rt, tenant_id, clock)
    _refresh(redis, tenant_id)
    asked = len(crm.calls("users_by_id"))
    crm.add_fault("users_by_id")  # the owners' reading goes through
    crm.add_fault("users_by_id", error="transient")

    assert users.refresh(tenant_id)["users"] > 0

    assert len(crm.calls("users_by_id")) == asked + 2
