"""CRM tasks and notes as outbox effects: what the event handlers propose and the runner does.

An event handler (jobs/crm_tasks.py, jobs/crm_notes.py) never calls the CRM: it puts one effect
in the outbox under a key of its own (`crm_task:<episode id>`, ...) and asks for a run of
jobs/crm_actions.py, which makes the CRM call, retries it by jobs.policy and records the result.
Handing events over is thus cheap and never fails on a CRM outage, and each effect keeps its
own attempts and backoff in the database, where the sweeper finds it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters import ADAPTERS
from adapters.base import CrmActions
from connector import queues
from connector.store import tenants, work
from engine.settings import Settings
from jobs.runtime import Runtime, current

TASK = "crm_task"
"""Create the task of an alert episode."""
TASK_DONE = "crm_task_done"
"""Complete it when the episode ends."""
TASK_OWNER = "crm_task_owner"
"""Hand an episode's open task to the deal's new owner."""
NOTE = "crm_note"
"""A note on a deal's timeline for a grade change."""
KINDS = (TASK, TASK_DONE, TASK_OWNER, NOTE)

RUN = "jobs.crm_actions.run"
WHAT = "crm_actions"
"""The run's name in the "scheduled" marks of connector.queues."""


@dataclass(frozen=True)
class Effect:
    """A pending outbox row, as plain values; `attempts` counts this one."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Context:
    """What an effect's function may use."""

    rt: Runtime
    tenant_id: str
    crm: CrmActions
    settings: Settings
    now: datetime


@dataclass(frozen=True)
class Outcome:
    """What an effect came to. Recorded in one transaction: `refs` merged into the episode's
    `crm_refs` and the row completed with `result`; or, with `wait_until`, the row left pending
    until then (a completion waiting for its task to exist)."""

    result: dict[str, Any] = field(default_factory=dict)
    episode_id: int | None = None
    refs: Mapping[str, Any] = field(default_factory=dict)
    wait_until: datetime | None = None


def crm_can_act(tenant_id: str) -> bool:
    """Whether the tenant's CRM adapter makes tasks and notes (`CrmActions`): a CRM whose
    adapter does not yet gets no effects, rather than effects that can only fail."""
    crm = tenants.get_tenant(current().store, tenant_id).crm
    return callable(getattr(ADAPTERS.get(crm), "create_task", None))


def propose(tenant_id: str, effects: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
    """Put (key, kind, payload) effects in the outbox, each unless its key is there already,
    and ask for a run; how many were new."""
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        new = work.propose_many(s, tenant_id, effects, rt.clock())
    queues.enqueue_once(rt.redis, queues.ACTIONS, RUN, tenant_id, what=WHAT)
    return new
