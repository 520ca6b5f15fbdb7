"""HubSpot's raw shapes, validated at the edge: the webhook event (one element of a delivery).

Ids and times are integers; a numeric string is accepted too (ASCII digits only), a float or a
boolean is not. Keys we do not know are dropped, so that a field HubSpot adds tomorrow does not
turn its deliveries into 400s. The event type arrives as `subscriptionType` in real payloads and
as `eventType` in older docs; both are accepted and `subscriptionType` wins.

Which ids an event must carry depends on its action (the part of the type after the dot):
REQUIRED_BY_ACTION. An association change names its two ends and, in some samples, no
`objectId`; a merge names its primary record; an action we do not know needs only the envelope
(portal, event id, time, type), so that a new kind of event is ignored rather than refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validates_schema

_DIGITS = re.compile(r"[0-9]{1,19}")

REQUIRED_BY_ACTION: dict[str, tuple[tuple[str, ...], ...]] = {
    "creation": (("object_id",),),
    "deletion": (("object_id",),),
    "privacyDeletion": (("object_id",),),
    "propertyChange": (("object_id",),),
    "restore": (("object_id",),),
    "merge": (("primary_object_id", "object_id"),),
    "associationChange": (("from_object_id",), ("to_object_id",)),
}
"""Per action, the ids an event must carry: each inner tuple is a set of alternatives."""

_DATA_KEYS = {
    "object_id": "objectId",
    "primary_object_id": "primaryObjectId",
    "from_object_id": "fromObjectId",
    "to_object_id": "toObjectId",
}


class Id(fields.Field):
    """A non-negative integer sent as a JSON number or as a string of ASCII digits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            return int(value)
        raise ValidationError("Not a valid integer.")


