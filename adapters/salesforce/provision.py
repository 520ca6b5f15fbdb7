"""Provisioning an org at install: Deal Radar's custom fields on Opportunity, their field-level
security through a "Deal Radar" permission set assigned to the installing user, and the org's
contact-role picklist (the roles its contacts can hold on an opportunity).

Steps, each idempotent (a second run on a provisioned org reads six times and writes nothing):

1. the Tooling API lists Opportunity's custom fields; each Deal Radar field missing is created
   (`POST /tooling/sobjects/CustomField`, fields.py's definitions: the alert codes as a
   restricted multi-select picklist);
2. the permission set `Deal_Radar` is found or created, and assigned to Deal Radar's user;
3. its FieldPermissions rows grant Read and Edit on each field, the missing ones created in one
   sObject Collections call (a new field is invisible to every user, the API's included, until
   they exist: crm-apis.md traps 10);
4. describe Opportunity says which fields Deal Radar's user now sees and may edit, and whether
   the alert picklist holds every alert code;
5. describe OpportunityContactRole gives the Role picklist's live values, matched to the
   tenant's roles (adapters/roles.py).

Where the API cannot do a step (the user lacks "Customize Application" or "Manage Profiles and
Permission Sets", a field is still deploying), nothing fails: the step an admin must do by hand
is written out exactly in `Provisioned.admin_steps` (the setup job shows them in `dealradar
tenants status` and the log) and the sync goes on; fields not visible yet are left out of
write-backs until they are. What the REST and Tooling APIs cannot create at all, the Outbound
Message or Flow that pushes changes, is in the README; until an org has one, Deal Radar polls.

Error policy: every call goes through `SalesforceClient.call`. A refusal of one of these
writes (403, or a SaveResult error such as INSUFFICIENT_ACCESS_OR_READONLY) becomes an admin
step; errors of the reads propagate unchanged (PermissionDenied suspends the tenant).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.errors import InvalidRequest, PermissionDenied
from adapters.roles import match_labels
from adapters.salesforce import fields
from adapters.salesforce.client import TIMEOUT, SalesforceClient, errors_of
from adapters.salesforce.oauth import identity
from engine.settings import ALERT_CODES

log = logging.getLogger(__name__)


@dataclass
class Provisioned:
    """What a provisioning run found and did, and what is left to an admin."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    """Fields whose FieldPermissions row this run created."""
    invisible: list[str] = field(default_factory=list)
    """Our fields Deal Radar's user cannot edit yet (write-backs leave them out)."""
    roles: list[str] = field(default_factory=list)
    """The org's OpportunityContactRole Role values."""
    admin_steps: list[str] = field(default_factory=list)
    time_zone: str = ""
    """The org's TimeZoneSidKey (an IANA name such as "America/Los_Angeles"), "" if unread."""

    def labels(self, configured: Sequence[str]) -> dict[str, str]:
        """The org's roles matched to the tenant's (`role_labels` lays an admin's over it)."""
        return match_labels(self.roles, configured)

    def summary(self) -> str:
        text = (
            f"fields: {len(self.created)} created, {len(self.unchanged)} present, "
            f"{len(self.granted)} granted; {len(self.roles)} contact roles"
        )
        if self.invisible:
            text += f"; not yet visible to Deal Radar: {', '.join(self.invisible)}"
        if self.admin_steps:
            text += "; an admin must: " + " ".join(
                f"({i}) {step}" for i, step in enumerate(self.admin_steps, 1)
            )
        return text


def provision(client: SalesforceClient, user_id: str | None = None) -> Provisioned:
    """Create or check the fields, their permission set and its grants; read the roles.
    `user_id` is Deal Radar's user (default: the installing user the tokens name)."""
    done = Provisioned()
    user_id = user_id or _token_user(client)
    _create_fields(client, done)
    permission_set = _permission_set(client, done)
    if permission_set is not None:
        _assign(client, permission_set, user_id, done)
        _grant(client, permission_set, done)
    _check_visible(client, done)
    done.roles = role_values(client)
    done.time_zone = org_time_zone(client)
    log.info("provisioned Salesforce org %s: %s", client.org_id, done.summary())
    return done


def org_time_zone(client: SalesforceClient) -> str:
    """The org's default time zone (Organization.TimeZoneSidKey); "" when the org says none."""
    rows = client.query("SELECT Id, TimeZoneSidKey FROM Organization", "org time zone")
    return str(rows[0].get("TimeZoneSidKey") or "") if rows else ""


