"""`fast_event` must load exactly what EventSchema loads, or give up and let it decide."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters.hubspot.schemas import Event, EventSchema, fast_event

SCHEMA = EventSchema()
FIXTURES = Path(__file__).parent / "fixtures"

_ids = st.integers(min_value=0, max_value=2**40)
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["12", "007", "１２", "-1", "true", "1.5", ""]),
    st.lists(st.integers(min_value=-2, max_value=9), max_size=3),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_types = st.sampled_from(
    ["deal.creation", "deal.propertyChange", "deal.merge", "contact.associationChange",
     "object.associationChange", "object.creation", "deal.somethingNew", "", "nodot"]
)  # fmt: skip
_typical = st.fixed_dictionaries(
    {"portalId": _ids, "eventId": _ids, "occurredAt": _ids, "subscriptionType": _types},
    optional={
        "objectId": _ids, "propertyName": st.text(max_size=8), "propertyValue": _anything,
        "changeSource": st.sampled_from(["CRM_UI", "INTEGRATION", "API"]),
        "sourceId": st.text(max_size=8), "appId": _ids, "attemptNumber": _ids,
        "fromObjectId": _ids, "toObjectId": _ids, "primaryObjectId": _ids,
        "mergedObjectIds": st.lists(_ids, max_size=3), "associationRemoved": st.booleans(),
        "objectTypeId": st.sampled_from(["0-3", "0-1", "0-48"]), "eventType": _types,
    },
)  # fmt: skip
_keys = [field.data_key or name for name, field in SCHEMA.fields.items()] + ["somethingElse"]


def _perturbed(draw: st.DrawFn) -> dict:
    event = dict(draw(_typical))
    for key in draw(st.lists(st.sampled_from(_keys), max_size=3)):
        if draw(st.booleans()):
            event[key] = draw(_anything)
        else:
            event.pop(key, None)
    return event


perturbed = st.composite(_perturbed)


def _marshmallow(raw: dict):  # type: ignore[no-untyped-def]
    try:
        return SCHEMA.load(raw)
    except ValidationError:
        return None


@settings(max_examples=400)
@given(perturbed())
def test_fast_event_agrees_with_the_schema(raw: dict) -> None:
    fast = fast_event(raw)
    if fast is not None:
        assert fast == _marshmallow(raw)


@given(_typical)
def test_a_typical_valid_event_takes_the_fast_path(raw: dict) -> None:
    expected = _marshmallow(raw)
    if expected is not None:
        assert fast_event(raw) == expected


def _fixture_events() -> list[dict]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        try:
            document = json.loads(path.read_bytes())
        except ValueError:
            continue  # the fixtures of malformed deliveries
        if isinstance(document, list):
            found += [e for e in document if isinstance(e, dict) and _marshmallow(e) is not None]
    # Ids sent as strings go through marshmallow on purpose (it converts them).
    return [e for e in found if not any(isinstance(v, str) and v.isdigit() for v in e.values())]


@pytest.mark.parametrize("raw", _fixture_events())
def test_recorded_events_take_the_fast_path(raw: dict) -> None:
    """HubSpot's own samples are the common case; a fast path they miss would be no faster."""
    assert fast_event(raw) == SCHEMA.load(raw)


def test_it_gives_up_rather_than_convert() -> None:
    raw = {"portalId": "62515", "eventId": 1, "occurredAt": 2, "subscriptionType": "deal.creation",
           "objectId": 5}  # fmt: skip
    assert fast_event(raw) is None
    assert SCHEMA.load(raw).portal_id == 62515


def test_a_fast_event_is_an_event_like_any_other() -> None:
    """fast_event fills the instance at once: still an Event, frozen, hashable, equal."""
    raw = {"portalId": 62515, "eventId": 1, "occurredAt": 2, "subscriptionType": "deal.merge",
           "primaryObjectId": 5, "mergedObjectIds": [6, 7], "propertyValue": "x"}  # fmt: skip
    fast, slow = fast_event(raw), SCHEMA.load(raw)
    assert type(fast) is Event
    assert fast == slow and repr(fast) == repr(slow)
    assert hash(fast) == hash(slow)
    with pytest.raises(FrozenInstanceError):
        fast.portal_id = 1  # type: ignore[misc]
