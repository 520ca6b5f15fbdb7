"""Salesforce's raw shapes, validated at the edge: the Outbound Message's `notifications`.

`events.py` reads the SOAP XML into a plain dict named after the WSDL's elements
(`OrganizationId`, `ActionId`, `Notification` with `Id` and the `sObject`'s type and fields);
`OutboundSchema` checks it and builds an `OutboundMessage`. Every Salesforce id (org, action,
notification, record) must be 15 or 18 ASCII letters and digits. The `SessionId` is a live API
session of the org: it is never read, so it cannot end up in a log or a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

MAX_NOTIFICATIONS = 100
"""Notifications in one Outbound Message (the WSDL's maxOccurs)."""

SALESFORCE_ID = validate.Regexp(
    r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z", error="not a Salesforce id"
)
SOBJECT_TYPE = validate.Regexp(r"[A-Za-z][A-Za-z0-9_]{0,79}\Z", error="not an sObject type")


class Notification(NamedTuple):
    """One notification: its own id (to deduplicate), the record's type, id and sent fields
    (a field sent as xsi:nil is None)."""

    notification_id: str
    sobject_type: str
    record_id: str
    fields: dict[str, str | None]


@dataclass(frozen=True)
class OutboundMessage:
    """An Outbound Message: the org that sent it, the workflow action, its notifications."""

    organization_id: str
    action_id: str
    notifications: tuple[Notification, ...]


class NotificationSchema(Schema):
    id = fields.String(data_key="Id", required=True, validate=SALESFORCE_ID)
    sobject_type = fields.String(data_key="sObjectType", required=True, validate=SOBJECT_TYPE)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.String(allow_none=True),
        required=True,
    )

    @validates_schema
    def _record_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        record_id = data["fields_"].get("Id")
        if record_id is None:
            raise ValidationError("missing", "sObject.Id")
        try:
            SALESFORCE_ID(record_id)
        except ValidationError as error:
            raise ValidationError(error.messages, "sObject.Id") from None

    @post_load
    def _to_notification(self, data: dict[str, Any], **kwargs: Any) -> Notification:
        sent = data["fields_"]
        return Notification(data["id"], data["sobject_type"], sent["Id"], sent)


class OutboundSchema(Schema):
    organization_id = fields.String(
        data_key="OrganizationId", required=True, validate=SALESFORCE_ID
    )
    action_id = fields.String(data_key="ActionId", required=True, validate=SALESFORCE_ID)
    notifications = fields.List(
        fields.Nested(NotificationSchema),
        data_key="Notification",
        required=True,
        validate=validate.Length(min=1, max=MAX_NOTIFICATIONS),
    )

    @post_load
    def _to_message(self, data: dict[str, Any], **kwargs: Any) -> OutboundMessage:
        return OutboundMessage(
            organization_id=data["organization_id"],
            action_id=data["action_id"],
            notifications=tuple(data["notifications"]),
        )
