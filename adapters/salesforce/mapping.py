"""Salesforce's shape vs ours: REST query records (plain dicts) to `engine.model`, one `to_<entity>`
per object.

Input is what the adapter's SOQL returns (adapters/salesforce/adapter.py names the fields):
an Opportunity with its child results (`OpportunityContactRoles`, `OpportunityHistories`,
`Tasks`, `Events`, `Emails`, each `{totalSize, done, records}` or null when empty),
parent fields nested (`Owner: {Name, Email, IsActive}`, `Contact: {Name, Email, Title}`),
datetimes as `2026-11-25T09:00:00.000+0000`, dates as `2026-11-25`.

Pure: no I/O and no clock (`now` is a parameter). Error policy: data Salesforce always sends
but missing here (an opportunity's StageName or CreatedDate, an event's start) raises
`MappingError` naming the record and the field; optional values that cannot be read map to
None, because the engine has alerts for exactly that (`amount_missing`).

Choices where Salesforce's semantics need one are documented at the vocabulary they concern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from adapters.coerce import as_number, as_text
from adapters.marker import OWN_MARKER
from adapters.roles import roles_for_labels
from engine.model import Activity, Contact, Deal, User

__all__ = [
    "MappingError",
    "children",
    "id18",
    "stage_entered_at",
    "to_contact",
    "to_deal",
    "to_email",
    "to_event",
    "to_task",
    "to_user",
    "user_id",
]

PIPELINE = "default"
"""Salesforce has one opportunity stage list per sales process; Deal Radar reads StageName
alone, so every opportunity is in one pipeline (settings' `pipelines.default`)."""
"""Ends the Description of every task Deal Radar creates (adapters/salesforce/actions.py):
they are its output, not the rep's work, so they are no activity (an open one would count as a
next step and silence the alert it was made for)."""
CALL_TYPES = {"inbound": "inbound", "outbound": "outbound", "internal": "internal"}
"""Task.CallType, the rep's side of a logged call; none given is taken as outbound."""
EMAIL_DRAFT = "5"
"""EmailMessage.Status: 0 new, 1 read, 2 replied, 3 sent, 4 forwarded, 5 draft. A draft was
never sent: no activity."""
TO, CC, BCC, FROM = "ToAddress", "CcAddress", "BccAddress", "FromAddress"
"""EmailMessageRelation.RelationType values."""
NOON = time(12, 0)
"""A date-only value (ActivityDate, an all-day event) is placed at noon of that day in the
tenant's zone: the calendar day the rep gave, wherever the team is (Salesforce stores
ActivityDate as midnight UTC, which is the day before in the Americas: crm-apis.md 2.4; noon
UTC would be the next day in New Zealand's summer, UTC+13)."""


def _noon(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, NOON, tzinfo=zone)

_ADDRESS = re.compile(r"[^\s<>,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+")


class MappingError(ValueError):
    """A Salesforce record lacks data every such record has; the message names record and field."""


# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------

_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
USER_PREFIX = "005"
"""The key prefix of User ids (the first three characters of a record id name its object)."""
_LETTERS_AND_DIGITS = re.compile(r"[A-Za-z0-9]*")


def id18(record_id: str) -> str:
    """The 18-character, case-insensitive form of a 15- or 18-character Salesforce id (the
    suffix encodes which of the 15 characters are capitals, five at a time)."""
    if len(record_id) != 15:
        return record_id
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, ch in enumerate(record_id[start : start + 5]) if "A" <= ch <= "Z")
        suffix += _CHECKSUM[bits]
    return record_id + suffix


