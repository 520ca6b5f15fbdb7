"""The emulated Salesforce org, in memory: records of the types in ``salesforce_objects``,
custom fields with field-level security, OAuth clients, codes and sessions, the rolling daily
API allowance, and what Salesforce derives by itself (Name, IsClosed/IsWon and Probability
from the stage, OpportunityHistory rows, AccountId of activities, audit fields).

Everything is guarded by one re-entrant lock; the Flask app and the outbound-message
dispatcher share the state. Values are held as Python values (str, bool, int/float,
``date``, aware ``datetime``); ``salesforce_app`` turns them into JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.salesforce_errors import SalesforceError, invalid_field, not_found
from sandbox.salesforce_ids import IdMaker, normalize
from sandbox.salesforce_objects import (
    DEFAULT_ROLES,
    KEY_PREFIXES,
    OBJECTS,
    TOOLING_OBJECTS,
    FieldDef,
    ObjectDef,
)

__all__ = ["Change", "SalesforceState", "Session", "StageInfo"]

HISTORY_FIELDS = ("StageName", "Amount", "CloseDate", "Probability")
"""The Opportunity fields whose change writes an OpportunityHistory row."""

DEFAULT_STAGES = (
    # label, probability %, closed, won, forecast category
    ("Prospecting", 10, False, False, "Pipeline"),
    ("Qualification", 10, False, False, "Pipeline"),
    ("Needs Analysis", 20, False, False, "Pipeline"),
    ("Value Proposition", 50, False, False, "Pipeline"),
    ("Id. Decision Makers", 60, False, False, "Pipeline"),
    ("Perception Analysis", 70, False, False, "Pipeline"),
    ("Proposal/Price Quote", 75, False, False, "Pipeline"),
    ("Negotiation/Review", 90, False, False, "Commit"),
    ("Closed Won", 100, True, True, "Closed"),
    ("Closed Lost", 0, True, False, "Omitted"),
)


@dataclass(frozen=True, slots=True)
class StageInfo:
    label: str
    probability: float
    closed: bool
    won: bool
    forecast: str


@dataclass(slots=True)
class Session:
    access_token: str
    refresh_token: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    client_id: str


@dataclass(frozen=True, slots=True)
class Change:
    """A committed write, as listeners (outbound messages) see it."""

    sobject: str
    record_id: str
    kind: str
    """``created``, ``updated`` or ``deleted``."""
    fields: tuple[str, ...]
    by: str


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str
    challenge: str | None
    method: str
    expires_at: datetime
    scope: str


@dataclass(slots=True)
class _Usage:
    limit: int | None
    stamps: deque[datetime] = field(default_factory=deque)


_CUSTOM_VALUE_KEYS = frozenset(
    {"valueName", "label", "default", "color", "description", "isActive"}
)
"""The fields of a picklist value (CustomValue) in Tooling API JSON, as its reference lists them
(Color, Default, Description, IsActive, Label, ValueName)."""


class SalesforceState:
    """One org. ``clock`` gives the current aware UTC time (injected in tests)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        client_id: str = "sandbox-consumer-key",
        client_secret: str = "sandbox-consumer-secret",
        redirect_uris: Iterable[str] | None = None,
        daily_api_limit: int | None = 100_000,
        session_seconds: float = 7_200,
        api_version: str = "59.0",
        instance_url: str = "https://127.0.0.1",
        time_zone: str = "America/Los_Angeles",
        shared_activities: bool = True,
    ) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.shared_activities = shared_activities
        """The org's Shared Activities setting: off, TaskRelation is no type of the org."""
        self.lock = threading.RLock()
        self.ids = IdMaker()
        self.api_version = api_version
        self.instance_url = instance_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = set(redirect_uris) if redirect_uris else None
        self.session_seconds = session_seconds
        self.usage = _Usage(daily_api_limit)
        self.route_counts: Counter[str] = Counter()
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            name: {} for name in (*OBJECTS, *TOOLING_OBJECTS)
        }
        # Custom fields per type, whether or not anyone may see them yet.
        self.custom_fields: dict[str, dict[str, FieldDef]] = {name: {} for name in OBJECTS}
        self.stages: dict[str, StageInfo] = {}
        self.listeners: list[Callable[[Change], None]] = []
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, Session] = {}
        self.rotate_refresh_tokens = False
        """The connected app's "Refresh Token Rotation": each refresh answers a new refresh
        token and the one used stops working."""
        self._codes: dict[str, _Code] = {}
        self._picklists: dict[tuple[str, str], list[str]] = {
            ("OpportunityContactRole", "Role"): list(DEFAULT_ROLES),
            ("Task", "Status"): [
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ],
            ("Task", "Priority"): ["High", "Normal", "Low"],
            ("Task", "TaskSubtype"): ["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"],
            ("Task", "CallType"): ["Internal", "Inbound", "Outbound"],
            ("Event", "EventSubtype"): ["Event"],
            ("EmailMessageRelation", "RelationType"): [
                "ToAddress",
                "CcAddress",
                "BccAddress",
                "FromAddress",
            ],
            ("EmailMessage", "Status"): ["0", "1", "2", "3", "4", "5"],
            ("EventRelation", "Status"): ["New", "Declined", "Accepted", "Uninvited", "Maybe"],
            ("ContentDocumentLink", "ShareType"): ["V", "C", "I"],
            ("ContentDocumentLink", "Visibility"): ["AllUsers", "InternalUsers", "SharedUsers"],
        }
        now = self.clock()
        self.created_at = now
        self.org_id = self._insert_raw(
            "Organization",
            {"Name": "Sandbox Org", "TimeZoneSidKey": time_zone, "DefaultLocaleSidKey": "en_US",
             "LanguageLocaleKey": "en_US", "IsSandbox": False},
            now,
            None,
        )  # fmt: skip
        self.api_user_id = self._insert_raw(
            "User",
            {
                "Username": "integration@dealradar.sandbox",
                "FirstName": "Integration",
                "LastName": "User",
                "Email": "integration@dealradar.sandbox",
                "IsActive": True,
            },
            now,
            None,
        )
        # The API user's profile, as the permission set it owns (where FLS lives).
        self.profile_permission_set_id = self._insert_raw(
            "PermissionSet",
            {"Name": "X00ex000000ProfileAdmin", "Label": "System Administrator"},
            now,
            self.api_user_id,
            derived={"IsOwnedByProfile": True},
        )
        self._insert_raw(
            "PermissionSetAssignment",
            {"PermissionSetId": self.profile_permission_set_id, "AssigneeId": self.api_user_id},
            now,
            self.api_user_id,
        )
        for label, prob, closed, won, forecast in DEFAULT_STAGES:
            self.add_stage(label, prob, closed=closed, won=won, forecast=forecast)

    # --- schema -------------------------------------------------------------------------------

    def object_def(self, sobject: str, *, tooling: bool = False) -> ObjectDef:
        """The type named ``sobject`` (any case); 404 NOT_FOUND-style error when unknown."""
        table = TOOLING_OBJECTS if tooling else OBJECTS
        for name, odef in table.items():
            if name.lower() == sobject.lower() and self.has_type(name):
                return odef
        raise SalesforceError(
            404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{sobject}'"
        )

    def has_type(self, name: str) -> bool:
        """Whether the org has this type: TaskRelation only with Shared Activities on."""
        return name != "TaskRelation" or self.shared_activities

    def fields_for(
        self, sobject: str, user_id: str | None, *, edit: bool = False, tooling: bool = False
    ) -> dict[str, FieldDef]:
        """The fields of ``sobject`` the user can see (or edit): standard ones, and the custom
        ones granted by a FieldPermissions row of a permission set assigned to the user."""
        odef = self.object_def(sobject, tooling=tooling)
        out = dict(odef.fields)
        for name, fdef in self.custom_fields.get(odef.name, {}).items():
            if user_id is None or self._granted(odef.name, name, user_id, edit):
                out[name] = fdef
        return out

    def _granted(self, sobject: str, field_name: str, user_id: str, edit: bool) -> bool:
        sets = {
            a["PermissionSetId"]
            for a in self.live("PermissionSetAssignment")
            if a["AssigneeId"] == user_id
        }
        wanted = f"{sobject}.{field_name}"
        for perm in self.live("FieldPermissions"):  # a deleted row grants nothing
            if (
                perm["ParentId"] in sets
                and (perm["Field"] or "").lower() == wanted.lower()
                and (perm["PermissionsEdit"] if edit else perm["PermissionsRead"])
            ):
                return True
        return False

    def add_stage(
        self,
        label: str,
        probability: float,
        *,
        closed: bool = False,
        won: bool = False,
        forecast: str | None = None,
    ) -> None:
        """Add (or redefine) an opportunity stage: StageName's picklist value and its meaning."""
        forecast = forecast or ("Closed" if won else "Omitted" if closed else "Pipeline")
        with self.lock:
            self.stages[label] = StageInfo(label, probability, closed, won, forecast)
            self._picklists[("Opportunity", "StageName")] = list(self.stages)

    def add_picklist_value(self, sobject: str, field_name: str, value: str) -> None:
        """An admin adds a value to a picklist (e.g. a custom contact role)."""
        with self.lock:
            values = self._picklists.setdefault((sobject, field_name), [])
            if value not in values:
                values.append(value)

    def picklist(self, sobject: str, field_name: str) -> list[str]:
        with self.lock:
            return list(self._picklists.get((sobject, field_name), []))

    def create_custom_field(self, full_name: str, metadata: dict[str, Any]) -> str:
        """The Tooling API's CustomField create: ``Opportunity.Score__c``. The field exists at
        once but no one sees it until FieldPermissions grant it."""
        sobject, _, name = full_name.partition(".")
        if not name.endswith("__c") or not name[:-3].replace("_", "").isalnum():
            raise SalesforceError(
                400, "INVALID_FIELD", f"Invalid custom field full name: {full_name}", ["FullName"]
            )
        odef = self.object_def(sobject)
        type_ = str(metadata.get("type") or "")
        kinds = {
            "Text": "string",
            "TextArea": "textarea",
            "LongTextArea": "textarea",
            "Number": "double",
            "Percent": "percent",
            "Currency": "currency",
            "Checkbox": "boolean",
            "Date": "date",
            "DateTime": "datetime",
            "Picklist": "picklist",
            "MultiselectPicklist": "multipicklist",
        }
        if type_ not in kinds:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"Unsupported custom field type {type_!r}; use one of {', '.join(kinds)}",
                ["Metadata"],
            )
        with self.lock:
            if name.lower() in {n.lower() for n in self.custom_fields[odef.name]}:
                raise SalesforceError(
                    400,
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {name[:-3]} on {odef.name}.",
                )
            given = (metadata.get("valueSet") or {}).get("valueSetDefinition", {}).get("value", [])
            for v in given:
                unknown = sorted(set(v) - _CUSTOM_VALUE_KEYS)
                if unknown:  # the Tooling API's CustomValue: `valueName`, not the Metadata API's
                    raise SalesforceError(  # `fullName`
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of CustomValue: unrecognized field "
                        f"\"{unknown[0]}\"",
                    )
            values = [v.get("valueName") or v.get("label") for v in given]
            fdef = FieldDef(
                name,
                kinds[type_],
                custom=True,
                label=str(metadata.get("label") or name[:-3]),
                length=int(metadata.get("length") or (32768 if "TextArea" in type_ else 255)),
                restricted=bool((metadata.get("valueSet") or {}).get("restricted")),
            )
            self.custom_fields[odef.name][name] = fdef
            if values:
                self._picklists[(odef.name, name)] = [str(v) for v in values]
            for record in self.records[odef.name].values():
                record[name] = False if fdef.type == "boolean" else None
            return self._insert_raw(
                "CustomField",
                {
                    "DeveloperName": name[:-3],
                    "TableEnumOrId": odef.name,
                    "FullName": f"{odef.name}.{name}",
                    "NamespacePrefix": None,
                },
                self.clock(),
                self.api_user_id,
            )

    # --- records ------------------------------------------------------------------------------

    def type_of(self, record_id: str) -> str | None:
        return KEY_PREFIXES.get(record_id[:3]) if record_id else None

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        """The record (the live dict: copy before handing it out of the lock)."""
        rid = normalize(record_id)
        record = self.records.get(sobject, {}).get(rid or "")
        if record is None or record["IsDeleted"]:
            raise not_found()
        return record

    def insert(
        self,
        sobject: str,
        values: dict[str, Any],
        *,
        by: str | None = None,
        at: datetime | None = None,
        user_id: str | None = None,
    ) -> str:
        """Create a record through the API's rules (createable fields, required fields, types,
        picklists). ``user_id`` checks field-level security (None: the org's own loaders, which
        see every field). ``by`` is the CreatedById (default: the API user)."""
        with self.lock:
            odef = self.object_def(sobject)
            if not odef.createable:
                raise SalesforceError(
                    400,
                    "INVALID_TYPE_FOR_OPERATION",
                    f"entity type {odef.name} does not support insert",
                )
            clean = self.validate(odef, values, user_id, creating=True)
            missing = [f for f in odef.required if clean.get(f) in (None, "")]
            if missing:
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            if odef.name == "FieldPermissions":
                self._check_field_permission(clean)
            record_id = self._insert_raw(
                odef.name, clean, at or self.clock(), by or self.api_user_id
            )
            self._emit(
                Change(odef.name, record_id, "created", tuple(clean), by or self.api_user_id)
            )
            return record_id

    def update(
        self,
        sobject: str,
        record_id: str,
        values: dict[str, Any],
        *,
        by: str | None = None,
        at: datetime | None = None,
        user_id: str | None = None,
    ) -> None:
        with self.lock:
            odef = self.object_def(sobject)
            record = self.get(odef.name, record_id)
            clean = self.validate(odef, values, user_id, creating=False)
            changed = {k: v for k, v in clean.items() if record.get(k) != v}
            at = at or self.clock()
            by = by or self.api_user_id
            # Salesforce stamps the record even when nothing changed.
            self._apply(odef.name, record, clean, at, by, creating=False)
            self._emit(Change(odef.name, record["Id"], "updated", tuple(changed), by))

    def delete(self, sobject: str, record_id: str, *, by: str | None = None) -> None:
        with self.lock:
            odef = self.object_def(sobject)
            record = self.get(odef.name, record_id)
            record["IsDeleted"] = True
            record["SystemModstamp"] = self.clock()
            self._emit(Change(odef.name, record["Id"], "deleted", (), by or self.api_user_id))

    def live(self, sobject: str) -> Iterable[dict[str, Any]]:
        """The type's records not deleted (under the lock, for queries)."""
        return (r for r in self.records[sobject].values() if not r["IsDeleted"])

    def _check_field_permission(self, values: dict[str, Any]) -> None:
        """One row per permission set and field, naming a field of its SobjectType that
        field-level security applies to (a custom field here)."""
        sobject, _, name = str(values["Field"]).partition(".")
        known = {n.lower() for n in self.custom_fields.get(sobject, {})}
        if sobject != values["SobjectType"] or name.lower() not in known:
            raise SalesforceError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Field Name: bad value for restricted picklist field: {values['Field']}",
                ["Field"],
            )
        for row in self.live("FieldPermissions"):
            if (
                row["ParentId"] == values["ParentId"]
                and row["Field"].lower() == values["Field"].lower()
            ):
                raise SalesforceError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: <unknown> duplicates value on record with id: "
                    f"{row['Id']}",
                )

    def _insert_raw(
        self,
        sobject: str,
        values: dict[str, Any],
        at: datetime,
        by: str | None,
        derived: dict[str, Any] | None = None,
    ) -> str:
        odef = OBJECTS.get(sobject) or TOOLING_OBJECTS[sobject]
        record_id = self.ids.new(odef.prefix)
        record: dict[str, Any] = {
            name: (False if fdef.type == "boolean" else None)
            for name, fdef in {**odef.fields, **self.custom_fields.get(sobject, {})}.items()
        }
        record.update(
            Id=record_id,
            IsDeleted=False,
            CreatedDate=at,
            CreatedById=by or record_id,
        )
        if sobject == "User":
            # A user is made to work: active unless the insert says otherwise.
            record["IsActive"] = True
        self.records[sobject][record_id] = record
        self._apply(sobject, record, values, at, by or record_id, creating=True)
        if derived:
            record.update(derived)
        return record_id

    def _apply(
        self,
        sobject: str,
        record: dict[str, Any],
        values: dict[str, Any],
        at: datetime,
        by: str,
        *,
        creating: bool,
    ) -> None:
        """Write ``values`` and what Salesforce derives from them."""
        before = {f: record.get(f) for f in HISTORY_FIELDS}
        record.update(values)
        if creating and "OwnerId" in record and not record["OwnerId"]:
            # Salesforce has no unowned record: one created without OwnerId is its creator's.
            record["OwnerId"] = by
        record["LastModifiedDate"] = at
        record["LastModifiedById"] = by
        record["SystemModstamp"] = at
        if sobject in ("Contact", "User"):
            record["Name"] = " ".join(p for p in (record["FirstName"], record["LastName"]) if p)
        elif sobject == "Opportunity":
            self._derive_opportunity(record, values, before, at, by, creating)
        elif sobject in ("Task", "Event"):
            self._derive_activity(sobject, record, at)
        elif sobject == "EventRelation" and creating:
            self._derive_child_event(record, at)
        elif sobject == "EmailMessageRelation":
            record["RelationObjectType"] = self.type_of(record["RelationId"] or "")
        elif sobject == "ContentNote":
            _derive_note(record, by)
        elif sobject == "ContentDocumentLink" and creating:
            record["ShareType"] = record["ShareType"] or "V"
            record["Visibility"] = record["Visibility"] or "AllUsers"

    def _derive_opportunity(
        self,
        record: dict[str, Any],
        values: dict[str, Any],
        before: dict[str, Any],
        at: datetime,
        by: str,
        creating: bool,
    ) -> None:
        stage = self.stages.get(record["StageName"])
        if stage is not None and "StageName" in values:
            record["IsClosed"] = stage.closed
            record["IsWon"] = stage.won
            record["ForecastCategoryName"] = stage.forecast
            if "Probability" not in values:
                record["Probability"] = stage.probability
            if creating or before["StageName"] != record["StageName"]:
                record["LastStageChangeDate"] = at
        if creating or any(before[f] != record[f] for f in HISTORY_FIELDS):
            self._insert_raw(
                "OpportunityHistory",
                {
                    "OpportunityId": record["Id"],
                    "StageName": record["StageName"],
                    "Amount": record["Amount"],
                    "CloseDate": record["CloseDate"],
                    "Probability": record["Probability"],
                    "ForecastCategory": record["ForecastCategoryName"],
                    "ExpectedRevenue": (
                        record["Amount"] * (record["Probability"] or 0) / 100
                        if record["Amount"] is not None
                        else None
                    ),
                    "PrevAmount": None if creating else before["Amount"],
                    "PrevCloseDate": None if creating else before["CloseDate"],
                },
                at,
                by,
            )

    def _derive_activity(self, sobject: str, record: dict[str, Any], at: datetime) -> None:
        what = record["WhatId"]
        account = None
        if what and self.type_of(what) == "Opportunity":
            opp = self.records["Opportunity"].get(what)
            account = opp["AccountId"] if opp else None
        elif what and self.type_of(what) == "Account":
            account = what
        elif record["WhoId"]:
            contact = self.records["Contact"].get(record["WhoId"])
            account = contact["AccountId"] if contact else None
        record["AccountId"] = account
        if sobject == "Task":
            record["IsClosed"] = record["Status"] == "Completed"
            if record["IsClosed"] and record["CompletedDateTime"] is None:
                record["CompletedDateTime"] = at
            day = record["ActivityDate"] if record["IsClosed"] else None
        else:
            start, end = record["StartDateTime"], record["EndDateTime"]
            record["ActivityDateTime"] = start
            record["ActivityDate"] = start.date() if start else None
            if start and end:
                record["DurationInMinutes"] = int((end - start).total_seconds() // 60)
            day = record["ActivityDate"]
        # LastActivityDate: the latest closed task or event on the opportunity, not future ones.
        # Its SystemModstamp is left alone: Salesforce does not document that this derived
        # update stamps the opportunity (it does not move LastModifiedDate), so the emulator
        # takes the case an integration must survive: the activity alone shows the change.
        if day and what and self.type_of(what) == "Opportunity" and day <= at.date():
            opp = self.records["Opportunity"].get(what)
            if opp and (opp["LastActivityDate"] is None or opp["LastActivityDate"] < day):
                opp["LastActivityDate"] = day

    def _derive_child_event(self, relation: dict[str, Any], at: datetime) -> None:
        """A user invited to an event gets their own copy of it: a child Event (IsChild true,
        OwnerId the invitee); contacts and other invitees get none (Change Data Capture guide,
        "Event Invitees"). The copy keeps the event's subject, times and related records."""
        invitee = relation["RelationId"] or ""
        event = self.records["Event"].get(relation["EventId"] or "")
        if not relation["IsInvitee"] or self.type_of(invitee) != "User" or event is None:
            return
        if event["IsChild"]:
            return
        copied = ("WhatId", "WhoId", "Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent",
                  "Description")  # fmt: skip
        self._insert_raw(
            "Event",
            {**{name: event[name] for name in copied}, "OwnerId": invitee},
            at,
            event["OwnerId"],
            derived={"IsChild": True},
        )

    def validate(
        self, odef: ObjectDef, values: dict[str, Any], user_id: str | None, *, creating: bool
    ) -> dict[str, Any]:
        """``values`` as stored (canonical names, Python types), or Salesforce's refusal: an
        unknown or hidden field, a read-only one, a wrong type, a bad picklist value..."""
        fields = (
            self.fields_for(odef.name, user_id, edit=True)
            if user_id
            else {
                **odef.fields,
                **self.custom_fields[odef.name],
            }
        )
        by_lower = {n.lower(): f for n, f in fields.items()}
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = by_lower.get(key.lower())
            if fdef is None:
                raise invalid_field(key, odef.name, in_query=False)
            if not (fdef.createable if creating else fdef.updateable):
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {fdef.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [fdef.name],
                )
            out[fdef.name] = self._value(odef.name, fdef, value)
        if out.get("OwnerId"):
            self._check_owner(odef.name, out["OwnerId"])
        return out

    def _check_owner(self, sobject: str, owner_id: str) -> None:
        """A record cannot be given to a deactivated user, on insert and on update alike:
        StatusCode INACTIVE_OWNER_OR_USER, worded as Salesforce does ("operation performed
        with inactive user": Salesforce Help, article 005237350), the user and object named."""
        owner = self.records["User"].get(owner_id)
        if owner is not None and not owner["IsActive"]:
            raise SalesforceError(
                400,
                "INACTIVE_OWNER_OR_USER",
                f"operation performed with inactive user [{owner_id}] as owner of "
                f"{sobject.lower()}",
                [],
            )

    def _value(self, sobject: str, fdef: FieldDef, value: Any) -> Any:
        if value is None or (value == "" and fdef.type not in ("string", "textarea", "email")):
            if not fdef.nillable:
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{fdef.name}]",
                    [fdef.name],
                )
            return False if fdef.type == "boolean" else None
        kind = fdef.type

        def bad(expected: str) -> SalesforceError:
            return SalesforceError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {expected} from {type(value).__name__} value "
                f"{value!r} at field {fdef.name}",
            )

        if kind == "boolean":
            if not isinstance(value, bool):
                raise bad("boolean")
            return value
        if kind in ("double", "currency", "percent", "int"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad("double" if kind != "int" else "int")
            return int(value) if kind == "int" else value
        if kind == "date":
            if isinstance(value, date) and not isinstance(value, datetime):
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise bad("date") from None
        if kind == "datetime":
            if isinstance(value, datetime):
                return value.astimezone(UTC)
            try:
                parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise bad("datetime") from None
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        if not isinstance(value, str):
            raise bad("string")
        if kind == "base64":
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise bad("base64") from None
            return value
        if kind == "reference":
            rid = normalize(value)
            if rid is None:
                raise SalesforceError(
                    400,
                    "MALFORMED_ID",
                    f"{fdef.name}: id value of incorrect type: {value}",
                    [fdef.name],
                )
            target = self.type_of(rid)
            referenced = self.records.get(target or "", {}).get(rid)
            if target not in fdef.reference_to or referenced is None:
                raise SalesforceError(
                    400,
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    [fdef.name],
                )
            if referenced["IsDeleted"]:
                # StatusCode ENTITY_IS_DELETED: "You can't reference an object that has been
                # deleted" (API Developer Guide, Core Data Types: StatusCode).
                raise SalesforceError(400, "ENTITY_IS_DELETED", "entity is deleted", [fdef.name])
            return rid
        if len(value) > fdef.length:
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                f"{fdef.label or fdef.name}: data value too large: {value[:40]} "
                f"(max length={fdef.length})",
                [fdef.name],
            )
        if kind in ("picklist", "multipicklist") and fdef.restricted:
            allowed = self._picklists.get((sobject, fdef.name), [])
            for part in value.split(";") if kind == "multipicklist" else [value]:
                if part not in allowed:
                    raise SalesforceError(
                        400,
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{fdef.label or fdef.name}: bad value for restricted picklist "
                        f"field: {part}",
                        [fdef.name],
                    )
        return value

    def _emit(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)

    # --- OAuth and sessions -------------------------------------------------------------------

    def authorize(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        code_challenge: str | None = None,
        method: str = "S256",
        scope: str = "api refresh_token",
    ) -> str:
        """The user's consent, given at once: a one-time code valid 15 minutes."""
        self.check_client(client_id, redirect_uri)
        code = "aPrx" + secrets.token_urlsafe(32)
        with self.lock:
            self._codes[code] = _Code(
                client_id,
                redirect_uri,
                self.api_user_id,
                code_challenge,
                method,
                self.clock() + timedelta(minutes=15),
                scope,
            )
        return code

    def check_client(self, client_id: str, redirect_uri: str | None) -> None:
        if client_id != self.client_id:
            raise _oauth_error(400, "invalid_client_id", "client identifier invalid")
        if (
            redirect_uri is not None
            and self.redirect_uris
            and redirect_uri not in self.redirect_uris
        ):
            raise _oauth_error(
                400, "redirect_uri_mismatch", "redirect_uri must match configuration"
            )

    def exchange_code(
        self,
        code: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> Session:
        with self.lock:
            self.check_client(client_id, None)
            if client_secret is not None and not hmac.compare_digest(
                client_secret, self.client_secret
            ):
                raise _oauth_error(400, "invalid_client", "invalid client credentials")
            grant = self._codes.pop(code, None)
            if grant is None or grant.expires_at <= self.clock() or grant.client_id != client_id:
                raise _oauth_error(400, "invalid_grant", "authentication failure")
            if grant.redirect_uri != redirect_uri:
                raise _oauth_error(
                    400, "redirect_uri_mismatch", "redirect_uri must match configuration"
                )
            if grant.challenge is not None:
                if not code_verifier:
                    raise _oauth_error(400, "invalid_grant", "invalid code verifier")
                digest = hashlib.sha256(code_verifier.encode("ascii", "replace")).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                expected = computed if grant.method == "S256" else code_verifier
                if not hmac.compare_digest(expected, grant.challenge):
                    raise _oauth_error(400, "invalid_grant", "invalid code verifier")
            elif client_secret is None:
                raise _oauth_error(400, "invalid_client", "client secret required")
            return self.issue_session(grant.user_id, refresh=True)

    def issue_session(self, user_id: str | None = None, *, refresh: bool = True) -> Session:
        """A fresh access token (and refresh token) for the user (default: the API user)."""
        with self.lock:
            now = self.clock()
            session = Session(
                access_token=f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}",
                refresh_token=("5Aep" + secrets.token_urlsafe(40)) if refresh else "",
                user_id=user_id or self.api_user_id,
                issued_at=now,
                expires_at=now + timedelta(seconds=self.session_seconds),
                client_id=self.client_id,
            )
            self._sessions[session.access_token] = session
            if refresh:
                self._refresh[session.refresh_token] = session
            return session

    def refresh(self, refresh_token: str, client_id: str, client_secret: str | None) -> Session:
        """A new access token for a refresh token, which stays valid (no new one is sent),
        unless the app rotates them: then a new one is issued and the old one revoked."""
        with self.lock:
            self.check_client(client_id, None)
            if client_secret is not None and not hmac.compare_digest(
                client_secret, self.client_secret
            ):
                raise _oauth_error(400, "invalid_client", "invalid client credentials")
            old = self._refresh.get(refresh_token)
            if old is None:
                raise _oauth_error(400, "invalid_grant", "expired access/refresh token")
            if self.rotate_refresh_tokens:
                del self._refresh[refresh_token]
                return self.issue_session(old.user_id, refresh=True)
            fresh = self.issue_session(old.user_id, refresh=False)
            fresh.refresh_token = refresh_token
            return fresh

    def revoke(self, token: str) -> None:
        with self.lock:
            self._sessions.pop(token, None)
            self._refresh.pop(token, None)

    def expire_sessions(self) -> None:
        """Every access token expires now (refresh tokens stay valid)."""
        with self.lock:
            for session in self._sessions.values():
                session.expires_at = self.clock()

    def authenticate(self, token: str | None) -> Session:
        with self.lock:
            session = self._sessions.get(token or "")
            if session is None or session.expires_at <= self.clock():
                raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return session

    def id_url(self, session: Session) -> str:
        return f"{self.instance_url}/id/{self.org_id}/{session.user_id}"

    def signature(self, session: Session) -> str:
        """Base64 HMAC-SHA256 of id + issued_at with the consumer secret, as Salesforce signs."""
        issued = str(int(session.issued_at.timestamp() * 1000))
        mac = hmac.new(
            self.client_secret.encode(), (self.id_url(session) + issued).encode(), hashlib.sha256
        )
        return base64.b64encode(mac.digest()).decode()

    # --- API usage ----------------------------------------------------------------------------

    def count_call(self, route: str) -> None:
        """Count one API call in the rolling 24 hours; 403 REQUEST_LIMIT_EXCEEDED past the
        allowance (a refused call is not counted)."""
        with self.lock:
            now = self.clock()
            stamps = self.usage.stamps
            while stamps and stamps[0] <= now - timedelta(hours=24):
                stamps.popleft()
            if self.usage.limit is not None and len(stamps) >= self.usage.limit:
                raise SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            stamps.append(now)
            self.route_counts[route] += 1

    def api_usage(self) -> tuple[int, int | None]:
        with self.lock:
            now = self.clock()
            used = sum(1 for s in self.usage.stamps if s > now - timedelta(hours=24))
            return used, self.usage.limit

    def set_daily_limit(self, limit: int | None) -> None:
        with self.lock:
            self.usage.limit = limit

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.route_counts)

    def reset_counts(self) -> None:
        with self.lock:
            self.route_counts.clear()


_TAGS = re.compile(r"<[^>]*>")


def _derive_note(record: dict[str, Any], by: str) -> None:
    """What Salesforce derives from a ContentNote's Content (base64 of HTML or plain text):
    the text preview (up to 255 characters, markup removed), the size, the SNOTE file type."""
    raw = base64.b64decode(record["Content"] or "")
    text = html.unescape(_TAGS.sub(" ", raw.decode("utf-8", "replace")))
    record["TextPreview"] = " ".join(text.split())[:255] or None
    record["ContentSize"] = len(raw)
    record["FileType"] = "SNOTE"
    record["FileExtension"] = "snote"
    record["OwnerId"] = record["OwnerId"] or by


def _oauth_error(status: int, error: str, description: str) -> SalesforceError:
    exc = SalesforceError(status, error, description)
    exc.headers["X-OAuth-Error"] = "1"
    return exc
