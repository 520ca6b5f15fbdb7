"""HubSpot's shape vs ours: v3 object JSON (plain dicts) to `engine.model`, one `to_<entity>`
per object.

Input is HubSpot's v3 object JSON, `{"id", "properties", "propertiesWithHistory"?, "createdAt",
"updatedAt", "archived"}`, as the HTTP API returns it or as hubspot-api-client's `.to_dict()`
gives it (snake-case keys, datetimes as `datetime` objects): both are read. Property values are
strings; datetimes come as ISO 8601 (reads) or epoch milliseconds (what HubSpot accepts on
writes, and older data), and both are read.

Pure: no I/O and no clock (`now` is a parameter). Error policy: data HubSpot always sends but
that is missing or unreadable here (a deal's `dealstage` or `createdate`, an activity's
`hs_timestamp`) raises `MappingError` naming the record and the property; optional values that
cannot be read (an amount of "n/a", a close date of "soon") map to None instead, because the
engine has an alert for exactly that (`amount_missing`) and a crash would hide the deal.

Choices where HubSpot's semantics are ambiguous are documented at the vocabulary they concern,
with their sources.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from adapters.coerce import as_number, as_text
from adapters.marker import OWN_MARKER
from adapters.roles import roles_for_labels
from engine.model import Activity, Contact, Deal, User

__all__ = [
    "MappingError",
    "Pipelines",
    "Stage",
    "roles_from_associations",
    "to_activity",
    "to_contact",
    "to_deal",
    "to_user",
]


class MappingError(ValueError):
    """A HubSpot record lacks data every such record has; the message names record and property."""


# --------------------------------------------------------------------------------------------
# HubSpot's vocabularies
# --------------------------------------------------------------------------------------------

ACTIVITY_KINDS: dict[str, str] = {
    "call": "call", "calls": "call", "0-48": "call",
    "email": "email", "emails": "email", "0-49": "email",
    "meeting": "meeting", "meetings": "meeting", "0-47": "meeting",
    "task": "task", "tasks": "task", "0-27": "task",
    "note": "note", "notes": "note", "0-46": "note",
}  # fmt: skip
"""Our activity kind for each name of a HubSpot engagement object type (singular, plural, id)."""

CALL_DIRECTIONS: dict[str, str] = {"INBOUND": "inbound", "OUTBOUND": "outbound"}
"""`hs_call_direction`, which HubSpot defines from the HubSpot user's side (calls guide)."""

EMAIL_DIRECTIONS: dict[str, str] = {
    "EMAIL": "outbound",
    "INCOMING_EMAIL": "inbound",
    "FORWARDED_EMAIL": "outbound",
}
"""`hs_email_direction`: sent or BCC-logged, a reply to a logged email, forwarded to the CRM."""

CALLS_NOT_CONNECTED = frozenset({"BUSY", "NO_ANSWER", "FAILED", "CANCELED", "MISSED"})
"""`hs_call_status` values of a call in which nobody spoke: not an interaction (skipped)."""
# The calls guide lists BUSY CALLING_CRM_USER CANCELED COMPLETED CONNECTING FAILED IN_PROGRESS
# NO_ANSWER QUEUED RINGING, and says an inbound call with a voicemail has status "missed" and
# hs_call_has_voicemail true (https://developers.hubspot.com/docs/api/crm/calls). The engine's
# statuses are only done/scheduled, and a done call is an interaction with the contact, so a
# call that never connected is left out rather than counted as contact. A missed call with a
# voicemail did deliver the contact's message, like an incoming email: it is kept, as done.

CALLS_HELD = frozenset({"COMPLETED", "IN_PROGRESS"})
"""`hs_call_status` of a call that connected: done, whatever its timestamp says."""
CALLS_NOT_YET_CONNECTED = frozenset({"QUEUED", "RINGING", "CONNECTING", "CALLING_CRM_USER"})
"""`hs_call_status` of a call still being placed: planned if its time is to come, else skipped."""
# A dialer moves these to a final status within minutes; one still pending at a past time has
# not connected (yet): leaving it out until a later read sees COMPLETED or NO_ANSWER is safer
# than counting a conversation that may never happen.