def user_id(text: str) -> str:
    """The 18-character id the API sends for a user id an admin wrote (15 characters, as the
    Salesforce UI and reports show it, or 18); ValueError, quoting the text and saying what is
    wrong, for text that can be no user's id: then it could never match any user."""
    if len(text) not in (15, 18):
        raise ValueError(
            f"{text!r} is not a Salesforce user id: it has {len(text)} characters, a user id 15 "
            f"or 18, starting {USER_PREFIX} (copy it from the user's page in Setup, or from the "
            "User ID column of a report)"
        )
    if not _LETTERS_AND_DIGITS.fullmatch(text):
        bad = next(ch for ch in text if not (ch.isascii() and ch.isalnum()))
        raise ValueError(f"{text!r} is not a Salesforce user id: {bad!r} is no letter or digit")
    if not text.startswith(USER_PREFIX):
        raise ValueError(
            f"{text!r} is not a Salesforce user id: user ids start with {USER_PREFIX}, and "
            f"{text[:3]} is another kind of record's"
        )
    full = id18(text[:15])
    if len(text) == 18 and text[15:].upper() != full[15:]:
        raise ValueError(
            f"{text!r} is not a Salesforce id: its last three characters, which say which of "
            f"the first 15 are capitals, should be {full[15:]}; a character was mistyped or "
            "changed case: copy the id from Salesforce again"
        )
    return full


# --------------------------------------------------------------------------------------------
# Opportunities
# --------------------------------------------------------------------------------------------


def to_deal(opp: Mapping[str, Any], *, instance_url: str) -> Deal:
    """An Opportunity (with its `OpportunityHistories` child result) as a Deal."""
    deal_id = _id(opp, "Opportunity")
    where = f"Salesforce Opportunity {deal_id}"
    stage = as_text(opp.get("StageName"))
    if not stage:
        raise MappingError(f"{where}: field 'StageName' is missing")
    created = _required_datetime(opp.get("CreatedDate"), where, "CreatedDate")
    status = "won" if opp.get("IsWon") else "lost" if opp.get("IsClosed") else "open"
    return Deal(
        id=deal_id,
        name=as_text(opp.get("Name")),
        pipeline=PIPELINE,
        stage=stage,
        stage_entered_at=stage_entered_at(children(opp, "OpportunityHistories"), stage) or created,
        created_at=created,
        amount=as_number(opp.get("Amount")),
        currency=as_text(opp.get("CurrencyIsoCode")),
        close_date=_date(opp.get("CloseDate")),
        owner=as_text(opp.get("OwnerId")) or None,
        status=status,
        url=f"{instance_url.rstrip('/')}/lightning/r/Opportunity/{deal_id}/view",
    )


def stage_entered_at(history: Iterable[Mapping[str, Any]], stage: str) -> datetime | None:
    """When the opportunity entered `stage`: the earliest row of the latest unbroken run of
    that stage in OpportunityHistory (a row is written for each change of StageName, Amount,
    CloseDate or Probability, so an amount change repeats the stage: crm-apis.md 2.2); None
    when the history says nothing (rows of another stage only)."""
    dated = []
    for row in history:
        when = _optional_datetime(row.get("CreatedDate"))
        if when is not None:
            dated.append((when, as_text(row.get("StageName"))))
    dated.sort(key=lambda item: item[0], reverse=True)
    start = None
    for when, value in dated:
        if value == stage:
            start = when
        elif start is not None:
            break
    return start


def children(record: Mapping[str, Any], relationship: str) -> list[Mapping[str, Any]]:
    """The records of a child result (`{records: [...]}`; null when the record has none)."""
    result = record.get(relationship)
    return list(result.get("records") or ()) if isinstance(result, Mapping) else []


# --------------------------------------------------------------------------------------------
# Contacts, roles, users
# --------------------------------------------------------------------------------------------


def to_contact(
    contact_id: str,
    contact: Mapping[str, Any],
    roles: Sequence[str | None],
    *,
    primary: bool,
    label_roles: Mapping[str, str | None],
) -> Contact:
    """A contact on one opportunity from its OpportunityContactRole rows: the `Contact`
    parent fields, its Role values read through the tenant's `label_roles` (adapters/roles.py;
    the org's picklist values are matched to the configured roles at install), primary when
    one of its rows is."""
    email = as_text(contact.get("Email"))
    return Contact(
        id=contact_id,
        name=as_text(contact.get("Name")) or email,
        email=email,
        title=as_text(contact.get("Title")),
        roles=roles_for_labels(roles, label_roles),
        primary=primary,
    )


