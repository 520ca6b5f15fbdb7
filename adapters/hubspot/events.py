"""HubSpot webhook deliveries: raw bytes in, `ParsedEvent`s out. Pure: no I/O, no clock.

A delivery is a JSON array of event objects. Anything else, more than MAX_EVENTS events, or an
event that fails `schemas.EventSchema` makes the whole delivery a `MalformedBody`: HubSpot would
send the same bytes again on a retry, so there is nothing to gain by accepting half of it.

The supported event types are the keys of HANDLERS; each handler turns a validated event into
the hints of what changed. Any other type is acknowledged as an ignored event, never an error.
Events repeated within one delivery (same dedupe key) are returned once; duplicates across
deliveries are for the inbox to drop, by the same key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from marshmallow import ValidationError

from adapters.hubspot.schemas import Event, EventSchema, fast_event
from adapters.webhooks import Hint, MalformedBody, ParsedEvent, first_problem

MAX_EVENTS = 1_000
"""Events accepted in one delivery; HubSpot documents "under 100"."""

OBJECT_TYPE_KINDS = {
    "0-3": "deal",
    "0-1": "contact",
    "0-2": "company",
    "0-48": "activity",  # call
    "0-49": "activity",  # email
    "0-47": "activity",  # meeting
    "0-46": "activity",  # note
    "0-27": "activity",  # task
}
"""HubSpot objectTypeId (generic `object.*` events) to hint kind."""

ASSOCIATION_SIDE_KINDS = {"DEAL": "deal", "CONTACT": "contact", "COMPANY": "company"}
"""Ends of a legacy associationType such as DEAL_TO_CONTACT that we turn into hints."""

OWN_WRITE_SOURCES = frozenset({"INTEGRATION", "API"})
"""changeSource values of changes made through the API by an app (maybe ours: see is_own_write)."""

_SCHEMA = EventSchema()


class Ignored(Exception):
    """Raised by a handler for an event it cannot turn into hints; the reason is logged."""


Handler = Callable[[Event], tuple[Hint, ...]]


def parse(body: bytes, *, app_id: str | None) -> list[ParsedEvent]:
    """The events of one HubSpot delivery (`body` already signature-checked), in order.

    `app_id` is our HubSpot app's id, to recognise changes we made ourselves (None: none are).
    """
    document, encode = _decode(body)
    if not isinstance(document, list):
        raise MalformedBody("not an array")
    if len(document) > MAX_EVENTS:
        raise MalformedBody(f"more than {MAX_EVENTS} events")
    parsed: dict[str, ParsedEvent] = {}
    for index, raw in enumerate(document):
        if not isinstance(raw, dict):
            raise MalformedBody(f"event {index} is not an object")
        event = _load(index, raw)
        key = dedupe_key(event)
        if key not in parsed:
            parsed[key] = to_parsed(event, app_id=app_id, body=encode(raw), key=key)
    return list(parsed.values())


def _decode(body: bytes) -> tuple[Any, Callable[[Any], str]]:
    """The JSON document, and how to write one of its parts back as compact JSON text.

    orjson (C, several times faster than the standard library) reads a delivery when it reads
    it exactly as the standard library would, that is when the document holds no float (orjson
    turns integers beyond 64 bits into floats; HubSpot's ids and times are integers). Anything
    else, the standard library reads and writes back, as before orjson: it is more lenient
    (NaN, lone surrogates, huge integers) and alters nothing it read on the way to the inbox."""
    try:
        document = orjson.loads(body)
        if _without_floats((document,)):
            return document, _orjson_text
    except (orjson.JSONDecodeError, RecursionError):
        pass
    try:
        return json.loads(body), _json_text
    except (ValueError, RecursionError):
        raise MalformedBody("invalid json") from None


def _without_floats(values: Iterable[Any]) -> bool:
    for value in values:
        kind = type(value)
        if kind is float:
            return False
        if kind is dict:
            if not _without_floats(value.values()):
                return False
        elif kind is list and not _without_floats(value):
            return False
    return True


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def dedupe_key(event: Event) -> str:
    """(portalId, eventId, type, occurredAt): `eventId` alone is not guaranteed unique."""
    return f"{event.portal_id}:{event.event_id}:{event.type}:{event.occurred_at}"


def to_parsed(
    event: Event, *, app_id: str | None, body: str | None = None, key: str | None = None
) -> ParsedEvent:
    """The hints of one validated event; `body` is its own JSON, for the inbox; `key` its
    dedupe_key when already known."""
    own_write = is_own_write(event, app_id)
    hints: tuple[Hint, ...] = ()
    handler = HANDLERS.get(event.type)
    if handler is None:
        reason: str | None = f"unsupported event type {event.type}"
    elif own_write:
        reason = "our own write"
    else:
        try:
            hints, reason = handler(event), None
        except Ignored as ignored:
            reason = str(ignored)
    return ParsedEvent(
        dedupe_key=key or dedupe_key(event),
        type=event.type,
        hints=hints,
        occurred_at_ms=event.occurred_at,
        own_write=own_write,
        ignored_reason=reason,
        account_id=str(event.portal_id),
        body=body,
    )


def is_own_write(event: Event, app_id: str | None) -> bool:
    """True when the change was made through the API by our app.

    HubSpot's exact marking of app-made changes is UNCONFIRMED (crm-apis.md, trap 1). Public
    samples of changes an app made show `changeSource: "INTEGRATION"` and `sourceId` equal to
    that app's id, so we require a source in OWN_WRITE_SOURCES and a `sourceId` naming our app,
    bare ("54321") or prefixed the way user sources are ("...:54321"). The payload's `appId` is
    not enough: it names the app the webhook is delivered to (always us), not the app that made
    the change, so trusting it would drop every other integration's changes as ours. Change
    the rule here, in one place, once recorded samples say otherwise.
    """
    if not app_id or event.change_source not in OWN_WRITE_SOURCES or not event.source_id:
        return False
    if event.app_id is not None and str(event.app_id) != app_id:
        return False  # delivered for another app sharing this URL: not ours to judge
    return event.source_id.rpartition(":")[2] == app_id


def _load(index: int, raw: dict[str, Any]) -> Event:
    event = fast_event(raw)
    if event is not None:
        return event
    try:
        return _SCHEMA.load(raw)
    except ValidationError as error:
        raise MalformedBody(
            f"event {index}: {first_problem(error.normalized_messages())}"
        ) from None


# -- handlers: one small function per event shape --


def _unique(hints: Iterable[Hint]) -> tuple[Hint, ...]:
    return tuple(dict.fromkeys(hints))


def _record(kind: str) -> Handler:
    """creation, deletion, propertyChange, restore: the record itself."""

    def handler(event: Event) -> tuple[Hint, ...]:
        return (Hint(kind, str(event.object_id)),)

    return handler


def _merge(kind: str) -> Handler:
    """merge: the record kept, the records merged into it, and the record it became."""

    def handler(event: Event) -> tuple[Hint, ...]:
        ids = (
            event.primary_object_id,
            *event.merged_object_ids,
            event.new_object_id,
            event.object_id,
        )
        return _unique(Hint(kind, str(i)) for i in ids if i is not None)

    return handler


def _association(kind: str) -> Handler:
    """associationChange: both ends whose kind we know, from an associationType like
    DEAL_TO_CONTACT; the subscribed record (the `from` end) alone when the type is unknown."""

    def handler(event: Event) -> tuple[Hint, ...]:
        from_side, sep, to_side = (event.association_type or "").partition("_TO_")
        if not sep:
            return (Hint(kind, str(event.from_object_id)),)
        ends = ((from_side, event.from_object_id), (to_side, event.to_object_id))
        return _unique(
            Hint(ASSOCIATION_SIDE_KINDS[side], str(object_id))
            for side, object_id in ends
            if side in ASSOCIATION_SIDE_KINDS
        )

    return handler


def _generic(build: Callable[[str], Handler]) -> Handler:
    """object.*: the kind comes from the payload's objectTypeId."""

    def handler(event: Event) -> tuple[Hint, ...]:
        kind = OBJECT_TYPE_KINDS.get(event.object_type_id or "")
        if kind is None:
            raise Ignored(f"unsupported object type {event.object_type_id}")
        return build(kind)(event)

    return handler


def _generic_association(event: Event) -> tuple[Hint, ...]:
    """object.associationChange: each end whose objectTypeId we know."""
    ends = (
        (event.from_object_type_id, event.from_object_id),
        (event.to_object_type_id, event.to_object_id),
    )
    hints = _unique(
        Hint(OBJECT_TYPE_KINDS[type_id], str(object_id))
        for type_id, object_id in ends
        if type_id in OBJECT_TYPE_KINDS
    )
    if not hints:
        ends_named = f"{event.from_object_type_id}->{event.to_object_type_id}"
        raise Ignored(f"unsupported association {ends_named}")
    return hints


_record_generic = _generic(_record)

HANDLERS: dict[str, Handler] = {
    "deal.creation": _record("deal"),
    "deal.deletion": _record("deal"),
    "deal.propertyChange": _record("deal"),
    "deal.restore": _record("deal"),
    "deal.merge": _merge("deal"),
    "deal.associationChange": _association("deal"),
    "contact.creation": _record("contact"),
    "contact.deletion": _record("contact"),
    "contact.privacyDeletion": _record("contact"),
    "contact.propertyChange": _record("contact"),
    "contact.restore": _record("contact"),
    "contact.merge": _merge("contact"),
    "contact.associationChange": _association("contact"),
    "company.creation": _record("company"),
    "company.deletion": _record("company"),
    "company.propertyChange": _record("company"),
    "company.restore": _record("company"),
    "company.merge": _merge("company"),
    "company.associationChange": _association("company"),
    "object.creation": _record_generic,
    "object.deletion": _record_generic,
    "object.propertyChange": _record_generic,
    "object.restore": _record_generic,
    "object.merge": _generic(_merge),
    "object.associationChange": _generic_association,
}
"""Event type to handler: the supported HubSpot event types are exactly these keys."""