CALL_OUTCOMES_NOT_REACHED = frozenset(
    {
        "9d9162e7-6cf3-4944-bf63-4dff82258764",  # Busy
        "73a0d17f-1163-4015-bdd5-ec830791da20",  # No answer
        "17b47fee-58de-441e-a44c-c6300d46f273",  # Wrong number
    }
)
"""HubSpot's default `hs_call_disposition` GUIDs (calls guide) for a contact not reached."""
# A call logged by hand is COMPLETED whatever happened; its outcome (disposition) tells whether
# anyone answered. "Left voicemail" and "Left live message" did reach the contact (a one-way
# touch, like a sent email) and count. Custom outcomes have portal-specific GUIDs: unknown ones
# are trusted to be conversations.

EMAILS_NOT_DELIVERED = frozenset({"BOUNCED", "FAILED"})
"""`hs_email_status` values of an email that never reached anyone: not an interaction."""

EMAILS_SCHEDULED = frozenset({"SCHEDULED"})
"""`hs_email_status` of an email queued to be sent later."""
EMAILS_SENT = frozenset({"SENT", "SENDING"})
"""`hs_email_status` of an email that went (or is going) out, whatever its timestamp says."""

MEETINGS_NOT_HELD = frozenset({"CANCELED", "CANCELLED", "NO_SHOW"})
"""`hs_meeting_outcome` values of a meeting that did not take place: skipped (see below)."""
# The meetings guide's outcomes are "scheduled, completed, rescheduled, no show, and canceled"
# (https://developers.hubspot.com/docs/api/crm/meetings). A canceled or no-show meeting is
# neither a done interaction nor a meeting to come (it must not silence
# `no_meeting_scheduled`), and the engine's vocabulary has no third status, so it is left out.
# SCHEDULED, RESCHEDULED and COMPLETED are read by the clock: reps rarely set COMPLETED, so a
# past meeting still marked SCHEDULED is taken as held. RESCHEDULED is taken to carry its new
# start time, as the meetings tool and calendar sync move the meeting (UNCONFIRMED: if portals
# turn out to mark the old slot RESCHEDULED and book a new meeting, add it to this set).

MEETING_SOURCES_BOOKED_BY_CONTACT = frozenset({"MEETINGS_PUBLIC", "MEETINGS_EMBEDDED"})
"""`hs_meeting_source` of a meeting the contact booked through a meetings link: inbound."""
# Public code reads MEETINGS_PUBLIC for meetings-link bookings (secondary, no vendor page);
# any other source (CRM_UI, calendar sync, integrations) is a meeting the rep set up: outbound.

TASKS_DONE = frozenset({"COMPLETED"})
"""`hs_task_status` of a finished task; any other (NOT_STARTED, IN_PROGRESS, ...) is to do."""
BODIES = {"task": "hs_task_body", "note": "hs_note_body"}
"""Where the marker ending the body of every task and note Deal Radar creates is found
(adapters/hubspot/actions.py). They are Deal Radar's output, not the rep's work, so they are no
activity: an open task of ours would otherwise count as a next step and silence the alert it was
made for, and completing it would count as done work in the health score."""

WON_PROBABILITY = 1.0
"""A closed stage is won when its probability is 1.0 (HubSpot's Closed Won), lost otherwise."""

STAGE_ENTERED_PROPERTIES = (
    "hs_date_entered_{stage}",
    "hs_v2_date_entered_{stage}",
    "hs_v2_date_entered_current_stage",
)
"""Calculated properties giving when the deal entered its current stage, first found wins."""
# Both families are widely used in public code; no vendor page documents them (crm-apis.md 1.2).

DEFAULT_APP_HOST = "app.hubspot.com"
"""Host of record links; EU portals use app-eu1.hubspot.com."""

