"""Load a generated `World` into the Sell emulator, shaped as a customer's Sell account holds it.

`load_into_sell(state, world)` uses only the emulator's world-building API
(`sandbox.sell_state.SellState`) and returns the Sell id of every world record: reps, companies,
people, deals and activities by their world id; pipelines by their id; stages as
`"<pipeline id>:<stage id>"` (Sell's ids are integers, unique across the account).

How the world maps onto Sell (../shared/crm-apis.md section 3):

- reps: users (`name`, `email`, `team_name`, `reports_to` their manager).
- pipelines and stages: `category` `incoming` (the first open stage), `in_progress` (other
  open stages), `won` or `lost`; `likelihood` is the probability in percent; `position` the
  funnel order.
- companies: organisations (`is_organization` true, `name`, `website` the domain, `industry`,
  `address.country`).
- people: person contacts (`first_name`, `last_name`, `email`, `title` (absent when empty),
  `contact_id` their organisation). Sell's deal role is always `involved`, so the world's buying
  roles live in the contact custom field **"Buying role"** (a `list`, its choices every role of
  the world): a contact holds one value for all their deals, the first role they hold on their
  most recent deal with a role. Other roles, and roles that differ between deals, are lost.
- deals: `name`, `value` (not written when the world has none: Sell's default 0), `currency`,
  `owner_id`, `estimated_close_date` (ISO date), `contact_id` the primary person (the
  organisation when the deal has none), created in the first stage of their history and moved
  through each later stage at the time the world says (so `last_stage_change_at` is when the
  current stage was entered, and the Firehose holds `updated` events with `previous.stage_id`
  for the last 72 h).
  Every person on the deal is an associated contact (role `involved`).
- calls: `incoming` (world direction inbound) or outgoing, `summary` the subject and body,
  `duration` in seconds, `made_at`, `user_id` the rep; `resource_type` `contact` and the other
  party when the call has one (a call is never on a deal); `associated_deal_ids` the deals.
- meetings: visits (Sell's logged meetings) on the deal: `visited_at` the start, `summary`.
- tasks: `content` the subject (and body), `due_date` the due time, `completed`, `owner_id`.
- notes: `content`, on the deal.
- emails: **skipped**. Sell's Core API has no email object (emails synced from a mailbox are
  visible in Sell's UI only: UNCONFIRMED), so a Sell tenant's activity comes from calls,
  visits, notes and tasks only, and `last_activity_at` ignores emails.

Activities with neither a deal nor a contact are skipped. Records are created by their rep, each
at the time the world says it appeared (future ones at `world.now`); give the state a clock at
`world.now` so its own dates agree.
"""

from __future__ import annotations

from datetime import datetime

from sandbox.sell_resources import format_datetime
from sandbox.sell_state import SellState
from sandbox.world import Activity, Deal, Pipeline, World

__all__ = ["ROLE_FIELD", "load_into_sell"]

ROLE_FIELD = "Buying role"
"""The contact custom field (a list) that carries the world's buying roles."""

_ROLE_ORDER = ("Champion", "Decision maker", "Economic buyer")
"""Choices in this order, any other roles after, alphabetically."""


def load_into_sell(state: SellState, world: World) -> dict[str, int]:
    """Create the world's records in `state`; return `{world id: Sell id}`.

    Deterministic for a given world and fresh state. Raises the emulator's `SellError` if the
    state refuses a record, or `ValueError` if the account already has a "Buying role" field.
    """
    ids: dict[str, int] = {}
    with state.lock:
        _users(state, world, ids)
        for pipeline in world.pipelines:
            _pipeline(state, pipeline, ids)
        roles = {r for d in world.deals for c in d.contacts for r in c.roles}
        if roles:
            choices = sorted(roles, key=lambda r: ((*_ROLE_ORDER, r).index(r), r))
            state.define_custom_field("contact", ROLE_FIELD, "list", choices)
        first_deal: dict[str, datetime] = {}
        role_of: dict[str, tuple[datetime, str]] = {}
        for deal in world.deals:
            for key in (deal.company_id, *(c.person_id for c in deal.contacts)):
                if key not in first_deal or deal.created_at < first_deal[key]:
                    first_deal[key] = deal.created_at
            for c in deal.contacts:
                if c.roles and (
                    c.person_id not in role_of or role_of[c.person_id][0] < deal.created_at
                ):
                    role_of[c.person_id] = (deal.created_at, c.roles[0])
        for company in world.companies:
            data = {
                "is_organization": True,
                "name": company.name,
                "website": company.domain,
                "industry": company.industry,
                "address": {"country": company.country},
            }
            at = first_deal.get(company.id, world.now)
            ids[company.id] = state.create("contacts", data, at=at)["id"]
        for person in world.people:
            data = {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "email": person.email,
                "contact_id": ids[person.company_id],
            }
            if person.job_title:
                data["title"] = person.job_title
            if person.id in role_of:
                data["custom_fields"] = {ROLE_FIELD: role_of[person.id][1]}
            at = first_deal.get(person.id, world.now)
            ids[person.id] = state.create("contacts", data, at=at)["id"]
        for deal in world.deals:
            _deal(state, world, deal, ids)
        for activity in world.activities:
            _activity(state, world, activity, ids)
    return ids


