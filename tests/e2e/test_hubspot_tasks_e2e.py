"""CRM tasks end to end over real HTTP on the HubSpot emulator, with a real worker and Redis.

An admin who wants tasks for some alerts, the install's backlog included (`tasks.backlog`),
installs Deal Radar; the initial sync starts alert episodes and each gets exactly one task in
HubSpot, assigned to the deal's owner, linked to the
deal, due at 17:00 on the next business day of the tenant's timezone. A rep logs a call, the
alert ends, the task is completed. Running the same work again changes nothing; a worker killed
after HubSpot made a task and before the outbox recorded it leaves one task, not two.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
import requests
from sqlalchemy import func, select

from adapters.marker import OWN_MARKER
from connector import queues
from connector.store import tenants
from connector.store.db import Store
from connector.store.models import AlertEpisode, DealRow, Evaluation, OutboxEffect
from engine.settings import ALERT_CODES
from jobs import runtime, sweeper
from jobs.runtime import Runtime
from sandbox.hubspot_state import Record
from tests.e2e.conftest import DEALS, Product, install

ZONE = "Asia/Tokyo"
TOKYO = ZoneInfo(ZONE)
SYNC_SECONDS = 120
CHANGE_SECONDS = 30
CREATE = "POST /crm/v3/objects/tasks"
TASK_TO_DEAL = 216


@pytest.fixture
def store(product: Product) -> Iterator[Store]:
    opened = Store(product.database_url)
    yield opened
    opened.dispose()


def _prepare_tenant(product: Product, store: Store, task_alerts: set[str]) -> str:
    """The admin's tenant and settings before the install: tasks for `task_alerts` only."""
    tenant, _key = tenants.create_tenant(
        store, crm="hubspot", account_id=str(product.state.portal_id), timezone=ZONE,
        now=datetime.now(UTC),
    )  # fmt: skip
    document = {
        "timezone": ZONE,
        "tasks": {
            # The deals are older than the install: their alerts are its backlog, which the
            # admin asks tasks for.
            "backlog": True,
            "alerts": {code: {"enabled": code in task_alerts} for code in ALERT_CODES},
        },
    }
    tenants.save_settings(store, tenant.id, document, changed_by="e2e", now=datetime.now(UTC))
    installed = install(product.app_url)
    assert installed["status"] == "reinstalled" and installed["tenant_id"] == tenant.id
    return tenant.id


def _settled(store: Store, tenant_id: str) -> bool:
    with store.tenant(tenant_id) as s:
        evaluated = s.scalar(select(func.count()).select_from(Evaluation))
        pending = s.scalar(
            select(func.count()).select_from(OutboxEffect).where(OutboxEffect.status == "pending")
        )
    return evaluated == DEALS and pending == 0


def _wait_settled(product: Product, store: Store, tenant_id: str, what: str) -> None:
    product.wait(what, lambda: _settled(store, tenant_id), SYNC_SECONDS)
    product.state.webhooks.flush()
    product.wait(what + " (after the webhooks of our own writes)",
                 lambda: _settled(store, tenant_id), SYNC_SECONDS)  # fmt: skip


def _our_tasks(product: Product, deal_id: str) -> list[Record]:
    """The deal's tasks that Deal Radar made (its marker ends their body)."""
    state = product.state
    with state.lock:
        linked = [state.record("tasks", i) for i in state.associations("deals", deal_id, "tasks")]
        return [t for t in linked if OWN_MARKER in (t.properties.get("hs_task_body") or "")]


def _episodes(store: Store, tenant_id: str, code: str) -> list[AlertEpisode]:
    with store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(AlertEpisode).where(AlertEpisode.code == code)))
        s.expunge_all()
        return rows


def _next_business_day_17h(started: datetime) -> datetime:
    """The expectation, counted the plain way: the next Monday-to-Friday after the local day."""
    day: date = started.astimezone(TOKYO).date() + timedelta(days=1)
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 17, 0, tzinfo=TOKYO)


def _instant(value: str | None) -> datetime:
    assert value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _creates(product: Product) -> int:
    return product.state.counts().get(CREATE, 0)


def _statuses(product: Product) -> dict[str, str | None]:
    """Every task of Deal Radar's in the portal, with its status."""
    with product.state.lock:
        return {
            t.id: t.properties.get("hs_task_status")
            for t in product.state.records("tasks")
            if OWN_MARKER in (t.properties.get("hs_task_body") or "")
        }


