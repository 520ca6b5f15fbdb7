"""Salesforce Outbound Messages: SOAP bytes in, an `OutboundMessage` and hints out. Pure.

An Outbound Message is not signed. The handler authenticates it by checking that
`organization_id` is the tenant's org (and by HTTPS, optionally mutual TLS); this module only
parses. The XML is read with defusedxml and no DTD at all: a DOCTYPE, an entity or an external
reference is `MalformedBody("unsafe xml")`. Parsing stops early at MAX_DEPTH levels of nesting
or more than MAX_NOTIFICATIONS notifications, so a hostile body costs little. Every other
problem is `MalformedBody` with a reason; nothing else is raised.

The receiver answers `ack_response()` once the notifications are durably queued; anything else
(`soap_fault`, a 5xx) makes Salesforce retry, for up to 24 hours, with the latest field values.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from marshmallow import ValidationError

from adapters.salesforce.schemas import (
    MAX_NOTIFICATIONS,
    Notification,
    OutboundMessage,
    OutboundSchema,
)
from adapters.webhooks import Hint, MalformedBody, ParsedEvent, first_problem

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

MAX_DEPTH = 12
"""Element nesting accepted; a real message is 6 deep (Envelope/Body/notifications/...)."""

_SCHEMA = OutboundSchema()
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_outbound(body: bytes) -> OutboundMessage:
    """The Outbound Message in `body`, validated (see schemas.OutboundSchema)."""
    envelope = _parse_xml(body)
    notifications = envelope.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if envelope.tag != f"{{{SOAP_NS}}}Envelope" or notifications is None:
        raise MalformedBody("not an outbound message")
    try:
        return _SCHEMA.load(_read_notifications(notifications))
    except ValidationError as error:
        raise MalformedBody(first_problem(error.normalized_messages())) from None


def dedupe_key(message: OutboundMessage, notification: Notification) -> str:
    """Stable across Salesforce's redeliveries of the notification."""
    return f"{message.organization_id}:{notification.notification_id}"


def hints(message: OutboundMessage) -> list[Hint]:
    """What the message's notifications say changed, each hint once, in order."""
    found: dict[Hint, None] = {}
    for notification in message.notifications:
        handler = SOBJECT_HINTS.get(notification.sobject_type)
        if handler is not None:
            found.update(dict.fromkeys(handler(notification)))
    return list(found)


def events(message: OutboundMessage) -> list[ParsedEvent]:
    """One event per notification, in the vocabulary every CRM's webhook shares.

    Outbound Messages carry no trace of who made the change, so none is flagged as our own
    write; a workflow rule should exclude our integration user instead.
    """
    parsed = []
    for notification in message.notifications:
        handler = SOBJECT_HINTS.get(notification.sobject_type)
        reason = None if handler else f"unsupported sobject type {notification.sobject_type}"
        parsed.append(
            ParsedEvent(
                dedupe_key=dedupe_key(message, notification),
                type=f"outbound.{notification.sobject_type}",
                hints=handler(notification) if handler else (),
                occurred_at_ms=_epoch_ms(notification.fields.get("LastModifiedDate")),
                own_write=False,
                ignored_reason=reason,
                account_id=message.organization_id,
            )
        )
    return parsed


def ack_response() -> bytes:
    """The answer that tells Salesforce the message was received (HTTP 200, text/xml)."""
    return _envelope(
        f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    )


def soap_fault(message: str, *, sender_fault: bool = False) -> bytes:
    """A SOAP 1.1 fault (HTTP 500, or 400 with `sender_fault`); Salesforce retries on it.

    `message` is escaped, and characters XML cannot carry are dropped, so any text is safe.
    """
    code = "soapenv:Client" if sender_fault else "soapenv:Server"
    text = escape(_NOT_XML_CHARS.sub("", message))
    return _envelope(
        f"<soapenv:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
        "</soapenv:Fault>"
    )


# -- hints: one small function per sObject type --


def _record(kind: str) -> Callable[[Notification], tuple[Hint, ...]]:
    def handler(notification: Notification) -> tuple[Hint, ...]:
        return (Hint(kind, notification.record_id),)

    return handler


OPPORTUNITY_PREFIX = "006"
"""The key prefix of every Opportunity id (WhatId may name an account or another object)."""


def _activity(notification: Notification) -> tuple[Hint, ...]:
    """A Task or Event, and the opportunity (WhatId 006...) and contact (WhoId 003...) it is on."""
    found = [Hint("activity", notification.record_id)]
    what_id = notification.fields.get("WhatId") or ""
    who_id = notification.fields.get("WhoId") or ""
    if what_id.startswith(OPPORTUNITY_PREFIX):
        found.append(Hint("deal", what_id))
    if who_id.startswith("003"):
        found.append(Hint("contact", who_id))
    return tuple(found)


SOBJECT_HINTS: dict[str, Callable[[Notification], tuple[Hint, ...]]] = {
    "Opportunity": _record("deal"),
    "Contact": _record("contact"),
    "Account": _record("company"),
    "Task": _activity,
    "Event": _activity,
}
"""sObject type to hints: the supported Outbound Message objects are exactly these keys."""


