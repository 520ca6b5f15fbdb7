"""The Sell account's Python API: validation as Sell refuses, derived fields, custom fields."""

from __future__ import annotations

import pytest

from sandbox.sell import SellError, SellState
from tests.sandbox.sell.support import Clock


def test_a_person_needs_a_last_name_and_an_organisation_a_name(state: SellState) -> None:
    with pytest.raises(SellError) as person:
        state.create("contacts", {"first_name": "Ann"})
    with pytest.raises(SellError) as org:
        state.create("contacts", {"is_organization": True, "last_name": "x"})
    assert (person.value.status, person.value.field) == (422, "/data/last_name")
    assert (org.value.status, org.value.field) == (422, "/data/name")
    assert state.records("contacts") == []


def test_a_stage_change_stamps_the_deal_and_the_firehose_keeps_the_old_stage(
    state: SellState, clock: Clock, pipeline: dict[str, int]
) -> None:
    rep = state.add_user("Sam Rep", "sam@example.com")
    org = state.create("contacts", {"is_organization": True, "name": "Acme"})
    person = state.create(
        "contacts", {"first_name": "Ann", "last_name": "Lee", "contact_id": org["id"]}
    )
    deal = state.create("deals", {"name": "Acme", "contact_id": person["id"], "value": "1200.50"})
    assert deal["stage_id"] == pipeline["Qualified"]  # the first stage when none is given
    assert deal["organization_id"] == org["id"]
    assert deal["value"] == 1200.5
    assert person["name"] == "Ann Lee"
    clock.advance(hours=2)
    moved = state.update("deals", deal["id"], {"stage_id": pipeline["Proposal"]}, user_id=rep)
    assert moved["last_stage_change_at"] == "2026-12-01T11:00:00Z"
    assert moved["last_stage_change_by_id"] == rep
    last = state.stream("deals", "tail", 100)["items"][-1]
    assert last["meta"]["event_type"] == "updated"
    assert last["meta"]["previous"]["stage_id"] == pipeline["Qualified"]
    assert last["meta"]["sequence"] == 2


def test_custom_field_values_are_checked_against_their_definitions(
    state: SellState, pipeline: dict[str, int]
) -> None:
    state.define_custom_field("contact", "Buying role", "list", ["Champion", "Decision maker"])
    state.define_custom_field("deal", "Deal Radar score", "number")
    ann = state.create(
        "contacts", {"last_name": "Lee", "custom_fields": {"Buying role": "Champion"}}
    )
    assert ann["custom_fields"]["Buying role"]["name"] == "Champion"
    with pytest.raises(SellError) as wrong_option:
        state.update("contacts", ann["id"], {"custom_fields": {"Buying role": "Influencer"}})
    assert "Champion, Decision maker" in wrong_option.value.message
    deal = state.create("deals", {"name": "D", "custom_fields": {"Deal Radar score": 42}})
    assert deal["custom_fields"] == {"Deal Radar score": "42"}  # numbers travel as strings
    with pytest.raises(SellError) as unknown:
        state.update("deals", deal["id"], {"custom_fields": {"Nope": "x"}})
    assert (unknown.value.status, unknown.value.code) == (422, "invalid")
    cleared = state.update("deals", deal["id"], {"custom_fields": {"Deal Radar score": None}})
    assert cleared["custom_fields"] == {}
    with pytest.raises(ValueError, match="unknown custom field type"):
        state.define_custom_field("deal", "Bad", "colour")


def test_deleting_a_deal_removes_its_associated_contacts(state: SellState) -> None:
    ann = state.create("contacts", {"last_name": "Lee"})
    with pytest.raises(SellError, match="no pipeline stage"):
        state.create("deals", {"name": "D"})
    sales = state.add_pipeline("Sales")
    state.add_stage(sales, "New", category="incoming", likelihood=10, position=1)
    deal = state.create("deals", {"name": "D"})
    state.associate(deal["id"], ann["id"])
    with pytest.raises(SellError) as role:
        state.associate(deal["id"], ann["id"], role="champion")
    assert role.value.field == "/data/role"
    assert [a["role"] for a in state.associated_contacts(deal["id"])] == ["involved"]
    state.delete("deals", deal["id"])
    with pytest.raises(SellError) as gone:
        state.associated_contacts(deal["id"])
    assert gone.value.status == 404
    assert state.stream("deals", "tail", 10)["items"][-1]["meta"]["event_type"] == "deleted"


def test_an_activity_on_a_deal_moves_its_last_activity(state: SellState, clock: Clock) -> None:
    sales = state.add_pipeline("Sales")
    state.add_stage(sales, "New", category="incoming", likelihood=10, position=1)
    deal = state.create("deals", {"name": "D"})
    clock.advance(days=1)
    state.create("notes", {"content": "hi", "resource_type": "deal", "resource_id": deal["id"]})
    assert state.get("deals", deal["id"])["last_activity_at"] == "2026-12-02T09:00:00Z"
    with pytest.raises(SellError) as missing:
        state.create("notes", {"content": "x", "resource_type": "deal", "resource_id": 1})
    assert missing.value.field == "/data/resource_id"