def to_user(user_id: str, user: Mapping[str, Any] | None) -> User:
    """A User from an `Owner` or `CreatedBy` parent field (Name, Email, IsActive).

    Inactive only when Salesforce says IsActive false: a parent field the query did not
    select, or a user the API user cannot see (null), says nothing of it."""
    user = user or {}
    return User(
        id=user_id,
        name=as_text(user.get("Name")),
        email=as_text(user.get("Email")),
        active=user.get("IsActive") is not False,
    )


# --------------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------------


def to_task(
    task: Mapping[str, Any],
    *,
    deal_id: str,
    contacts: set[str],
    zone: tzinfo = UTC,
    related: Sequence[str] = (),
) -> Activity | None:
    """A Task as a call (TaskSubtype Call, or a CallType) or a task; None for one Deal Radar
    created (OWN_MARKER) and for email tasks, which the EmailMessage they log stands for.

    Done when closed (IsClosed, set from a closed Status), at CompletedDateTime when it falls
    on the ActivityDate (the day the rep gave, in `zone`, the tenant's), else at that day's noon,
    but never after its completion; an open task is due at its ActivityDate's noon (its
    creation when it has none), scheduled. Its contacts are its WhoId and the `related` ones
    (TaskRelation's RelationId: with Shared Activities one task relates to up to 50 contacts,
    crm-apis.md 2.4) among the opportunity's contacts."""
    task_id = _id(task, "Task")
    if OWN_MARKER in as_text(task.get("Description")):
        return None
    subtype = as_text(task.get("TaskSubtype")).lower()
    if subtype in ("email", "listemail"):
        return None
    call_type = as_text(task.get("CallType")).lower()
    kind = "call" if subtype == "call" or call_type else "task"
    where = f"Salesforce Task {task_id}"
    day = _date(task.get("ActivityDate"))
    closed = bool(task.get("IsClosed"))
    completed = _optional_datetime(task.get("CompletedDateTime"))
    if closed and completed is not None and (
        day is None or completed.astimezone(zone).date() == day or _noon(day, zone) > completed
    ):
        # Done is never after it was completed: a task closed before its due day (or a day that
        # is the rep's local one, east of UTC) is dated at its completion.
        at = completed
    elif day is not None:
        at = _noon(day, zone)
    else:
        at = completed or _required_datetime(task.get("CreatedDate"), where, "CreatedDate")
    # An open call task is a call to make, like any open task: scheduled, whatever its date.
    direction = CALL_TYPES.get(call_type, "outbound") if kind == "call" else "internal"
    status = "done" if closed else "scheduled"
    people = [as_text(task.get("WhoId")), *related]
    return Activity(
        id=task_id,
        kind=kind,
        at=at,
        direction=direction,
        status=status,
        contacts=_unique(p for p in people if p in contacts),
        user=as_text(task.get("OwnerId")) or None,
        deals=(deal_id,),
    )


NOT_ATTENDING = frozenset({"Declined", "Uninvited"})
"""EventRelation statuses of an invitee who did not take part."""


