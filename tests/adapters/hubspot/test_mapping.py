"""HubSpot's objects to the canonical model: one test per fixture (HubSpot-shaped JSON with the
expected result beside it), the edges the fixtures do not show, and the objects the emulator
serves over real HTTP, read raw and through hubspot-api-client, mapped into a bundle the engine
loads."""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from hubspot import HubSpot

import adapters.hubspot.mapping as mapping_module
from adapters.hubspot.mapping import (
    MappingError,
    Pipelines,
    Stage,
    roles_from_associations,
    to_activity,
    to_contact,
    to_deal,
    to_user,
)
from engine.model import Bundle, dump_bundle, load_bundle
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from tests.adapters.imports import imported_modules

FIXTURES = Path(__file__).parent / "fixtures" / "mapping"
OBJECTS = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _plain(value: Any) -> Any:
    """A mapped record as the fixtures' expectations write it (JSON types, ISO dates)."""
    if dataclasses.is_dataclass(value):
        fields = {f.name for f in dataclasses.fields(value) if f.compare and f.init}
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items() if k in fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# -- one test per fixture ---------------------------------------------------------------------


def _deal(obj: dict, expected: dict) -> Any:
    args = expected["args"]
    pipelines = Pipelines.from_json(_load(args["pipelines"]))
    return to_deal(obj, pipelines=pipelines, portal_id=args["portal_id"])


def _contact(obj: dict, expected: dict) -> Any:
    return to_contact(obj, **expected["args"])


def _activity(obj: dict, expected: dict) -> Any:
    args = dict(expected["args"])
    kind = args.pop("kind")
    args["now"] = datetime.fromisoformat(args["now"])
    return to_activity(kind, obj, **args)


def _owner(obj: dict, expected: dict) -> Any:
    return to_user(obj)


RUNNERS: dict[str, Callable[[dict, dict], Any]] = {
    "deal": _deal,
    "contact": _contact,
    "call": _activity,
    "email": _activity,
    "meeting": _activity,
    "task": _activity,
    "note": _activity,
    "owner": _owner,
}


def _check_pipelines(obj: dict, expected: dict) -> None:
    pipelines = Pipelines.from_json(obj)
    assert [s.id for s in pipelines.stages] == expected["order"]
    for stage_id, answer in expected["stages"].items():
        assert pipelines.label(stage_id, answer["pipeline"]) == answer["label"]
        assert pipelines.label(stage_id) == answer["label"]
        assert pipelines.is_closed(stage_id, answer["pipeline"]) is answer["closed"]
        assert pipelines.is_won(stage_id, answer["pipeline"]) is answer["won"]
        assert pipelines.is_lost(stage_id, answer["pipeline"]) is answer["lost"]


def _check_associations(obj: dict, expected: dict) -> None:
    (result,) = obj["results"]
    roles = {
        str(to["toObjectId"]): list(
            roles_from_associations(to["associationTypes"], expected["args"]["label_roles"])
        )
        for to in result["to"]
    }
    assert roles == expected["roles"]


CHECKS: dict[str, Callable[[dict, dict], None]] = {
    "pipelines": _check_pipelines,
    "associations": _check_associations,
}


@pytest.mark.parametrize("fixture", OBJECTS, ids=[p.stem for p in OBJECTS])
def test_fixture(fixture: Path) -> None:
    obj = json.loads(fixture.read_text())
    expected = json.loads(fixture.with_name(f"{fixture.stem}.expected.json").read_text())
    kind = fixture.stem.split("__")[0]
    if kind in CHECKS:
        CHECKS[kind](obj, expected)
        return
    run = RUNNERS[kind]
    if "error" in expected:
        with pytest.raises(MappingError) as failure:
            run(obj, expected)
        assert str(failure.value) == expected["error"]
    else:
        assert _plain(run(obj, expected)) == expected["result"]


def test_every_object_kind_has_fixtures() -> None:
    kinds = {p.stem.split("__")[0] for p in OBJECTS}
    assert kinds == set(RUNNERS) | set(CHECKS)


# -- pipelines ---------------------------------------------------------------------------------