def _users(state: SellState, world: World, ids: dict[str, int]) -> None:
    pending = list(world.reps)
    while pending:  # managers before the reps who report to them
        waiting = []
        for rep in pending:
            if (
                rep.manager_id
                and rep.manager_id not in ids
                and any(r.id == rep.manager_id for r in pending)
            ):
                waiting.append(rep)
                continue
            ids[rep.id] = state.add_user(
                rep.name,
                rep.email,
                team_name=rep.team,
                reports_to=ids.get(rep.manager_id or ""),
                at=world.now,
            )
        if len(waiting) == len(pending):  # a reporting cycle: break it
            waiting = waiting[1:]
            ids.setdefault(pending[0].id, state.add_user(pending[0].name, pending[0].email))
        pending = waiting


def _pipeline(state: SellState, pipeline: Pipeline, ids: dict[str, int]) -> None:
    ids[pipeline.id] = state.add_pipeline(pipeline.label)
    first_open = True
    for position, stage in enumerate(pipeline.stages, 1):
        if stage.closed:
            category = "won" if stage.won else "lost"
        else:
            category = "incoming" if first_open else "in_progress"
            first_open = False
        ids[f"{pipeline.id}:{stage.id}"] = state.add_stage(
            ids[pipeline.id],
            stage.label,
            category=category,
            likelihood=round(stage.probability * 100),
            position=position,
        )


def _deal(state: SellState, world: World, deal: Deal, ids: dict[str, int]) -> None:
    owner = ids[deal.owner_id]
    primary = next((c.person_id for c in deal.contacts if c.primary), None)
    history = list(deal.stage_history)
    first_stage, entered = history[0]
    data: dict[str, object] = {
        "name": deal.name,
        "currency": deal.currency,
        "owner_id": owner,
        "stage_id": ids[f"{deal.pipeline_id}:{first_stage}"],
        "contact_id": ids[primary] if primary else ids[deal.company_id],
        "last_stage_change_at": format_datetime(entered),
    }
    if deal.amount is not None:
        data["value"] = deal.amount
    if deal.close_date is not None:
        data["estimated_close_date"] = deal.close_date.isoformat()
    sell_id = state.create("deals", data, user_id=owner, at=deal.created_at)["id"]
    ids[deal.id] = sell_id
    for stage_id, at in history[1:]:
        stage = ids[f"{deal.pipeline_id}:{stage_id}"]
        state.update("deals", sell_id, {"stage_id": stage}, user_id=owner, at=min(at, world.now))
    for contact in deal.contacts:
        state.associate(sell_id, ids[contact.person_id], at=deal.created_at)


def _activity(state: SellState, world: World, a: Activity, ids: dict[str, int]) -> None:
    if a.kind == "email":
        return
    deals = [ids[d] for d in a.deal_ids]
    people = [ids[p] for p in a.participants]
    rep = ids[a.rep_id]
    at = min(a.at, world.now)
    text = "\n\n".join(part for part in (a.subject, a.body) if part)
    if not deals and not people:
        return
    if deals:
        target: dict[str, object] = {"resource_type": "deal", "resource_id": deals[0]}
    else:
        target = {"resource_type": "contact", "resource_id": people[0]}
    if a.kind == "call":
        data: dict[str, object] = {
            "user_id": rep,
            "summary": text,
            "incoming": a.direction == "inbound",
            "missed": False,
            "duration": (2 + int(a.at.timestamp()) % 23) * 60,
            "made_at": format_datetime(a.at),
            "associated_deal_ids": deals,
        }
        if people:  # a call is on a contact (or lead), never on a deal
            data |= {"resource_type": "contact", "resource_id": people[0]}
    elif a.kind == "meeting":
        data = {"visited_at": format_datetime(a.at), "summary": text, **target}
    elif a.kind == "task":
        data = {
            "content": text,
            "due_date": format_datetime(a.at),
            "completed": a.status == "done",
            "owner_id": rep,
            **target,
        }
    else:
        data = {"content": a.body or a.subject, **target}
    resource = {"call": "calls", "meeting": "visits", "task": "tasks", "note": "notes"}[a.kind]
    ids[a.id] = state.create(resource, data, user_id=rep, at=at)["id"]
