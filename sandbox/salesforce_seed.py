"""Load a generated `World` into the Salesforce emulator, shaped as a customer's org holds it.

`load_into_salesforce(state, world)` uses only the state's record API (`insert`, `update`,
`add_stage`, `add_picklist_value`) and returns `{world id: Salesforce id}`. Mapping (see
../shared/crm-apis.md, sections 2.2 to 2.4):

- reps: Users (ManagerId from the world's manager); companies: Accounts (Website, Industry,
  BillingCountry); people: Contacts with Title (null when empty) and AccountId.
- stages: the world's stage labels become StageName values with their probability, closed and
  won flags (the first pipeline defining a label wins: one sales process).
- deals: Opportunities created at their creation time in their first stage, then moved through
  every later stage at the time the world says: OpportunityHistory holds the stage history.
- contact roles: one OpportunityContactRole per (contact, role); a contact without a role gets
  one row with a null Role; IsPrimary on the world's primary contact. A role matching a picklist
  value ignoring case takes that value ("Decision maker" -> "Decision Maker"); any other
  ("Champion") is added to the org's Role picklist first, as an admin would.
- an activity logged against several deals is recorded once per deal (each with its WhatId).
  Calls: completed or open Tasks with TaskSubtype Call and CallType; tasks: Tasks (TaskSubtype
  Task); notes: completed Tasks (as orgs that log notes as activities keep them); meetings: Events
  with one EventRelation per attendee (IsParent, IsInvitee; Status Accepted once held) and
  WhoId the first attendee; emails: EmailMessage records (RelatedToId the opportunity, which
  lists them as its `Emails`) with their EmailMessageRelation rows (FromAddress, ToAddress,
  CcAddress; RelationId the contact or user) and the completed Task (TaskSubtype Email,
  ``ActivityId``) Enhanced Email logs. One email in three leaves its known contacts out of
  ``ToAddress``/``CcAddress`` (only the relations name
  them), as Salesforce does for recipients matched to records.

Give the state a clock at `world.now` so that its own dates agree with the world's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox.salesforce_state import SalesforceState
from sandbox.world import Activity, Deal, Person, Rep, World

__all__ = ["load_into_salesforce"]


def load_into_salesforce(state: SalesforceState, world: World) -> dict[str, str]:
    """Create the world's records in `state`; return `{world id: Salesforce id}`."""
    ids: dict[str, str] = {}
    now = world.now
    with state.lock:
        for rep in sorted(world.reps, key=lambda r: r.manager_id is not None):
            ids[rep.id] = state.insert(
                "User",
                {
                    "Username": rep.email,
                    "FirstName": rep.first_name,
                    "LastName": rep.last_name,
                    "Email": rep.email,
                    "IsActive": True,
                    "Department": rep.team,
                    "ManagerId": ids.get(rep.manager_id or ""),
                },
                at=now,
            )
        seen: set[str] = set()
        for pipeline in world.pipelines:
            for stage in pipeline.stages:
                if stage.label not in seen:
                    seen.add(stage.label)
                    state.add_stage(
                        stage.label,
                        round(stage.probability * 100),
                        closed=stage.closed,
                        won=stage.won,
                    )
        roles = _roles(state, world)
        stage_labels = {(p.id, s.id): s.label for p in world.pipelines for s in p.stages}
        first_seen = _first_deal_times(world)
        for company in world.companies:
            ids[company.id] = state.insert(
                "Account",
                {
                    "Name": company.name,
                    "Website": company.domain,
                    "Industry": company.industry,
                    "BillingCountry": company.country,
                },
                at=first_seen.get(company.id, now),
            )
        for person in world.people:
            ids[person.id] = state.insert(
                "Contact",
                {
                    "FirstName": person.first_name,
                    "LastName": person.last_name,
                    "Email": person.email,
                    "Title": person.job_title or None,
                    "AccountId": ids[person.company_id],
                },
                at=first_seen.get(person.id, now),
            )
        for deal in world.deals:
            _opportunity(state, deal, ids, stage_labels, roles, now)
        people = world.people_by_id()
        reps = {r.id: r for r in world.reps}
        for index, activity in enumerate(world.activities):
            for deal_id in activity.deal_ids:
                record = _activity(state, activity, ids[deal_id], ids, people, reps, index, now)
                ids.setdefault(activity.id, record)
    return ids


def _first_deal_times(world: World) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for deal in world.deals:
        for key in (deal.company_id, *(c.person_id for c in deal.contacts)):
            if key not in first or deal.created_at < first[key]:
                first[key] = deal.created_at
    return first


def _roles(state: SalesforceState, world: World) -> dict[str, str]:
    """World role -> the Role picklist value, adding custom values the org lacks."""
    values = {v.lower(): v for v in state.picklist("OpportunityContactRole", "Role")}
    out: dict[str, str] = {}
    for role in sorted({r for d in world.deals for c in d.contacts for r in c.roles}):
        if role.lower() not in values:
            state.add_picklist_value("OpportunityContactRole", "Role", role)
            values[role.lower()] = role
        out[role] = values[role.lower()]
    return out


