"""Zendesk Sell's shape vs ours: Core API v2 records (plain dicts) to `engine.model`, one
`to_<entity>` per object.

Input is the Core API's record shape (`GET /v2/deals` items' `data`). The Firehose shows
records in its own shape (a deal's `value` as a decimal string, custom fields as a
`custom_field_values` array, no `updated_at`): `core_shape` turns a feed record into the Core
API's, so that the mirror and the mapping read one shape only.

Pure: no I/O and no clock (`now` is a parameter). Error policy: data Sell always sends but that
is missing or unreadable here (a deal's stage, a record's creation time) raises `MappingError`
naming the record and the field; optional values that cannot be read map to None.

Sell's vocabularies, and what we make of them:

- A deal's stage has a `category`: `won` is won, `lost` and `unqualified` are lost, any other
  (incoming, in_progress) is open. The pipeline is the stage's.
- A deal's `value` defaults to 0 when nobody gave one (Sell's UI and API store 0, not null:
  sandbox/sell_seed.py), so 0 is taken as an empty amount, which `amount_missing` is about.
- The stage was entered at `last_stage_change_at`, unless the change feed saw the deal enter its
  current stage later (an `updated` event whose `previous` holds another `stage_id`: the
  observation `to_deal` takes): a stage cannot be entered before the change that moved the deal
  there, and `last_stage_change_at` is writable by any client. Neither: `added_at`, then
  `created_at`.
- Sell's deal-contact role is always "involved" (crm-apis.md 3.3), so buying roles come from the
  contact: the custom field named in the settings (`sell.role_field`, a list, multi-select list
  or text of comma-separated roles) and/or its tags (`sell.role_tag_prefix`): see `roles_of`.
- Calls: `incoming` true is inbound, else outbound; a `missed` call reached nobody and is no
  interaction; `made_at` is when. A call's contact is its `resource_id` when its `resource_type`
  is contact (or prospect_and_customer); its deals are `associated_deal_ids`.
- Visits are meetings (Sell's logged meetings): at `visited_at`, done once past, scheduled
  before; the rep went to the customer, so outbound.
- Tasks: at their `due_date`, done when `completed` (at `completed_at` when earlier), else
  scheduled. Notes: done, at creation.
  Both internal. Tasks and notes Deal Radar made (OWN_MARKER in their content) are left out:
  they are our output, not the rep's work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from adapters.coerce import as_number, as_text
from adapters.marker import OWN_MARKER
from engine.model import Activity, Contact, Deal, User, role_key

__all__ = [
    "MappingError",
    "Stage",
    "Stages",
    "core_shape",
    "deal_links",
    "observed_stage",
    "roles_of",
    "to_activity",
    "to_contact",
    "to_deal",
    "to_user",
]

DEAL_URL = "https://app.futuresimple.com/sales/deals/{id}"
"""Where a rep opens a deal in Sell's web app."""
WON = frozenset({"won"})
LOST = frozenset({"lost", "unqualified"})
ACTIVITY_KINDS = {"calls": "call", "visits": "meeting", "tasks": "task", "notes": "note"}
"""Our activity kind for each Sell activity resource."""
CONTACT_TYPES = frozenset({"contact", "prospect_and_customer"})
"""`resource_type` values whose `resource_id` is a contact."""
"""Ends the content of every task and note Deal Radar creates (adapters/sell/actions.py)."""
_SPLIT = re.compile(r"\s*[,;]\s*")


class MappingError(ValueError):
    """A Sell record lacks data every such record has; the message names record and field."""


# --------------------------------------------------------------------------------------------
# Feed records
# --------------------------------------------------------------------------------------------