# -- XML --


def _parse_xml(body: bytes) -> Element:
    depth, notifications, root = 0, 0, None
    notification_tag = f"{{{OUTBOUND_NS}}}Notification"
    try:
        for event, element in iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True):
            if event == "end":
                depth, root = depth - 1, element
                continue
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedBody("xml nested too deep")
            if element.tag == notification_tag:
                notifications += 1
                if notifications > MAX_NOTIFICATIONS:
                    raise MalformedBody(f"more than {MAX_NOTIFICATIONS} notifications")
    except DefusedXmlException:
        raise MalformedBody("unsafe xml") from None
    except (ParseError, ValueError, LookupError):
        raise MalformedBody("invalid xml") from None
    if root is None:
        raise MalformedBody("invalid xml")
    return root


def _read_notifications(element: Element) -> dict[str, Any]:
    """The `notifications` element as a plain dict, named after the WSDL (see schemas)."""
    return {
        "OrganizationId": element.findtext(f"{{{OUTBOUND_NS}}}OrganizationId"),
        "ActionId": element.findtext(f"{{{OUTBOUND_NS}}}ActionId"),
        "Notification": [
            _read_notification(n) for n in element.iterfind(f"{{{OUTBOUND_NS}}}Notification")
        ],
    }


def _read_notification(element: Element) -> dict[str, Any]:
    sobject = element.find(f"{{{OUTBOUND_NS}}}sObject")
    if sobject is None:
        raise MalformedBody("a notification has no sObject")
    return {
        "Id": element.findtext(f"{{{OUTBOUND_NS}}}Id"),
        "sObjectType": (sobject.get(f"{{{XSI_NS}}}type") or "").rpartition(":")[2],
        "fields": dict(_read_fields(sobject)),
    }


def _read_fields(sobject: Element) -> Iterable[tuple[str, str | None]]:
    for field in sobject:
        name = field.tag.rpartition("}")[2]
        if len(field):
            raise MalformedBody(f"field {name} is not a plain value")
        nil = field.get(f"{{{XSI_NS}}}nil") == "true"
        yield name, None if nil else (field.text or "")


def _envelope(content: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>{content}</soapenv:Body>'
        "</soapenv:Envelope>"
    ).encode()


def _epoch_ms(value: str | None) -> int | None:
    """A Salesforce dateTime ("2024-05-01T10:00:00.000Z") in epoch ms; None if absent or odd."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_SFID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")

FLOW_OBJECTS: dict[str, str] = {
    "Opportunity": "deal",
    "OpportunityContactRole": "contact",
    "Contact": "contact",
    "Task": "activity",
    "Event": "activity",
    "EmailMessage": "activity",
}
"""Records a Flow HTTP callout may report, and what kind of change each is."""
MAX_FLOW_EVENTS = 100


def parse_flow(body: bytes, organization_id: str) -> list[ParsedEvent]:
    """Events posted by a Flow HTTP callout: `{"events": [{"id", "object", "record_id",
    "opportunity_id"?}]}`. `id` is the Flow's own event id (a GUID the Flow makes), the dedupe
    key; `opportunity_id` names the deal when the record is an activity or a contact role."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("body: not JSON") from None
    items = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_FLOW_EVENTS:
        raise MalformedBody(f"events: must be a list of 1 to {MAX_FLOW_EVENTS} events")
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedBody(f"events.{i}: must be an object")
        event_id, sobject, record = item.get("id"), item.get("object"), item.get("record_id")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
            raise MalformedBody(f"events.{i}.id: a string of 1 to 100 characters")
        if sobject not in FLOW_OBJECTS:
            raise MalformedBody(f"events.{i}.object: one of {', '.join(FLOW_OBJECTS)}")
        if not isinstance(record, str) or not _SFID.fullmatch(record):
            raise MalformedBody(f"events.{i}.record_id: a 15 or 18 character Salesforce id")
        hints = [Hint(FLOW_OBJECTS[sobject], record)]
        # A Flow formula gives "" for an empty lookup (a call logged on a contact alone: no
        # WhatId), and WhatId may name an account: neither names a deal, neither is an error.
        opportunity = item.get("opportunity_id")
        if opportunity not in (None, ""):
            if not isinstance(opportunity, str) or not _SFID.fullmatch(opportunity):
                raise MalformedBody(f"events.{i}.opportunity_id: a Salesforce id")
            if opportunity.startswith(OPPORTUNITY_PREFIX):
                hints.append(Hint("deal", opportunity))
        parsed.append(
            ParsedEvent(
                dedupe_key=f"{organization_id}:flow:{event_id}",
                type=f"flow.{sobject}",
                hints=tuple(dict.fromkeys(hints)),
                occurred_at_ms=None,
                own_write=False,
                ignored_reason=None,
                account_id=organization_id,
            )
        )
    return parsed