_ADDRESS = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"'()\[\]]+")
"""An address in a header or a list: the local part may hold an apostrophe (pat.o'brien@), the
domain may not (a quote around the address is stripped from its start)."""


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    """One deal stage of a pipeline, from the pipelines API (`metadata` strings read)."""

    id: str
    label: str
    pipeline: str
    closed: bool
    probability: float | None

    @property
    def won(self) -> bool:
        return self.closed and self.probability is not None and self.probability >= WON_PROBABILITY

    @property
    def lost(self) -> bool:
        return self.closed and not self.won

    @property
    def status(self) -> str:
        return "won" if self.won else "lost" if self.closed else "open"


@dataclass(frozen=True, slots=True)
class Pipelines:
    """A portal's deal pipelines: each stage's label, and whether it is closed, won or lost.

    Build it with `Pipelines.from_json(GET /crm/v3/pipelines/deals)`. Stages are found by
    (pipeline, stage) and, when no pipeline is given, by stage id alone if that is unambiguous.
    """

    stages: tuple[Stage, ...] = ()
    _index: Mapping[tuple[str, str], Stage] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _by_id: Mapping[str, Stage] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        index = {(s.pipeline, s.id): s for s in self.stages}
        counts: dict[str, int] = {}
        for s in self.stages:
            counts[s.id] = counts.get(s.id, 0) + 1
        by_id = {s.id: s for s in self.stages if counts[s.id] == 1}
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> Pipelines:
        """From the pipelines API answer `{"results": [pipeline, ...]}` (or the list itself)."""
        pipelines = data.get("results", ()) if isinstance(data, Mapping) else data
        return cls(
            tuple(
                _stage(str(p["id"]), s)
                for p in pipelines
                for s in sorted(p.get("stages") or (), key=_display_order)
            )
        )

    def stage(self, stage_id: str, pipeline_id: str | None = None) -> Stage | None:
        """The stage, or None when this portal has no such stage (in that pipeline)."""
        if pipeline_id:
            found = self._index.get((str(pipeline_id), str(stage_id)))
            if found is not None:
                return found
        return self._by_id.get(str(stage_id))

    def label(self, stage_id: str, pipeline_id: str | None = None) -> str | None:
        found = self.stage(stage_id, pipeline_id)
        return found.label if found else None

    def is_closed(self, stage_id: str, pipeline_id: str | None = None) -> bool:
        found = self.stage(stage_id, pipeline_id)
        return bool(found and found.closed)

    def is_won(self, stage_id: str, pipeline_id: str | None = None) -> bool:
        found = self.stage(stage_id, pipeline_id)
        return bool(found and found.won)

    def is_lost(self, stage_id: str, pipeline_id: str | None = None) -> bool:
        found = self.stage(stage_id, pipeline_id)
        return bool(found and found.lost)


def _display_order(stage: Mapping[str, Any]) -> float:
    order = as_number(stage.get("displayOrder", stage.get("display_order")))
    return order if order is not None else math.inf


def _stage(pipeline_id: str, raw: Mapping[str, Any]) -> Stage:
    meta = raw.get("metadata") or {}
    return Stage(
        id=str(raw["id"]),
        label=str(raw.get("label") or raw["id"]),
        pipeline=pipeline_id,
        closed=_true(meta.get("isClosed", meta.get("is_closed"))),
        probability=as_number(meta.get("probability")),
    )


# --------------------------------------------------------------------------------------------
# Deals, contacts, roles, users
# --------------------------------------------------------------------------------------------


