"""In-memory state of one emulated HubSpot portal: records, properties, pipelines, owners,
associations and labels, OAuth tokens, request counts and rate limits.

Everything here is plain Python (no HTTP); ``sandbox.hubspot_app`` serves it. All public methods
take one re-entrant lock, so the threaded server and a test's direct calls can interleave. The
clock is injected (``clock`` returns an aware datetime) so token expiry, rate-limit windows,
``hs_lastmodifieddate`` and webhook ``occurredAt`` follow a test's time, not the wall clock.

Error policy: every refusal is a ``HubSpotError`` carrying the HTTP status and HubSpot's error body
fields (status, message, category, subCategory, errors, context), raised the same way from the
Python API and the HTTP API, so seeding code fails exactly where a real portal would refuse.
"""

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.hubspot_auth import (
    ACCESS_TOKEN_TTL,
    BURST_LIMIT,
    BURST_WINDOW,
    SEARCH_LIMIT_PER_SECOND,
    OAuthTokens,
    RateWindow,
    Token,
)
from sandbox.hubspot_errors import (
    HubSpotError,
    not_found,
    prop_error,
    property_errors,
    rate_limited,
    validation,
)
from sandbox.hubspot_objects import (
    ACTIVITY_TYPES,
    DEFAULT_ASSOCIATION_TYPES,
    OBJECT_TYPES,
    PRIMARY_ASSOCIATION_TYPES,
    default_properties,
    resolve_object_type,
)
from sandbox.hubspot_webhooks import WebhookDispatcher

__all__ = [  # HubSpotError, Token and ACCESS_TOKEN_TTL re-exported for callers of this module
    "ACCESS_TOKEN_TTL",
    "Change",
    "HubSpotError",
    "HubSpotState",
    "Source",
    "Token",
    "format_datetime",
    "not_found",
    "parse_datetime",
    "validation",
]

_FIRST_ID = 10_001


# --------------------------------------------------------------------------------------------
# Sources and change events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Who made a change: becomes the webhook ``changeSource``/``sourceId`` and the history's
    ``sourceType``/``sourceId``/``updatedByUserId``."""

    change_source: str  # CRM_UI, INTEGRATION, API, CALCULATED, IMPORT ...
    source_id: str | None = None
    user_id: int | None = None
    label: str | None = None

    @classmethod
    def ui(cls, user_id: int) -> "Source":
        """A person clicking in HubSpot (webhooks show ``"sourceId": "userId:<id>"``)."""
        return cls("CRM_UI", f"userId:{user_id}", user_id)

    @classmethod
    def integration(cls, app_id: int, app_name: str | None = None) -> "Source":
        """A write made with an OAuth token of app ``app_id``. Its sourceId is the app id (the
        docs do not say what HubSpot puts there: UNCONFIRMED); with changeSource INTEGRATION it
        lets an app recognise the echo of its own writes."""
        return cls("INTEGRATION", str(app_id), None, app_name)


CALCULATED = Source("CALCULATED")


@dataclass(frozen=True)
class Change:
    """One thing that happened to the CRM, turned into webhook events by the dispatcher."""

    kind: str  # creation | deletion | propertyChange | associationChange
    object_type: str
    object_id: str
    occurred_at: datetime
    source: Source
    property_name: str | None = None
    property_value: str | None = None
    to_object_type: str | None = None
    to_object_id: str | None = None
    association_type_id: int | None = None
    association_category: str | None = None
    association_removed: bool = False
    is_primary: bool = False


# --------------------------------------------------------------------------------------------
# Time helpers (HubSpot v3 returns datetimes as ISO-8601 with milliseconds and Z)
# --------------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """``2026-03-01T09:30:00.000Z``, the form v3 reads return."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_ms(value: datetime) -> int:
    """Epoch milliseconds, the form webhooks and search filters use."""
    return int(value.timestamp() * 1000)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(value: str | int | float | datetime | date) -> datetime:
    """Epoch ms (number or digits), ISO-8601 (``Z`` or offset) or a date, as an aware datetime.

    Raises ValueError on anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    if _DATE_ONLY.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class Version:
    """One entry of a property's history (``ValueWithTimestamp``)."""

    value: str
    timestamp: datetime
    source: Source


@dataclass
class Record:
    """One CRM object. ``history`` lists versions oldest first."""

    object_type: str
    id: str
    properties: dict[str, str | None]  # None: set once, then cleared with ""
    history: dict[str, list[Version]]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None


@dataclass
class LabelDef:
    """One association type between two object types (``AssociationSpecWithLabel``)."""

    category: str
    type_id: int
    label: str | None
    name: str | None = None
    inverse_type_id: int | None = None


# --------------------------------------------------------------------------------------------
# The portal
# --------------------------------------------------------------------------------------------


def _system_clock() -> datetime:
    return datetime.now(UTC)