def core_shape(resource: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A Firehose record in the Core API's shape: `custom_field_values` ([{"name", "value"}])
    as `custom_fields` {name: value}, a deal's decimal-string `value` as a number."""
    out = {k: v for k, v in data.items() if k != "custom_field_values"}
    if "custom_field_values" in data:
        out["custom_fields"] = {
            str(v.get("name")): v.get("value")
            for v in data.get("custom_field_values") or ()
            if isinstance(v, Mapping) and v.get("name") and v.get("value") is not None
        }
    if resource == "deals" and isinstance(out.get("value"), str):
        out["value"] = as_number(out["value"])
    return out


def deal_links(resource: str, record: Mapping[str, Any]) -> list[str]:
    """The deals an activity belongs to: a call's `associated_deal_ids`, a visit's, note's or
    task's `resource_id` when its `resource_type` is deal."""
    ids = [str(d) for d in record.get("associated_deal_ids") or ()]
    if resource != "calls" and record.get("resource_type") == "deal":
        ids.append(str(record.get("resource_id")))
    return list(dict.fromkeys(i for i in ids if i not in ("", "None")))


def observed_stage(entry: Mapping[str, Any] | None) -> tuple[str, datetime] | None:
    """A stage change the feed saw, as the firehose module notes it ({"stage_id", "at"}), in
    the form `to_deal` takes; None for none (or one without a readable time)."""
    at = _datetime((entry or {}).get("at"))
    return (as_text((entry or {}).get("stage_id")), at) if at is not None else None


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    pipeline: str
    name: str
    category: str

    @property
    def status(self) -> str:
        category = self.category.lower()
        return "won" if category in WON else "lost" if category in LOST else "open"


@dataclass(frozen=True, slots=True)
class Stages:
    """The account's deal stages by id (`GET /v2/stages`)."""

    by_id: Mapping[str, Stage]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Stages:
        return cls({
            str(r["id"]): Stage(str(r["id"]), str(r.get("pipeline_id") or ""),
                                str(r.get("name") or r["id"]), str(r.get("category") or ""))
            for r in records
        })  # fmt: skip


# --------------------------------------------------------------------------------------------
# Deals, contacts, roles, users
# --------------------------------------------------------------------------------------------


def to_deal(
    record: Mapping[str, Any],
    *,
    stages: Stages,
    observed_stage: tuple[str, datetime] | None = None,
) -> Deal:
    """A Sell deal as a Deal. `observed_stage` is (stage id, when) of the latest stage change
    the change feed saw for this deal, if any."""
    deal_id = _id(record, "deal")
    where = f"Sell deal {deal_id}"
    stage_id = as_text(record.get("stage_id"))
    if not stage_id:
        raise MappingError(f"{where}: field 'stage_id' is missing")
    stage = stages.by_id.get(stage_id)
    if stage is None:
        raise MappingError(f"{where}: stage {stage_id} is none of the account's stages")
    created = _required(record, ("added_at", "created_at"), where)
    entered = _datetime(record.get("last_stage_change_at"))
    seen = observed_stage
    if seen is not None and seen[0] == stage_id and (entered is None or seen[1] > entered):
        entered = seen[1]
    amount = as_number(record.get("value"))
    return Deal(
        id=deal_id,
        name=as_text(record.get("name")),
        pipeline=stage.pipeline,
        stage=stage_id,
        stage_entered_at=entered or created,
        created_at=created,
        amount=amount if amount else None,
        currency=as_text(record.get("currency")),
        close_date=_date(record.get("estimated_close_date")),
        owner=as_text(record.get("owner_id")) or None,
        status=stage.status,
        url=DEAL_URL.format(id=deal_id),
        stage_name=stage.name,
    )


def roles_of(
    contact: Mapping[str, Any],
    *,
    role_field: str,
    tag_prefix: str | None,
    roles: Sequence[str],
    role_labels: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """A contact's buying roles: the values of its custom field `role_field` ("" reads none:
    a list choice, a multi-select list's choices, or a text of comma-separated roles), and,
    unless `tag_prefix` is None, its tags: with a prefix ("role:"), what follows it on the tags
    that bear it; with "", the tags that spell one of the configured `roles`. Each is mapped
    through `role_labels` (a label -> role mapping from the settings, "" drops a label), then
    given the configured role's spelling when it spells one (case, accents, spaces aside).
    Sorted, one per role as the engine compares them."""
    labels: list[str] = []
    if role_field:
        labels += _labels((contact.get("custom_fields") or {}).get(role_field))
    if tag_prefix is not None:
        wanted = {role_key(r) for r in roles}
        for tag in contact.get("tags") or ():
            tag = as_text(tag)
            if tag_prefix:
                if tag.lower().startswith(tag_prefix.lower()):
                    labels.append(tag[len(tag_prefix) :].strip())
            elif role_key(tag) in wanted:
                labels.append(tag)
    mapped = dict(role_labels or {})
    by_key = {role_key(k): v for k, v in mapped.items()}
    canonical = {role_key(r): r for r in roles}
    out: dict[str, str] = {}
    for label in labels:
        if not label:
            continue
        role = mapped.get(label, by_key.get(role_key(label), label))
        if role:
            role = canonical.get(role_key(role), role)
            out.setdefault(role_key(role), role)
    return tuple(sorted(out.values(), key=lambda r: (role_key(r), r)))


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [as_text(value.get("name"))]
    if isinstance(value, list | tuple):
        return [label for v in value for label in _labels(v)]
    return [part for part in _SPLIT.split(as_text(value)) if part]


def to_contact(
    record: Mapping[str, Any], *, roles: Iterable[str], primary: bool = False
) -> Contact:
    """A Sell contact (a person, or an organisation on the deal) as a Contact on one deal."""
    name = as_text(record.get("name")) or " ".join(
        p for p in (as_text(record.get("first_name")), as_text(record.get("last_name"))) if p
    )
    email = as_text(record.get("email"))
    return Contact(
        id=_id(record, "contact"),
        name=name or email,
        email=email,
        title=as_text(record.get("title")),
        roles=tuple(roles),
        primary=primary,
    )


def to_user(record: Mapping[str, Any]) -> User:
    """A Sell user (`GET /v2/users`): the id deals and activities carry as owner or user.
    Sell's `status` is "active" or "inactive" (a deactivated user: no login, still owning their
    deals); only "inactive" makes the user inactive, so a missing or new value keeps their
    tasks with them rather than handing them to the fallback owner."""
    return User(
        id=_id(record, "user"), name=as_text(record.get("name")),
        email=as_text(record.get("email")),
        active=as_text(record.get("status")).lower() != "inactive",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------------


def to_activity(
    resource: str,
    record: Mapping[str, Any],
    *,
    deal_contacts: Iterable[str],
    now: datetime,
) -> Activity | None:
    """A Sell call, visit, task or note as an Activity; None for one that is no activity (a
    missed call, a task or note Deal Radar made). `deal_contacts` are the ids of the deal's
    contacts: the activity's contact counts only if it is one of them (the bundle refuses
    strangers); `now` tells a visit or call to come from one held."""
    kind = ACTIVITY_KINDS.get(resource)
    if kind is None:
        raise MappingError(f"Sell resource {resource!r} is not one of {', '.join(ACTIVITY_KINDS)}")
    activity_id = _id(record, kind)
    where = f"Sell {resource[:-1]} {activity_id}"
    if kind in ("task", "note") and OWN_MARKER in as_text(record.get("content")):
        return None
    if kind == "call" and record.get("missed") is True:
        return None
    now = _aware(now)
    if kind == "call":
        at = _required(record, ("made_at", "created_at"), where)
        status = "scheduled" if at > now else "done"
        direction = "inbound" if record.get("incoming") is True else "outbound"
        user = record.get("user_id")
    elif kind == "meeting":
        at = _required(record, ("visited_at", "created_at"), where)
        status = "scheduled" if at > now else "done"
        direction, user = "outbound", record.get("creator_id")
    elif kind == "task":
        at = _required(record, ("due_date", "created_at"), where)
        status = "done" if record.get("completed") is True else "scheduled"
        completed = _datetime(record.get("completed_at")) if status == "done" else None
        if completed is not None and (record.get("due_date") in (None, "") or completed < at):
            # Done is never after it was completed: a task finished before its due date counts
            # from then, not from a date still to come.
            at = completed
        direction, user = "internal", record.get("owner_id")
    else:
        at = _required(record, ("created_at",), where)
        status, direction, user = "done", "internal", record.get("creator_id")
    wanted = {str(c) for c in deal_contacts}
    contact = as_text(record.get("resource_id"))
    contacts = (
        (contact,)
        if record.get("resource_type") in CONTACT_TYPES and contact in wanted
        else ()
    )  # fmt: skip
    return Activity(
        id=activity_id,
        kind=kind,
        at=at,
        direction=direction,
        status=status,
        contacts=contacts,
        user=as_text(user) or None,
        deals=tuple(deal_links(resource, record)),
    )


# --------------------------------------------------------------------------------------------
# Reading Sell's JSON
# --------------------------------------------------------------------------------------------


def _id(record: Mapping[str, Any], what: str) -> str:
    rid = as_text(record.get("id"))
    if not rid:
        raise MappingError(f"Sell {what}: field 'id' is missing")
    return rid


def _aware(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _datetime(value: Any) -> datetime | None:
    """Sell's `2017-09-25T13:52:40Z` (or a date: midnight UTC); None when empty or unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return _aware(value)
    try:
        return _aware(datetime.fromisoformat(as_text(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def _required(record: Mapping[str, Any], names: Sequence[str], where: str) -> datetime:
    """The first of `names` holding a date-time; MappingError naming the first otherwise."""
    for name in names:
        found = _datetime(record.get(name))
        if found is not None:
            return found
    raise MappingError(f"{where}: field {names[0]!r} is missing or not a date-time")


def _date(value: Any) -> date | None:
    """`estimated_close_date`: ISO `2026-12-31` (or Sell's `12/31/2026`); None otherwise."""
    text = as_text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        return None