def to_deal(
    obj: Mapping[str, Any],
    *,
    pipelines: Pipelines,
    portal_id: int | str,
    app_host: str = DEFAULT_APP_HOST,
    zone: tzinfo = UTC,
) -> Deal:
    """A HubSpot deal as a Deal; MappingError when its stage or creation date is missing.
    `zone`: the tenant's, in which its reps see the close date."""
    deal_id = _record_id(obj, "deal")
    where = f"HubSpot deal {deal_id}"
    props = _properties(obj)
    stage_id = as_text(props.get("dealstage"))
    if not stage_id:
        raise MappingError(f"{where}: property 'dealstage' is missing")
    stage = pipelines.stage(stage_id, as_text(props.get("pipeline")) or None)
    pipeline_id = as_text(props.get("pipeline")) or (stage.pipeline if stage else "")
    if not pipeline_id:
        raise MappingError(
            f"{where}: property 'pipeline' is missing and stage {stage_id!r} is in none of the "
            "portal's pipelines"
        )
    created = _created_at(obj, where)
    return Deal(
        id=deal_id,
        name=as_text(props.get("dealname")),
        pipeline=pipeline_id,
        stage=stage_id,
        stage_entered_at=_stage_entered_at(obj, stage_id, where) or created,
        created_at=created,
        amount=_amount(props.get("amount")),
        currency=as_text(props.get("deal_currency_code")),
        close_date=_close_date(props.get("closedate"), zone),
        owner=as_text(props.get("hubspot_owner_id")) or None,
        status=stage.status if stage else _status_from_flags(props),
        url=f"https://{app_host}/contacts/{portal_id}/record/0-3/{deal_id}",
        stage_name=stage.label if stage else "",
    )


def _created_at(obj: Mapping[str, Any], where: str) -> datetime:
    """`createdate`, else the record's own `createdAt` (the same instant on every deal read)."""
    for source, value in (
        ("createdate", _properties(obj).get("createdate")),
        ("createdAt", obj.get("createdAt", obj.get("created_at"))),
    ):
        if value not in (None, ""):
            return _required_datetime(value, where, source)
    raise MappingError(f"{where}: property 'createdate' is missing")


def _stage_entered_at(obj: Mapping[str, Any], stage_id: str, where: str) -> datetime | None:
    """When the deal entered its current stage: HubSpot's calculated property, else the
    `dealstage` history; None when neither says (the caller falls back to the creation date)."""
    props = _properties(obj)
    for template in STAGE_ENTERED_PROPERTIES:
        name = template.format(stage=stage_id)
        if props.get(name) not in (None, ""):
            return _required_datetime(props[name], where, name)
    return _current_run_start(_history(obj, "dealstage"), stage_id)


def _current_run_start(versions: Iterable[Any], stage_id: str) -> datetime | None:
    """The earliest entry of the latest unbroken run of `stage_id` in a property history.

    HubSpot may record a value again without a change (an integration re-setting the stage):
    the deal entered the stage at the first of those, not the last."""
    dated = []
    for version in versions:
        when = _optional_datetime(_get(version, "timestamp"))
        if when is not None:
            dated.append((when, as_text(_get(version, "value"))))
    dated.sort(key=lambda item: item[0], reverse=True)  # newest first, ties in HubSpot's order
    start = None
    for when, value in dated:
        if value == stage_id:
            start = when
        elif start is not None:
            break
    return start


def _status_from_flags(props: Mapping[str, Any]) -> str:
    """A stage the pipelines do not know: HubSpot's own calculated flags say."""
    if _true(props.get("hs_is_closed_won")):
        return "won"
    if _true(props.get("hs_is_closed")) or _true(props.get("hs_is_closed_lost")):
        return "lost"
    return "open"


def to_contact(obj: Mapping[str, Any], *, roles: Iterable[str], primary: bool = False) -> Contact:
    """A HubSpot contact as a Contact on one deal, with its roles there (see
    `roles_from_associations`); the name falls back to the email address."""
    props = _properties(obj)
    email = as_text(props.get("email"))
    roles = (roles,) if isinstance(roles, str) else roles
    name = " ".join(
        p for p in (as_text(props.get("firstname")), as_text(props.get("lastname"))) if p
    )
    return Contact(
        id=_record_id(obj, "contact"),
        name=name or email,
        email=email,
        title=as_text(props.get("jobtitle")),
        roles=tuple(roles),
        primary=primary,
    )


def roles_from_associations(
    association_types: Iterable[Any], label_roles: Mapping[str, str | None]
) -> tuple[str, ...]:
    """A contact's roles on a deal from its associations v4 `associationTypes`: each labelled
    type (USER_DEFINED labels are the portal's own, e.g. "Decision maker") read through the
    tenant's `label_roles` as adapters/roles.py says; unlabelled types (HUBSPOT_DEFINED, label
    null) say nothing about a role."""
    return roles_for_labels(
        (as_text(_get(association, "label")) for association in association_types), label_roles
    )