def role_values(client: SalesforceClient) -> list[str]:
    """OpportunityContactRole.Role's active values, as the org's describe says now."""
    answer = client.call(
        "describe OpportunityContactRole",
        lambda sf: sf.restful("sobjects/OpportunityContactRole/describe", timeout=TIMEOUT),
    )
    for spec in (answer or {}).get("fields") or ():
        if spec.get("name") == "Role":
            return [
                str(v["value"]) for v in spec.get("picklistValues") or () if v.get("active", True)
            ]
    return []


# -- steps ---------------------------------------------------------------------------------------


def _create_fields(client: SalesforceClient, done: Provisioned) -> None:
    existing = {
        str(row["DeveloperName"]).lower()
        for row in _tooling_query(
            client,
            f"SELECT Id, DeveloperName FROM CustomField WHERE TableEnumOrId = '{fields.OBJECT}'",
        )
    }
    for spec in fields.FIELDS:
        if spec.developer_name.lower() in existing:
            done.unchanged.append(spec.api_name)
            continue
        try:
            client.call(
                "tooling create CustomField",
                lambda sf, spec=spec: sf.restful(
                    "tooling/sobjects/CustomField", method="POST", json=spec.definition(),
                    timeout=TIMEOUT,
                ),
            )  # fmt: skip
        except (PermissionDenied, InvalidRequest) as exc:
            if getattr(exc, "code", "") == "DUPLICATE_DEVELOPER_NAME":  # another run made it
                done.unchanged.append(spec.api_name)
                continue
            done.admin_steps.append(
                f"Setup > Object Manager > Opportunity > Fields & Relationships > New: create "
                f"the {spec.admin_step()} (Salesforce refused to create it for Deal Radar: "
                f"{exc})."
            )
            continue
        done.created.append(spec.api_name)


def _permission_set(client: SalesforceClient, done: Provisioned) -> str | None:
    rows = client.query(
        f"SELECT Id FROM PermissionSet WHERE Name = '{fields.PERMISSION_SET}'",
        "query PermissionSet",
    )
    if rows:
        return str(rows[0]["Id"])
    try:
        answer = client.call(
            "create PermissionSet",
            lambda sf: sf.restful(
                "sobjects/PermissionSet", method="POST", timeout=TIMEOUT,
                json={"Name": fields.PERMISSION_SET, "Label": fields.PERMISSION_SET_LABEL},
            ),
        )  # fmt: skip
    except (PermissionDenied, InvalidRequest) as exc:
        done.admin_steps.append(
            f"Setup > Permission Sets > New: Label '{fields.PERMISSION_SET_LABEL}', API Name "
            f"'{fields.PERMISSION_SET}', Save; then in it Object Settings > Opportunities > "
            f"Edit: tick Read Access and Edit Access for {_labels(fields.API_NAMES)}; Save; "
            f"then Manage Assignments > Add Assignment: the user who installed Deal Radar "
            f"(Salesforce refused to create the permission set: {exc})."
        )
        return None
    return str(answer["id"])


def _assign(client: SalesforceClient, permission_set: str, user_id: str, done: Provisioned) -> None:
    rows = client.query(
        "SELECT Id FROM PermissionSetAssignment "
        f"WHERE PermissionSetId = '{permission_set}' AND AssigneeId = '{user_id}'",
        "query PermissionSetAssignment",
    )
    if rows:
        return
    try:
        client.call(
            "create PermissionSetAssignment",
            lambda sf: sf.restful(
                "sobjects/PermissionSetAssignment", method="POST", timeout=TIMEOUT,
                json={"PermissionSetId": permission_set, "AssigneeId": user_id},
            ),
        )  # fmt: skip
    except (PermissionDenied, InvalidRequest) as exc:
        if getattr(exc, "code", "") == "DUPLICATE_VALUE":
            return
        done.admin_steps.append(
            f"Setup > Permission Sets > {fields.PERMISSION_SET_LABEL} > Manage Assignments > "
            f"Add Assignment: select the user who installed Deal Radar (id {user_id}), Assign "
            f"(Salesforce refused the assignment: {exc})."
        )


