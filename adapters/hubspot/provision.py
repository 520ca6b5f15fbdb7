"""Provisioning a portal at install: the Deal Radar property group and deal properties, the
portal's deal→contact association labels (the roles its contacts can hold on a deal), and its
account settings (time zone and currency, `account_settings`).

Idempotent, and cheap to run again: it checks the grant's scopes (one call), reads the deal
property groups and properties (two calls), creates only what is missing, updates only a
property whose definition drifted (an admin edited its options, or an older Deal Radar defined
it differently), and reads the labels (one call). A second run on a provisioned portal makes
four calls and writes nothing.

Error policy: every call goes through `HubSpotClient.call` (its retries and translation). A
grant without the scopes Deal Radar needs is `PermissionDenied` naming them, and so is a 403 on
a write (naming the scope HubSpot says is missing), so that the setup job suspends the tenant
with a reason an admin can act on; a 409 on a create (another setup run got there first) counts
as done; anything else propagates unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate, PropertyUpdate

from adapters.errors import InvalidRequest, PermissionDenied
from adapters.hubspot.client import TIMEOUT, HubSpotClient, required_scopes
from adapters.hubspot.oauth import SCOPES, token_info
from adapters.hubspot.properties import GROUP, definitions
from adapters.roles import match_labels

log = logging.getLogger(__name__)

OBJECT_TYPE = "deals"
COMPARED = ("label", "type", "fieldType", "groupName", "description")
"""The definition fields a provisioned property must match (options are compared apart)."""
SCHEMA_SCOPE = "crm.schemas.deals.write"
"""The scope that creating deal properties and groups needs."""
ACCOUNT_DETAILS = "/account-info/v3/details"
"""The portal's settings (the `oauth` scope is enough); the SDK has no API class for it."""


@dataclass(frozen=True)
class AssociationLabel:
    """One association type from deals to contacts: HubSpot's unlabelled default, or a label."""

    type_id: int
    label: str | None
    category: str


@dataclass
class Provisioned:
    """What a provisioning run found and did."""

    group_created: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    labels: list[AssociationLabel] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.group_created or bool(self.created or self.updated)


def provision(client: HubSpotClient) -> Provisioned:
    """Check the grant's scopes; create or fix the Deal Radar group and properties; read the
    association labels."""
    check_scopes(client)
    done = repair_properties(client)
    done.labels = association_labels(client)
    log.info(
        "provisioned HubSpot portal %s: group %s, properties created %s, updated %s, "
        "unchanged %d; %d deal-contact labels",
        client.portal_id, "created" if done.group_created else "present",
        done.created or "none", done.updated or "none", len(done.unchanged),
        sum(1 for lab in done.labels if lab.label),
    )  # fmt: skip
    return done


def repair_properties(client: HubSpotClient) -> Provisioned:
    """Create the Deal Radar group and properties that are missing, and put back what an admin
    changed in them (an option removed, a type changed): provisioning's property step, run
    again when HubSpot refuses a write-back for one of them."""
    done = Provisioned()
    groups = client.call(
        "properties.groups.get_all", lambda sdk: sdk.crm.properties.groups_api.get_all(OBJECT_TYPE)
    )
    if not any(g.name == GROUP["name"] for g in groups.results or ()):
        done.group_created = _create_group(client)
    existing = client.call(
        "properties.get_all", lambda sdk: sdk.crm.properties.core_api.get_all(OBJECT_TYPE)
    )
    current = {p.name: p for p in existing.results or ()}
    for wanted in definitions():
        name = wanted["name"]
        have = current.get(name)
        if have is None:
            if _create_property(client, wanted):
                done.created.append(name)
            else:
                done.unchanged.append(name)
        elif drift(wanted, have.to_dict()):
            _update_property(client, wanted)
            done.updated.append(name)
        else:
            done.unchanged.append(name)
    return done


def check_scopes(client: HubSpotClient, required: Sequence[str] = SCOPES) -> None:
    """PermissionDenied naming the scopes the tenant's grant lacks (an app whose scopes grew
    since the portal installed it, an install made with fewer), before anything fails halfway.
    Introspection needs the app's credentials: without them, InvalidRequest naming the settings."""
    if client.app is None:
        raise InvalidRequest(
            "HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET are not both set: the worker cannot ask "
            "HubSpot which scopes the portal granted; set them to the app's credentials"
        )
    client_id, client_secret = client.app
    info = client.call(
        "oauth.token_info",
        lambda _sdk: token_info(
            client.tokens.current(), client_id=client_id, client_secret=client_secret,
            host=client.host,
        ),
    )  # fmt: skip
    missing = info.missing(required)
    if missing:
        raise PermissionDenied(
            f"HubSpot portal {client.portal_id} did not grant Deal Radar the "
            f"{', '.join(missing)} scope{'s' if len(missing) > 1 else ''}; a super admin must "
            "install Deal Radar again from /install/hubspot and accept every permission it asks for"
        )