def _opportunity(
    state: SalesforceState,
    deal: Deal,
    ids: dict[str, str],
    stage_labels: dict[tuple[str, str], str],
    roles: dict[str, str],
    now: datetime,
) -> None:
    history = deal.stage_history
    created = min(deal.created_at, now)
    opp = state.insert(
        "Opportunity",
        {
            "Name": deal.name,
            "Amount": deal.amount,
            "CloseDate": deal.close_date or deal.created_at.date() + timedelta(days=90),
            "StageName": stage_labels[(deal.pipeline_id, history[0][0])],
            "CurrencyIsoCode": deal.currency,
            "AccountId": ids[deal.company_id],
            "OwnerId": ids[deal.owner_id],
        },
        by=ids[deal.owner_id],
        at=created,
    )
    ids[deal.id] = opp
    for stage_id, entered in history[1:]:
        state.update(
            "Opportunity",
            opp,
            {"StageName": stage_labels[(deal.pipeline_id, stage_id)]},
            by=ids[deal.owner_id],
            at=min(entered, now),
        )
    for contact in deal.contacts:
        for i, role in enumerate(contact.roles or (None,)):
            state.insert(
                "OpportunityContactRole",
                {
                    "OpportunityId": opp,
                    "ContactId": ids[contact.person_id],
                    "Role": roles[role] if role else None,
                    "IsPrimary": contact.primary and i == 0,
                },
                by=ids[deal.owner_id],
                at=created,
            )


def _activity(
    state: SalesforceState,
    a: Activity,
    opp: str,
    ids: dict[str, str],
    people: dict[str, Person],
    reps: dict[str, Rep],
    index: int,
    now: datetime,
) -> str:
    owner = ids[a.rep_id]
    done = a.status == "done"
    at = min(a.at, now)
    who = ids[a.participants[0]] if a.participants else None
    common = {"WhatId": opp, "OwnerId": owner, "Description": a.body or None}
    if a.kind in ("call", "task", "note"):
        values = {
            **common,
            "WhoId": who,
            "Subject": a.subject or {"call": "Call", "task": "Task", "note": "Note"}[a.kind],
            "Status": "Completed" if done or a.kind == "note" else "Not Started",
            "Priority": "Normal",
            "ActivityDate": a.at.date(),
            "TaskSubtype": "Call" if a.kind == "call" else "Task",
        }
        if a.kind == "call":
            values["CallType"] = a.direction.capitalize()
            if a.end is not None:
                values["CallDurationInSeconds"] = int((a.end - a.at).total_seconds())
        return state.insert("Task", values, by=owner, at=at)
    if a.kind == "meeting":
        event = state.insert(
            "Event",
            {
                **common,
                "WhoId": who,
                "Subject": a.subject or "Meeting",
                "StartDateTime": a.at,
                "EndDateTime": a.end or a.at + timedelta(minutes=30),
                "EventSubtype": "Event",
            },
            by=owner,
            at=at,
        )
        for person_id in dict.fromkeys(a.participants):
            state.insert(
                "EventRelation",
                {
                    "EventId": event,
                    "RelationId": ids[person_id],
                    "IsParent": True,
                    "IsInvitee": True,
                    "Status": "Accepted" if done else "New",
                },
                by=owner,
                at=at,
            )
        return event
    return _email(state, a, opp, ids, people, reps, index, at)


def _email(
    state: SalesforceState,
    a: Activity,
    opp: str,
    ids: dict[str, str],
    people: dict[str, Person],
    reps: dict[str, Rep],
    index: int,
    at: datetime,
) -> str:
    rep = reps[a.rep_id]
    contacts = [p for p in a.participants if p in people]
    if a.direction == "inbound" and contacts:
        sender, to = contacts[0], [a.rep_id, *contacts[1:]]
    elif contacts:
        sender, to = a.rep_id, contacts
    else:  # between colleagues
        colleague = rep.manager_id or next((r for r in reps if r != rep.id), rep.id)
        sender, to = a.rep_id, [colleague]
    cc = list(a.cc)
    hide_known = index % 3 == 0  # recipients matched to records only in the relations

    def email(key: str) -> str:
        return people[key].email if key in people else reps[key].email

    def listed(keys: list[str]) -> str | None:
        shown = [email(k) for k in keys if not (hide_known and k in people)]
        return "; ".join(shown) or None

    task = state.insert(
        "Task",
        {
            "WhatId": opp,
            "WhoId": ids[contacts[0]] if contacts else None,
            "OwnerId": ids[a.rep_id],
            "Subject": f"Email: {a.subject}",
            "Status": "Completed",
            "Priority": "Normal",
            "ActivityDate": a.at.date(),
            "TaskSubtype": "Email",
        },
        by=ids[a.rep_id],
        at=at,
    )
    sender_name = people[sender].name if sender in people else reps[sender].name
    message = state.insert(
        "EmailMessage",
        {
            "Subject": a.subject,
            "TextBody": a.body or None,
            "FromAddress": email(sender),
            "FromName": sender_name,
            "ToAddress": listed(to),
            "CcAddress": listed(cc),
            "MessageDate": a.at,
            "Incoming": a.direction == "inbound",
            "Status": "1" if a.direction == "inbound" else "3",
            "RelatedToId": opp,
            "ActivityId": task,
        },
        by=ids[a.rep_id],
        at=at,
    )
    for kind, keys in (("FromAddress", [sender]), ("ToAddress", to), ("CcAddress", cc)):
        for key in dict.fromkeys(keys):
            state.insert(
                "EmailMessageRelation",
                {
                    "EmailMessageId": message,
                    "RelationId": ids[key],
                    "RelationAddress": email(key),
                    "RelationType": kind,
                },
                by=ids[a.rep_id],
                at=at,
            )
    return message
