"""HubSpot deliveries, from raw bytes: one test per fixture, then the edges of the format."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hubspot.events import HANDLERS, MAX_EVENTS, parse
from adapters.webhooks import Hint, MalformedBody
from tests.adapters.parsed import as_expected

FIXTURES = Path(__file__).parent / "fixtures"
PAYLOADS = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.stem for p in PAYLOADS])
def test_fixture(payload: Path) -> None:
    expected = json.loads(payload.with_suffix(".expected.json").read_text())
    body = payload.read_bytes()
    if "error" in expected:
        with pytest.raises(MalformedBody) as failure:
            parse(body, app_id=expected["app_id"])
        assert failure.value.reason == expected["error"]
    else:
        events = parse(body, app_id=expected["app_id"])
        assert [as_expected(e) for e in events] == expected["events"]


def _event(**fields: object) -> dict:
    base = {"eventId": 100, "subscriptionId": 7, "portalId": 62515, "appId": 54321,
            "occurredAt": 1717430400000, "attemptNumber": 0}  # fmt: skip
    return base | fields


def _one(app_id: str | None = "54321", **fields: object):
    (event,) = parse(json.dumps([_event(**fields)]).encode(), app_id=app_id)
    return event


# -- dispatch --


@pytest.mark.parametrize(
    ("fields", "hints"),
    [
        ({"subscriptionType": "company.propertyChange", "objectId": 5},
         [Hint("company", "5")]),
        ({"subscriptionType": "contact.merge", "objectId": 9, "primaryObjectId": 9,
          "mergedObjectIds": [3, 4], "newObjectId": None},
         [Hint("contact", "9"), Hint("contact", "3"), Hint("contact", "4")]),
        ({"subscriptionType": "object.merge", "objectTypeId": "0-3", "objectId": 12,
          "primaryObjectId": 12, "mergedObjectIds": [11], "newObjectId": 13},
         [Hint("deal", "12"), Hint("deal", "11"), Hint("deal", "13")]),
        ({"subscriptionType": "object.propertyChange", "objectTypeId": "0-1", "objectId": 8},
         [Hint("contact", "8")]),
        ({"subscriptionType": "object.deletion", "objectTypeId": "0-27", "objectId": 8},
         [Hint("activity", "8")]),
        ({"subscriptionType": "deal.associationChange", "associationType": "DEAL_TO_LINE_ITEM",
          "fromObjectId": 1, "toObjectId": 2},
         [Hint("deal", "1")]),
        ({"subscriptionType": "deal.associationChange", "associationType": "DEAL_TO_COMPANY",
          "fromObjectId": 1, "toObjectId": 2, "objectId": 1},
         [Hint("deal", "1"), Hint("company", "2")]),
        ({"subscriptionType": "deal.associationChange", "fromObjectId": 1, "toObjectId": 2},
         [Hint("deal", "1")]),
        ({"subscriptionType": "object.associationChange", "fromObjectTypeId": "0-49",
          "fromObjectId": 31, "toObjectTypeId": "0-3", "toObjectId": 1},
         [Hint("activity", "31"), Hint("deal", "1")]),
        ({"subscriptionType": "contact.privacyDeletion", "objectId": 77},
         [Hint("contact", "77")]),
    ],
    ids=lambda v: v.get("subscriptionType") if isinstance(v, dict) else None,
)  # fmt: skip
def test_dispatch(fields: dict, hints: list[Hint]) -> None:
    event = _one(**fields)
    assert (event.hints, event.ignored_reason) == (tuple(hints), None)


def test_generic_association_between_unsupported_objects_is_ignored() -> None:
    event = _one(subscriptionType="object.associationChange", fromObjectTypeId="0-5",
                 fromObjectId=1, toObjectTypeId="0-7", toObjectId=2)  # fmt: skip
    assert event.ignored_reason == "unsupported association 0-5->0-7"
    assert event.hints == ()


def test_supported_types_are_the_handler_keys() -> None:
    assert {"deal.propertyChange", "contact.propertyChange", "object.creation"} <= set(HANDLERS)
    for event_type in HANDLERS:
        prefix, _, action = event_type.partition(".")
        assert prefix in {"deal", "contact", "company", "object"} and action


# -- own writes --


@pytest.mark.parametrize(
    ("change_source", "source_id", "app_id", "own"),
    [
        ("INTEGRATION", "54321", "54321", True),
        ("API", "54321", "54321", True),
        ("INTEGRATION", "appId:54321", "54321", True),
        ("INTEGRATION", "99887", "54321", False),  # another app: appId is still ours
        ("CRM_UI", "54321", "54321", False),
        ("CRM_UI", "userId:54321", "54321", False),
        ("INTEGRATION", None, "54321", False),
        ("INTEGRATION", "54321", None, False),
        ("INTEGRATION", "154321", "54321", False),
    ],
)
def test_own_write(
    change_source: str, source_id: str | None, app_id: str | None, own: bool
) -> None:
    fields = {"subscriptionType": "deal.propertyChange", "objectId": 1, "propertyName": "amount",
              "changeSource": change_source, "sourceId": source_id}  # fmt: skip
    event = _one(app_id=app_id, **fields)
    assert event.own_write is own
    assert event.ignored_reason == ("our own write" if own else None)
    assert event.hints == (() if own else (Hint("deal", "1"),))


def test_numeric_source_id_is_read_as_text() -> None:
    event = _one(subscriptionType="deal.creation", objectId=1, changeSource="INTEGRATION",
                 sourceId=54321)  # fmt: skip
    assert event.own_write is True


# -- the format's edges --


def test_empty_delivery() -> None:
    assert parse(b"[]", app_id="54321") == []


def test_at_most_max_events() -> None:
    events = [_event(eventId=i, subscriptionType="deal.propertyChange", objectId=i)
              for i in range(MAX_EVENTS + 1)]  # fmt: skip
    assert len(parse(json.dumps(events[:MAX_EVENTS]).encode(), app_id=None)) == MAX_EVENTS
    with pytest.raises(MalformedBody) as failure:
        parse(json.dumps(events).encode(), app_id=None)
    assert failure.value.reason == f"more than {MAX_EVENTS} events"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "invalid json"),
        (b"\xff\xfe\x00", "invalid json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid json"),
        (b"[1e999999]", "event 0 is not an object"),
        (b"null", "not an array"),
        (b'"[]"', "not an array"),
        (json.dumps([_event(objectId=1)]).encode(), "event 0: subscriptionType: missing"),
        (json.dumps([_event(subscriptionType="deal.creation")]).encode(),
         "event 0: objectId: required for creation"),
        (json.dumps([_event(subscriptionType="deal.associationChange", toObjectId=2)]).encode(),
         "event 0: fromObjectId: required for associationChange"),
        (json.dumps([_event(subscriptionType="deal.creation", objectId=True)]).encode(),
         "event 0: objectId: Not a valid integer."),
        (json.dumps([_event(subscriptionType="deal.creation", objectId="1_000")]).encode(),
         "event 0: objectId: Not a valid integer."),
        (json.dumps([_event(subscriptionType="deal.creation", objectId=-4)]).encode(),
         "event 0: objectId: Not a valid integer."),
        (json.dumps([_event(subscriptionType="deal.merge", objectId=1, mergedObjectIds=[1, "x"])]
                    ).encode(),
         "event 0: mergedObjectIds.1: Not a valid integer."),
    ],
    ids=["empty", "binary", "deep", "huge float", "null", "string", "no type", "no objectId",
         "no fromObjectId", "bool id", "underscored id", "negative id", "bad merged id"],
)  # fmt: skip
def test_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedBody) as failure:
        parse(body, app_id="54321")
    assert failure.value.reason == reason


def test_merge_needs_its_primary_or_object_id() -> None:
    event = _one(subscriptionType="deal.merge", primaryObjectId=3, mergedObjectIds=[4])
    assert event.hints == (Hint("deal", "3"), Hint("deal", "4"))
    with pytest.raises(MalformedBody) as failure:
        _one(subscriptionType="deal.merge", mergedObjectIds=[4])
    assert failure.value.reason == "event 0: primaryObjectId or objectId: required for merge"


def test_an_unknown_action_needs_only_the_envelope() -> None:
    event = _one(subscriptionType="deal.somethingNew")
    assert event.ignored_reason == "unsupported event type deal.somethingNew"


def test_unknown_keys_are_allowed() -> None:
    event = _one(subscriptionType="deal.creation", objectId=1, somethingNew={"nested": [1]})
    assert event.hints == (Hint("deal", "1"),)


def test_subscription_type_wins_over_event_type() -> None:
    event = _one(subscriptionType="deal.creation", eventType="contact.creation", objectId=1)
    assert (event.type, event.hints) == ("deal.creation", (Hint("deal", "1"),))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=30,
)
_eventish = st.fixed_dictionaries(
    {},
    optional={
        key: st.one_of(st.integers(min_value=-2, max_value=2**40), st.text(max_size=12), _json)
        for key in ("portalId", "eventId", "occurredAt", "objectId", "subscriptionType",
                    "eventType", "fromObjectId", "toObjectId", "associationType", "objectTypeId",
                    "mergedObjectIds", "primaryObjectId", "newObjectId", "changeSource",
                    "sourceId", "appId", "associationRemoved")
    },
)  # fmt: skip


@given(st.lists(_eventish | _json, max_size=5))
def test_arbitrary_json_fails_only_with_malformed_body(document: list) -> None:
    body = json.dumps(document).encode()
    try:
        events = parse(body, app_id="54321")
    except MalformedBody:
        return
    for event in events:
        assert event.ignored_reason is not None or event.hints


@given(st.binary(max_size=300))
def test_arbitrary_bytes_fail_only_with_malformed_body(body: bytes) -> None:
    with contextlib.suppress(MalformedBody):
        parse(body, app_id=None)


def test_each_event_keeps_its_own_json_for_the_inbox() -> None:
    raw = [_event(subscriptionType="deal.creation", objectId=1, eventId=1),
           _event(subscriptionType="deal.deletion", objectId=2, eventId=2, note="é")]  # fmt: skip
    events = parse(json.dumps(raw).encode(), app_id=None)
    assert [json.loads(e.body) for e in events] == raw


@pytest.mark.parametrize(
    "value",
    [2**64 + 1, -(2**63) - 1, 0.1, 1e16, 123456789012345678901234567890, "\u00e9\u2028"],
    ids=["beyond 64 bits", "below int64", "float", "big float", "30 digits", "unicode"],
)
def test_an_event_is_kept_exactly_as_json_reads_it(value: object) -> None:
    """orjson reads most deliveries faster, but what it would read otherwise than the standard
    library (integers beyond 64 bits become floats there) is read by the standard library."""
    raw = [_event(subscriptionType="deal.propertyChange", objectId=1, propertyValue=value)]
    body = json.dumps(raw).encode()
    (event,) = parse(body, app_id=None)
    assert event.body == json.dumps(raw[0], separators=(",", ":"), ensure_ascii=False)


def test_a_huge_id_is_read_as_the_integer_it_is() -> None:
    body = json.dumps([_event(subscriptionType="deal.creation", objectId=2**70)]).encode()
    (event,) = parse(body, app_id=None)
    assert event.hints == (Hint("deal", str(2**70)),)


@given(st.lists(_eventish, max_size=4))
def test_events_are_kept_as_json_reads_them(document: list) -> None:
    body = json.dumps(document).encode()
    try:
        events = parse(body, app_id="54321")
    except MalformedBody:
        return
    raws = json.loads(body)
    as_json_writes_them = {json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in raws}
    for event in events:  # the same text, or (orjson's escapes may differ) the same values
        assert event.body in as_json_writes_them or json.loads(event.body) in raws