def _sweep_as_if_later(product: Product, store: Store) -> None:
    """The sweeper, run a minute later than now: it puts back whatever is still pending."""
    later = datetime.now(UTC) + timedelta(seconds=61)
    redis = redis_lib.Redis.from_url(product.redis_url)
    runtime.install(Runtime(store=store, redis=redis, clock=lambda: later))
    try:
        sweeper.run()
    finally:
        runtime.install(None)


def _log_call(product: Product, deal_id: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    answer = requests.post(
        f"{product.emulator.url}/_sandbox/ui/deals/{deal_id}/calls",
        json={"properties": {"hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED",
                             "hs_timestamp": now, "hs_call_title": "Catch-up"}},
        timeout=10,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text


def test_one_task_per_episode_for_the_owner_completed_when_the_alert_ends(
    product: Product, store: Store
) -> None:
    tenant_id = _prepare_tenant(product, store, {"no_activity"})
    _wait_settled(product, store, tenant_id, "the initial sync and its tasks")

    episodes = [e for e in _episodes(store, tenant_id, "no_activity") if e.ended_at is None]
    assert episodes, "the generated org has deals without recent activity"
    for episode in episodes:
        assert len(_our_tasks(product, episode.deal_id)) == 1, "exactly one task per episode"
    assert len(_statuses(product)) == len(episodes), "and none for the alerts without tasks"

    episode = episodes[0]
    deal_id = episode.deal_id
    [task] = _our_tasks(product, deal_id)
    with product.state.lock:
        deal = dict(product.state.record("deals", deal_id).properties)
        links = product.state.associations("tasks", task.id, "deals")
    owner = deal["hubspot_owner_id"]
    assert episode.crm_refs == {"task": task.id, "task_for_owner": owner, "task_assignee": owner}
    assert deal.get("hubspot_owner_id"), "the seeded deal has an owner"
    props = task.properties
    assert props["hubspot_owner_id"] == deal["hubspot_owner_id"], "assigned to the deal's owner"
    assert TASK_TO_DEAL in {t.type_id for t in links[deal_id]}, "linked to the deal"
    assert props["hs_task_status"] == "NOT_STARTED"
    assert props["hs_task_subject"] == f"Get back in touch: {deal['dealname']}"
    assert f"/record/0-3/{deal_id}" in props["hs_task_body"], "a link back to the deal"
    with store.tenant(tenant_id) as s:
        started = s.get(AlertEpisode, episode.id).started_at  # type: ignore[union-attr]
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    assert _instant(props["hs_timestamp"]) == _next_business_day_17h(started)

    _log_call(product, deal_id)
    product.wait(
        "the call ends no_activity and the task is completed in HubSpot",
        lambda: _our_tasks(product, deal_id)[0].properties.get("hs_task_status") == "COMPLETED",
        CHANGE_SECONDS,
    )
    _wait_settled(product, store, tenant_id, "the call's refresh and its effects")
    [ended] = [e for e in _episodes(store, tenant_id, "no_activity") if e.id == episode.id]
    assert ended.ended_at is not None
    assert ended.crm_refs["task"] == task.id and ended.crm_refs["task_completed"] is True
    others = {t: s for t, s in _statuses(product).items() if t != task.id}
    assert set(others.values()) == {"NOT_STARTED"}, "the other deals' tasks stay open"

    # The same run again: every deal refreshed, the sweeper's pass: nothing more in HubSpot.
    before, creates = _statuses(product), _creates(product)
    with store.tenant(tenant_id) as s:
        deal_ids = list(s.scalars(select(DealRow.crm_id)))
    queues.request_refresh(redis_lib.Redis.from_url(product.redis_url), tenant_id, deal_ids,
                           window=0)  # fmt: skip
    _sweep_as_if_later(product, store)
    _wait_settled(product, store, tenant_id, "the repeated refresh")
    assert _statuses(product) == before
    assert _creates(product) == creates
    assert len(_our_tasks(product, deal_id)) == 1


class _HangAfterCreate:
    """The emulator makes the task and links it to the deal, then holds its answer until the
    test has killed the worker that asked: HubSpot did the work, the worker never heard."""

    def __init__(self, product: Product, deal_id: str) -> None:
        self.state, self.deal_id = product.state, deal_id
        self.created, self.release = threading.Event(), threading.Event()
        self.task_ids: list[str] = []
        self.real = self.state.associate

    def __call__(self, from_type: str, from_id: str, to_type: str, to_id: str, *args: Any,
                 **kwargs: Any) -> Any:  # fmt: skip
        linked = self.real(from_type, from_id, to_type, to_id, *args, **kwargs)
        if (from_type, to_type, str(to_id)) == ("tasks", "deals", self.deal_id):
            self.task_ids.append(str(from_id))
            self.created.set()
            self.release.wait(30)
        return linked


def test_a_worker_killed_between_hubspots_answer_and_the_commit_leaves_one_task(
    product: Product, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = _prepare_tenant(product, store, {"amount_missing"})
    _wait_settled(product, store, tenant_id, "the initial sync and its tasks")
    missing = {e.deal_id for e in _episodes(store, tenant_id, "amount_missing")}
    with store.tenant(tenant_id) as s:
        open_deals = list(s.scalars(select(DealRow.crm_id).where(DealRow.status == "open")))
    deal_id = next(d for d in open_deals if d not in missing)
    assert _our_tasks(product, deal_id) == []
    creates = _creates(product)

    hang = _HangAfterCreate(product, deal_id)
    monkeypatch.setattr(product.state, "associate", hang)
    answer = requests.patch(
        f"{product.emulator.url}/_sandbox/ui/deals/{deal_id}",
        json={"properties": {"amount": ""}}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert hang.created.wait(CHANGE_SECONDS), "the worker asked HubSpot for the task"
    product.kill_worker()
    hang.release.set()
    monkeypatch.undo()

    [made] = hang.task_ids
    assert [t.id for t in _our_tasks(product, deal_id)] == [made]
    [episode] = [e for e in _episodes(store, tenant_id, "amount_missing") if e.deal_id == deal_id]
    assert episode.crm_refs == {}, "the worker died before the outbox recorded the task"
    with store.tenant(tenant_id) as s:
        effect = s.scalar(select(OutboxEffect).where(OutboxEffect.key == f"crm_task:{episode.id}"))
        assert effect is not None and effect.status == "pending" and effect.attempts == 1

    product.start_worker()
    # The dead worker's lock on the tenant's CRM actions would expire after lock_seconds
    # (90 s); the test does not wait that long.
    redis_lib.Redis.from_url(product.redis_url).delete(f"dealradar:lock:crm_actions:{tenant_id}")
    _sweep_as_if_later(product, store)
    _wait_settled(product, store, tenant_id, "the sweeper puts the task back and it is done")

    assert [t.id for t in _our_tasks(product, deal_id)] == [made], "found again, not made twice"
    assert _creates(product) == creates + 1
    [episode] = [e for e in _episodes(store, tenant_id, "amount_missing") if e.deal_id == deal_id]
    with product.state.lock:
        deal_owner = product.state.record("deals", deal_id).properties.get("hubspot_owner_id")
    assert episode.crm_refs == {
        "task": made, "task_for_owner": deal_owner, "task_assignee": deal_owner
    }
    with product.state.lock:
        assert product.state.record("tasks", made).properties["hubspot_owner_id"] == deal_owner

    # And again, for good measure: the sweeper and a refresh change nothing more.
    queues.request_refresh(redis_lib.Redis.from_url(product.redis_url), tenant_id, [deal_id],
                           window=0)  # fmt: skip
    _sweep_as_if_later(product, store)
    _wait_settled(product, store, tenant_id, "the repeated refresh")
    assert [t.id for t in _our_tasks(product, deal_id)] == [made]
    assert _creates(product) == creates + 1


def test_a_deal_handed_to_another_rep_takes_its_open_task_along(
    product: Product, store: Store
) -> None:
    tenant_id = _prepare_tenant(product, store, {"no_activity"})
    _wait_settled(product, store, tenant_id, "the initial sync and its tasks")
    episode = next(e for e in _episodes(store, tenant_id, "no_activity") if e.ended_at is None)
    deal_id = episode.deal_id
    [task] = _our_tasks(product, deal_id)
    with product.state.lock:
        owner = product.state.record("deals", deal_id).properties["hubspot_owner_id"]
        other = next(o["id"] for o in product.state.owners() if o["id"] != owner)
    assert task.properties["hubspot_owner_id"] == owner

    answer = requests.patch(
        f"{product.emulator.url}/_sandbox/ui/deals/{deal_id}",
        json={"properties": {"hubspot_owner_id": other}}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    product.wait(
        "the deal's open task follows it to its new owner in HubSpot",
        lambda: _our_tasks(product, deal_id)[0].properties.get("hubspot_owner_id") == other,
        CHANGE_SECONDS,
    )
    _wait_settled(product, store, tenant_id, "the hand-over and its effects")
    assert [t.id for t in _our_tasks(product, deal_id)] == [task.id], "the same task, no other"