def _grant(client: SalesforceClient, permission_set: str, done: Provisioned) -> None:
    rows = client.query(
        "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
        f"WHERE ParentId = '{permission_set}' AND SobjectType = '{fields.OBJECT}'",
        "query FieldPermissions",
    )
    have = {str(r["Field"]).lower(): r for r in rows}
    wanted = [
        spec for spec in fields.FIELDS
        if spec.api_name in done.created + done.unchanged
        and not (have.get(spec.full_name.lower()) or {}).get("PermissionsEdit")
    ]  # fmt: skip
    missing = [s for s in wanted if s.full_name.lower() not in have]
    refused: list[str] = []
    if missing:
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "FieldPermissions"}, "ParentId": permission_set,
                 "SobjectType": fields.OBJECT, "Field": spec.full_name,
                 "PermissionsRead": True, "PermissionsEdit": True}
                for spec in missing
            ],
        }  # fmt: skip
        try:
            results = client.call(
                "create FieldPermissions",
                lambda sf: sf.restful(
                    "composite/sobjects", method="POST", json=body, timeout=TIMEOUT
                ),
            )
        except (PermissionDenied, InvalidRequest) as exc:
            results = [{"success": False, "errors": [{"message": str(exc)}]}] * len(missing)
        for spec, result in zip(missing, results or (), strict=False):
            if result.get("success"):
                done.granted.append(spec.api_name)
            else:
                refused.append(spec.api_name)
                log.warning(
                    "Salesforce org %s: FieldPermissions on %s refused: %s",
                    client.org_id, spec.api_name, errors_of(result.get("errors")),
                )  # fmt: skip
    # Rows that exist without Edit (an admin narrowed them) are an admin's to change back.
    refused += [s.api_name for s in wanted if s.full_name.lower() in have]
    if refused:
        done.admin_steps.append(
            f"Setup > Permission Sets > {fields.PERMISSION_SET_LABEL} > Object Settings > "
            f"Opportunities > Edit: tick Read Access and Edit Access for {_labels(refused)}; "
            "Save."
        )


def _check_visible(client: SalesforceClient, done: Provisioned) -> None:
    answer = client.call(
        "describe Opportunity",
        lambda sf: sf.restful(f"sobjects/{fields.OBJECT}/describe", timeout=TIMEOUT),
    )
    described = {str(f["name"]): f for f in (answer or {}).get("fields") or ()}
    done.invisible = [n for n in fields.API_NAMES if not (described.get(n) or {}).get("updateable")]
    if done.invisible and not any("Object Settings" in s for s in done.admin_steps):
        done.admin_steps.append(
            f"Fields not visible to Deal Radar yet: {_labels(done.invisible)}. A new field can "
            "take a minute to deploy; if they stay invisible, check in Setup > Permission Sets "
            f"> {fields.PERMISSION_SET_LABEL} > Object Settings > Opportunities that Read Access "
            "and Edit Access are ticked for them, and that the permission set is assigned to "
            "the user who installed Deal Radar. Until then Deal Radar writes the other fields."
        )
    alerts = described.get(fields.BY_FIELD["alerts"].api_name)
    if alerts:
        values = {str(v.get("value")) for v in alerts.get("picklistValues") or ()}
        absent = [code for code in ALERT_CODES if code not in values]
        if absent:
            done.admin_steps.append(
                "Setup > Object Manager > Opportunity > Fields & Relationships > "
                f"{fields.BY_FIELD['alerts'].label} > Values > New: add {', '.join(absent)} "
                "(each exactly so), Save."
            )


def _tooling_query(client: SalesforceClient, soql: str) -> list[dict[str, Any]]:
    answer = client.call(
        "tooling query CustomField",
        lambda sf: sf.restful("tooling/query", params={"q": soql}, timeout=TIMEOUT),
    )
    return list((answer or {}).get("records") or ())


def _token_user(client: SalesforceClient) -> str:
    detail = getattr(client.tokens, "detail", None)
    id_url = detail("id") if detail is not None else None
    if not id_url:
        raise PermissionDenied(
            f"Salesforce org {client.org_id}: its tokens name no user; install Deal Radar "
            "again from /install/salesforce"
        )
    return identity(id_url)[1]


def _labels(api_names: Sequence[str]) -> str:
    return ", ".join(
        f"'{fields.BY_API_NAME[n].label}' ({n})" for n in api_names if n in fields.BY_API_NAME
    )
