"""The Deal Radar deal properties in HubSpot: names, definitions and value encoding, in one place.

Provisioning creates them (`GROUP`, `definitions()`); write-back fills them (`encode`). One per
field of engine/fields.py `field_values`, named `dealradar_<field>`. HubSpot takes every value as
a string (crm-apis.md 1.5): a multi-select is its option values joined by ";", a datetime is
epoch milliseconds, and an empty string clears the property.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.settings import ALERT_CODES

GROUP = {"name": "dealradar", "label": "Deal Radar", "displayOrder": -1}
PREFIX = "dealradar_"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Property:
    field: str
    """The CRM-neutral name in engine/fields.py."""
    label: str
    type: str
    field_type: str
    description: str
    options: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return PREFIX + self.field

    def definition(self) -> dict[str, Any]:
        """The body of POST /crm/v3/properties/deals (PropertyCreate)."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": GROUP["name"],
            "description": self.description,
            "formField": False,
        }
        if self.options:
            body["options"] = [
                {
                    "label": value.replace("_", " ").capitalize(),
                    "value": value,
                    "displayOrder": i,
                    "hidden": False,
                }
                for i, value in enumerate(self.options)
            ]
        return body


PROPERTIES: tuple[Property, ...] = (
    Property(
        "alerts", "Deal Radar alerts", "enumeration", "checkbox",
        "The deal's open alerts, one option per alert code, so list views can filter on them.",
        ALERT_CODES,
    ),
    Property(
        "alert_count", "Deal Radar alert count", "number", "number",
        "How many alerts the deal has (a key-role alert counts once per role).",
    ),
    Property(
        "summary", "Deal Radar summary", "string", "text",
        "Every alert's message on one line.",
    ),
    Property(
        "health_score", "Deal Radar health score", "number", "number",
        "Relationship health from 0 to 100.",
    ),
    Property(
        "health_grade", "Deal Radar health grade", "enumeration", "select",
        "Good, fair or poor, from the health score.",
        ("good", "fair", "poor"),
    ),
    Property(
        "health_trend", "Deal Radar health trend", "enumeration", "select",
        "The health score against a week earlier; empty until there is a week to compare.",
        ("improving", "steady", "declining"),
    ),
    Property(
        "days_since_interaction", "Deal Radar days since interaction", "number", "number",
        "Calendar days since the last email, call or meeting with the deal's contacts.",
    ),
    Property(
        "evaluated_at", "Deal Radar evaluated at", "datetime", "date",
        "When Deal Radar last evaluated the deal.",
    ),
)  # fmt: skip

BY_FIELD: Mapping[str, Property] = {p.field: p for p in PROPERTIES}
NAMES: tuple[str, ...] = tuple(p.name for p in PROPERTIES)


def definitions() -> list[dict[str, Any]]:
    """Every Deal Radar property as HubSpot's PropertyCreate bodies, in display order."""
    return [p.definition() for p in PROPERTIES]


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """{field: value} from engine/fields.py to {property name: HubSpot string}.

    Raises KeyError naming an unknown field: a field without a property is a bug, not data."""
    out: dict[str, str] = {}
    for field, value in values.items():
        try:
            prop = BY_FIELD[field]
        except KeyError:
            raise KeyError(f"no HubSpot property for Deal Radar field {field!r}") from None
        out[prop.name] = _string(prop, value)
    return out


def _string(prop: Property, value: Any) -> str:
    if value is None:
        return ""
    if prop.type == "enumeration" and prop.field_type == "checkbox":
        return ";".join(value)
    if prop.type == "datetime":
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # the jobs stamp aware UTC times; a naive one is UTC too
            moment = moment.replace(tzinfo=UTC)
        return str((moment - EPOCH) // timedelta(milliseconds=1))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