class Text(fields.Field):
    """A string; a JSON integer is taken as its decimal string (some ids are sent either way)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ValidationError("Not a valid string.")


def _optional(field: type[fields.Field], **kwargs: Any) -> fields.Field:
    return field(load_default=None, allow_none=True, **kwargs)


@dataclass(frozen=True)
class Event:
    """One HubSpot webhook event, validated. Names follow the payload, in snake case."""

    portal_id: int
    event_id: int
    occurred_at: int
    type: str
    object_id: int | None = None
    property_name: str | None = None
    property_value: Any = None
    change_source: str | None = None
    source_id: str | None = None
    app_id: int | None = None
    attempt_number: int | None = None
    change_flag: str | None = None
    object_type_id: str | None = None
    association_type: str | None = None
    from_object_id: int | None = None
    to_object_id: int | None = None
    from_object_type_id: str | None = None
    to_object_type_id: str | None = None
    association_removed: bool | None = None
    primary_object_id: int | None = None
    merged_object_ids: tuple[int, ...] = ()
    new_object_id: int | None = None


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    portal_id = Id(data_key="portalId", required=True)
    event_id = Id(data_key="eventId", required=True)
    occurred_at = Id(data_key="occurredAt", required=True)
    subscription_type = _optional(fields.String, data_key="subscriptionType")
    event_type = _optional(fields.String, data_key="eventType")
    object_id = _optional(Id, data_key="objectId")
    property_name = _optional(fields.String, data_key="propertyName")
    property_value = fields.Raw(data_key="propertyValue", load_default=None, allow_none=True)
    change_source = _optional(fields.String, data_key="changeSource")
    source_id = _optional(Text, data_key="sourceId")
    app_id = _optional(Id, data_key="appId")
    attempt_number = _optional(Id, data_key="attemptNumber")
    change_flag = _optional(fields.String, data_key="changeFlag")
    object_type_id = _optional(Text, data_key="objectTypeId")
    association_type = _optional(fields.String, data_key="associationType")
    from_object_id = _optional(Id, data_key="fromObjectId")
    to_object_id = _optional(Id, data_key="toObjectId")
    from_object_type_id = _optional(Text, data_key="fromObjectTypeId")
    to_object_type_id = _optional(Text, data_key="toObjectTypeId")
    association_removed = _optional(fields.Boolean, data_key="associationRemoved")
    primary_object_id = _optional(Id, data_key="primaryObjectId")
    merged_object_ids = _optional(fields.List, cls_or_instance=Id(), data_key="mergedObjectIds")
    new_object_id = _optional(Id, data_key="newObjectId")

    @validates_schema
    def _type_and_ids(self, data: dict[str, Any], **kwargs: Any) -> None:
        event_type = data.get("subscription_type") or data.get("event_type")
        if not event_type:
            raise ValidationError("missing", "subscriptionType")
        action = event_type.rpartition(".")[2]
        for alternatives in REQUIRED_BY_ACTION.get(action, ()):
            if all(data.get(key) is None for key in alternatives):
                raise ValidationError(
                    f"required for {action}", " or ".join(_DATA_KEYS[k] for k in alternatives)
                )

    @post_load
    def _to_event(self, data: dict[str, Any], **kwargs: Any) -> Event:
        subscription_type, event_type = data.pop("subscription_type"), data.pop("event_type")
        data["type"] = subscription_type or event_type
        data["merged_object_ids"] = tuple(data["merged_object_ids"] or ())
        return Event(**data)


# -- the common case, without marshmallow's per-field machinery --
#
# A busy portal sends thousands of events a minute, and EventSchema.load costs more than the
# rest of the webhook receiver together. `fast_event` takes the common case (every value already
# of its field's JSON type) straight to an Event and gives up, returning None, on anything else:
# marshmallow then decides, and words the error. A property test holds fast_event to
# EventSchema's answer on arbitrary input.


class _Anything:
    """The kind of a field that takes any value as it is (fields.Raw)."""


class _Unknown:
    """The kind of a field the fast path does not know: no value is of it (marshmallow decides)."""


def _plain_kind(field: fields.Field) -> type:
    """The one Python type a value needs no conversion for by `field` (None aside); an `int`
    must also be >= 0 and a `list` hold only such ints."""
    if isinstance(field, Id):
        return int
    if isinstance(field, (Text, fields.String)):
        return str
    if isinstance(field, fields.Boolean):
        return bool
    if isinstance(field, fields.List) and isinstance(field.inner, Id):
        return list
    if type(field) is fields.Raw:
        return _Anything
    return _Unknown


_SCHEMA_FIELDS = EventSchema().fields
_KINDS: dict[str, tuple[str, type]] = {
    field.data_key or name: (name, _plain_kind(field)) for name, field in _SCHEMA_FIELDS.items()
}
"""Payload key -> (field name, kind), decided once per process from EventSchema's fields."""
_REQUIRED = tuple(name for name, field in _SCHEMA_FIELDS.items() if field.required)
"""Fields that must be present and not null (their fields do not allow None)."""
assert all(not _SCHEMA_FIELDS[name].allow_none for name in _REQUIRED)
_ABSENT = dict.fromkeys(_SCHEMA_FIELDS, None)
"""Every field's value when its key is missing (each optional field loads None)."""
assert all(f.load_default is None for n, f in _SCHEMA_FIELDS.items() if n not in _REQUIRED)


def fast_event(raw: dict[str, Any]) -> Event | None:
    """The Event EventSchema would load from `raw`, or None when it is not the common case."""
    data = _ABSENT.copy()
    for key, value in raw.items():
        known = _KINDS.get(key)
        if known is None:
            continue  # unknown keys are dropped (EXCLUDE)
        name, kind = known
        if value is not None and kind is not _Anything:
            # Checked inline, not by a function per field: this loop runs for every key of
            # every event a busy portal sends.
            if type(value) is not kind:
                return None
            if kind is int:
                if value < 0:
                    return None
            elif kind is list and not all(type(v) is int and v >= 0 for v in value):
                return None
        data[name] = value
    for name in _REQUIRED:
        if data[name] is None:
            return None
    subscription_type, event_type = data.pop("subscription_type"), data.pop("event_type")
    data["type"] = subscription_type or event_type
    if not data["type"]:
        return None
    action = data["type"].rpartition(".")[2]
    for alternatives in REQUIRED_BY_ACTION.get(action, ()):
        if all(data[key] is None for key in alternatives):
            return None
    data["merged_object_ids"] = tuple(data["merged_object_ids"] or ())
    # Event(**data) sets its 22 frozen fields one object.__setattr__ at a time, half of this
    # function's cost; `data` holds exactly those fields, already checked, and Event has no
    # __post_init__: filling the instance's dict at once makes an equal, as frozen, Event.
    event = object.__new__(Event)
    vars(event).update(data)
    return event