def _pipeline(pid: str, *stages: tuple[str, str, str, str]) -> dict:
    return {
        "id": pid,
        "label": pid.title(),
        "stages": [
            {
                "id": sid,
                "label": label,
                "displayOrder": i,
                "metadata": {"probability": probability, "isClosed": closed},
            }
            for i, (sid, label, probability, closed) in enumerate(stages)
        ],
    }


def test_a_stage_id_in_two_pipelines_needs_its_pipeline() -> None:
    pipelines = Pipelines.from_json(
        [
            _pipeline("sales", ("won", "Won", "1.0", "true"), ("open", "Open", "0.5", "false")),
            _pipeline("renewals", ("won", "Renewed", "0.9", "true")),
        ]
    )
    assert pipelines.label("won") is None  # ambiguous without the pipeline
    assert pipelines.is_won("won", "sales") is True
    assert pipelines.is_lost("won", "renewals") is True  # closed below probability 1.0
    assert pipelines.label("open") == "Open"  # unique: found without its pipeline
    assert pipelines.stage("open", "no-such-pipeline") == Stage("open", "Open", "sales", False, 0.5)
    assert pipelines.stage("nowhere") is None
    assert pipelines.is_closed("nowhere") is False


def test_pipelines_are_frozen_and_hashable() -> None:
    pipelines = Pipelines.from_json({"results": [_pipeline("p", ("s", "S", "0.1", "false"))]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        pipelines.stages = ()  # type: ignore[misc]
    assert hash(pipelines) == hash(Pipelines.from_json([_pipeline("p", ("s", "S", "0.1", "f"))]))


# -- deals: the edges ----------------------------------------------------------------------------


PIPELINES = Pipelines.from_json(_load("pipelines__two.json"))


def _deal_obj(**props: Any) -> dict:
    base = {
        "dealstage": "qualifiedtobuy",
        "pipeline": "default",
        "createdate": "2026-01-05T09:15:00.000Z",
    }
    return {"id": "77", "properties": base | props, "archived": False}


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        ("1000", 1000.0),
        ("99.95", 99.95),
        (" 12 ", 12.0),
        ("", None),
        (None, None),
        ("n/a", None),
        ("1,000", None),
        ("NaN", None),
        ("inf", None),
        (250, 250.0),
    ],
)
def test_amount(raw: Any, amount: float | None) -> None:
    assert to_deal(_deal_obj(amount=raw), pipelines=PIPELINES, portal_id=1).amount == amount


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2026-06-30T23:59:59.999Z", date(2026, 6, 30)),
        ("2026-07-01T00:30:00+02:00", date(2026, 6, 30)),  # its UTC date
        ("1782864000000", date(2026, 7, 1)),  # epoch ms, as older data and writes use
        ("2026-07-01", date(2026, 7, 1)),
        ("", None),
        ("soon", None),
    ],
)
def test_close_date_is_the_utc_date(raw: str, day: date | None) -> None:
    deal = to_deal(_deal_obj(closedate=raw), pipelines=PIPELINES, portal_id=1)
    assert deal.close_date == day


@pytest.mark.parametrize(
    ("zone", "day"), [("Europe/Paris", date(2026, 5, 1)), ("America/New_York", date(2026, 4, 30))]
)
def test_close_date_is_the_day_the_tenants_reps_see(zone: str, day: date) -> None:
    """HubSpot shows a datetime in its user's zone: a close date a Paris rep picked as 1 May is
    stored as 30 April 22:00 UTC, and must not pass a day early."""
    obj = _deal_obj(closedate="2026-04-30T22:00:00.000Z")
    deal = to_deal(obj, pipelines=PIPELINES, portal_id=1, zone=ZoneInfo(zone))
    assert deal.close_date == day


