"""Salesforce's records to the engine's model, from dicts shaped as the REST API answers: the
date-only values placed at noon (UTC by default, else the tenant's zone), tasks and calls, an
all-day event, drafts and Deal Radar's own tasks left out, a contact the user cannot see. And
the mapping is pure."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.marker import OWN_MARKER
from adapters.salesforce import mapping
from adapters.salesforce.adapter import _contacts
from adapters.salesforce.mapping import to_deal, to_email, to_event, to_task
from tests.adapters.imports import PURE_SHARED, imported_modules

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_a_task_logged_for_a_day_sits_at_that_days_noon_utc() -> None:
    task = {"Id": "00T1", "IsClosed": True, "ActivityDate": "2026-11-20",
            "CompletedDateTime": "2026-11-24T22:10:00.000+0000", "TaskSubtype": "Call",
            "CallType": "Inbound", "WhoId": "003A", "OwnerId": "005R"}  # fmt: skip
    call = to_task(task, deal_id="006X", contacts={"003A"})
    assert call is not None
    assert (call.kind, call.direction, call.status) == ("call", "inbound", "done")
    assert call.at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC), "the day the rep gave"
    assert call.contacts == ("003A",) and call.user == "005R"
    same_day = {**task, "ActivityDate": "2026-11-24"}
    assert to_task(same_day, deal_id="006X", contacts=set()).at == datetime(  # type: ignore[union-attr]
        2026, 11, 24, 22, 10, tzinfo=UTC
    ), "completed on its day: the instant it was"


def test_a_task_done_is_never_dated_after_it_was_completed() -> None:
    """A call due next week done today, and a Tokyo rep's call logged for her day (25 Nov)
    but completed at 23:00 UTC the day before: each counts from when it was done."""
    early = {"Id": "00T3", "IsClosed": True, "ActivityDate": "2026-12-04", "TaskSubtype": "Call",
             "CompletedDateTime": "2026-11-24T09:00:00.000+0000"}  # fmt: skip
    done = to_task(early, deal_id="006X", contacts=set())
    assert done is not None and done.at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    tokyo = {**early, "ActivityDate": "2026-11-25",
             "CompletedDateTime": "2026-11-24T23:00:00.000+0000"}  # fmt: skip
    done = to_task(tokyo, deal_id="006X", contacts=set())
    assert done is not None and done.at == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)


def test_open_tasks_are_scheduled_and_ours_and_email_tasks_are_none() -> None:
    todo = {"Id": "00T2", "IsClosed": False, "ActivityDate": "2026-12-01", "TaskSubtype": "Task"}
    task = to_task(todo, deal_id="006X", contacts=set())
    assert task is not None and (task.kind, task.status) == ("task", "scheduled")
    ours = {**todo, "Description": f"Follow up\n\n{OWN_MARKER}dr0123"}
    assert to_task(ours, deal_id="006X", contacts=set()) is None
    assert to_task({**todo, "TaskSubtype": "Email"}, deal_id="006X", contacts=set()) is None


def test_an_all_day_event_and_a_future_meeting() -> None:
    all_day = {"Id": "00U1", "IsAllDayEvent": True, "ActivityDate": "2026-11-21",
               "StartDateTime": "2026-11-21T00:00:00.000+0000"}  # fmt: skip
    invited = [{"RelationId": "003A", "Status": "Accepted"}, {"RelationId": "005R"}]
    meeting = to_event(all_day, deal_id="006X", attendees=invited, contacts={"003A"},
                       now=NOW)  # fmt: skip
    assert meeting.at == datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert (meeting.status, meeting.contacts) == ("done", ("003A",))
    later = {"Id": "00U2", "StartDateTime": "2026-12-02T09:00:00.000+0000"}
    assert to_event(later, deal_id="006X", attendees=[], contacts=set(),
                    now=NOW).status == "scheduled"  # fmt: skip


def test_date_only_activities_keep_their_day_in_the_tenants_zone() -> None:
    """An Auckland team in its summer (UTC+13): noon UTC of 10 December is already the 11th
    there. A day-only activity sits at noon of its day in the tenant's zone."""
    auckland = ZoneInfo("Pacific/Auckland")
    all_day = {"Id": "00U9", "IsAllDayEvent": True, "ActivityDate": "2026-12-10"}
    meeting = to_event(all_day, deal_id="006X", attendees=[], contacts=set(), now=NOW,
                       zone=auckland)  # fmt: skip
    assert meeting.at.astimezone(auckland).date() == date(2026, 12, 10)
    task = {"Id": "00T9", "IsClosed": True, "ActivityDate": "2026-12-10", "TaskSubtype": "Call",
            "CompletedDateTime": "2026-12-10T20:30:00.000+0000"}  # fmt: skip
    call = to_task(task, deal_id="006X", contacts=set(), zone=auckland)
    assert call is not None and call.at == datetime(2026, 12, 10, 12, tzinfo=auckland)


def test_a_contact_who_declined_a_meeting_did_not_take_part() -> None:
    """Ann, the Economic Buyer, declined (even as the event's WhoId); Bob accepted."""
    held = {"Id": "00U3", "StartDateTime": "2026-11-20T09:00:00.000+0000", "WhoId": "003A"}
    invited = [{"RelationId": "003A", "Status": "Declined"},
               {"RelationId": "003B", "Status": "Accepted"}]  # fmt: skip
    meeting = to_event(held, deal_id="006X", attendees=invited, contacts={"003A", "003B"},
                       now=NOW)  # fmt: skip
    assert meeting.contacts == ("003B",)


def test_a_draft_email_is_none() -> None:
    draft = {"Id": "02s1", "Status": "5", "MessageDate": "2026-11-20T09:00:00.000+0000"}
    assert to_email(draft, deal_id="006X", relations=[], contacts=set(), contacts_by_email={},
                    now=NOW) is None  # fmt: skip


def test_an_opportunity_and_a_contact_the_user_cannot_see() -> None:
    opp = {"Id": "006X", "Name": "Acme", "StageName": "Negotiation", "Amount": None,
           "CloseDate": "2026-12-31", "CreatedDate": "2026-10-01T09:00:00.000+0000",
           "IsClosed": True, "IsWon": False, "OwnerId": "005R",
           "OpportunityHistories": None}  # fmt: skip
    deal = to_deal(opp, instance_url="https://acme.my.salesforce.com")
    assert (deal.status, deal.amount, deal.close_date) == ("lost", None, date(2026, 12, 31))
    assert deal.stage_entered_at == deal.created_at, "no history: since its creation"
    assert deal.url == "https://acme.my.salesforce.com/lightning/r/Opportunity/006X/view"
    rows = [
        {"ContactId": "003A", "Role": "Evaluator", "IsPrimary": False,
         "Contact": {"Name": "Ann", "Email": "ann@acme.example", "Title": "CTO"}},
        {"ContactId": "003B", "Role": "Decision Maker", "IsPrimary": True, "Contact": None},
    ]  # fmt: skip
    assert [c.id for c in _contacts(rows, {})] == ["003A"]


def test_mapping_is_pure() -> None:
    """No I/O library, no clock, no environment: `now` is given."""
    tree = ast.parse(Path(mapping.__file__).read_text())
    imported = imported_modules(mapping.__file__)
    assert imported <= {"__future__", "collections", "datetime", "re", "typing", "engine",
                        *PURE_SHARED}  # fmt: skip
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "utcnow", "today", "time", "getenv", "open"}