def association_labels(client: HubSpotClient) -> list[AssociationLabel]:
    """The portal's deal→contact association types, labelled ones (its roles) included."""
    answer = client.call(
        "associations.labels",
        lambda sdk: sdk.crm.associations.v4.schema.definitions_api.get_all("deals", "contacts"),
    )
    return [
        AssociationLabel(
            type_id=int(spec.type_id), label=spec.label or None, category=spec.category
        )
        for spec in answer.results or ()
    ]


@dataclass(frozen=True)
class AccountSettings:
    """The portal's time zone and company currency, as its account settings say."""

    time_zone: str | None
    """The zone as HubSpot names it (an IANA name, or a legacy one zoneinfo may not know: the
    setup reads it through adapters/zones.py)."""
    currency: str | None


def account_settings(client: HubSpotClient) -> AccountSettings:
    """The portal's time zone and currency (`GET /account-info/v3/details`)."""
    answer = client.call(
        "account.details",
        lambda sdk: sdk.crm.properties.core_api.api_client.call_api(
            ACCOUNT_DETAILS, "GET",
            header_params={"Accept": "application/json"},
            response_types_map={200: "object"},
            auth_settings=["oauth2"],
            _return_http_data_only=True,
            _request_timeout=TIMEOUT,
        ),
    )  # fmt: skip
    details = answer if isinstance(answer, dict) else {}
    zone = str(details.get("timeZone") or "").strip() or None
    currency = str(details.get("companyCurrency") or "").strip() or None
    return AccountSettings(time_zone=zone, currency=currency)


def suggest_roles(labels: Sequence[AssociationLabel], roles: Sequence[str]) -> dict[str, str]:
    """{label: role} for each labelled association type (adapters/roles.py `match_labels`).
    "Primary" is HubSpot's flag for the main contact, not a role."""
    return match_labels(
        (
            lab.label
            for lab in labels
            if lab.label and not (lab.category == "HUBSPOT_DEFINED" and lab.label == "Primary")
        ),
        roles,
    )


def drift(wanted: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The fields of a property definition that differ from what provisioning wants."""
    have = _camel(have)
    diffs = [k for k in COMPARED if k in wanted and (have.get(k) or "") != wanted[k]]
    if _options(wanted.get("options")) != _options(have.get("options")):
        diffs.append("options")
    return diffs


def _options(options: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str, bool]]:
    out = []
    for opt in options or ():
        opt = _camel(opt)
        out.append((str(opt.get("value")), str(opt.get("label")), bool(opt.get("hidden"))))
    return out


def _camel(d: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's models speak snake_case, HubSpot's JSON camelCase: compare in camelCase."""
    out = {}
    for key, value in d.items():
        head, *rest = key.split("_")
        out[head + "".join(p.title() for p in rest)] = value
    return out


def _create_group(client: HubSpotClient) -> bool:
    body = PropertyGroupCreate(
        name=GROUP["name"], label=GROUP["label"], display_order=GROUP["displayOrder"]
    )
    return _created(
        client,
        "properties.groups.create",
        lambda sdk: sdk.crm.properties.groups_api.create(OBJECT_TYPE, body),
    )


def _create_property(client: HubSpotClient, wanted: Mapping[str, Any]) -> bool:
    body = PropertyCreate(
        name=wanted["name"],
        label=wanted["label"],
        type=wanted["type"],
        field_type=wanted["fieldType"],
        group_name=wanted["groupName"],
        description=wanted.get("description"),
        form_field=wanted.get("formField", False),
        options=_option_inputs(wanted),
    )
    return _created(
        client,
        "properties.create",
        lambda sdk: sdk.crm.properties.core_api.create(OBJECT_TYPE, body),
    )


def _update_property(client: HubSpotClient, wanted: Mapping[str, Any]) -> None:
    body = PropertyUpdate(
        label=wanted["label"],
        type=wanted["type"],
        field_type=wanted["fieldType"],
        group_name=wanted["groupName"],
        description=wanted.get("description"),
        options=_option_inputs(wanted),
    )
    _guarded(
        "properties.update",
        lambda: client.call(
            "properties.update",
            lambda sdk: sdk.crm.properties.core_api.update(OBJECT_TYPE, wanted["name"], body),
        ),
    )


def _option_inputs(wanted: Mapping[str, Any]) -> list[OptionInput] | None:
    options = wanted.get("options")
    if not options:
        return None
    return [
        OptionInput(
            label=o["label"], value=o["value"], display_order=o.get("displayOrder", i),
            hidden=o.get("hidden", False),
        )
        for i, o in enumerate(options)
    ]  # fmt: skip


def _created(client: HubSpotClient, what: str, fn: Any) -> bool:
    """True if this call created it; False when HubSpot says it exists already (409)."""
    try:
        _guarded(what, lambda: client.call(what, fn))
    except InvalidRequest as exc:
        if getattr(exc.__cause__, "status", None) != 409:
            raise
        return False
    return True


def _guarded(what: str, call: Any) -> Any:
    try:
        return call()
    except PermissionDenied as exc:
        scopes = ", ".join(required_scopes(exc.__cause__)) or SCHEMA_SCOPE
        raise PermissionDenied(
            f"HubSpot refused {what} ({exc}): the install lacks the {scopes} scope; install "
            "Deal Radar again from /install/hubspot and accept every permission it asks for"
        ) from exc