def test_the_stage_property_wins_over_history() -> None:
    obj = _deal_obj(hs_date_entered_qualifiedtobuy="2026-02-01T00:00:00.000Z")
    obj["propertiesWithHistory"] = {
        "dealstage": [{"value": "qualifiedtobuy", "timestamp": "2026-01-20T00:00:00.000Z"}]
    }
    deal = to_deal(obj, pipelines=PIPELINES, portal_id=1)
    assert deal.stage_entered_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_the_v2_stage_property_is_read_too() -> None:
    obj = _deal_obj(hs_v2_date_entered_qualifiedtobuy="1767600000000")
    deal = to_deal(obj, pipelines=PIPELINES, portal_id=1)
    assert deal.stage_entered_at == datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_history_in_any_order_and_a_stale_newest_entry() -> None:
    """The current run is found by time, not list position; history whose newest entry is not
    the current stage (a read between two writes) still gives the latest run of it."""
    obj = _deal_obj()
    obj["properties_with_history"] = {  # the SDK's to_dict() spelling, datetimes as objects
        "dealstage": [
            {"value": "qualifiedtobuy", "timestamp": datetime(2026, 1, 10, tzinfo=UTC)},
            {"value": "contractsent", "timestamp": datetime(2026, 2, 10, tzinfo=UTC)},
            {"value": "qualifiedtobuy", "timestamp": datetime(2026, 1, 20, tzinfo=UTC)},
            {"value": "appointmentscheduled", "timestamp": datetime(2026, 1, 5, tzinfo=UTC)},
        ]
    }
    deal = to_deal(obj, pipelines=PIPELINES, portal_id=1)
    assert deal.stage_entered_at == datetime(2026, 1, 10, tzinfo=UTC)


def test_no_createdate_falls_back_to_created_at_then_fails() -> None:
    obj = _deal_obj(createdate=None)
    obj["createdAt"] = "2026-01-04T08:00:00.000Z"
    deal = to_deal(obj, pipelines=PIPELINES, portal_id=1)
    assert deal.created_at == deal.stage_entered_at == datetime(2026, 1, 4, 8, tzinfo=UTC)
    del obj["createdAt"]
    with pytest.raises(MappingError, match=r"^HubSpot deal 77: property 'createdate' is missing$"):
        to_deal(obj, pipelines=PIPELINES, portal_id=1)


def test_a_missing_pipeline_is_taken_from_the_stage_or_refused() -> None:
    deal = to_deal(_deal_obj(pipeline=None, dealstage="812348"), pipelines=PIPELINES, portal_id=1)
    assert (deal.pipeline, deal.status) == ("812345", "won")
    with pytest.raises(MappingError, match=r"HubSpot deal 77: property 'pipeline' is missing"):
        to_deal(_deal_obj(pipeline=None, dealstage="999"), pipelines=PIPELINES, portal_id=1)


def test_eu_portals_link_to_their_own_host() -> None:
    deal = to_deal(
        _deal_obj(), pipelines=PIPELINES, portal_id="139000", app_host="app-eu1.hubspot.com"
    )
    assert deal.url == "https://app-eu1.hubspot.com/contacts/139000/record/0-3/77"


# -- roles ---------------------------------------------------------------------------------------


def test_roles_are_stable_whatever_order_hubspot_lists_the_labels_in() -> None:
    types = [
        {"category": "USER_DEFINED", "typeId": 9, "label": "Budget holder"},
        {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None},
        {"category": "USER_DEFINED", "typeId": 11, "label": "Champion"},
        {"category": "USER_DEFINED", "typeId": 13, "label": ""},
    ]
    label_roles = {"Budget holder": "Economic Buyer"}
    assert roles_from_associations(types, label_roles) == ("Champion", "Economic Buyer")
    assert roles_from_associations(types[::-1], label_roles) == ("Champion", "Economic Buyer")


def test_two_labels_for_one_role_give_it_once() -> None:
    types = [
        {"category": "USER_DEFINED", "typeId": 9, "label": "Decision maker"},
        {"category": "USER_DEFINED", "typeId": 11, "label": "Approver"},
    ]
    label_roles = {"Approver": "Decision Maker"}
    assert roles_from_associations(types, label_roles) == ("Decision Maker",)


