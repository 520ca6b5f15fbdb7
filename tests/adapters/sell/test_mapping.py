"""Sell records to the canonical model: stages, amounts, stage entry, roles, activities."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.sell.mapping import (
    MappingError,
    Stages,
    core_shape,
    deal_links,
    roles_of,
    to_activity,
    to_contact,
    to_deal,
    to_user,
)

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
STAGES = Stages.from_records([
    {"id": 11, "pipeline_id": 1, "name": "Qualified", "category": "incoming"},
    {"id": 12, "pipeline_id": 1, "name": "Won", "category": "won"},
    {"id": 13, "pipeline_id": 1, "name": "Lost", "category": "lost"},
    {"id": 14, "pipeline_id": 1, "name": "Unqualified", "category": "unqualified"},
])  # fmt: skip
ROLES = ["Champion", "Decision Maker", "Economic Buyer"]


def _deal(**over: object) -> dict:
    return {"id": 5, "name": "Acme", "stage_id": 11, "value": 1200, "currency": "EUR",
            "owner_id": 3, "estimated_close_date": "2026-12-31", "created_at":
            "2026-10-01T08:00:00Z", "added_at": "2026-10-01T08:00:00Z",
            "last_stage_change_at": "2026-11-01T08:00:00Z", **over}  # fmt: skip


def test_a_deal_maps_with_its_stage_status_and_pipeline() -> None:
    deal = to_deal(_deal(), stages=STAGES)
    assert (deal.id, deal.pipeline, deal.stage, deal.status) == ("5", "1", "11", "open")
    assert deal.stage_name == "Qualified", "what reps read in Sell, for the alert's message"
    assert (deal.amount, deal.currency, deal.close_date) == (1200, "EUR", date(2026, 12, 31))
    assert deal.stage_entered_at == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert deal.url.endswith("/sales/deals/5")
    assert to_deal(_deal(stage_id=12), stages=STAGES).status == "won"
    assert to_deal(_deal(stage_id=13), stages=STAGES).status == "lost"
    assert to_deal(_deal(stage_id=14), stages=STAGES).status == "lost"


def test_sells_zero_value_is_an_empty_amount_and_the_feeds_shape_reads_the_same() -> None:
    assert to_deal(_deal(value=0), stages=STAGES).amount is None
    feed = core_shape("deals", {**_deal(value="10.25"), "custom_field_values": [
        {"id": 1, "name": "Tier", "value": "Gold"}, {"id": 2, "name": "Empty", "value": None}]})
    assert feed["value"] == 10.25 and feed["custom_fields"] == {"Tier": "Gold"}
    assert "custom_field_values" not in feed


def test_the_stage_entry_takes_the_later_of_the_field_and_the_feeds_observation() -> None:
    later = datetime(2026, 11, 20, tzinfo=UTC)
    assert to_deal(_deal(), stages=STAGES, observed_stage=("11", later)).stage_entered_at == later
    earlier = datetime(2026, 10, 20, tzinfo=UTC)
    assert to_deal(_deal(), stages=STAGES, observed_stage=("11", earlier)).stage_entered_at == (
        datetime(2026, 11, 1, 8, tzinfo=UTC)
    )
    other = to_deal(_deal(), stages=STAGES, observed_stage=("12", later))
    assert other.stage_entered_at == datetime(2026, 11, 1, 8, tzinfo=UTC), "another stage's"
    none = to_deal(_deal(last_stage_change_at=None), stages=STAGES)
    assert none.stage_entered_at == none.created_at


def test_a_deal_without_a_known_stage_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="stage 99"):
        to_deal(_deal(stage_id=99), stages=STAGES)


@pytest.mark.parametrize(
    ("contact", "settings", "roles"),
    [
        ({"custom_fields": {"Buying role": {"id": 1, "name": "Champion"}}}, {}, ("Champion",)),
        ({"custom_fields": {"Buying role": [{"id": 1, "name": "decision maker"},
                                            {"id": 2, "name": "Champion"}]}}, {},
         ("Champion", "Decision Maker")),
        ({"custom_fields": {"Buying role": "Champion, Economic buyer"}}, {},
         ("Champion", "Economic Buyer")),
        ({"custom_fields": {"Role": "Champion"}}, {}, ()),
        ({"custom_fields": {"Role": "Champion"}}, {"role_field": "Role"}, ("Champion",)),
        ({"tags": ["vip", "role:Sponsor"]}, {"tag_prefix": "role:"}, ("Sponsor",)),
        ({"tags": ["vip", "champion"]}, {"tag_prefix": ""}, ("Champion",)),
        ({"tags": ["champion"]}, {}, ()),
        ({"custom_fields": {"Buying role": "Sponsor"}}, {"role_labels": {"Sponsor": "Champion"}},
         ("Champion",)),
        ({"custom_fields": {"Buying role": "Billing"}}, {"role_labels": {"Billing": ""}}, ()),
    ],
)  # fmt: skip
def test_roles_come_from_the_named_field_and_tags(
    contact: dict, settings: dict, roles: tuple[str, ...]
) -> None:
    found = roles_of(
        contact, role_field=settings.get("role_field", "Buying role"),
        tag_prefix=settings.get("tag_prefix"), roles=ROLES,
        role_labels=settings.get("role_labels"),
    )  # fmt: skip
    assert found == roles


def test_a_contact_maps_with_its_name_title_and_primary_flag() -> None:
    c = to_contact({"id": 8, "first_name": "Ann", "last_name": "Lee", "title": "CFO",
                    "email": "ann@x.example"}, roles=("Champion",), primary=True)  # fmt: skip
    assert (c.id, c.name, c.title, c.roles, c.primary) == ("8", "Ann Lee", "CFO",
                                                           ("Champion",), True)  # fmt: skip


def test_calls_visits_tasks_and_notes() -> None:
    call = to_activity("calls", {"id": 1, "incoming": True, "made_at": "2026-11-30T10:00:00Z",
                                 "resource_type": "contact", "resource_id": 8, "user_id": 3,
                                 "associated_deal_ids": [5, 6]}, deal_contacts=["8"], now=NOW)
    assert call is not None
    assert (call.kind, call.direction, call.status, call.contacts, call.user, call.deals) == (
        "call", "inbound", "done", ("8",), "3", ("5", "6"))
    stranger = to_activity("calls", {"id": 1, "made_at": "2026-11-30T10:00:00Z",
                                     "resource_type": "contact", "resource_id": 9},
                           deal_contacts=["8"], now=NOW)  # fmt: skip
    assert stranger is not None and stranger.contacts == () and stranger.direction == "outbound"
    assert to_activity("calls", {"id": 1, "missed": True, "made_at": "2026-11-30T10:00:00Z"},
                       deal_contacts=[], now=NOW) is None  # fmt: skip
    visit = to_activity("visits", {"id": 2, "visited_at": "2026-12-05T10:00:00Z",
                                   "resource_type": "deal", "resource_id": 5},
                        deal_contacts=[], now=NOW)  # fmt: skip
    assert visit is not None and (visit.kind, visit.status, visit.deals) == (
        "meeting", "scheduled", ("5",))
    task = to_activity("tasks", {"id": 3, "due_date": "2026-12-02T00:00:00Z", "completed": True,
                                 "owner_id": 3, "resource_type": "deal", "resource_id": 5},
                       deal_contacts=[], now=NOW)  # fmt: skip
    assert task is not None and (task.kind, task.status, task.direction) == (
        "task", "done", "internal")
    note = to_activity("notes", {"id": 4, "created_at": "2026-11-01T00:00:00Z", "content": "hi",
                                 "resource_type": "deal", "resource_id": 5},
                       deal_contacts=[], now=NOW)  # fmt: skip
    assert note is not None and note.status == "done"
    ours = to_activity("notes", {"id": 4, "created_at": "2026-11-01T00:00:00Z",
                                 "content": "x\\n\\nDeal Radar ref: drabc"},
                       deal_contacts=[], now=NOW)  # fmt: skip
    assert ours is None, "Deal Radar's own notes are no activity"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Finished on 25 November, due 2 December: the work was done on the 25th.
        ({"due_date": "2026-12-02T00:00:00Z", "completed_at": "2026-11-25T15:00:00Z"},
         datetime(2026, 11, 25, 15, tzinfo=UTC)),
        # Finished late: it counts on its due date, as a task done on time would.
        ({"due_date": "2026-11-20T00:00:00Z", "completed_at": "2026-11-25T15:00:00Z"},
         datetime(2026, 11, 20, tzinfo=UTC)),
        # No due date: the completion, not the creation weeks before.
        ({"created_at": "2026-10-01T08:00:00Z", "completed_at": "2026-11-25T15:00:00Z"},
         datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ({"due_date": "2026-12-02T00:00:00Z"}, datetime(2026, 12, 2, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_a_completed_task_is_dated_no_later_than_its_completion(
    fields: dict[str, str], expected: datetime
) -> None:
    record = {"id": 3, "completed": True, "owner_id": 3, "resource_type": "deal",
              "resource_id": 5, **fields}  # fmt: skip
    task = to_activity("tasks", record, deal_contacts=[], now=NOW)
    assert task is not None and (task.status, task.at) == ("done", expected)


def test_an_open_tasks_stale_completion_date_is_ignored() -> None:
    record = {"id": 3, "completed": False, "completed_at": "2026-11-25T15:00:00Z",
              "due_date": "2026-12-02T00:00:00Z", "resource_type": "deal", "resource_id": 5}
    task = to_activity("tasks", record, deal_contacts=[], now=NOW)
    assert task is not None and (task.status, task.at) == (
        "scheduled", datetime(2026, 12, 2, tzinfo=UTC))


def test_deal_links_follow_each_resources_rule() -> None:
    assert deal_links("calls", {"associated_deal_ids": [5], "resource_type": "deal",
                                "resource_id": 9}) == ["5"]  # fmt: skip
    assert deal_links("notes", {"resource_type": "deal", "resource_id": 9}) == ["9"]
    assert deal_links("tasks", {"resource_type": "contact", "resource_id": 9}) == []


@pytest.mark.parametrize(
    ("status", "active"),
    [("inactive", False), ("INACTIVE", False), ("active", True), (None, True), ("invited", True)],
)
def test_only_sells_inactive_status_makes_a_user_inactive(status: object, active: bool) -> None:
    record = {"id": 7, "name": "Sam Reed", "email": "sam@example.com", "status": status}
    user = to_user(record)
    assert (user.id, user.name, user.email) == ("7", "Sam Reed", "sam@example.com")
    assert user.active is active
