"""Load a generated `World` into the HubSpot emulator, shaped as a customer's portal holds it.

`load_into_hubspot(state, world)` uses only the emulator's world-building API
(`sandbox.hubspot_state.HubSpotState`): owners with their teams, the world's pipelines and
stages, the buying roles as USER_DEFINED deal→contact association labels, companies, contacts,
deals with their stage history, then every call, email, meeting, task and note logged against
its deal and its contacts. It returns the HubSpot id of every world record (world ids are
unique across kinds: `r1`, `co1`, `p1`, `d1`, `a1`; pipelines and stages keep their ids).

How the world maps onto HubSpot's properties (see ../shared/crm-apis.md, sections 1.2 to 1.4):

- deals: `dealname`, `amount` (a string; absent when the world has none), `pipeline`,
  `dealstage` with its history (so `hs_date_entered_<stage>` is calculated), `closedate` (midnight
  UTC of the close date), `createdate`, `hubspot_owner_id`, `deal_currency_code`, `dealtype`
  (`existingbusiness` for renewals); a primary company association.
- contacts: `firstname`, `lastname`, `email`, `jobtitle` (absent when empty), `hs_language`,
  `company`; a primary company association; each deal link carries the contact's roles as labels
  (an unlabeled link when none). HubSpot has no primary contact on a deal: that flag is dropped.
- calls: `hs_call_direction` INBOUND/OUTBOUND, `hs_call_status` COMPLETED, `hs_call_title`,
  `hs_call_body`, `hs_call_duration` (ms), `hs_call_callee_object_id`/`_type`.
- emails: `hs_email_direction` EMAIL (sent or logged by the rep) or INCOMING_EMAIL,
  `hs_email_status` SENT, `hs_email_subject`, `hs_email_text`, `hs_email_from_email` (and first
  and last name), `hs_email_to_email` and `hs_email_cc_email` with several addresses joined by
  `;` (UNCONFIRMED in crm-apis.md), and `hs_email_headers` as the JSON HubSpot's email guide
  shows (`from`, `to`, `cc`, `bcc`). An email is associated with every contact on it, To and Cc
  alike, as HubSpot does: only the recipient fields tell who was copied.
- meetings: `hs_meeting_title`, `hs_meeting_body`, `hs_meeting_start_time`, `hs_meeting_end_time`,
  `hs_meeting_outcome` COMPLETED (done) or SCHEDULED (planned, or never updated); attendees are
  the associated contacts.
- tasks: `hs_task_subject`, `hs_task_body`, `hs_task_status` COMPLETED or NOT_STARTED,
  `hs_task_type` TODO, `hs_task_priority`; `hs_timestamp` is the due date.
- notes: `hs_note_body`. Every activity has `hs_timestamp` and `hubspot_owner_id`.

Records are created as a CRM user would (the emulator's default source), each at the time the
world says it appeared; give the state a clock at `world.now` so that its own dates agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from sandbox.hubspot_state import HubSpotState
from sandbox.world import Activity, Deal, Person, Rep, World

__all__ = ["OBJECT_TYPE", "load_into_hubspot"]

OBJECT_TYPE = {
    "email": "emails",
    "call": "calls",
    "meeting": "meetings",
    "task": "tasks",
    "note": "notes",
}
"""The HubSpot object type of each world activity kind."""

_ROLE_ORDER = ("Champion", "Decision maker", "Economic buyer")
"""Labels are defined in this order (so their typeIds are stable), any others after."""

_PRIMARY_COMPANY = 5
"""deal→company "Primary" (HUBSPOT_DEFINED); contact→company Primary is 1."""
_PRIMARY_CONTACT_COMPANY = 1


def load_into_hubspot(state: HubSpotState, world: World) -> dict[str, str]:
    """Create the world's records in `state`; return `{world id: HubSpot id}`.

    Deterministic for a given world and fresh state. Raises the emulator's `HubSpotError` if
    the state refuses a record (e.g. a pipeline id already used by the portal).
    """
    ids: dict[str, str] = {}
    with state.lock:
        _owners(state, world, ids)
        for pipeline in world.pipelines:
            state.add_pipeline(
                pipeline.id,
                pipeline.label,
                [(s.id, s.label, s.probability, s.closed) for s in pipeline.stages],
            )
        roles = {r for d in world.deals for c in d.contacts for r in c.roles}
        for role in sorted(roles, key=lambda r: ((*_ROLE_ORDER, r).index(r), r)):
            state.define_association_label("deals", "contacts", role)

        first_deal: dict[str, datetime] = {}  # company or person id -> its first deal's creation
        for deal in world.deals:
            for key in (deal.company_id, *(c.person_id for c in deal.contacts)):
                if key not in first_deal or deal.created_at < first_deal[key]:
                    first_deal[key] = deal.created_at
        companies = {}
        for company in world.companies:
            companies[company.id] = company
            ids[company.id] = state.create_object(
                "companies",
                {"name": company.name, "domain": company.domain},
                created_at=first_deal.get(company.id, world.now),
            )
        for person in world.people:
            created = first_deal.get(person.id, world.now)
            ids[person.id] = state.create_object(
                "contacts",
                _contact_properties(person, companies[person.company_id].name),
                created_at=created,
            )
            state.associate(
                "contacts",
                ids[person.id],
                "companies",
                ids[person.company_id],
                type_ids=[_PRIMARY_CONTACT_COMPANY],
                at=created,
            )
        for deal in world.deals:
            _deal(state, deal, ids)

        people = world.people_by_id()
        reps = {r.id: r for r in world.reps}
        for activity in world.activities:
            contacts = list(dict.fromkeys((*activity.participants, *activity.cc)))
            ids[activity.id] = state.log_activity(
                OBJECT_TYPE[activity.kind],
                _activity_properties(activity, people, reps, ids),
                deal_ids=[ids[d] for d in activity.deal_ids],
                contact_ids=[ids[p] for p in contacts],
                at=min(activity.at, world.now),
            )
    return ids


def _owners(state: HubSpotState, world: World, ids: dict[str, str]) -> None:
    teams = {t: str(i) for i, t in enumerate(dict.fromkeys(r.team for r in world.reps), 1) if t}
    for rep in world.reps:
        team = [{"id": teams[rep.team], "name": rep.team, "primary": True}] if rep.team else []
        ids[rep.id] = state.add_owner(rep.email, rep.first_name, rep.last_name, teams=team)


def _contact_properties(person: Person, company_name: str) -> dict[str, str]:
    props = {
        "firstname": person.first_name,
        "lastname": person.last_name,
        "email": person.email,
        "hs_language": person.language,
        "company": company_name,
    }
    if person.job_title:
        props["jobtitle"] = person.job_title
    return props


def _deal(state: HubSpotState, deal: Deal, ids: dict[str, str]) -> None:
    props: dict[str, object] = {
        "dealname": deal.name,
        "pipeline": deal.pipeline_id,
        "dealstage": deal.stage_id,
        "hubspot_owner_id": ids[deal.owner_id],
        "deal_currency_code": deal.currency,
        "dealtype": "existingbusiness" if deal.pipeline_id == "renewals" else "newbusiness",
    }
    if deal.amount is not None:
        props["amount"] = _number(deal.amount)
    if deal.close_date is not None:
        props["closedate"] = _midnight(deal.close_date)
    hid = state.create_object(
        "deals",
        props,
        created_at=deal.created_at,
        history={"dealstage": list(deal.stage_history)},
    )
    ids[deal.id] = hid
    state.associate(
        "deals",
        hid,
        "companies",
        ids[deal.company_id],
        type_ids=[_PRIMARY_COMPANY],
        at=deal.created_at,
    )
    for contact in deal.contacts:
        state.associate(
            "deals",
            hid,
            "contacts",
            ids[contact.person_id],
            labels=contact.roles,
            at=deal.created_at,
        )


def _activity_properties(
    a: Activity, people: Mapping[str, Person], reps: Mapping[str, Rep], ids: Mapping[str, str]
) -> dict[str, object]:
    props: dict[str, object] = {"hs_timestamp": a.at, "hubspot_owner_id": ids[a.rep_id]}
    done = a.status == "done"
    if a.kind == "email":
        props.update(_email(a, people, reps))
    elif a.kind == "call":
        props.update(
            hs_call_title=a.subject,
            hs_call_body=a.body,
            hs_call_direction="INBOUND" if a.direction == "inbound" else "OUTBOUND",
            hs_call_status="COMPLETED" if done else "QUEUED",
            # A few minutes, the same for the same call on every load.
            hs_call_duration=(2 + int(a.at.timestamp()) % 23) * 60_000,
        )
        if a.participants:
            props["hs_call_callee_object_id"] = ids[a.participants[0]]
            props["hs_call_callee_object_type"] = "CONTACT"
    elif a.kind == "meeting":
        props.update(
            hs_meeting_title=a.subject,
            hs_meeting_body=a.body,
            hs_meeting_start_time=a.at,
            hs_meeting_end_time=a.end or a.at,
            hs_meeting_outcome="COMPLETED" if done else "SCHEDULED",
        )
    elif a.kind == "task":
        props.update(
            hs_task_subject=a.subject,
            hs_task_body=a.body,
            hs_task_status="COMPLETED" if done else "NOT_STARTED",
            hs_task_type="TODO",
            hs_task_priority="MEDIUM",
        )
    else:
        props["hs_note_body"] = a.body
    return props


def _email(a: Activity, people: Mapping[str, Person], reps: Mapping[str, Rep]) -> dict[str, str]:
    """Sender, To and Cc as HubSpot derives them from `hs_email_headers`."""
    rep = reps[a.rep_id]
    contacts = [people[p] for p in a.participants]
    if a.direction == "inbound" and contacts:
        sender: Person | Rep = contacts[0]
        to: list[Person | Rep] = [rep, *contacts[1:]]
    elif contacts:
        sender, to = rep, list(contacts)
    else:  # between colleagues: to the rep's manager, or any other rep
        colleague = reps.get(rep.manager_id or "") or next(
            (r for r in reps.values() if r.id != rep.id), rep
        )
        sender, to = rep, [colleague]
    cc = [people[p] for p in a.cc]
    headers = {
        "from": _address(sender),
        "to": [_address(x) for x in to],
        "cc": [_address(x) for x in cc],
        "bcc": [],
    }
    props = {
        "hs_email_direction": "INCOMING_EMAIL" if a.direction == "inbound" else "EMAIL",
        "hs_email_status": "SENT",
        "hs_email_subject": a.subject,
        "hs_email_text": a.body,
        "hs_email_from_email": sender.email,
        "hs_email_from_firstname": sender.first_name,
        "hs_email_from_lastname": sender.last_name,
        "hs_email_to_email": ";".join(x.email for x in to),
        "hs_email_to_firstname": ";".join(x.first_name for x in to),
        "hs_email_to_lastname": ";".join(x.last_name for x in to),
        "hs_email_headers": json.dumps(headers, ensure_ascii=False),
    }
    if cc:
        props["hs_email_cc_email"] = ";".join(x.email for x in cc)
    return props


def _address(who: Person | Rep) -> dict[str, str]:
    return {"email": who.email, "firstName": who.first_name, "lastName": who.last_name}


def _number(amount: int | float) -> str:
    return str(amount) if isinstance(amount, int) else f"{amount:.2f}".rstrip("0").rstrip(".")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)