def to_event(
    event: Mapping[str, Any],
    *,
    deal_id: str,
    attendees: Sequence[Mapping[str, Any]],
    contacts: set[str],
    now: datetime,
    zone: tzinfo = UTC,
) -> Activity:
    """An Event as a meeting at its start (an all-day event at its day's noon in `zone`): done
    once begun, scheduled before. Its contacts are its attendees (EventRelation rows:
    RelationId, Status) and WhoId among the opportunity's contacts, but for those who declined:
    with Shared Activities one event relates to up to 50 contacts (crm-apis.md 2.4)."""
    event_id = _id(event, "Event")
    where = f"Salesforce Event {event_id}"
    if event.get("IsAllDayEvent") and event.get("ActivityDate"):
        at = _noon(_date(event["ActivityDate"]) or date.min, zone)
    else:
        at = _required_datetime(
            event.get("StartDateTime") or event.get("ActivityDateTime"), where, "StartDateTime"
        )
    absent = {as_text(r.get("RelationId")) for r in attendees if r.get("Status") in NOT_ATTENDING}
    invited = [as_text(r.get("RelationId")) for r in attendees]
    who = as_text(event.get("WhoId"))
    people = [p for p in (*invited, who) if p in contacts and p not in absent]
    return Activity(
        id=event_id,
        kind="meeting",
        at=at,
        direction="outbound",
        status="scheduled" if at > now else "done",
        contacts=_unique(people),
        user=as_text(event.get("OwnerId")) or None,
        deals=(deal_id,),
    )


def to_email(
    message: Mapping[str, Any],
    *,
    deal_id: str,
    relations: Sequence[Mapping[str, Any]],
    contacts: set[str],
    contacts_by_email: Mapping[str, str],
    now: datetime,
) -> Activity | None:
    """An EmailMessage as an email; None for a draft.

    Who was To and who was Cc: EmailMessageRelation's RelationType for the recipients that
    are records (Salesforce may leave those out of ToAddress/CcAddress: crm-apis.md traps 14),
    and the addresses of ToAddress/CcAddress/BccAddress/FromAddress matched to the
    opportunity's contacts for the others. Sender and To are direct participants, Cc and Bcc
    copied; `Incoming` gives the direction."""
    message_id = _id(message, "EmailMessage")
    if as_text(message.get("Status")) == EMAIL_DRAFT:
        return None
    where = f"Salesforce EmailMessage {message_id}"
    at = _required_datetime(
        message.get("MessageDate") or message.get("CreatedDate"), where, "MessageDate"
    )
    direct: list[str] = []
    copied: list[str] = []
    for relation in relations:
        who = as_text(relation.get("RelationId"))
        if who not in contacts:
            continue
        kind = as_text(relation.get("RelationType"))
        if kind in (TO, FROM):
            direct.append(who)
        elif kind in (CC, BCC):
            copied.append(who)
    by_email = {k.casefold(): v for k, v in contacts_by_email.items() if k}
    for name, bucket in ((FROM, direct), (TO, direct), (CC, copied), (BCC, copied)):
        bucket += [by_email[a] for a in _addresses(message.get(name)) if a in by_email]
    direct_ids = _unique(direct)
    return Activity(
        id=message_id,
        kind="email",
        at=at,
        direction="inbound" if message.get("Incoming") else "outbound",
        status="scheduled" if at > now else "done",
        contacts=direct_ids,
        cc=tuple(c for c in _unique(copied) if c not in direct_ids),
        user=as_text(message.get("CreatedById")) or None,
        deals=(deal_id,),
    )


# --------------------------------------------------------------------------------------------
# Reading Salesforce's JSON
# --------------------------------------------------------------------------------------------


def _id(record: Mapping[str, Any], sobject: str) -> str:
    rid = as_text(record.get("Id"))
    if not rid:
        raise MappingError(f"Salesforce {sobject}: field 'Id' is missing")
    return rid


def _date(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _optional_datetime(value: Any) -> datetime | None:
    """Salesforce's `2026-11-25T09:00:00.000+0000` (or Z, or +00:00); aware, in UTC."""
    if not value:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", text):
            text = text[:-2] + ":" + text[-2:]
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _required_datetime(value: Any, where: str, name: str) -> datetime:
    moment = _optional_datetime(value)
    if moment is None:
        raise MappingError(f"{where}: field {name!r} is not a date-time: {value!r}")
    return moment


def _addresses(value: Any) -> list[str]:
    """Every address in a `;`- or `,`-separated Salesforce address field, lower-cased."""
    return [a.casefold().rstrip(".") for a in _ADDRESS.findall(as_text(value))]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))