def test_only_unlabelled_types_give_no_role() -> None:
    types = [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
    assert roles_from_associations(types, {"Champion": "Champion"}) == ()


# -- activities: the edges -----------------------------------------------------------------------


def _call(**props: Any) -> dict:
    return {"id": "5", "properties": {"hs_timestamp": "2026-03-01T10:00:00.000Z"} | props}


def _map(kind: str, obj: dict, **overrides: Any):
    args: dict[str, Any] = {
        "contacts_by_email": {},
        "associated_contacts": ["c1"],
        "deal_ids": ["d1"],
        "now": NOW,
    }
    return to_activity(kind, obj, **(args | overrides))


@pytest.mark.parametrize("kind", ["call", "calls", "CALLS", "0-48"])
def test_kind_names_hubspot_uses(kind: str) -> None:
    activity = _map(kind, _call(hs_call_status="COMPLETED"))
    assert activity is not None
    assert activity.kind == "call"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(MappingError, match="'tickets' is not one of calls"):
        _map("tickets", _call())


@pytest.mark.parametrize(
    ("status", "voicemail", "expected"),
    [
        ("COMPLETED", None, "done"),
        ("IN_PROGRESS", None, "done"),
        ("QUEUED", None, None),  # still pending at a past time: not connected (yet)
        ("RINGING", None, None),
        (None, None, "done"),  # logged by hand without a status
        ("BUSY", None, None),
        ("FAILED", None, None),
        ("CANCELED", None, None),
        ("missed", "false", None),  # the calls guide writes this one in lower case
        ("missed", "true", "done"),
    ],
)
def test_call_status(status: str | None, voicemail: str | None, expected: str | None) -> None:
    activity = _map("call", _call(hs_call_status=status, hs_call_has_voicemail=voicemail))
    assert (activity.status if activity else None) == expected


@pytest.mark.parametrize(
    ("kind", "props", "expected"),
    [
        ("call", {"hs_call_status": "COMPLETED"}, "done"),
        ("call", {"hs_call_status": "IN_PROGRESS"}, "done"),
        ("call", {}, "scheduled"),  # no status: a call planned by hand
        ("call", {"hs_call_status": "QUEUED"}, "scheduled"),
        ("email", {"hs_email_status": "SENT"}, "done"),
        ("email", {"hs_email_status": "SCHEDULED"}, "scheduled"),
        ("email", {}, "done"),  # logged by hand: only SCHEDULED plans an email
        ("email", {"hs_email_status": "SOMETHING_NEW"}, "scheduled"),
    ],
)
def test_work_logged_as_held_ahead_of_the_clock_is_done(
    kind: str, props: dict[str, str], expected: str
) -> None:
    """A call logged COMPLETED (an email SENT) with a time still to come, a typo or a time
    zone away: read as planned, the snapshot would keep it planned and never count it."""
    ahead = _call(hs_timestamp="2026-03-01T10:00:00.000Z", **props)
    activity = _map(kind, ahead, now=datetime(2026, 3, 1, 9, tzinfo=UTC))
    assert activity is not None
    assert activity.status == expected


def test_a_call_without_direction_is_the_reps() -> None:
    activity = _map("call", _call())
    assert activity is not None
    assert activity.direction == "outbound"


def test_epoch_milliseconds_and_a_naive_now() -> None:
    activity = _map("call", _call(hs_timestamp="1772359200000"), now=datetime(2026, 3, 1, 9))
    assert activity is not None
    assert activity.at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert activity.ts == activity.at.timestamp()
    assert activity.status == "scheduled"  # 10:00 UTC is after a naive 09:00, read as UTC


def test_an_unreadable_timestamp_names_the_activity() -> None:
    with pytest.raises(MappingError, match=r"HubSpot call 5: property 'hs_timestamp' is not a"):
        _map("calls", _call(hs_timestamp="tomorrow-ish"))


def test_archived_activities_are_left_out() -> None:
    obj = _call(hs_call_status="COMPLETED") | {"archived": True}
    assert _map("call", obj) is None


def test_meeting_outcome_words_as_the_guide_writes_them() -> None:
    meeting = {
        "id": "6",
        "properties": {
            "hs_meeting_start_time": "2026-03-02T10:00:00Z",
            "hs_meeting_outcome": "no show",
        },
    }
    assert _map("meeting", meeting) is None
    meeting["properties"]["hs_meeting_outcome"] = "COMPLETED"
    done = _map("meeting", meeting)
    assert done is not None
    assert done.status == "done"


def test_a_meeting_without_start_time_uses_hs_timestamp() -> None:
    meeting = {"id": "6", "properties": {"hs_timestamp": "2026-03-20T10:00:00Z"}}
    activity = _map("meeting", meeting)
    assert activity is not None
    assert (activity.at, activity.status) == (datetime(2026, 3, 20, 10, tzinfo=UTC), "scheduled")


def _email(**props: Any) -> dict:
    return {"id": "8", "properties": {"hs_timestamp": "2026-03-01T10:00:00Z"} | props}


BY_EMAIL = {"Ann@Acme.example": "ann", "bob@acme.example": "bob"}


def test_email_direction_unknown_is_read_from_the_sender() -> None:
    reply = _map(
        "email",
        _email(hs_email_from_email="ann@acme.example"),
        contacts_by_email=BY_EMAIL,
        associated_contacts=[],
    )
    sent = _map(
        "email",
        _email(hs_email_to_email="ann@acme.example"),
        contacts_by_email=BY_EMAIL,
        associated_contacts=[],
    )
    assert reply is not None
    assert sent is not None
    assert (reply.direction, reply.contacts) == ("inbound", ("ann",))
    assert (sent.direction, sent.contacts) == ("outbound", ("ann",))


@pytest.mark.parametrize(
    "to",
    [
        "ann@acme.example, bob@acme.example",
        "ann@acme.example;bob@acme.example",
        'Ann <ann@acme.example>; "Bob B." <BOB@acme.example>',
        '"Lee, Ann" <ann@acme.example>,bob@acme.example',
    ],
)
def test_recipient_lists_in_any_separator(to: str) -> None:
    activity = _map(
        "email", _email(hs_email_to_email=to), contacts_by_email=BY_EMAIL, associated_contacts=[]
    )
    assert activity is not None
    assert activity.contacts == ("ann", "bob")


def test_a_task_done_before_its_due_date_counts_from_its_completion() -> None:
    task = {"id": "9", "properties": {
        "hs_timestamp": "2026-03-20T10:00:00Z", "hs_task_status": "COMPLETED",
        "hs_task_completion_date": "2026-03-02T15:00:00Z",
    }}  # fmt: skip
    activity = _map("task", task)
    assert activity is not None
    assert (activity.status, activity.at) == ("done", datetime(2026, 3, 2, 15, tzinfo=UTC))
    late = {**task["properties"], "hs_task_completion_date": "2026-03-25T09:00:00Z"}
    activity = _map("task", {"id": "10", "properties": late})
    assert activity is not None
    assert activity.at == datetime(2026, 3, 20, 10, tzinfo=UTC), "its due date, as before"


def test_an_apostrophe_in_an_address_keeps_a_copied_contact_copied() -> None:
    """Pat O'Brien on Cc: read as `brien@`, Pat would not be found on Cc, and would count as a
    direct participant (closing a powermap gap Pat never took part in)."""
    by_email = {"ann@acme.example": "ann", "pat.o'brien@acme.example": "pat"}
    obj = _email(hs_email_to_email="ann@acme.example",
                 hs_email_cc_email="'Pat O'Brien' <Pat.O'Brien@acme.example>")  # fmt: skip
    activity = _map("email", obj, contacts_by_email=by_email, associated_contacts=["ann", "pat"])
    assert activity is not None
    assert (activity.contacts, activity.cc) == (("ann",), ("pat",))


def test_unreadable_headers_are_ignored() -> None:
    obj = _email(hs_email_headers="{not json", hs_email_cc_email="bob@acme.example")
    activity = _map("email", obj, contacts_by_email=BY_EMAIL, associated_contacts=["ann", "bob"])
    assert activity is not None
    assert (activity.contacts, activity.cc) == (("ann",), ("bob",))


def test_an_email_between_colleagues_has_no_contacts() -> None:
    obj = _email(hs_email_from_email="sarah@seller.example", hs_email_to_email="jo@seller.example")
    activity = _map("email", obj, contacts_by_email=BY_EMAIL, associated_contacts=[])
    assert activity is not None
    assert (activity.contacts, activity.cc, activity.direction) == ((), (), "outbound")


def test_deal_ids_and_owner() -> None:
    activity = _map(
        "note",
        {
            "id": "9",
            "properties": {"hs_timestamp": "2026-03-01T10:00:00Z", "hubspot_owner_id": "10001"},
        },
        deal_ids=["d1", "d2", "d1"],
    )
    assert activity is not None
    assert (activity.deals, activity.user) == (("d1", "d2"), "10001")


def test_owners_from_the_sdk_to_dict() -> None:
    owner = {
        "id": "12",
        "first_name": "Léa",
        "last_name": "Roux",
        "email": "lea@seller.example",
        "user_id": 55,
    }
    assert _plain(to_user(owner)) == {
        "id": "12", "name": "Léa Roux", "email": "lea@seller.example", "active": True
    }  # fmt: skip
    with pytest.raises(MappingError, match="HubSpot owner: field 'id' is missing"):
        to_user({"email": "x@seller.example"})


@pytest.mark.parametrize(
    ("archived_field", "from_archived_listing", "active"),
    [(False, False, True), (None, False, True), (True, False, False), (None, True, False),
     (False, True, False)],
)  # fmt: skip
def test_an_archived_owner_is_an_inactive_user(
    archived_field: bool | None, from_archived_listing: bool, active: bool
) -> None:
    """Either sign is enough: the owner's own `archived` field, or coming from the
    `archived=true` listing (which lists archived owners only, whatever the field says)."""
    owner: dict[str, Any] = {"id": "12", "email": "lea@seller.example"}
    if archived_field is not None:
        owner["archived"] = archived_field
    assert to_user(owner, archived=from_archived_listing).active is active


# -- purity --------------------------------------------------------------------------------------


def test_mapping_is_pure() -> None:
    """No I/O library, no clock, no environment, nothing of the application: `now` is given."""
    tree = ast.parse(Path(mapping_module.__file__).read_text())
    imported = imported_modules(mapping_module.__file__)
    allowed = (
        "__future__ collections dataclasses datetime json math re typing engine"
        " adapters.roles adapters.marker adapters.coerce"
    )
    assert imported <= set(allowed.split())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "utcnow", "today", "time", "getenv", "open"}