class HubSpotState:
    """One HubSpot portal (account) with the app installed, held in memory.

    World-building methods (no HTTP): ``add_owner``, ``archive_owner``, ``add_pipeline``,
    ``define_property``, ``define_association_label``, ``create_object``, ``update_object``,
    ``archive_object``, ``associate``, ``dissociate``, ``log_activity``; readers
    ``get_object``, ``associations``, ``counts``. Changes made through these methods default to
    a CRM user's source (``changeSource`` ``CRM_UI``), as if someone clicked in HubSpot.
    """

    def __init__(
        self,
        portal_id: int = 62515,
        *,
        clock: Callable[[], datetime] | None = None,
        app_id: int = 54321,
        app_name: str = "Deal Radar (sandbox)",
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
        rate_limit: int | None = BURST_LIMIT,
        rate_window: timedelta | None = None,
        search_rate_limit: int | None = SEARCH_LIMIT_PER_SECOND,
        search_lag_seconds: float = 0.0,
        default_pipeline: bool = True,
        ui_user_id: int = 9_000_001,
        time_zone: str = "US/Eastern",
        currency: str = "USD",
    ) -> None:
        """``rate_limit``/``search_rate_limit`` None switches that limit off; ``rate_window``
        shortens the 10-second window (tests; None reads ``BURST_WINDOW`` at each request);
        ``search_lag_seconds`` hides records modified that recently from search, like HubSpot's
        indexing delay; ``ui_user_id`` is the user credited with Python-API changes;
        ``time_zone`` and ``currency`` are the portal's account settings (any string: HubSpot
        has legacy zone names of its own)."""
        self.portal_id = portal_id
        self.time_zone = time_zone
        self.currency = currency
        self.app_id = app_id
        self.app_name = app_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.search_rate_limit = search_rate_limit
        self.search_lag_seconds = search_lag_seconds
        self.ui_user_id = ui_user_id
        self.lock = threading.RLock()
        self._clock = clock or _system_clock
        self._next_id = _FIRST_ID
        self._next_user_id = 2_000_001
        self._records: dict[str, dict[str, Record]] = {name: {} for name in OBJECT_TYPES}
        self._properties: dict[str, dict[str, dict]] = {}
        self._groups: dict[str, dict[str, dict]] = {}
        self._pipelines: dict[str, dict[str, dict]] = {"deals": {}}
        self._owners: dict[str, dict] = {}
        self._assoc: dict[tuple[str, str, str], dict[str, dict[int, str]]] = {}
        self._labels: dict[tuple[str, str], dict[int, LabelDef]] = {}
        self._next_label_type_id = 1000
        self.oauth = OAuthTokens(self)
        self._counts: Counter[str] = Counter()
        self._burst = RateWindow()
        self._search = RateWindow()
        self._listeners: list[Callable[[Change], None]] = []
        self._install_defaults(default_pipeline)
        self.webhooks = WebhookDispatcher(self)

    # ---- clock and ids ---------------------------------------------------------------------

    def now(self) -> datetime:
        """The portal's current time, from the injected clock (aware, UTC)."""
        value = self._clock()
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def account_details(self) -> dict:
        """``GET /account-info/v3/details``: the portal's settings, the offset at this moment."""
        offset = _utc_offset(self.time_zone, self.now())
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        return {
            "portalId": self.portal_id,
            "accountType": "STANDARD",
            "timeZone": self.time_zone,
            "companyCurrency": self.currency,
            "additionalCurrencies": [],
            "utcOffset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
            "utcOffsetMilliseconds": int(offset.total_seconds() * 1000),
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    def _new_id(self) -> str:
        with self.lock:
            value = self._next_id
            self._next_id += 1
            return str(value)

    def on_change(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every Change (inside the state lock: keep it short)."""
        with self.lock:
            self._listeners.append(listener)

    def _emit(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    # ---- defaults --------------------------------------------------------------------------

    def _install_defaults(self, default_pipeline: bool) -> None:
        now = self.now()
        for name, spec in OBJECT_TYPES.items():
            self._groups[name] = {
                spec.group: {
                    "name": spec.group,
                    "label": f"{spec.singular.title()} information",
                    "displayOrder": 0,
                    "archived": False,
                }
            }
            self._properties[name] = {}
            for prop in default_properties(name):
                self._store_property(name, prop, now)
        if default_pipeline:
            self.add_pipeline(
                "default",
                "Sales Pipeline",
                [
                    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
                    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
                    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
                    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
                    ("contractsent", "Contract Sent", 0.9, False),
                    ("closedwon", "Closed Won", 1.0, True),
                    ("closedlost", "Closed Lost", 0.0, True),
                ],
            )

    def _store_property(self, object_type: str, prop: dict, now: datetime) -> dict:
        full = {
            "updatedAt": format_datetime(now),
            "createdAt": format_datetime(now),
            "description": "",
            "displayOrder": -1,
            "hidden": False,
            "formField": False,
            "hasUniqueValue": False,
            "calculated": False,
            "externalOptions": False,
            "hubspotDefined": False,
            "archived": False,
            "options": [],
            **prop,
        }
        full["modificationMetadata"] = {
            "archivable": not full["hubspotDefined"],
            "readOnlyDefinition": full["hubspotDefined"],
            "readOnlyValue": bool(full.pop("readOnly", False)),
        }
        self._properties[object_type][full["name"]] = full
        return full

    # ---- owners ----------------------------------------------------------------------------

    def add_owner(
        self,
        email: str,
        first_name: str = "",
        last_name: str = "",
        *,
        owner_id: str | None = None,
        user_id: int | None = None,
        teams: Sequence[Mapping] = (),
        archived: bool = False,
    ) -> str:
        """Add a CRM owner (a user who can own records); returns its id (``hubspot_owner_id``).

        ``teams`` items are ``{"id": str, "name": str, "primary": bool}``."""
        with self.lock:
            oid = owner_id or self._new_id()
            if user_id is None:  # every owner is a HubSpot user with its own numeric id
                user_id = self._next_user_id
                self._next_user_id += 1
            now = format_datetime(self.now())
            self._owners[oid] = {
                "id": oid,
                "email": email,
                "firstName": first_name,
                "lastName": last_name,
                "userId": user_id,
                "userIdIncludingInactive": user_id,
                "type": "PERSON",
                "createdAt": now,
                "updatedAt": now,
                "archived": archived,
                "teams": [dict(t) for t in teams],
            }
            return oid

    def archive_owner(self, owner_id: str, *, archived: bool = True) -> None:
        """A rep leaves: an admin deactivates their HubSpot user, and the owner moves from the
        owners listing to ``?archived=true`` (``archived=False``: the user is reactivated).
        Records keep their ``hubspot_owner_id``. No webhook: the emulator has no owner
        subscription (the webhooks it sends are about records)."""
        with self.lock:
            owner = self._owners.get(str(owner_id))
            if owner is None:
                raise not_found(f"Owner {owner_id} not found")
            owner["archived"] = archived
            owner["updatedAt"] = format_datetime(self.now())

    def owners(self, archived: bool = False) -> list[dict]:
        """Owners in insertion order (copies): the active ones, or only the archived ones, as
        ``GET /crm/v3/owners`` lists them."""
        with self.lock:
            return [dict(o) for o in self._owners.values() if o["archived"] == archived]

    # ---- pipelines -------------------------------------------------------------------------

    def add_pipeline(
        self,
        pipeline_id: str,
        label: str,
        stages: Sequence[tuple | Mapping],
        *,
        object_type: str = "deals",
        display_order: int | None = None,
    ) -> None:
        """Add or replace a deal pipeline.

        Each stage is ``(stage_id, label, probability, is_closed)`` or a mapping with keys
        ``id``, ``label``, ``probability`` and ``closed``. A closed stage with probability 1.0 is
        a won stage (``hs_is_closed_won``). Also defines the per-stage calculated properties
        ``hs_date_entered_<stage>``/``hs_date_exited_<stage>`` and their ``hs_v2_`` twins."""
        with self.lock:
            kind = self._type(object_type)
            now = format_datetime(self.now())
            rows = []
            for order, stage in enumerate(stages):
                sid, slabel, prob, closed = _stage_tuple(stage)
                rows.append(
                    {
                        "id": sid,
                        "label": slabel,
                        "displayOrder": order,
                        "metadata": {
                            "isClosed": "true" if closed else "false",
                            "probability": str(float(prob)),
                        },
                        "createdAt": now,
                        "updatedAt": now,
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                )
            pipelines = self._pipelines.setdefault(kind, {})
            pipelines[pipeline_id] = {
                "id": pipeline_id,
                "label": label,
                "displayOrder": len(pipelines) if display_order is None else display_order,
                "stages": rows,
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
            }
            if kind == "deals":
                self._define_stage_properties(rows)

    def _define_stage_properties(self, stages: list[dict]) -> None:
        now = self.now()
        for stage in stages:
            for prefix, what in (
                ("hs_date_entered_", "Date entered"),
                ("hs_date_exited_", "Date exited"),
                ("hs_v2_date_entered_", "Date entered"),
                ("hs_v2_date_exited_", "Date exited"),
            ):
                name = f"{prefix}{stage['id']}"
                if name not in self._properties["deals"]:
                    self._store_property(
                        "deals",
                        {
                            "name": name,
                            "label": f"{what} '{stage['label']}'",
                            "type": "datetime",
                            "fieldType": "calculation_equation",
                            "groupName": "dealinformation",
                            "hubspotDefined": True,
                            "calculated": True,
                            "readOnly": True,
                        },
                        now,
                    )

    def pipelines(self, object_type: str = "deals") -> list[dict]:
        """Pipelines of an object type (deep copies), in display order."""
        with self.lock:
            found = self._pipelines.get(self._type(object_type), {}).values()
            return [_deep(p) for p in sorted(found, key=lambda p: p["displayOrder"])]

    def _stage(self, pipeline_id: str | None, stage_id: str) -> dict | None:
        pipeline = self._pipelines["deals"].get(pipeline_id or "")
        if pipeline is None:
            return None
        return next((s for s in pipeline["stages"] if s["id"] == stage_id), None)

    # ---- properties ------------------------------------------------------------------------

    def define_property(
        self,
        object_type: str,
        name: str,
        label: str,
        type: str = "string",
        field_type: str = "text",
        *,
        group_name: str | None = None,
        options: Sequence[Mapping] = (),
        description: str = "",
        has_unique_value: bool = False,
        hidden: bool = False,
        form_field: bool = False,
        display_order: int = -1,
    ) -> dict:
        """Create a custom property (as ``POST /crm/v3/properties/{objectType}``); returns it.

        ``options`` items are ``{"label", "value", "hidden"?, "displayOrder"?, "description"?}``.
        A duplicate name raises HubSpot's 409."""
        with self.lock:
            kind = self._type(object_type)
            if name in self._properties[kind]:
                raise HubSpotError(
                    409,
                    f"Property named '{name}' already exists.",
                    "CONFLICT",
                    sub_category="PropertyValidationError.PROPERTY_ALREADY_EXISTS",
                    context={"name": [name]},
                )
            group = group_name or OBJECT_TYPES[kind].group
            if group not in self._groups[kind]:
                raise validation(f"Property group '{group}' does not exist.")
            _check_property_types(type, field_type, options)
            prop = {
                "name": name,
                "label": label,
                "type": type,
                "fieldType": field_type,
                "groupName": group,
                "description": description,
                "hasUniqueValue": has_unique_value,
                "hidden": hidden,
                "formField": form_field,
                "displayOrder": display_order,
                "options": _options(options),
            }
            return _deep(self._store_property(kind, prop, self.now()))

    def update_property(self, object_type: str, name: str, changes: Mapping) -> dict:
        """Patch a property definition (label, description, options, groupName, hidden, ...)."""
        with self.lock:
            kind = self._type(object_type)
            prop = self._properties[kind].get(name)
            if prop is None or prop["archived"]:
                raise not_found(f"Unable to find property {name} for object type {kind}")
            if prop["hubspotDefined"] and set(changes) - {"label", "description", "options"}:
                raise validation(f"Cannot modify HubSpot-defined property {name}")
            new_type = changes.get("type", prop["type"])
            new_field = changes.get("fieldType", prop["fieldType"])
            opts = changes.get("options", prop["options"])
            _check_property_types(new_type, new_field, opts)
            if "groupName" in changes and changes["groupName"] not in self._groups[kind]:
                raise validation(f"Property group '{changes['groupName']}' does not exist.")
            allowed = (
                "label", "type", "fieldType", "groupName", "description", "hidden",
                "formField", "displayOrder", "calculationFormula",
            )  # fmt: skip
            for key in allowed:
                if key in changes:
                    prop[key] = changes[key]
            if "options" in changes:
                prop["options"] = _options(changes["options"])
            prop["updatedAt"] = format_datetime(self.now())
            return _deep(prop)

    def properties(self, object_type: str, archived: bool = False) -> list[dict]:
        """Property definitions of a type (deep copies)."""
        with self.lock:
            kind = self._type(object_type)
            return [_deep(p) for p in self._properties[kind].values() if p["archived"] == archived]

    def property_names(self, kind: str) -> set[str]:
        """Names of the live (not archived) properties of a type."""
        with self.lock:
            return {n for n, p in self._properties[kind].items() if not p["archived"]}

    def property_type(self, kind: str, name: str) -> str:
        """The ``type`` of a property (``string`` when undefined), for comparisons."""
        prop = self._properties[kind].get(name)
        return prop["type"] if prop else "string"

    def get_property(self, object_type: str, name: str) -> dict:
        """One property definition, or HubSpot's 404."""
        with self.lock:
            kind = self._type(object_type)
            prop = self._properties[kind].get(name)
            if prop is None:
                raise not_found(f"Unable to find property {name} for object type {kind}")
            return _deep(prop)

    def define_property_group(
        self, object_type: str, name: str, label: str, display_order: int = -1
    ) -> dict:
        """Create a property group; a duplicate raises HubSpot's 409."""
        with self.lock:
            kind = self._type(object_type)
            if name in self._groups[kind]:
                raise HubSpotError(
                    409,
                    f"A property group named '{name}' already exists.",
                    "CONFLICT",
                    sub_category="PropertyGroupError.GROUP_ALREADY_EXISTS",
                    context={"name": [name]},
                )
            group = {"name": name, "label": label, "displayOrder": display_order, "archived": False}
            self._groups[kind][name] = group
            return dict(group)

    def property_groups(self, object_type: str) -> list[dict]:
        """Property groups of a type (copies)."""
        with self.lock:
            return [dict(g) for g in self._groups[self._type(object_type)].values()]

    # ---- records: create / update / archive ------------------------------------------------

    def create_object(
        self,
        object_type: str,
        properties: Mapping[str, object],
        created_at: datetime | None = None,
        history: Mapping[str, Sequence[tuple[object, datetime]]] | None = None,
        *,
        modified_at: datetime | None = None,
        source: Source | None = None,
        strict: bool = False,
    ) -> str:
        """Create a record and return its id (a numeric string).

        ``properties`` values may be strings or Python values (numbers, bools, datetimes).
        ``history`` gives earlier values as ``{"dealstage": [(value, when), ...]}``; the newest
        entry is the current value unless ``properties`` names one. Deals get their calculated
        properties (``hs_is_closed``, ``hs_date_entered_<stage>``...) from the stage history.
        ``modified_at`` sets ``hs_lastmodifieddate`` (default: the latest change). Read-only
        properties may be set here (seeding) unless ``strict``, which applies the HTTP API's rules
        (read-only values refused, ``hs_timestamp`` required on activities). Emits a creation
        event credited to ``source`` (default: a CRM user)."""
        with self.lock:
            kind = self._type(object_type)
            return self._create(
                kind,
                properties,
                created_at=created_at,
                history=history,
                modified_at=modified_at,
                source=source or Source.ui(self.ui_user_id),
                trusted=not strict,
            )

    def _create(
        self,
        kind: str,
        properties: Mapping[str, object],
        *,
        created_at: datetime | None,
        history: Mapping[str, Sequence[tuple[object, datetime]]] | None,
        modified_at: datetime | None,
        source: Source,
        trusted: bool,
    ) -> str:
        now = self.now()
        created = created_at or now
        values = self._normalise(kind, properties, trusted=trusted, current=None)
        if kind == "deals":
            values.setdefault("pipeline", _first_key(self._pipelines["deals"]))
            if "dealstage" not in values and not (history and "dealstage" in history):
                values["dealstage"] = self._first_stage(values.get("pipeline"))
            self._check_stage(values.get("pipeline"), values.get("dealstage"))
        if kind in ACTIVITY_TYPES:
            self._default_timestamp(kind, values, created, trusted)
        record = Record(kind, self._new_id(), {}, {}, created, created)
        for name, versions in (history or {}).items():
            self._require_property(kind, name)
            for value, when in sorted(versions, key=lambda v: parse_datetime(v[1])):
                text = self._normalise(kind, {name: value}, trusted=True, current=None).get(name)
                self._set(record, name, text, parse_datetime(when), source)
        for name, value in values.items():
            versions = record.history.get(name)
            # A value beside a history is the newest one: never back-date it before the history.
            when = max(created, versions[-1].timestamp) if versions else created
            self._set(record, name, value, when, source)
        spec = OBJECT_TYPES[kind]
        record.properties["hs_object_id"] = record.id
        if spec.created_property not in values:
            self._set(record, spec.created_property, format_datetime(created), created, source)
        self._calculate(record, created)
        latest = max(
            [created, *(v[-1].timestamp for v in record.history.values() if v)],
        )
        record.updated_at = modified_at or latest
        record.properties[spec.modified_property] = format_datetime(record.updated_at)
        self._records[kind][record.id] = record
        self._emit(Change("creation", kind, record.id, now, source))
        return record.id

    def update_object(
        self,
        object_type: str,
        object_id: str,
        properties: Mapping[str, object],
        *,
        at: datetime | None = None,
        source: Source | None = None,
        strict: bool = False,
    ) -> list[str]:
        """Set properties on a record as a CRM user would (default source) at ``at`` (default
        now); returns the names whose value changed. Each change records history, bumps the
        last-modified date and emits a propertyChange event; unchanged values do nothing.
        ``strict`` refuses read-only properties, as the HTTP API does."""
        with self.lock:
            kind = self._type(object_type)
            return self._update(
                kind,
                str(object_id),
                properties,
                at=at,
                source=source or Source.ui(self.ui_user_id),
                trusted=not strict,
            )

    def validate_properties(
        self,
        object_type: str,
        properties: Mapping[str, object],
        object_id: str | None = None,
        *,
        strict: bool = True,
    ) -> None:
        """Raise the HubSpotError a create (no ``object_id``) or update would, changing nothing:
        batch endpoints check every input before writing any."""
        with self.lock:
            kind = self._type(object_type)
            current = self._live(kind, str(object_id)) if object_id is not None else None
            self._normalise(kind, properties, trusted=not strict, current=current)

    def _update(
        self,
        kind: str,
        object_id: str,
        properties: Mapping[str, object],
        *,
        at: datetime | None,
        source: Source,
        trusted: bool,
    ) -> list[str]:
        record = self._live(kind, object_id)
        values = self._normalise(kind, properties, trusted=trusted, current=record)
        if kind == "deals" and ("dealstage" in values or "pipeline" in values):
            pipeline = values.get("pipeline", record.properties.get("pipeline"))
            stage = values.get("dealstage", record.properties.get("dealstage"))
            self._check_stage(pipeline, stage)
        when = at or self.now()
        changed = [
            name for name, value in values.items() if self._set(record, name, value, when, source)
        ]
        if not changed:
            return []
        calculated = self._calculate(record, when)
        spec = OBJECT_TYPES[kind]
        record.updated_at = when
        record.properties[spec.modified_property] = format_datetime(when)
        for name in changed:
            self._emit(
                Change(
                    "propertyChange", kind, record.id, when, source,
                    property_name=name, property_value=record.properties.get(name) or "",
                )
            )  # fmt: skip
        for name in calculated:
            self._emit(
                Change(
                    "propertyChange", kind, record.id, when, CALCULATED,
                    property_name=name, property_value=record.properties.get(name) or "",
                )
            )  # fmt: skip
        return changed

    def archive_object(
        self,
        object_type: str,
        object_id: str,
        *,
        at: datetime | None = None,
        source: Source | None = None,
    ) -> None:
        """Delete (archive) a record, as the HubSpot UI's delete does: it leaves reads and
        search, its associations are removed, and a deletion event is emitted."""
        with self.lock:
            kind = self._type(object_type)
            self._archive(
                kind, str(object_id), at or self.now(), source or Source.ui(self.ui_user_id)
            )

    def _archive(self, kind: str, object_id: str, when: datetime, source: Source) -> None:
        record = self._live(kind, object_id)
        for (from_type, from_id, to_type), targets in list(self._assoc.items()):
            if from_type == kind and from_id == object_id:
                for to_id in list(targets):
                    self._unlink(kind, object_id, to_type, to_id, when, source)
        record.archived = True
        record.archived_at = when
        self._emit(Change("deletion", kind, object_id, when, source))

    def log_activity(
        self,
        object_type: str,
        properties: Mapping[str, object],
        *,
        deal_ids: Iterable[str] = (),
        contact_ids: Iterable[str] = (),
        at: datetime | None = None,
        source: Source | None = None,
    ) -> str:
        """Log a call, email, meeting, note or task as a rep would in the UI: create it and
        associate it with deals and contacts (default unlabeled types); returns its id."""
        with self.lock:
            kind = self._type(object_type)
            if kind not in ACTIVITY_TYPES:
                raise validation(f"{object_type} is not an activity type")
            src = source or Source.ui(self.ui_user_id)
            when = at or self.now()
            aid = self._create(
                kind, properties, created_at=when, history=None, modified_at=None,
                source=src, trusted=True,
            )  # fmt: skip
            for deal_id in deal_ids:
                self._link(kind, aid, "deals", str(deal_id), [], when, src)
            for contact_id in contact_ids:
                self._link(kind, aid, "contacts", str(contact_id), [], when, src)
            return aid

    # ---- records: read ---------------------------------------------------------------------

    def get_object(self, object_type: str, object_id: str, archived: bool = False) -> dict:
        """A record's current properties (a copy, null values left out); HubSpot's 404 if
        missing."""
        with self.lock:
            record = self.record(object_type, str(object_id), archived=archived)
            return {k: v for k, v in record.properties.items() if v is not None}

    def exists(self, object_type: str, object_id: str) -> bool:
        """True when a live (not archived) record has this id."""
        with self.lock:
            record = self._records[self._type(object_type)].get(str(object_id))
            return record is not None and not record.archived

    def record(self, object_type: str, object_id: str, archived: bool = False) -> Record:
        """The live Record (callers must hold ``lock`` while they read it)."""
        kind = self._type(object_type)
        record = self._records[kind].get(str(object_id))
        if record is None or record.archived != archived:
            raise not_found("Object not found.  objectId are usually numeric.")
        return record

    def records(self, object_type: str, archived: bool = False) -> list[Record]:
        """All records of a type in id order (callers hold ``lock`` while reading them)."""
        kind = self._type(object_type)
        return [r for r in self._records[kind].values() if r.archived == archived]

    def find_by(
        self, object_type: str, prop: str, value: str, archived: bool = False
    ) -> Record | None:
        """The record whose property equals ``value`` (``idProperty`` reads; callers hold
        ``lock``)."""
        for record in self.records(object_type, archived=archived):
            if record.properties.get(prop) == value:
                return record
        return None

    def _live(self, kind: str, object_id: str) -> Record:
        record = self._records[kind].get(object_id)
        if record is None or record.archived:
            raise not_found("Object not found.  objectId are usually numeric.")
        return record

    # ---- property values -------------------------------------------------------------------

    def _require_property(self, kind: str, name: str) -> dict:
        prop = self._properties[kind].get(name)
        if prop is None or prop["archived"]:
            raise property_errors(
                [prop_error(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')]
            )
        return prop

    def _normalise(
        self,
        kind: str,
        properties: Mapping[str, object],
        *,
        trusted: bool,
        current: Record | None,
    ) -> dict[str, str | None]:
        """Validate names and values as HubSpot does; collect every problem in one 400."""
        out: dict[str, str | None] = {}
        problems: list[dict] = []
        for name, raw in properties.items():
            prop = self._properties[kind].get(name)
            if prop is None or prop["archived"]:
                problems.append(
                    prop_error(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if not trusted and (
                prop["modificationMetadata"]["readOnlyValue"] or name == "hs_object_id"
            ):
                problems.append(
                    prop_error(
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            try:
                out[name] = self._value(kind, prop, raw, current)
            except ValueError as exc:
                code, _, message = str(exc).partition(":")
                problems.append(prop_error(name, code, message.strip()))
        if problems:
            raise property_errors(problems)
        return out

    def _value(self, kind: str, prop: dict, raw: object, current: Record | None) -> str | None:
        """One property value as HubSpot stores it, or ValueError("CODE: message")."""
        if raw is None or raw == "":
            return None
        kind_of = prop["type"]
        if kind_of == "datetime":
            return format_datetime(_parse_or_fail(raw, "INVALID_DATE"))
        if kind_of == "date":
            parsed = _parse_or_fail(raw, "INVALID_DATE")
            if (parsed.hour, parsed.minute, parsed.second, parsed.microsecond) != (0, 0, 0, 0):
                raise ValueError(
                    f"INVALID_DATE: {raw} is not a valid date: it must be midnight UTC"
                )
            return parsed.date().isoformat()
        if kind_of == "number":
            return _number(raw)
        if kind_of == "bool":
            text = str(raw).lower()
            if text not in ("true", "false"):
                raise ValueError(f"INVALID_BOOLEAN: {raw} is not a valid boolean")
            return text
        text = raw if isinstance(raw, str) else _stringify(raw)
        if kind_of == "enumeration":
            self._check_option(kind, prop, text, current)
        return text

    def _check_option(self, kind: str, prop: dict, text: str, current: Record | None) -> None:
        name = prop["name"]
        if name == "hubspot_owner_id":
            if text not in self._owners:
                raise ValueError(f"INVALID_OWNER_ID: {text} is not a valid owner id")
            return
        if kind == "deals" and name in ("pipeline", "dealstage"):
            return  # checked against the deal's pipeline once all values are known
        allowed = [o["value"] for o in prop["options"]]
        if not allowed:
            return
        values = text.split(";") if prop["fieldType"] == "checkbox" else [text]
        for value in values:
            if value and value not in allowed:
                raise ValueError(
                    f"INVALID_OPTION: {value} was not one of the allowed options: "
                    f"[{', '.join(allowed)}]"
                )

    def _check_stage(self, pipeline_id: str | None, stage_id: str | None) -> None:
        if pipeline_id not in self._pipelines["deals"]:
            raise property_errors(
                [prop_error("pipeline", "INVALID_OPTION", f"{pipeline_id} is not a valid pipeline")]
            )
        if stage_id is not None and self._stage(pipeline_id, stage_id) is None:
            raise property_errors(
                [
                    prop_error(
                        "dealstage",
                        "INVALID_OPTION",
                        f"{stage_id} is not a valid deal stage of pipeline {pipeline_id}",
                    )
                ]
            )

    def _first_stage(self, pipeline_id: str | None) -> str | None:
        pipeline = self._pipelines["deals"].get(pipeline_id or "")
        return pipeline["stages"][0]["id"] if pipeline and pipeline["stages"] else None

    def _default_timestamp(self, kind: str, values: dict, created: datetime, trusted: bool) -> None:
        """``hs_timestamp`` is required on activities; meetings default it to their start."""
        if values.get("hs_timestamp"):
            return
        if kind == "meetings" and values.get("hs_meeting_start_time"):
            values["hs_timestamp"] = values["hs_meeting_start_time"]
        elif trusted:
            values["hs_timestamp"] = format_datetime(created)
        else:
            raise property_errors(
                [prop_error("hs_timestamp", "REQUIRED", "hs_timestamp is required")]
            )

    def _set(
        self, record: Record, name: str, value: str | None, when: datetime, source: Source
    ) -> bool:
        """Set one value and record history; False when the value did not change."""
        if record.properties.get(name) == value and name in record.properties:
            return False
        record.properties[name] = value
        record.history.setdefault(name, []).append(Version(value or "", when, source))
        return True

    def _calculate(self, record: Record, when: datetime) -> list[str]:
        """Recompute calculated properties (a deal's from its stage, a task's completion date
        from its status); returns those that changed."""
        if record.object_type == "tasks":
            name = "hs_task_completion_date"
            done = record.properties.get("hs_task_status") == "COMPLETED"
            value = (record.properties.get(name) or format_datetime(when)) if done else None
            return [name] if self._set(record, name, value, when, CALCULATED) else []
        if record.object_type != "deals":
            return []
        stage_id = record.properties.get("dealstage")
        stage = self._stage(record.properties.get("pipeline"), stage_id or "")
        if stage is None:
            return []
        meta = stage["metadata"]
        closed = meta["isClosed"] == "true"
        won = closed and float(meta["probability"]) >= 1.0
        values: dict[str, str | None] = {
            "hs_is_closed": "true" if closed else "false",
            "hs_is_closed_won": "true" if won else "false",
            "hs_deal_stage_probability": meta["probability"],
        }
        values.update(self._stage_dates(record))
        return [
            name
            for name, value in values.items()
            if self._set(record, name, value, when, CALCULATED)
        ]

    def _stage_dates(self, record: Record) -> dict[str, str]:
        """Date entered/exited per stage from the dealstage history (latest entry wins)."""
        out: dict[str, str] = {}
        versions = record.history.get("dealstage", [])
        for i, version in enumerate(versions):
            entered = format_datetime(version.timestamp)
            out[f"hs_date_entered_{version.value}"] = entered
            out[f"hs_v2_date_entered_{version.value}"] = entered
            if i > 0 and versions[i - 1].value != version.value:
                prev = versions[i - 1].value
                out[f"hs_date_exited_{prev}"] = entered
                out[f"hs_v2_date_exited_{prev}"] = entered
        if versions:
            out["hs_v2_date_entered_current_stage"] = format_datetime(versions[-1].timestamp)
        return {k: v for k, v in out.items() if k in self._properties["deals"]}

    # ---- associations ----------------------------------------------------------------------

    def define_association_label(
        self,
        from_type: str,
        to_type: str,
        label: str,
        type_id: int | None = None,
        *,
        inverse_label: str | None = None,
        name: str | None = None,
    ) -> int:
        """Define a USER_DEFINED association label (e.g. deal→contact "Champion"); returns its
        typeId. The reverse direction gets typeId + 1 with ``inverse_label`` (default: the same
        label). Defining an existing label again returns the existing typeId."""
        with self.lock:
            src, dst = self._type(from_type), self._type(to_type)
            for existing in self._label_defs(src, dst).values():
                if existing.label == label and existing.category == "USER_DEFINED":
                    return existing.type_id
            if type_id is None:
                type_id = self._next_label_type_id
            taken = {t for defs in self._labels.values() for t in defs}
            if type_id in taken or type_id + 1 in taken or type_id in _RESERVED_TYPE_IDS:
                raise HubSpotError(409, f"Association type id {type_id} already exists", "CONFLICT")
            self._next_label_type_id = max(self._next_label_type_id, type_id + 2)
            key = name or re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
            self._label_defs(src, dst)[type_id] = LabelDef(
                "USER_DEFINED", type_id, label, key, type_id + 1
            )
            self._label_defs(dst, src)[type_id + 1] = LabelDef(
                "USER_DEFINED", type_id + 1, inverse_label or label, key, type_id
            )
            return type_id

    def association_labels(self, from_type: str, to_type: str) -> list[LabelDef]:
        """All association types between two object types: HubSpot's unlabeled default (and
        Primary where it exists) plus the portal's USER_DEFINED labels."""
        with self.lock:
            defs = self._label_defs(self._type(from_type), self._type(to_type))
            return [LabelDef(**vars(d)) for d in defs.values()]

    def _label_defs(self, src: str, dst: str) -> dict[int, LabelDef]:
        defs = self._labels.get((src, dst))
        if defs is None:
            defs = {}
            default = DEFAULT_ASSOCIATION_TYPES.get((src, dst))
            if default is not None:
                inverse = DEFAULT_ASSOCIATION_TYPES.get((dst, src))
                defs[default] = LabelDef("HUBSPOT_DEFINED", default, None, None, inverse)
            primary = PRIMARY_ASSOCIATION_TYPES.get((src, dst))
            if primary is not None:
                inverse = PRIMARY_ASSOCIATION_TYPES.get((dst, src))
                defs[primary] = LabelDef("HUBSPOT_DEFINED", primary, "Primary", None, inverse)
            self._labels[(src, dst)] = defs
        return defs

    def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        type_ids: Iterable[int] = (),
        labels: Iterable[str] = (),
        *,
        replace: bool = False,
        at: datetime | None = None,
        source: Source | None = None,
    ) -> list[int]:
        """Associate two records (both directions), adding the unlabeled default type plus the
        given typeIds and/or label names (labels must be defined for the pair). ``replace``
        drops labels not named (as the v4 PUT does). Returns the typeIds now linking from→to.
        Emits associationChange events when the pair was not associated before."""
        with self.lock:
            src, dst = self._type(from_type), self._type(to_type)
            wanted = list(type_ids) + [self._label_type_id(src, dst, lab) for lab in labels]
            return self._link(
                src, str(from_id), dst, str(to_id), wanted, at or self.now(),
                source or Source.ui(self.ui_user_id), replace=replace,
            )  # fmt: skip

    def dissociate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        *,
        at: datetime | None = None,
        source: Source | None = None,
    ) -> bool:
        """Remove every association between two records; False when there was none."""
        with self.lock:
            src, dst = self._type(from_type), self._type(to_type)
            return self._unlink(
                src, str(from_id), dst, str(to_id), at or self.now(),
                source or Source.ui(self.ui_user_id),
            )  # fmt: skip

    def associations(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[LabelDef]]:
        """``{to_id: [association types]}`` for one record, in association order."""
        with self.lock:
            src, dst = self._type(from_type), self._type(to_type)
            links = self._assoc.get((src, str(from_id), dst), {})
            defs = self._label_defs(src, dst)
            return {
                to_id: [defs.get(t) or LabelDef(cat, t, None) for t, cat in sorted(types.items())]
                for to_id, types in links.items()
            }

    def linked_ids(self, kind: str, object_id: str, other: str) -> set[str]:
        """Ids of ``other`` records associated with one record (callers hold ``lock``)."""
        return set(self._assoc.get((kind, object_id, other), {}))

    def _label_type_id(self, src: str, dst: str, label: str) -> int:
        for definition in self._label_defs(src, dst).values():
            if definition.label == label:
                return definition.type_id
        raise validation(f"No association label '{label}' between {src} and {dst}")

    def _category(self, src: str, dst: str, type_id: int) -> str:
        definition = self._label_defs(src, dst).get(type_id)
        if definition is None:
            raise validation(
                f"{type_id} is not a valid association type between {src} and {dst}",
                sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
            )
        return definition.category

    def _inverse(self, src: str, dst: str, type_id: int) -> int | None:
        definition = self._label_defs(src, dst).get(type_id)
        return definition.inverse_type_id if definition else None

    def _link(
        self,
        src: str,
        from_id: str,
        dst: str,
        to_id: str,
        type_ids: list[int],
        when: datetime,
        source: Source,
        *,
        replace: bool = False,
    ) -> list[int]:
        self._live(src, from_id)
        self._live(dst, to_id)
        default = DEFAULT_ASSOCIATION_TYPES.get((src, dst))
        wanted = ([default] if default is not None else []) + list(type_ids)
        if not wanted:
            raise validation(f"No association type between {src} and {dst}")
        current = self._assoc.setdefault((src, from_id, dst), {}).get(to_id)
        was_linked = bool(current)
        types = {} if replace or current is None else dict(current)
        for type_id in wanted:
            types[type_id] = self._category(src, dst, type_id)
        inverse = {
            inv: self._category(dst, src, inv)
            for inv in (self._inverse(src, dst, t) for t in types)
            if inv is not None
        }
        self._assoc[(src, from_id, dst)][to_id] = types
        self._assoc.setdefault((dst, to_id, src), {})[from_id] = inverse
        self._touch_counts(src, from_id, dst, to_id, when)
        added = set(types) - set(current or {})
        for type_id in sorted(added if was_linked else types):
            self._emit_association(src, from_id, dst, to_id, type_id, types[type_id], when,
                                   source, removed=False)  # fmt: skip
        return sorted(types)

    def _unlink(
        self, src: str, from_id: str, dst: str, to_id: str, when: datetime, source: Source
    ) -> bool:
        types = self._assoc.get((src, from_id, dst), {}).pop(to_id, None)
        self._assoc.get((dst, to_id, src), {}).pop(from_id, None)
        if not types:
            return False
        self._touch_counts(src, from_id, dst, to_id, when)
        for type_id, category in sorted(types.items()):
            self._emit_association(src, from_id, dst, to_id, type_id, category, when, source,
                                   removed=True)  # fmt: skip
        return True

    def _emit_association(
        self,
        src: str,
        from_id: str,
        dst: str,
        to_id: str,
        type_id: int,
        category: str,
        when: datetime,
        source: Source,
        *,
        removed: bool,
    ) -> None:
        """One event per direction, as HubSpot sends both sides' associationChange."""
        primary = type_id == PRIMARY_ASSOCIATION_TYPES.get((src, dst))
        inverse = self._inverse(src, dst, type_id)
        sides = [(src, from_id, dst, to_id, type_id, category)]
        if inverse is not None:
            sides.append((dst, to_id, src, from_id, inverse, self._category(dst, src, inverse)))
        for a, a_id, b, b_id, t, cat in sides:
            self._emit(
                Change(
                    "associationChange", a, a_id, when, source,
                    to_object_type=b, to_object_id=b_id, association_type_id=t,
                    association_category=cat, association_removed=removed,
                    is_primary=primary,
                )
            )  # fmt: skip

    def _touch_counts(self, src: str, from_id: str, dst: str, to_id: str, when: datetime) -> None:
        """Keep ``num_associated_contacts`` on deals current (a calculated roll-up)."""
        for kind, rid, other in ((src, from_id, dst), (dst, to_id, src)):
            if kind == "deals" and other == "contacts":
                record = self._records["deals"].get(rid)
                if record is not None:
                    count = len(self._assoc.get(("deals", rid, "contacts"), {}))
                    self._set(record, "num_associated_contacts", str(count), when, CALCULATED)

    # ---- counting and rate limits ----------------------------------------------------------

    def count(self, key: str) -> None:
        """Count one request under ``"METHOD /route/template"``."""
        with self.lock:
            self._counts[key] += 1

    def counts(self) -> dict[str, int]:
        """Requests received so far by ``"METHOD /route/template"`` (a copy)."""
        with self.lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        """Forget the request counts (benchmarks measure one phase at a time)."""
        with self.lock:
            self._counts.clear()

    def hit_burst(self) -> tuple[int, int, timedelta]:
        """Record a request against the burst limit: (max, remaining, window) or a 429."""
        with self.lock:
            window = self.rate_window or BURST_WINDOW
            if self.rate_limit is None:
                return (0, 0, window)
            remaining = self._burst.hit(self.now(), window, self.rate_limit)
            if remaining < 0:
                raise rate_limited(
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                    self.rate_limit,
                    window,
                )
            return (self.rate_limit, remaining, window)

    def hit_search(self) -> None:
        """Record a search request against the per-second search limit, or a 429."""
        with self.lock:
            if self.search_rate_limit is None:
                return
            window = timedelta(seconds=1)
            if self._search.hit(self.now(), window, self.search_rate_limit) < 0:
                raise rate_limited(
                    "SECONDLY",
                    "You have reached your secondly limit.",
                    self.search_rate_limit,
                    window,
                )

    # ---- OAuth shortcuts (the rest is ``self.oauth``) ----------------------------------------

    def issue_token(self, scopes: Sequence[str] = ()) -> Token:
        """A fresh token pair without the browser dance (tests, ``make run``)."""
        return self.oauth.issue(tuple(scopes))

    def expire_access_tokens(self) -> int:
        """Make every access token expired now (tests); returns how many were live."""
        return self.oauth.expire_all()

    def revoke_refresh_token(self, refresh_token: str) -> bool:
        """Revoke a refresh token and the access tokens issued from it (as an uninstall or
        ``POST /oauth/v3/token/revoke`` or ``DELETE /oauth/v1/refresh-tokens/{token}`` does); False
        if unknown."""
        return self.oauth.revoke(refresh_token)

    # ---- misc ------------------------------------------------------------------------------

    def _type(self, name: str) -> str:
        kind = resolve_object_type(name)
        if kind is None:
            raise HubSpotError(
                400,
                f"Unable to infer object type from: {name}",
                "VALIDATION_ERROR",
            )
        return kind

    def object_type(self, name: str) -> str:
        """The canonical plural type name for any accepted spelling, or HubSpot's 400."""
        return self._type(name)

    def iter_all(self) -> Iterator[Record]:
        """Every live record of every type (callers hold ``lock``)."""
        for kind in OBJECT_TYPES:
            yield from self.records(kind)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_RESERVED_TYPE_IDS = frozenset(DEFAULT_ASSOCIATION_TYPES.values()) | frozenset(
    PRIMARY_ASSOCIATION_TYPES.values()
)

_TYPE_FIELDS = {
    "string": {"text", "textarea", "html", "phonenumber", "file", "calculation_equation"},
    "number": {"number", "calculation_equation"},
    "date": {"date", "calculation_equation"},
    "datetime": {"date", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
    "enumeration": {"checkbox", "radio", "select", "booleancheckbox", "calculation_equation"},
    "phone_number": {"phonenumber"},
}


def _check_property_types(type_: str, field_type: str, options: Sequence[Mapping]) -> None:
    """HubSpot's pairing of ``type`` and ``fieldType``; enumerations need options."""
    if type_ not in _TYPE_FIELDS:
        raise validation(f"Invalid property type: {type_}")
    if field_type not in _TYPE_FIELDS[type_]:
        raise validation(f"Invalid fieldType {field_type} for property type {type_}")
    if type_ == "enumeration" and field_type != "calculation_equation" and not options:
        raise validation("Enumeration properties must have at least one option")
    values = [o.get("value") for o in options]
    if len(values) != len(set(values)):
        raise validation("Property options must have unique values")


def _options(options: Sequence[Mapping]) -> list[dict]:
    return [
        {
            "label": o["label"],
            "value": o["value"],
            "hidden": bool(o.get("hidden", False)),
            "displayOrder": o.get("displayOrder", i),
            "description": o.get("description", ""),
        }
        for i, o in enumerate(options)
    ]


def _stage_tuple(stage: tuple | Mapping) -> tuple[str, str, float, bool]:
    if isinstance(stage, Mapping):
        return (
            str(stage["id"]),
            str(stage["label"]),
            float(stage.get("probability", 0.0)),
            bool(stage.get("closed", stage.get("is_closed", False))),
        )
    sid, label, probability, *rest = stage
    return str(sid), str(label), float(probability), bool(rest[0]) if rest else False


def _first_key(mapping: Mapping) -> str | None:
    return next(iter(mapping), None)


def _deep(value):
    return json.loads(json.dumps(value))


def _stringify(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    return str(value)


def _number(raw: object) -> str:
    text = str(raw).strip() if not isinstance(raw, bool) else "x"
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"INVALID_FLOAT: {raw} is not a valid number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"INVALID_FLOAT: {raw} is not a valid number")
    if isinstance(raw, float) and number.is_integer():
        return str(int(number))
    return text


def _parse_or_fail(raw: object, code: str) -> datetime:
    try:
        return parse_datetime(raw)  # type: ignore[arg-type]
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{code}: {raw} is not a valid date") from None


def _utc_offset(zone: str, at: datetime) -> timedelta:
    """The zone's offset at `at`; zero for a name Python's tz database does not know."""
    try:
        return at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return timedelta(0)
