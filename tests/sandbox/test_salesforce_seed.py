"""A generated World loaded into the Salesforce emulator and read back through simple-salesforce
over HTTPS, as an integration would: stage history, contact roles with the org's custom role,
events with several attendees, and emails whose known recipients sit only in
EmailMessageRelation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from sandbox.salesforce import SalesforceState, ServerHandle, serve
from sandbox.salesforce_seed import load_into_salesforce
from sandbox.seed import generate
from sandbox.world import World
from tests.sandbox.conftest import https_session


@pytest.fixture(scope="module")
def world() -> World:
    from datetime import UTC, datetime

    return generate(60, 7, datetime(2026, 11, 25, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def loaded(world: World) -> Iterator[tuple[SalesforceState, dict[str, str], ServerHandle]]:
    state = SalesforceState(clock=lambda: world.now)
    ids = load_into_salesforce(state, world)
    with serve(state) as server:
        yield state, ids, server


@pytest.fixture
def sf(loaded: tuple[SalesforceState, dict[str, str], ServerHandle]) -> Salesforce:
    state, _, server = loaded
    return Salesforce(
        instance_url=server.url,
        session_id=state.issue_session().access_token,
        session=https_session(server),
    )


def test_counts_match_the_world(sf: Salesforce, world: World) -> None:
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == len(world.deals)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == len(world.people)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == len(world.companies)
    meetings = sum(len(a.deal_ids) for a in world.activities if a.kind == "meeting")
    assert sf.query("SELECT COUNT() FROM Event")["totalSize"] == meetings


def test_stage_history_and_roles_read_back(
    sf: Salesforce, world: World, loaded: tuple[SalesforceState, dict[str, str], ServerHandle]
) -> None:
    _, ids, _ = loaded
    labels = {(p.id, s.id): s.label for p in world.pipelines for s in p.stages}
    deal = max(world.deals, key=lambda d: (len(d.stage_history), len(d.contacts)))
    opp = sf.query(
        "SELECT Id, StageName, Account.Name, "
        "(SELECT StageName, CreatedDate FROM OpportunityHistories ORDER BY CreatedDate), "
        "(SELECT ContactId, Role, Contact.Title FROM OpportunityContactRoles) "
        f"FROM Opportunity WHERE Id = '{ids[deal.id]}'"
    )["records"][0]
    assert opp["StageName"] == labels[(deal.pipeline_id, deal.stage_id)]
    history = [h["StageName"] for h in opp["OpportunityHistories"]["records"]]
    assert history == [labels[(deal.pipeline_id, s)] for s, _ in deal.stage_history]
    people = world.people_by_id()
    expected = {
        (ids[c.person_id], role, people[c.person_id].job_title or None)
        for c in deal.contacts
        for role in (c.roles or (None,))
    }
    got = {
        (r["ContactId"], r["Role"] and r["Role"].lower(), r["Contact"]["Title"])
        for r in opp["OpportunityContactRoles"]["records"]
    }
    assert got == {(c, r and r.lower(), t) for c, r, t in expected}


def test_custom_role_in_the_picklist_and_on_roles(sf: Salesforce) -> None:
    described = sf.OpportunityContactRole.describe()
    values = next(f for f in described["fields"] if f["name"] == "Role")["picklistValues"]
    assert "Champion" in [v["value"] for v in values]  # the org's own, not a default role
    champions = sf.query("SELECT COUNT() FROM OpportunityContactRole WHERE Role = 'Champion'")
    assert champions["totalSize"] > 0
    assert "Decision Maker" in [v["value"] for v in values]  # "Decision maker" took this value
    assert [v["value"] for v in values].count("Decision maker") == 0


def test_an_event_with_three_attendees(
    sf: Salesforce, world: World, loaded: tuple[SalesforceState, dict[str, str], ServerHandle]
) -> None:
    _, ids, _ = loaded
    meeting = next(
        a for a in world.activities if a.kind == "meeting" and len(set(a.participants)) >= 3
    )
    event = sf.query(
        "SELECT Id, WhoId, StartDateTime, (SELECT RelationId, IsParent FROM EventRelations) "
        f"FROM Event WHERE Id = '{ids[meeting.id]}'"
    )["records"][0]
    attendees = {r["RelationId"] for r in event["EventRelations"]["records"]}
    assert attendees == {ids[p] for p in meeting.participants}
    assert len(attendees) >= 3
    assert event["WhoId"] == ids[meeting.participants[0]]


def test_an_email_whose_contact_is_only_in_its_relations(
    sf: Salesforce, world: World, loaded: tuple[SalesforceState, dict[str, str], ServerHandle]
) -> None:
    _, ids, _ = loaded
    people = world.people_by_id()
    found = 0
    for index, activity in enumerate(world.activities):
        if activity.kind != "email" or not activity.cc or index % 3:
            continue
        message = sf.query(
            "SELECT Id, ToAddress, CcAddress, "
            "(SELECT RelationId, RelationType, RelationAddress FROM EmailMessageRelations) "
            f"FROM EmailMessage WHERE Id = '{ids[activity.id]}'"
        )["records"][0]
        copied = people[activity.cc[0]]
        assert copied.email not in (message["CcAddress"] or "")
        relations = {
            (r["RelationId"], r["RelationType"])
            for r in message["EmailMessageRelations"]["records"]
        }
        assert (ids[copied.id], "CcAddress") in relations
        found += 1
    assert found > 0