def to_user(owner: Mapping[str, Any], *, archived: bool = False) -> User:
    """A HubSpot owner (owners API) as a User. Its id is the owner id, the value deals and
    activities carry in `hubspot_owner_id` (not `userId`, the login's id).

    An archived owner is a deactivated user (`GET /crm/v3/owners?archived=true` lists only
    those): it maps to `active=False`. `archived=True` says the owner came from that listing;
    the owner's own `archived` field says the same, and either is enough, so an answer that
    leaves the field out of one listing still maps right."""
    owner_id = as_text(owner.get("id"))
    if not owner_id:
        raise MappingError("HubSpot owner: field 'id' is missing")
    first = as_text(owner.get("firstName", owner.get("first_name")))
    last = as_text(owner.get("lastName", owner.get("last_name")))
    email = as_text(owner.get("email"))
    return User(
        id=owner_id, name=" ".join(p for p in (first, last) if p) or email, email=email,
        active=not (archived or owner.get("archived") is True),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------------


def to_activity(
    kind: str,
    obj: Mapping[str, Any],
    *,
    contacts_by_email: Mapping[str, str],
    associated_contacts: Iterable[str],
    deal_ids: Iterable[str],
    now: datetime,
) -> Activity | None:
    """A HubSpot call, email, meeting, task or note as an Activity; None for one that is not an
    activity at all: archived, a call that did not connect (or has not yet, at a past time), an
    email that bounced or failed, a canceled or no-show meeting (see the vocabularies above), a
    task or note Deal Radar created (OWN_MARKER).

    `kind` is ours or HubSpot's object type ("call", "calls", "0-48"). `contacts_by_email` maps
    the deal's contacts' addresses (any case) to their ids, to tell an email's To from its Cc;
    `associated_contacts` are the activity's associated contacts among the deal's (the caller
    filters them: the bundle refuses strangers); `now` decides whether a call, email or meeting
    is still to come."""
    kind = _activity_kind(kind)
    if obj.get("archived") is True:
        return None
    activity_id = _record_id(obj, kind)
    where = f"HubSpot {kind} {activity_id}"
    props = _properties(obj)
    if kind in BODIES and OWN_MARKER in as_text(props.get(BODIES[kind])):
        return None
    at = _activity_at(kind, props, where)
    status = STATUS_RULES[kind](props, at, _aware(now))
    if status is None:
        return None
    if kind == "task" and status == "done":
        # Done is never after it was completed: a task finished before its due date counts
        # from then, not from a date still to come.
        completed = _optional_datetime(props.get("hs_task_completion_date"))
        at = min(at, completed) if completed is not None else at
    if kind == "email":
        contacts, cc, sender_known = _email_participants(
            props, contacts_by_email, associated_contacts
        )
        direction = _email_direction(props, sender_known)
    else:
        contacts, cc = _unique(associated_contacts), ()
        direction = DIRECTION_RULES[kind](props)
    return Activity(
        id=activity_id,
        kind=kind,
        at=at,
        direction=direction,
        status=status,
        contacts=contacts,
        cc=cc,
        user=as_text(props.get("hubspot_owner_id")) or None,
        deals=_unique(deal_ids),
    )


def _activity_kind(kind: str) -> str:
    found = ACTIVITY_KINDS.get(str(kind).strip().lower())
    if found is None:
        raise MappingError(
            f"HubSpot activity type {kind!r} is not one of calls, emails, meetings, tasks, notes"
        )
    return found


def _activity_at(kind: str, props: Mapping[str, Any], where: str) -> datetime:
    """`hs_timestamp` (a task's due date); a meeting's start time first (the guide says the two
    should match, and the start is what the meeting is about)."""
    names = ("hs_meeting_start_time", "hs_timestamp") if kind == "meeting" else ("hs_timestamp",)
    for name in names:
        if props.get(name) not in (None, ""):
            return _required_datetime(props[name], where, name)
    raise MappingError(f"{where}: property 'hs_timestamp' is missing")


def _by_clock(at: datetime, now: datetime) -> str:
    return "scheduled" if at > now else "done"


def _call_status(props: Mapping[str, Any], at: datetime, now: datetime) -> str | None:
    status = _enum(props.get("hs_call_status"))
    if status in CALLS_NOT_CONNECTED and not (
        status == "MISSED" and _true(props.get("hs_call_has_voicemail"))
    ):
        return None
    if as_text(props.get("hs_call_disposition")).lower() in CALL_OUTCOMES_NOT_REACHED:
        return None
    if status in CALLS_NOT_YET_CONNECTED:
        return "scheduled" if at > now else None
    if status in CALLS_HELD:
        # Held whatever its time says: one logged ahead of the clock (a typo, a time zone) is
        # done work the engine counts once its time has come; read as planned, it would stay
        # planned in the snapshot, never counted, until the deal happened to be read again.
        return "done"
    return _by_clock(at, now)  # no status (logged by hand): planned if still to come


def _email_status(props: Mapping[str, Any], at: datetime, now: datetime) -> str | None:
    status = _enum(props.get("hs_email_status"))
    if status in EMAILS_NOT_DELIVERED:
        return None
    if status in EMAILS_SCHEDULED:
        return "scheduled"
    if status in EMAILS_SENT or not status:
        # An email is only ever planned as SCHEDULED: one without a status was logged by hand
        # (or forwarded, or synced from an inbox) after it went, whatever its time says.
        return "done"
    return _by_clock(at, now)


def _meeting_status(props: Mapping[str, Any], at: datetime, now: datetime) -> str | None:
    if _enum(props.get("hs_meeting_outcome")) in MEETINGS_NOT_HELD:
        return None
    return _by_clock(at, now)


def _task_status(props: Mapping[str, Any], at: datetime, now: datetime) -> str | None:
    return "done" if _enum(props.get("hs_task_status")) in TASKS_DONE else "scheduled"


def _note_status(props: Mapping[str, Any], at: datetime, now: datetime) -> str | None:
    return "done"


STATUS_RULES: dict[str, Callable[[Mapping[str, Any], datetime, datetime], str | None]] = {
    "call": _call_status,
    "email": _email_status,
    "meeting": _meeting_status,
    "task": _task_status,
    "note": _note_status,
}
"""Per kind: done, scheduled, or None for what is no activity (props, at, now)."""


def _call_direction(props: Mapping[str, Any]) -> str:
    # A call logged without a direction is taken as the rep's (HubSpot's UI logs outbound).
    return CALL_DIRECTIONS.get(_enum(props.get("hs_call_direction")), "outbound")


def _meeting_direction(props: Mapping[str, Any]) -> str:
    source = _enum(props.get("hs_meeting_source"))
    return "inbound" if source in MEETING_SOURCES_BOOKED_BY_CONTACT else "outbound"


def _internal(props: Mapping[str, Any]) -> str:
    return "internal"


DIRECTION_RULES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "call": _call_direction,
    "meeting": _meeting_direction,
    "task": _internal,
    "note": _internal,
}
"""Per kind but email (which needs its participants): inbound, outbound or internal."""


