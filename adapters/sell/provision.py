"""Checking a Sell account at install, and whenever its custom fields change: the Deal Radar
deal custom fields, and the contact field that holds buying roles.

Sell's API lists custom fields but cannot create them (crm-apis.md 3.5), so nothing is created
here: each check reads the definitions (`GET /v2/deal/custom_fields`, `GET
/v2/contact/custom_fields`: one call each), says exactly what an admin must create or fix in
Sell, and leaves that as a notice (`dealradar tenants status`) until it is fixed, when the
notice is cleared. Write-back writes the fields that are there (`FieldCheck.usable`); a missing
role field only means contacts carry no roles, so `key_role_silent` has none to watch while
every other alert works.

Error policy: adapters.errors from the client propagate (the setup job retries by policy);
definitions of unexpected shape are skipped, never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Notices
from adapters.sell.client import SellClient, records
from adapters.sell.fields import FIELDS, Field

log = logging.getLogger(__name__)

FIELDS_NOTICE = "sell.deal_fields"
ROLE_NOTICE = "sell.role_field"
ROLE_TYPES = {"list": "Dropdown list", "multi_select_list": "Multi-select list",
              "string": "Single-line text", "text": "Text area"}  # fmt: skip
"""The contact field types roles are read from, as Sell's settings page names them."""
WHERE = "in Zendesk Sell, Settings > Customize > {object} > Custom fields"


@dataclass
class FieldCheck:
    """The Deal Radar deal custom fields an account has, and what it lacks."""

    usable: dict[str, frozenset[str] | None] = field(default_factory=dict)
    """Sell field name -> the choices it has (None for a field without choices)."""
    missing: list[Field] = field(default_factory=list)
    wrong_type: list[tuple[Field, str]] = field(default_factory=list)
    missing_choices: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.wrong_type or self.missing_choices)

    def message(self) -> str | None:
        """What the admin must do, in one paragraph; None when nothing."""
        if self.complete:
            return None
        parts = []
        if self.missing:
            parts.append(
                f"create these deal custom fields {WHERE.format(object='Deals')} (Sell's API "
                f"cannot): {'; '.join(f.describe() for f in self.missing)}"
            )
        for spec, actual in self.wrong_type:
            parts.append(
                f'"{spec.name}" is a {actual} field: delete it and create it again as '
                f"{spec.describe()}"
            )
        for name, choices in self.missing_choices.items():
            parts.append(f'add the options {", ".join(choices)} to "{name}"')
        return (
            "Deal Radar cannot write all its fields into Zendesk Sell deals: "
            + "; ".join(parts)
            + ". The other fields are written meanwhile; Deal Radar checks again when Sell's "
            "custom fields change."
        )


def check_deal_fields(client: SellClient) -> FieldCheck:
    """Which Deal Radar fields the account's deals have, with the right type and choices."""
    defined = _by_name(client, "deal")
    check = FieldCheck()
    for spec in FIELDS:
        have = defined.get(spec.name)
        if have is None:
            check.missing.append(spec)
            continue
        if not spec.fits(str(have.get("type"))):
            check.wrong_type.append((spec, str(have.get("type"))))
            continue
        choices = _choices(have)
        if spec.choices:
            lacking = [c for c in spec.choices if c not in (choices or ())]
            if lacking:
                check.missing_choices[spec.name] = lacking
        check.usable[spec.name] = choices
    return check


def check_role_field(
    client: SellClient, role_field: str, tag_prefix: str | None, roles: Sequence[str]
) -> str | None:
    """What the admin must do for contacts to carry buying roles; None when they can."""
    if not role_field:
        return None
    tags = (
        f" (roles are still read from contact tags{_tag_note(tag_prefix)})"
        if tag_prefix is not None else ""
    )  # fmt: skip
    have = _by_name(client, "contact").get(role_field)
    if have is None:
        return (
            f'Zendesk Sell has no contact custom field "{role_field}" (settings '
            "sell.role_field; renamed or deleted?): contacts have no buying roles from it, so "
            f"key_role_silent has no role to watch{tags}; every other alert works. Create it "
            f"{WHERE.format(object='Contacts')} as a Dropdown list with the options "
            f"{', '.join(roles)}, or set sell.role_field to the field that holds the roles."
        )
    kind = str(have.get("type"))
    if kind not in ROLE_TYPES:
        return (
            f'The Zendesk Sell contact field "{role_field}" is a {kind} field: roles are read '
            f"from a {', '.join(ROLE_TYPES.values())} field{tags}. Change settings "
            "sell.role_field, or recreate the field as a Dropdown list."
        )
    return None


def check(
    client: SellClient,
    notices: Notices | None,
    *,
    role_field: str,
    tag_prefix: str | None,
    roles: Sequence[str],
) -> FieldCheck:
    """Both checks, their notices set or cleared (and logged when they change)."""
    fields = check_deal_fields(client)
    role = check_role_field(client, role_field, tag_prefix, roles)
    for name, message in ((FIELDS_NOTICE, fields.message()), (ROLE_NOTICE, role)):
        changed = notices.set(name, message) if notices is not None else True
        if changed and message:
            log.warning("Zendesk Sell: %s", message)
        elif changed:
            log.info("Zendesk Sell: %s is fixed", name)
    return fields


def _by_name(client: SellClient, resource_type: str) -> dict[str, Mapping[str, Any]]:
    answer = client.get(f"/v2/{resource_type}/custom_fields")
    return {str(f["name"]): f for f in records(answer) if isinstance(f, Mapping) and f.get("name")}


def _choices(definition: Mapping[str, Any]) -> frozenset[str] | None:
    raw = definition.get("choices")
    if not isinstance(raw, list):
        return None
    return frozenset(str(c.get("name")) for c in raw if isinstance(c, Mapping))


def _tag_note(prefix: str | None) -> str:
    return f' starting "{prefix}"' if prefix else " naming a role"
