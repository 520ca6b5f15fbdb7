"""The Deal Radar deal custom fields in Zendesk Sell: names, types, choices and value encoding.

Sell's API cannot create custom fields (crm-apis.md 3.5): an admin creates them in Sell's
settings, and provisioning (adapters/sell/provision.py) checks them and says exactly which to
create. One per field of engine/fields.py `field_values`. Values travel in a deal's
`custom_fields` object keyed by the field's name: numbers as strings, a list field as the name
of its choice, a multi-select list as a list of choice names, a datetime as ISO 8601 UTC; None
clears a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.settings import ALERT_CODES


@dataclass(frozen=True)
class Field:
    field: str
    """The CRM-neutral name in engine/fields.py."""
    name: str
    """The Sell custom field's name, as an admin must create it."""
    type: str
    """Sell's custom field type (address bool date datetime email list multi_select_list number
    phone string text url)."""
    label: str
    """The type as Sell's settings page names it, for the admin."""
    choices: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    """Other types that hold the value as well (a summary in a single-line string field)."""

    def fits(self, field_type: str) -> bool:
        return field_type == self.type or field_type in self.accepted

    def describe(self) -> str:
        """`"Deal Radar alerts" (Multi-select list, options: a, b)`: what the admin creates."""
        options = f", options: {', '.join(self.choices)}" if self.choices else ""
        return f'"{self.name}" ({self.label}{options})'


FIELDS: tuple[Field, ...] = (
    Field("alerts", "Deal Radar alerts", "multi_select_list", "Multi-select list", ALERT_CODES),
    Field("alert_count", "Deal Radar alert count", "number", "Number"),
    Field("summary", "Deal Radar summary", "text", "Text area", accepted=("string",)),
    Field("health_score", "Deal Radar health score", "number", "Number"),
    Field("health_grade", "Deal Radar health grade", "list", "Dropdown list",
          ("good", "fair", "poor")),
    Field("health_trend", "Deal Radar health trend", "list", "Dropdown list",
          ("improving", "steady", "declining")),
    Field("days_since_interaction", "Deal Radar days since interaction", "number", "Number"),
    Field("evaluated_at", "Deal Radar evaluated at", "datetime", "Date and time"),
)  # fmt: skip

BY_FIELD: Mapping[str, Field] = {f.field: f for f in FIELDS}
NAMES: frozenset[str] = frozenset(f.name for f in FIELDS)
"""Deal Radar's custom field names: a feed event changing only these is our own write's echo."""


def encode(
    values: Mapping[str, Any], usable: Mapping[str, frozenset[str] | None]
) -> tuple[dict, list[str]]:
    """{field: value} from engine/fields.py to Sell's `custom_fields` {name: value}, for the
    fields in `usable` ({Sell name: its choices, None for a field without}), and the fields not
    written whole: a field the account lacks is left out, and so is a dropdown choice the admin
    did not create (sending nothing keeps what the field holds; a multi-select gets the choices
    it has). The jobs record those as unwritten, so they go again once the admin adds them."""
    out: dict[str, Any] = {}
    skipped: list[str] = []
    for field, value in values.items():
        spec = BY_FIELD.get(field)
        if spec is None:
            raise KeyError(f"no Sell custom field for Deal Radar field {field!r}")
        if spec.name not in usable:
            skipped.append(field)
            continue
        choices = usable[spec.name]
        encoded = _value(spec, value, choices)
        if spec.type == "list" and encoded is None and value not in (None, ""):
            skipped.append(field)
            continue
        if spec.type == "multi_select_list" and len(encoded) < len(value or ()):
            skipped.append(field)
        out[spec.name] = encoded
    return out, skipped


def _value(spec: Field, value: Any, choices: frozenset[str] | None) -> Any:
    if value is None or value == "":
        return [] if spec.type == "multi_select_list" else None
    if spec.type == "multi_select_list":
        return [v for v in value if choices is None or v in choices]
    if spec.type == "list":
        return value if choices is None or value in choices else None
    if spec.type == "number":
        return str(value)
    if spec.type == "datetime":
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # the jobs stamp aware UTC times; a naive one is UTC too
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)