def _email_direction(props: Mapping[str, Any], sender_is_contact: bool) -> str:
    known = EMAIL_DIRECTIONS.get(_enum(props.get("hs_email_direction")))
    if known is not None:
        return known
    return "inbound" if sender_is_contact else "outbound"


def _email_participants(
    props: Mapping[str, Any],
    contacts_by_email: Mapping[str, str],
    associated_contacts: Iterable[str],
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(direct participants, copied only, whether the sender is one of the deal's contacts).

    Addresses come from the read-only `hs_email_{from,to,cc,bcc}_email` properties and from
    `hs_email_headers` (the JSON they are derived from, with `"Name <addr>"` forms, per the
    emails guide https://developers.hubspot.com/docs/api/crm/email), in any separator: both
    are read because the guide documents neither the separator nor `hs_email_cc_email`.
    Sender and To are direct, Cc and Bcc copied; an associated contact on neither list (an
    address HubSpot did not keep) counts as direct, as the engine would for any participant."""
    ids = {str(k).strip().casefold(): str(v) for k, v in contacts_by_email.items() if k}
    headers = _headers(props.get("hs_email_headers"))

    def matched(prop: str, *header_keys: str) -> list[str]:
        found = _addresses(props.get(prop), *(headers.get(k) for k in header_keys))
        return [ids[a] for a in found if a in ids]

    sender = matched("hs_email_from_email", "from")
    direct = _unique([*sender, *matched("hs_email_to_email", "to")])
    copied = matched("hs_email_cc_email", "cc") + matched("hs_email_bcc_email", "bcc")
    cc = tuple(c for c in _unique(copied) if c not in direct)
    extra = [c for c in associated_contacts if str(c) not in direct and str(c) not in cc]
    return _unique([*direct, *extra]), cc, bool(sender)


def _headers(raw: Any) -> dict[str, Any]:
    """`hs_email_headers` (a JSON string), or {} when absent or not JSON."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _addresses(*values: Any) -> list[str]:
    """Every email address in strings, header entries (`{"email": ...}`) or lists of either,
    lower-cased, in order of appearance."""
    found: list[str] = []
    for value in values:
        if not value:
            continue
        if isinstance(value, Mapping):
            found += _addresses(value.get("email"))
        elif isinstance(value, list | tuple):
            found += _addresses(*value)
        else:
            found += [a.casefold().lstrip("'").rstrip(".") for a in _ADDRESS.findall(str(value))]
    return found


# --------------------------------------------------------------------------------------------
# Reading HubSpot's JSON
# --------------------------------------------------------------------------------------------


def _properties(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("properties") or {}


def _history(obj: Mapping[str, Any], name: str) -> list[Any]:
    """A property's history from `propertiesWithHistory` (HTTP) or `properties_with_history`
    (SDK `to_dict()`, which leaves the entries as `ValueWithTimestamp` models: see `_get`)."""
    histories = obj.get("propertiesWithHistory") or obj.get("properties_with_history") or {}
    return list(histories.get(name) or ())


def _get(item: Any, key: str) -> Any:
    """A field of a JSON object, or the attribute of an SDK model: hubspot-api-client's
    `to_dict()` does not convert models nested in a dict of lists (history entries)."""
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _record_id(obj: Mapping[str, Any], record: str) -> str:
    rid = as_text(obj.get("id")) or as_text(_properties(obj).get("hs_object_id"))
    if not rid:
        raise MappingError(f"HubSpot {record}: field 'id' is missing")
    return rid


def _enum(value: Any) -> str:
    """An enumeration value as compared: upper case, spaces as underscores ("no show")."""
    return as_text(value).upper().replace(" ", "_")


def _true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return as_text(value).lower() == "true"


def _amount(value: Any) -> float | None:
    return as_number(value)


def _close_date(value: Any, zone: tzinfo) -> date | None:
    """`closedate` is a datetime in HubSpot, which shows it in its user's zone: its date there
    (the tenant's zone), the day a rep picked. None when empty or unreadable."""
    when = _optional_datetime(value)
    return when.astimezone(zone).date() if when else None


_DIGITS = re.compile(r"-?\d+")


def _parse_datetime(value: Any) -> datetime:
    """ISO 8601 (Z or offset; none means UTC), a date (midnight UTC), epoch milliseconds as a
    number or digits, or a datetime; aware. ValueError otherwise."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = as_text(value)
    if _DIGITS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return _aware(datetime.fromisoformat(text))


def _optional_datetime(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return _parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        return None


def _required_datetime(value: Any, where: str, name: str) -> datetime:
    try:
        return _parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        raise MappingError(
            f"{where}: property {name!r} is not a date-time (ISO 8601 or epoch ms): {value!r}"
        ) from None


def _aware(value: datetime) -> datetime:
    """In UTC; a naive value is taken as UTC (HubSpot's API speaks UTC)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if v not in (None, "")))