# -- the emulator, over real HTTP ---------------------------------------------------------------

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
PROPERTIES = {
    name: props.split()
    for name, props in {
        "deals": "dealname amount closedate pipeline dealstage createdate hubspot_owner_id "
        "deal_currency_code hs_is_closed hs_is_closed_won",
        "contacts": "firstname lastname email jobtitle",
        "calls": "hs_timestamp hubspot_owner_id hs_call_direction hs_call_status "
        "hs_call_disposition",
        "emails": "hs_timestamp hubspot_owner_id hs_email_direction hs_email_status "
        "hs_email_from_email hs_email_to_email hs_email_cc_email hs_email_bcc_email "
        "hs_email_headers",
        "meetings": "hs_timestamp hubspot_owner_id hs_meeting_start_time hs_meeting_outcome",
        "tasks": "hs_timestamp hubspot_owner_id hs_task_status",
        "notes": "hs_timestamp hubspot_owner_id",
    }.items()
}
"""The properties a client would ask for, per object type."""


@dataclasses.dataclass
class World:
    server: ServerHandle
    token: str
    ids: dict[str, str]


@pytest.fixture
def world() -> Iterator[World]:
    state = HubSpotState(
        portal_id=62515, clock=lambda: NOW, rate_limit=None, search_rate_limit=None
    )
    ids: dict[str, str] = {}
    ids["sarah"] = state.add_owner("sarah@seller.example", "Sarah", "Mitchell")
    state.define_association_label("deals", "contacts", "Champion")
    state.define_association_label("deals", "contacts", "Decision maker")
    ids["deal"] = deal = state.create_object(
        "deals",
        {
            "dealname": "Acme renewal",
            "amount": "",
            "closedate": datetime(2026, 4, 30, tzinfo=UTC),
            "pipeline": "default",
            "hubspot_owner_id": ids["sarah"],
            "deal_currency_code": "EUR",
        },
        created_at=T0,
        history={
            "dealstage": [("appointmentscheduled", T0), ("qualifiedtobuy", T0 + timedelta(days=10))]
        },
    )
    for key, first, last, email, title, labels in (
        ("ann", "Ann", "Lee", "ann.lee@acme.example", "VP Finance", ["Decision maker"]),
        ("bob", "Bob", "Stone", "bob@acme.example", "Engineer", ["Champion"]),
        ("carla", "Carla", "Chen", "carla.chen@acme.example", "", []),
    ):
        ids[key] = state.create_object(
            "contacts", {"firstname": first, "lastname": last, "email": email, "jobtitle": title}
        )
        state.associate("deals", deal, "contacts", ids[key], labels=labels)
    headers = {
        "from": {"email": "sarah@seller.example"},
        "to": [{"email": "Ann Lee<ann.lee@acme.example>"}],
        "cc": [{"email": "Carla Chen<carla.chen@acme.example>"}],
        "bcc": [],
    }
    ago = NOW - timedelta(days=3)
    soon = NOW + timedelta(days=4)
    logged = {
        "email": (
            "emails",
            {
                "hs_timestamp": ago,
                "hs_email_direction": "EMAIL",
                "hs_email_status": "SENT",
                "hs_email_from_email": "sarah@seller.example",
                "hs_email_to_email": "ann.lee@acme.example",
                "hs_email_cc_email": "carla.chen@acme.example",
                "hs_email_headers": json.dumps(headers),
            },
            ["ann", "carla"],
        ),
        "call": (
            "calls",
            {"hs_timestamp": ago, "hs_call_direction": "INBOUND", "hs_call_status": "COMPLETED"},
            ["bob"],
        ),
        "meeting": (
            "meetings",
            {"hs_meeting_start_time": soon, "hs_meeting_outcome": "SCHEDULED"},
            ["ann", "bob"],
        ),
        "canceled": (
            "meetings",
            {"hs_meeting_start_time": soon, "hs_meeting_outcome": "CANCELED"},
            ["ann"],
        ),
        "task": ("tasks", {"hs_timestamp": soon, "hs_task_status": "NOT_STARTED"}, []),
        "note": ("notes", {"hs_timestamp": ago, "hs_note_body": "Budget approved"}, ["bob"]),
    }
    for key, (kind, props, contacts) in logged.items():
        ids[key] = state.log_activity(
            kind,
            props | {"hubspot_owner_id": ids["sarah"]},
            deal_ids=[deal],
            contact_ids=[ids[c] for c in contacts],
            at=ago,
        )
    try:
        with serve(state) as server:
            yield World(server, state.issue_token().access_token, ids)
    finally:
        state.webhooks.stop()


