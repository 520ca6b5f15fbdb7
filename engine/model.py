"""The canonical, CRM-neutral model: Deal, Contact, Activity, User, and the Bundle evaluated.

The JSON form is versioned (`"version": 1`, optional on input) and documented in the README.
Loading validates at the edge and names the record and the field of the first problem, so that
an adapter author or an admin piping JSON into `dealradar evaluate` knows what to fix. The loader
is hand-written rather than a marshmallow schema because it runs once per deal on every sweep:
it must cost no more than the JSON parse itself.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from engine.text import storable

SCHEMA_VERSION = 1
"""The version written by `dump_bundle`; loading accepts it or no version at all."""

ACTIVITY_KINDS = frozenset({"email", "call", "meeting", "task", "note"})
INTERACTION_KINDS = frozenset({"email", "call", "meeting"})
"""Done emails, calls and meetings are interactions; tasks and notes are not."""
DIRECTIONS = frozenset({"inbound", "outbound", "internal"})
ACTIVITY_STATUSES = frozenset({"done", "scheduled"})
DEAL_STATUSES = frozenset({"open", "won", "lost"})


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message names the record and the field."""


@dataclass(slots=True)
class User:
    id: str
    name: str = ""
    email: str = ""
    active: bool = True
    """False once the CRM says the user is deactivated (left the team): no login, and a CRM
    may refuse work assigned to them. Deal Radar then gives their tasks to
    `tasks.fallback_owner`, or leaves them unassigned."""


def role_key(role: str) -> str:
    """A role as compared: case, accents, spaces, underscores and hyphens ignored."""
    decomposed = unicodedata.normalize("NFKD", role)
    return "".join(
        ch for ch in decomposed if not unicodedata.combining(ch) and ch not in " _-\t"
    ).casefold()


@dataclass(slots=True)
class Contact:
    id: str
    name: str = ""
    email: str = ""
    title: str = ""
    roles: tuple[str, ...] = ()
    primary: bool = False
    role_keys: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """`roles` as compared (see `role_key`), worked out once per contact, not once per rule."""

    def __post_init__(self) -> None:
        self.role_keys = frozenset(_cached_role_key(r) for r in self.roles)


@dataclass(slots=True)
class Activity:
    id: str
    kind: str
    at: datetime
    direction: str
    status: str
    contacts: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    user: str | None = None
    deals: tuple[str, ...] = ()
    ts: float = field(default=0.0, repr=False, compare=False)
    """`at` as epoch seconds, kept because the engine compares thousands of them per second."""

    def __post_init__(self) -> None:
        if not self.ts:  # a store that kept the epoch passes it and saves the conversion
            self.ts = self.at.timestamp()

    @property
    def is_interaction(self) -> bool:
        return self.status == "done" and self.kind in INTERACTION_KINDS


@dataclass(slots=True)
class Deal:
    id: str
    name: str
    pipeline: str
    stage: str
    stage_entered_at: datetime
    created_at: datetime
    amount: float | None = None
    currency: str = ""
    close_date: date | None = None
    owner: str | None = None
    status: str = "open"
    url: str | None = None
    stage_name: str = ""
    """The stage as reps read it, when `stage` is the CRM's internal id (HubSpot, Sell)."""


_cached_role_key = lru_cache(maxsize=4096)(role_key)


_when = attrgetter("ts")
"""An activity's sort key: its epoch seconds (attrgetter runs in C, a function would not: the
sweep sorts some four million activities a day)."""


@dataclass(slots=True)
class Bundle:
    deal: Deal
    contacts: tuple[Contact, ...] = ()
    activities: tuple[Activity, ...] = ()
    """Always in chronological order (sorted on construction), which the engine relies on."""
    users: tuple[User, ...] = ()

    def __post_init__(self) -> None:
        self.activities = tuple(sorted(self.activities, key=_when))

    def contact(self, contact_id: str) -> Contact | None:
        for c in self.contacts:
            if c.id == contact_id:
                return c
        return None


# --- loading ---------------------------------------------------------------------------------


def _where(record: str, rid: Any) -> str:
    return f"{record} (id {rid!r})" if rid not in (None, "") else record


def _require_id(d: Mapping[str, Any], record: str) -> str:
    rid = d.get("id")
    if rid is None or rid == "":
        raise BundleError(f"{record}: field 'id' is missing")
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        raise BundleError(f"{record}: field 'id' must be a string, got {rid!r}")
    return str(rid)


