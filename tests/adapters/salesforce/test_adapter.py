"""The Salesforce adapter's pull and listing over real HTTPS against records built in the
emulated org: contact roles read through the org's own (custom) picklist values, an event with
three attendees, an email whose known contact is only in EmailMessageRelation, stage entry from
OpportunityHistory, Deal Radar's own tasks left out, deleted and 15-character ids, and the
SystemModstamp listing across batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.roles import match_labels
from adapters.salesforce.adapter import SalesforceAdapter, id18
from adapters.salesforce.client import SalesforceClient
from adapters.salesforce.provision import role_values
from sandbox.salesforce import SalesforceState, serve
from tests.adapters.salesforce.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    Clock,
    OrgTokens,
    make_adapter,
)

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
ROLES = ["Champion", "Decision Maker", "Economic Buyer"]


def _contact(org: SalesforceState, first: str, title: str = "Engineer") -> str:
    return org.insert(
        "Contact",
        {"FirstName": first, "LastName": "Doe", "Email": f"{first.lower()}@acme.example",
         "Title": title},
        at=T0,
    )  # fmt: skip


def _deal(org: SalesforceState, contacts: dict[str, str | None]) -> str:
    opp = org.insert(
        "Opportunity",
        {"Name": "Acme", "StageName": "Prospecting", "CloseDate": "2026-12-31", "Amount": 5000},
        at=T0,
    )
    for i, (contact, role) in enumerate(contacts.items()):
        values = {"OpportunityId": opp, "ContactId": contact, "Role": role, "IsPrimary": i == 0}
        org.insert("OpportunityContactRole", values, at=T0)
    return opp


def test_roles_come_through_the_orgs_own_picklist_values(
    org: SalesforceState, client: SalesforceClient, clock: Clock
) -> None:
    org.add_picklist_value("OpportunityContactRole", "Role", "Sponsor exécutif")
    org.add_picklist_value("OpportunityContactRole", "Role", "Buying committee")
    live = role_values(client)
    assert {"Sponsor exécutif", "Buying committee", "Decision Maker"} <= set(live)
    labels = match_labels(live, ROLES)
    assert labels["Decision Maker"] == "Decision Maker"
    # The admin's role_labels laid over what install matched (jobs/adapters.py does it).
    labels |= {"Sponsor exécutif": "Champion", "Buying committee": ""}
    ana, bob, cy = _contact(org, "Ana"), _contact(org, "Bob"), _contact(org, "Cy")
    opp = _deal(org, {ana: "Sponsor exécutif", bob: "decision maker", cy: "Buying committee"})
    org.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": ana,
                                          "Role": "Economic Buyer"})  # fmt: skip
    (bundle,) = make_adapter(org, client, clock, labels).pull([opp]).bundles
    roles = {c.name: c.roles for c in bundle.contacts}
    assert roles == {
        "Ana Doe": ("Champion", "Economic Buyer"),
        "Bob Doe": ("Decision Maker",),
        "Cy Doe": (),
    }
    assert [c.name for c in bundle.contacts if c.primary] == ["Ana Doe"]


def test_an_event_with_three_attendees(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    people = [_contact(org, n) for n in ("Ana", "Bob", "Cy", "Dee")]
    opp = _deal(org, dict.fromkeys(people))
    start = clock() - timedelta(days=2)
    event = org.insert("Event", {"WhatId": opp, "WhoId": people[0], "Subject": "Demo",
                                 "StartDateTime": start,
                                 "EndDateTime": start + timedelta(hours=1)})  # fmt: skip
    for who in (*people[:3], org.api_user_id):  # three contacts and a rep
        org.insert("EventRelation", {"EventId": event, "RelationId": who, "IsInvitee": True})
    (bundle,) = adapter.pull([opp]).bundles
    (meeting,) = bundle.activities
    assert meeting.kind == "meeting" and meeting.status == "done"
    assert meeting.at == start
    assert set(meeting.contacts) == set(people[:3])


def test_a_meeting_two_colleagues_were_invited_to_is_one_meeting(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    """Salesforce gives each user invited to an event a copy of it (a child Event, IsChild,
    owned by the invitee, on the same opportunity): three Event records for one meeting."""
    ana, bob = _contact(org, "Ana"), _contact(org, "Bob")
    opp = _deal(org, {ana: None, bob: None})
    olga, cal = _rep(org, "Olga"), _rep(org, "Cal")
    start = clock() + timedelta(days=3)
    event = org.insert("Event", {"WhatId": opp, "WhoId": ana, "Subject": "Demo",
                                 "StartDateTime": start,
                                 "EndDateTime": start + timedelta(hours=1)})  # fmt: skip
    for who in (ana, bob, olga, cal):
        org.insert("EventRelation", {"EventId": event, "RelationId": who, "IsInvitee": True})
    (bundle,) = adapter.pull([opp]).bundles
    (meeting,) = bundle.activities
    assert meeting.id == event and meeting.status == "scheduled"
    assert set(meeting.contacts) == {ana, bob}


def test_an_email_whose_contact_is_only_in_email_message_relation(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    ana, bob, cy = _contact(org, "Ana"), _contact(org, "Bob"), _contact(org, "Cy")
    opp = _deal(org, {ana: None, bob: None, cy: None})
    sent = clock() - timedelta(days=1)
    message = org.insert("EmailMessage", {
        "RelatedToId": opp, "Subject": "Pricing", "FromAddress": "rep@vendor.example",
        "ToAddress": "someone@else.example", "CcAddress": "cy@acme.example",
        "MessageDate": sent, "Incoming": False, "Status": "3",
    })  # fmt: skip
    # Ana and Bob are records: Salesforce keeps them in the relations, not the address fields.
    org.insert("EmailMessageRelation", {"EmailMessageId": message, "RelationId": ana,
                                        "RelationType": "ToAddress"})  # fmt: skip
    org.insert("EmailMessageRelation", {"EmailMessageId": message, "RelationId": bob,
                                        "RelationType": "CcAddress"})  # fmt: skip
    (bundle,) = adapter.pull([opp]).bundles
    (email,) = bundle.activities
    assert (email.kind, email.direction, email.status) == ("email", "outbound", "done")
    assert email.contacts == (ana,)
    assert set(email.cc) == {bob, cy}


def test_stage_entry_is_the_start_of_the_latest_run_in_opportunity_history(
    org: SalesforceState, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org, {})
    org.update("Opportunity", opp, {"StageName": "Qualification"}, at=T0 + timedelta(days=3))
    org.update("Opportunity", opp, {"Amount": 9000}, at=T0 + timedelta(days=5))
    (bundle,) = adapter.pull([opp]).bundles
    assert bundle.deal.stage == "Qualification"
    assert bundle.deal.stage_entered_at == T0 + timedelta(days=3)
    assert bundle.deal.amount == 9000


def test_deal_radars_own_tasks_are_no_activity(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    ana = _contact(org, "Ana")
    opp = _deal(org, {ana: None})
    org.insert("Task", {"WhatId": opp, "WhoId": ana, "Subject": "Call", "Status": "Completed",
                        "Priority": "Normal", "TaskSubtype": "Call", "CallType": "Outbound",
                        "ActivityDate": clock().date()})  # fmt: skip
    adapter.create_task(
        opp, owner_id=None, subject="Re-engage", body="No activity for 14 days",
        due=clock() + timedelta(days=1), key="episode-1",
    )  # fmt: skip
    (bundle,) = adapter.pull([opp]).bundles
    assert [(a.kind, a.direction, a.contacts) for a in bundle.activities] == [
        ("call", "outbound", (ana,))
    ]


def _call_with_three_contacts(org: SalesforceState, clock: Clock) -> tuple[str, list[str]]:
    """A call logged on a deal with Ana (its WhoId), Bob and Cy: with Shared Activities, the
    task relates to each of them through a TaskRelation row."""
    people = [_contact(org, n) for n in ("Ana", "Bob", "Cy")]
    opp = _deal(org, dict.fromkeys(people))
    task = org.insert("Task", {"WhatId": opp, "WhoId": people[0], "Subject": "Pricing call",
                               "Status": "Completed", "Priority": "Normal",
                               "TaskSubtype": "Call", "CallType": "Outbound",
                               "ActivityDate": clock().date()})  # fmt: skip
    if org.shared_activities:
        for who in people:
            org.insert("TaskRelation", {"TaskId": task, "RelationId": who, "IsWhat": False})
        org.insert("TaskRelation", {"TaskId": task, "RelationId": opp, "IsWhat": True})
    return opp, people


def test_a_call_with_several_contacts_counts_each_of_them(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    """Shared Activities relates a task to up to 50 contacts, only one of them its WhoId: a
    call with the champion and the economic buyer is a call with both."""
    opp, people = _call_with_three_contacts(org, clock)
    (bundle,) = adapter.pull([opp]).bundles
    (call,) = bundle.activities
    assert call.kind == "call"
    assert set(call.contacts) == set(people)


def test_an_org_without_shared_activities_is_pulled_from_the_whoid(
    client: SalesforceClient, clock: Clock
) -> None:
    """TaskRelation is no type of such an org: the pull takes the WhoId and asks once."""
    org = SalesforceState(clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                          shared_activities=False)  # fmt: skip
    with serve(org) as server:
        tokens = OrgTokens(org, server)
        client = SalesforceClient(org.org_id, tokens, ca_bundle=server.cert_path,
                                  sleep=lambda s: None)  # fmt: skip
        adapter = make_adapter(org, client, clock)
        opp, people = _call_with_three_contacts(org, clock)
        for _ in range(2):
            (bundle,) = adapter.pull([opp]).bundles
            (call,) = bundle.activities
            assert call.contacts == (people[0],)
        assert client.calls["query TaskRelation"] == 1


def _rep(org: SalesforceState, first: str) -> str:
    email = f"{first.lower()}@vendor.example"
    return org.insert(
        "User", {"Username": email, "FirstName": first, "LastName": "Rep", "Email": email}, at=T0
    )


def test_a_deal_whose_owner_left_carries_that_owner_as_inactive(
    org: SalesforceState, adapter: SalesforceAdapter, client: SalesforceClient, clock: Clock
) -> None:
    owner, caller = _rep(org, "Olga"), _rep(org, "Cal")
    ana = _contact(org, "Ana")
    opp = _deal(org, {ana: None})
    org.update("Opportunity", opp, {"OwnerId": owner}, at=T0)
    org.insert("Task", {"WhatId": opp, "WhoId": ana, "OwnerId": caller, "Subject": "Call",
                        "Status": "Completed", "Priority": "Normal", "TaskSubtype": "Call",
                        "CallType": "Outbound", "ActivityDate": clock().date()})  # fmt: skip
    (before,) = adapter.pull([opp]).bundles
    assert {u.id: u.active for u in before.users} == {owner: True, caller: True}
    # An admin deactivates Olga (Salesforce lets an admin update User.IsActive).
    client.call("deactivate", lambda sf: sf.User.update(owner, {"IsActive": False}))
    (after,) = adapter.pull([opp]).bundles
    assert after.deal.owner == owner, "the deal stays hers"
    users = {u.id: u for u in after.users}
    assert (users[owner].name, users[owner].active) == ("Olga Rep", False)
    assert users[caller].active is True


def test_users_by_id_reads_who_is_active_from_the_org(
    org: SalesforceState, adapter: SalesforceAdapter, client: SalesforceClient
) -> None:
    olga, cal = _rep(org, "Olga"), _rep(org, "Cal")
    client.call("deactivate", lambda sf: sf.User.update(olga, {"IsActive": False}))
    unknown = "005" + "0" * 15
    found = adapter.users_by_id([olga, cal[:15], unknown])
    assert {i: (u.name, u.email, u.active) for i, u in found.items()} == {
        olga: ("Olga Rep", "olga@vendor.example", False),
        cal: ("Cal Rep", "cal@vendor.example", True),
    }, "15-character ids answered as 18, an unknown id left out"


def test_deleted_and_short_ids(org: SalesforceState, adapter: SalesforceAdapter) -> None:
    kept, gone = _deal(org, {}), _deal(org, {})
    org.delete("Opportunity", gone)
    pulled = adapter.pull([kept[:15], gone])
    assert [b.deal.id for b in pulled.bundles] == [kept] == [id18(kept[:15])]
    assert pulled.deleted == [gone]


def test_listing_follows_batches_then_starts_again_from_the_cursor(
    org: SalesforceState, adapter: SalesforceAdapter, client: SalesforceClient, clock: Clock
) -> None:
    for i in range(2_300):
        org.insert("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting",
                                   "CloseDate": "2030-01-01"},
                   at=T0 + timedelta(seconds=i))  # fmt: skip
    first = adapter.changed_since(None)
    assert len(first.deal_ids) == 2_000 and first.more
    second = adapter.changed_since(first.cursor)
    assert len(second.deal_ids) == 300 and not second.more
    assert len(set(first.deal_ids) | set(second.deal_ids)) == 2_300
    assert client.calls["query Opportunity changes (more)"] == 1, "the locator was followed"
    changed = org.insert("Opportunity", {"Name": "New", "StageName": "Prospecting",
                                         "CloseDate": "2030-01-01"},
                         at=T0 + timedelta(days=1))  # fmt: skip
    again = make_adapter(org, client, clock).changed_since(second.cursor)
    # The listing before was read to its end: the next starts after it, nothing comes again.
    assert again.deal_ids == [changed] and not again.more
    # One cut short (a restart, its locator lost) starts again at its cursor's own millisecond:
    # the last one seen comes again rather than a tie being missed.
    resumed = make_adapter(org, client, clock).changed_since(first.cursor)
    assert resumed.deal_ids[0] == first.deal_ids[-1]


def test_an_id_with_a_quote_cannot_widen_a_query(
    org: SalesforceState, adapter: SalesforceAdapter
) -> None:
    """A deal id given to the API's refresh (or a fallback owner in settings) is not trusted to
    be one: a quote in it stays inside the SOQL string, so the query finds nothing instead of
    failing as malformed (or, on a longer id, reading records it was not asked for)."""
    _deal(org, {})
    pulled = adapter.pull(["x' OR Name != '"])
    assert pulled.bundles == []


def test_a_deleted_opportunity_is_listed_by_the_next_poll_and_its_pull_finds_it_gone(
    org: SalesforceState, adapter: SalesforceAdapter, clock: Clock
) -> None:
    """Salesforce sends no Outbound Message and runs no after-save Flow for a deletion: the
    poll (queryAll after the first listing) is how the deal comes to be forgotten."""
    opp = org.insert("Opportunity", {"Name": "Acme", "StageName": "Prospecting",
                                     "CloseDate": "2030-01-01"})  # fmt: skip
    first = adapter.changed_since(None)
    assert first.deal_ids == [opp]
    clock.advance(hours=1)
    org.delete("Opportunity", opp)

    later = adapter.changed_since(first.cursor)
    assert later.deal_ids == [opp]
    assert adapter.pull([opp]).deleted == [opp]


def test_activity_listings_share_a_call_then_page_apart(
    org: SalesforceState, adapter: SalesforceAdapter, client: SalesforceClient
) -> None:
    """Both first batches in one Composite request; then only the listing with batches left
    is read on, while the other keeps its cursor. A call on a contact alone names the contact,
    a deleted meeting its opportunity still."""
    opp = _deal(org, {})
    contact = org.insert("Contact", {"LastName": "Solo"})
    for i in range(2_100):
        org.insert("Task", {"WhatId": opp, "Subject": f"T{i}", "Status": "Completed",
                            "Priority": "Normal"}, at=T0 + timedelta(seconds=i))  # fmt: skip
    alone = org.insert("Task", {"WhoId": contact, "Subject": "Call", "Status": "Completed",
                                "Priority": "Normal"}, at=T0 + timedelta(hours=1))  # fmt: skip
    meeting = org.insert("Event", {"WhatId": opp, "StartDateTime": T0, "EndDateTime": T0},
                         at=T0)  # fmt: skip
    org.delete("Event", meeting)
    since = str(int(T0.timestamp() * 1000))
    client.calls.clear()
    first = adapter.activities_changed_since(dict.fromkeys(adapter.activity_objects, since))
    assert first.more and first.deal_ids == [opp] and first.contact_ids == []
    assert meeting in first.activity_ids
    assert dict(client.calls) == {"query activity changes (composite)": 1}
    second = adapter.activities_changed_since(first.cursors)
    assert not second.more and second.contact_ids == [contact] and alone in second.activity_ids
    assert second.cursors["Event"] == first.cursors["Event"]
    assert client.calls["query Task changes (more)"] == 1 and len(client.calls) == 2
    third = adapter.activities_changed_since(second.cursors)
    assert third.activity_ids == [] and not third.more, "nothing is listed again"


def test_a_contact_role_added_or_removed_lists_its_opportunity(
    org: SalesforceState, adapter: SalesforceAdapter, client: SalesforceClient, clock: Clock
) -> None:
    """A role added to a contact, or removed, is not documented to stamp the opportunity: the
    poll follows the roles themselves (queryAll: a removal stamps the role, deleted), in the
    same Composite request as the activities."""
    opp, other = _deal(org, {}), _deal(org, {})
    ana = org.insert("Contact", {"LastName": "Ana", "Title": "CFO"})
    since = str(int(T0.timestamp() * 1000))
    idle = adapter.activities_changed_since(dict.fromkeys(adapter.activity_objects, since))
    assert idle.deal_ids == []

    clock.advance(minutes=1)
    role = org.insert("OpportunityContactRole", {
        "OpportunityId": opp, "ContactId": ana, "Role": "Economic Buyer", "IsPrimary": False,
    })  # fmt: skip
    client.calls.clear()
    added = adapter.activities_changed_since(idle.cursors)
    assert added.deal_ids == [opp] and added.activity_ids == [] and added.contact_ids == []
    assert dict(client.calls) == {"query activity changes (composite)": 1}

    clock.advance(minutes=1)
    org.delete("OpportunityContactRole", role)
    removed = adapter.activities_changed_since(added.cursors)
    assert removed.deal_ids == [opp] and other not in removed.deal_ids
