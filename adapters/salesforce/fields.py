"""The Deal Radar custom fields on Salesforce's Opportunity: names, definitions, value encoding.

Provisioning creates them through the Tooling API (`CustomField`, one per field: `definition`);
write-back fills them (`encode`). One per field of engine/fields.py `field_values`, named
`DealRadar_<Field>__c`. The alert codes are a restricted multi-select picklist, one value per
code, so that list views and reports filter on them ("includes"); a multi-select value is
its values joined by ";" and an empty selection is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.settings import ALERT_CODES

OBJECT = "Opportunity"
PERMISSION_SET = "Deal_Radar"
"""The permission set (API name) that grants the fields to Deal Radar's user."""
PERMISSION_SET_LABEL = "Deal Radar"


@dataclass(frozen=True)
class Field:
    field: str
    """The CRM-neutral name in engine/fields.py."""
    api_name: str
    label: str
    type: str
    """The Metadata API type: MultiselectPicklist, Picklist, Number, Text, DateTime."""
    description: str
    options: tuple[str, ...] = ()
    precision: int = 0
    length: int = 0

    @property
    def full_name(self) -> str:
        return f"{OBJECT}.{self.api_name}"

    @property
    def developer_name(self) -> str:
        """The name without `__c`, as the Tooling API's CustomField.DeveloperName says it."""
        return self.api_name[: -len("__c")]

    def definition(self) -> dict[str, Any]:
        """The body of `POST /tooling/sobjects/CustomField`."""
        metadata: dict[str, Any] = {
            "label": self.label,
            "type": self.type,
            "description": self.description,
            "inlineHelpText": self.description,
        }
        if self.type == "Number":
            metadata |= {"precision": self.precision, "scale": 0}
        elif self.type == "Text":
            metadata["length"] = self.length
        elif self.options:
            if self.type == "MultiselectPicklist":
                metadata["visibleLines"] = min(10, len(self.options))
            metadata["valueSet"] = {
                "restricted": True,
                "valueSetDefinition": {
                    "sorted": False,
                    # The Tooling API's CustomValue names a value `valueName` (`fullName` is
                    # the Metadata API's, which the Tooling API does not take).
                    "value": [
                        {"valueName": value, "label": label(value), "default": False}
                        for value in self.options
                    ],
                },
            }
        return {"FullName": self.full_name, "Metadata": metadata}

    def admin_step(self) -> str:
        """How an admin creates the field by hand, when the Tooling API may not."""
        kind = {
            "MultiselectPicklist": "Picklist (Multi-Select)",
            "Picklist": "Picklist",
            "Number": f"Number (length {self.precision}, 0 decimal places)",
            "Text": f"Text (length {self.length})",
            "DateTime": "Date/Time",
        }[self.type]
        values = f", values exactly {', '.join(self.options)}" if self.options else ""
        # Setup's Field Name box takes the name without __c (Salesforce adds it).
        return (
            f"{kind} field '{self.label}' with Field Name {self.api_name.removesuffix('__c')} "
            f"(API name {self.api_name}){values}"
        )


def label(value: str) -> str:
    return value.replace("_", " ").capitalize()


FIELDS: tuple[Field, ...] = (
    Field(
        "alerts", "DealRadar_Alerts__c", "Deal Radar alerts", "MultiselectPicklist",
        "The deal's open alerts, one value per alert code, so list views can filter on them.",
        ALERT_CODES,
    ),
    Field(
        "alert_count", "DealRadar_Alert_Count__c", "Deal Radar alert count", "Number",
        "How many alerts the deal has (a key-role alert counts once per role).", precision=3,
    ),
    Field(
        "summary", "DealRadar_Summary__c", "Deal Radar summary", "Text",
        "Every alert's message on one line.", length=255,
    ),
    Field(
        "health_score", "DealRadar_Health_Score__c", "Deal Radar health score", "Number",
        "Relationship health from 0 to 100.", precision=3,
    ),
    Field(
        "health_grade", "DealRadar_Health_Grade__c", "Deal Radar health grade", "Picklist",
        "Good, fair or poor, from the health score.", ("good", "fair", "poor"),
    ),
    Field(
        "health_trend", "DealRadar_Health_Trend__c", "Deal Radar health trend", "Picklist",
        "The health score against a week earlier; empty until there is a week to compare.",
        ("improving", "steady", "declining"),
    ),
    Field(
        "days_since_interaction", "DealRadar_Days_Since_Interaction__c",
        "Deal Radar days since interaction", "Number",
        "Calendar days since the last email, call or meeting with the deal's contacts.",
        precision=5,
    ),
    Field(
        "evaluated_at", "DealRadar_Evaluated_At__c", "Deal Radar evaluated at", "DateTime",
        "When Deal Radar last evaluated the deal.",
    ),
)  # fmt: skip

BY_FIELD: Mapping[str, Field] = {f.field: f for f in FIELDS}
BY_API_NAME: Mapping[str, Field] = {f.api_name: f for f in FIELDS}
API_NAMES: tuple[str, ...] = tuple(f.api_name for f in FIELDS)


def encode(values: Mapping[str, Any]) -> dict[str, Any]:
    """{field: value} from engine/fields.py to {API name: Salesforce JSON value}.

    Raises KeyError naming an unknown field: a field without a custom field is a bug."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            spec = BY_FIELD[name]
        except KeyError:
            raise KeyError(f"no Salesforce field for Deal Radar field {name!r}") from None
        out[spec.api_name] = _json(spec, value)
    return out


def _json(spec: Field, value: Any) -> Any:
    if value is None or value == "" or value == []:
        return None  # null clears a field; "" is refused by restricted picklists
    if spec.type == "MultiselectPicklist":
        return ";".join(value)
    if spec.type == "DateTime":
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # the jobs stamp aware UTC times; a naive one is UTC too
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if spec.type == "Number":
        return value
    return str(value)