def _text(d: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise BundleError(f"{where}: field {key!r} is missing")
        return ""
    if not isinstance(value, str):
        raise BundleError(f"{where}: field {key!r} must be a string, got {value!r}")
    return storable(value)


def _timestamp(d: Mapping[str, Any], key: str, where: str) -> datetime:
    value = d.get(key)
    if value is None:
        raise BundleError(f"{where}: field {key!r} is missing")
    if not isinstance(value, str):
        raise BundleError(f"{where}: field {key!r} must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BundleError(
            f"{where}: field {key!r} is not an ISO 8601 timestamp: {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise BundleError(
            f"{where}: field {key!r} needs a UTC offset or Z (e.g. 2026-11-25T09:00:00Z), "
            f"got {value!r}"
        )
    return parsed


def _optional_date(d: Mapping[str, Any], key: str, where: str) -> date | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BundleError(f"{where}: field {key!r} must be a YYYY-MM-DD string, got {value!r}")
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise BundleError(f"{where}: field {key!r} is not a YYYY-MM-DD date: {value!r}") from None


def _choice(
    d: Mapping[str, Any], key: str, where: str, allowed: frozenset[str], default: str | None = None
) -> str:
    value = d.get(key, default)
    if value is None:
        raise BundleError(
            f"{where}: field {key!r} is missing (one of {', '.join(sorted(allowed))})"
        )
    if value not in allowed:
        raise BundleError(
            f"{where}: field {key!r} is {value!r}, expected one of {', '.join(sorted(allowed))}"
        )
    return value


def _ids(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = d.get(key)
    if not value:
        return ()
    if not isinstance(value, list):
        raise BundleError(f"{where}: field {key!r} must be a list of ids, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise BundleError(
                f"{where}: field {key!r} must be a list of ids (strings), got {item!r} in it"
            )
    # A CRM may list a participant twice (sender and To); they are still one person.
    return tuple(dict.fromkeys(str(v) for v in value))


def _records(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BundleError(f"bundle: field {key!r} must be a list, got {type(value).__name__}")
    return value


def load_deal(d: Any) -> Deal:
    if not isinstance(d, Mapping):
        raise BundleError("bundle: field 'deal' must be an object")
    rid = _require_id(d, "deal")
    where = _where("deal", rid)
    amount = d.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        raise BundleError(f"{where}: field 'amount' must be a number or null, got {amount!r}")
    owner = d.get("owner")
    return Deal(
        id=rid,
        name=_text(d, "name", where),
        pipeline=_text(d, "pipeline", where, required=True),
        stage=_text(d, "stage", where, required=True),
        stage_entered_at=_timestamp(d, "stage_entered_at", where),
        created_at=_timestamp(d, "created_at", where),
        amount=amount,
        currency=_text(d, "currency", where),
        close_date=_optional_date(d, "close_date", where),
        owner=None if owner is None else str(owner),
        status=_choice(d, "status", where, DEAL_STATUSES, "open"),
        url=d.get("url") or None,
        stage_name=_text(d, "stage_name", where),
    )


def load_contact(d: Any, index: int) -> Contact:
    record = f"contacts[{index}]"
    if not isinstance(d, Mapping):
        raise BundleError(f"{record}: must be an object")
    rid = _require_id(d, record)
    where = _where(record, rid)
    roles = d.get("roles") or ()
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        raise BundleError(f"{where}: field 'roles' must be a list of strings, got {roles!r}")
    return Contact(
        id=rid,
        name=_text(d, "name", where),
        email=_text(d, "email", where),
        title=_text(d, "title", where),
        roles=tuple(roles),
        primary=bool(d.get("primary", False)),
    )


class _Unusual(Exception):
    """The fast path met something it does not check in detail; the careful path takes over."""


def _participants(value: Any, contact_ids: frozenset[str]) -> tuple[str, ...]:
    if not value:
        return ()
    try:
        if type(value) is not list or not contact_ids.issuperset(value):
            raise _Unusual
    except TypeError:  # an item that is not an id (an object): the careful path names it
        raise _Unusual from None
    return tuple(dict.fromkeys(value))


def _fast_activity(d: Any, contact_ids: frozenset[str]) -> Activity:
    """The common case, well-formed JSON, with the same checks as `_checked_activity` but cheap."""
    try:
        rid, kind, direction, status = d["id"], d["kind"], d["direction"], d["status"]
        at = datetime.fromisoformat(d["at"])
    except (KeyError, TypeError, ValueError):
        raise _Unusual from None
    if (
        type(rid) is not str
        or not rid
        or kind not in ACTIVITY_KINDS
        or direction not in DIRECTIONS
        or status not in ACTIVITY_STATUSES
        or at.tzinfo is None
    ):
        raise _Unusual
    user = d.get("user")
    deals = d.get("deals") or ()
    if deals and (type(deals) is not list or not all(type(x) is str for x in deals)):
        raise _Unusual
    return Activity(
        id=rid,
        kind=kind,
        at=at,
        direction=direction,
        status=status,
        contacts=_participants(d.get("contacts"), contact_ids),
        cc=_participants(d.get("cc"), contact_ids),
        user=None if user is None else str(user),
        deals=tuple(deals),
    )


def load_activity(d: Any, index: int, contact_ids: frozenset[str]) -> Activity:
    try:
        return _fast_activity(d, contact_ids)
    except _Unusual:
        return _checked_activity(d, index, contact_ids)


def _checked_activity(d: Any, index: int, contact_ids: frozenset[str]) -> Activity:
    record = f"activities[{index}]"
    if not isinstance(d, Mapping):
        raise BundleError(f"{record}: must be an object")
    rid = _require_id(d, record)
    where = _where(record, rid)
    kind = d.get("kind")
    if kind not in ACTIVITY_KINDS:
        raise BundleError(
            f"{where}: field 'kind' is {kind!r}, "
            f"expected one of {', '.join(sorted(ACTIVITY_KINDS))}"
        )
    contacts = _ids(d, "contacts", where)
    cc = _ids(d, "cc", where)
    for key, ids in (("contacts", contacts), ("cc", cc)):
        for cid in ids:
            if cid not in contact_ids:
                raise BundleError(
                    f"{where}: field {key!r} names contact {cid!r}, "
                    "which is not in the bundle's contacts"
                )
    user = d.get("user")
    return Activity(
        id=rid,
        kind=kind,
        at=_timestamp(d, "at", where),
        direction=_choice(d, "direction", where, DIRECTIONS),
        status=_choice(d, "status", where, ACTIVITY_STATUSES),
        contacts=contacts,
        cc=cc,
        user=None if user is None else str(user),
        deals=_ids(d, "deals", where),
    )


def load_user(d: Any, index: int) -> User:
    record = f"users[{index}]"
    if not isinstance(d, Mapping):
        raise BundleError(f"{record}: must be an object")
    rid = _require_id(d, record)
    where = _where(record, rid)
    active = d.get("active", True)
    if not isinstance(active, bool):
        raise BundleError(f"{where}: field 'active' must be true or false")
    return User(
        id=rid, name=_text(d, "name", where), email=_text(d, "email", where), active=active
    )


def _unique(records: Iterable[Any], name: str) -> None:
    seen: set[str] = set()
    for i, r in enumerate(records):
        if r.id in seen:
            raise BundleError(
                f"{name}[{i}] (id {r.id!r}): field 'id' repeats an earlier {name[:-1]}"
            )
        seen.add(r.id)


def load_bundle(data: Any) -> Bundle:
    """Build a Bundle from its JSON form (already parsed); raise BundleError naming the field."""
    if not isinstance(data, Mapping):
        raise BundleError(
            "bundle: must be a JSON object with 'deal', 'contacts', 'activities', 'users'"
        )
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"bundle: field 'version' is {version!r}; this Deal Radar reads version 1"
        )
    if "deal" not in data:
        raise BundleError("bundle: field 'deal' is missing")
    deal = load_deal(data["deal"])
    contacts = tuple(load_contact(c, i) for i, c in enumerate(_records(data, "contacts")))
    _unique(contacts, "contacts")
    contact_ids = frozenset(c.id for c in contacts)
    activities = tuple(
        load_activity(a, i, contact_ids) for i, a in enumerate(_records(data, "activities"))
    )
    _unique(activities, "activities")
    users = tuple(load_user(u, i) for i, u in enumerate(_records(data, "users")))
    _unique(users, "users")
    return Bundle(deal=deal, contacts=contacts, activities=activities, users=users)


# --- dumping ---------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def dump_bundle(bundle: Bundle) -> dict[str, Any]:
    """The versioned JSON form of a bundle; `load_bundle(dump_bundle(b)) == b`."""
    d = bundle.deal
    deal: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "pipeline": d.pipeline,
        "stage": d.stage,
        "stage_entered_at": _iso(d.stage_entered_at),
        "amount": d.amount,
        "currency": d.currency,
        "close_date": d.close_date.isoformat() if d.close_date else None,
        "created_at": _iso(d.created_at),
        "owner": d.owner,
        "status": d.status,
    }
    if d.url:
        deal["url"] = d.url
    if d.stage_name:
        deal["stage_name"] = d.stage_name
    return {
        "version": SCHEMA_VERSION,
        "deal": deal,
        "contacts": [
            {
                "id": c.id,
                "name": c.name,
                "email": c.email,
                "title": c.title,
                "roles": list(c.roles),
                "primary": c.primary,
            }
            for c in bundle.contacts
        ],
        "activities": [
            {
                "id": a.id,
                "kind": a.kind,
                "at": _iso(a.at),
                "direction": a.direction,
                "status": a.status,
                "contacts": list(a.contacts),
                "cc": list(a.cc),
                "user": a.user,
                **({"deals": list(a.deals)} if a.deals else {}),
            }
            for a in bundle.activities
        ],
        "users": [
            {"id": u.id, "name": u.name, "email": u.email} | ({} if u.active else {"active": False})
            for u in bundle.users
        ],
    }