class Portal:
    """Raw HTTP reads of the emulated portal, as a client would make them."""

    def __init__(self, world: World) -> None:
        self.url = world.server.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {world.token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.url + path, params=params, timeout=5)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> Any:
        response = self.session.post(self.url + path, json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[dict]:
        found = self.post(
            f"/crm/v4/associations/{from_type}/{to_type}/batch/read", {"inputs": [{"id": from_id}]}
        )
        return [to for result in found["results"] for to in result["to"]]

    def read(self, object_type: str, ids: list[str], history: tuple[str, ...] = ()) -> list[dict]:
        body: dict[str, Any] = {
            "inputs": [{"id": i} for i in ids],
            "properties": PROPERTIES[object_type],
        }
        if history:
            body["propertiesWithHistory"] = list(history)
        return self.post(f"/crm/v3/objects/{object_type}/batch/read", body)["results"]


def _bundle_over_http(portal: Portal, deal_id: str) -> Bundle:
    pipelines = Pipelines.from_json(portal.get("/crm/v3/pipelines/deals"))
    (deal_json,) = portal.read("deals", [deal_id], history=("dealstage",))
    deal = to_deal(deal_json, pipelines=pipelines, portal_id=62515)
    links = {
        str(to["toObjectId"]): to["associationTypes"]
        for to in portal.associated("deals", deal_id, "contacts")
    }
    label_roles = {"Decision maker": "Decision Maker"}
    contacts = tuple(
        to_contact(c, roles=roles_from_associations(links[c["id"]], label_roles))
        for c in sorted(portal.read("contacts", list(links)), key=lambda c: int(c["id"]))
    )
    by_email = {c.email: c.id for c in contacts if c.email}
    activities = []
    for object_type in ("calls", "emails", "meetings", "tasks", "notes"):
        linked = [str(to["toObjectId"]) for to in portal.associated("deals", deal_id, object_type)]
        for obj in portal.read(object_type, linked) if linked else []:
            people = [
                str(to["toObjectId"])
                for to in portal.associated(object_type, obj["id"], "contacts")
            ]
            activity = to_activity(
                object_type,
                obj,
                contacts_by_email=by_email,
                associated_contacts=[p for p in people if p in links],
                deal_ids=[deal_id],
                now=NOW,
            )
            if activity is not None:
                activities.append(activity)
    users = tuple(to_user(o) for o in portal.get("/crm/v3/owners/")["results"])
    return Bundle(deal=deal, contacts=contacts, activities=tuple(activities), users=users)


def test_the_emulators_objects_over_http(world: World) -> None:
    ids = world.ids
    bundle = _bundle_over_http(Portal(world), ids["deal"])

    deal = bundle.deal
    assert (deal.name, deal.pipeline, deal.stage, deal.status) == (
        "Acme renewal",
        "default",
        "qualifiedtobuy",
        "open",
    )
    assert deal.stage_entered_at == T0 + timedelta(days=10)  # from the dealstage history
    assert (deal.created_at, deal.amount, deal.currency) == (T0, None, "EUR")
    assert (deal.close_date, deal.owner) == (date(2026, 4, 30), ids["sarah"])
    assert deal.url == f"https://app.hubspot.com/contacts/62515/record/0-3/{ids['deal']}"

    roles = {c.id: c.roles for c in bundle.contacts}
    assert roles == {ids["ann"]: ("Decision Maker",), ids["bob"]: ("Champion",), ids["carla"]: ()}
    assert [c.title for c in bundle.contacts] == ["VP Finance", "Engineer", ""]

    by_id = {a.id: a for a in bundle.activities}
    assert ids["canceled"] not in by_id
    email, call, meeting = by_id[ids["email"]], by_id[ids["call"]], by_id[ids["meeting"]]
    assert (email.direction, email.status, email.contacts, email.cc) == (
        "outbound",
        "done",
        (ids["ann"],),
        (ids["carla"],),
    )
    assert (call.direction, call.contacts) == ("inbound", (ids["bob"],))
    assert (meeting.status, meeting.at) == ("scheduled", NOW + timedelta(days=4))
    assert (by_id[ids["task"]].status, by_id[ids["note"]].direction) == ("scheduled", "internal")
    assert {a.user for a in bundle.activities} == {ids["sarah"]}
    assert {a.deals for a in bundle.activities} == {(ids["deal"],)}
    assert [(u.id, u.name) for u in bundle.users] == [(ids["sarah"], "Sarah Mitchell")]

    # The engine takes it as it is: every vocabulary and reference checks out.
    assert load_bundle(json.loads(json.dumps(dump_bundle(bundle)))) == bundle


def test_the_stage_property_and_the_sdks_to_dict_agree_with_raw_history(world: World) -> None:
    """The same deal read three ways maps to the same Deal: raw JSON with history, raw JSON with
    HubSpot's calculated `hs_date_entered_<stage>`, and hubspot-api-client's model `.to_dict()`
    (snake-case keys, datetimes as objects)."""
    portal = Portal(world)
    pipelines = Pipelines.from_json(portal.get("/crm/v3/pipelines/deals"))
    deal_id = world.ids["deal"]
    (with_history,) = portal.read("deals", [deal_id], history=("dealstage",))
    calculated = portal.get(
        f"/crm/v3/objects/deals/{deal_id}",
        properties=",".join([*PROPERTIES["deals"], "hs_date_entered_qualifiedtobuy"]),
    )
    assert "propertiesWithHistory" not in calculated
    client = HubSpot(access_token=world.token, host=world.server.url)
    model = client.crm.deals.basic_api.get_by_id(
        deal_id, properties=PROPERTIES["deals"], properties_with_history=["dealstage"]
    )
    sdk = model.to_dict()
    assert "properties_with_history" in sdk
    deals = [
        to_deal(obj, pipelines=pipelines, portal_id=62515)
        for obj in (with_history, calculated, sdk)
    ]
    assert deals[0] == deals[1] == deals[2]
    assert deals[0].stage_entered_at == T0 + timedelta(days=10)
