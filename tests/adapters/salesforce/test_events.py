"""Salesforce Outbound Messages, from raw bytes: one test per fixture, then the hostile cases."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.salesforce.events import (
    MAX_DEPTH,
    OUTBOUND_NS,
    SOAP_NS,
    ack_response,
    events,
    hints,
    parse_outbound,
    soap_fault,
)
from adapters.salesforce.schemas import MAX_NOTIFICATIONS
from adapters.webhooks import MalformedBody
from tests.adapters.parsed import as_expected

FIXTURES = Path(__file__).parent / "fixtures"
PAYLOADS = sorted(FIXTURES.glob("*.xml"))
OPPORTUNITY = (FIXTURES / "outbound__opportunity.xml").read_bytes()


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.stem for p in PAYLOADS])
def test_fixture(payload: Path) -> None:
    expected = json.loads(payload.with_suffix(".expected.json").read_text())
    body = payload.read_bytes()
    if "error" in expected:
        with pytest.raises(MalformedBody) as failure:
            parse_outbound(body)
        assert failure.value.reason == expected["error"]
        return
    message = parse_outbound(body)
    assert message.organization_id == expected["organization_id"]
    assert message.action_id == expected["action_id"]
    assert [n._asdict() for n in message.notifications] == expected["notifications"]
    assert [dataclasses.asdict(h) for h in hints(message)] == expected["hints"]
    assert [as_expected(e) for e in events(message)] == expected["events"]


def test_notifications_unpack_as_tuples() -> None:
    message = parse_outbound(OPPORTUNITY)
    ((notification_id, sobject_type, record_id, fields),) = message.notifications
    assert (notification_id, sobject_type, record_id) == (
        "04l5e00000AbCdEAAZ", "Opportunity", "0065e00000GhIjKAAV"
    )  # fmt: skip
    assert fields["StageName"] == "Negotiation/Review"


def test_session_id_is_never_kept() -> None:
    body = OPPORTUNITY.replace(
        b'<SessionId xsi:nil="true"/>', b"<SessionId>00D5e!AQ4AQSecretSession</SessionId>"
    )
    message = parse_outbound(body)
    assert b"Secret" not in repr(message).encode()


# -- limits and hostile bodies --


def _message(notification_count: int) -> bytes:
    one = OPPORTUNITY[OPPORTUNITY.index(b"   <Notification>") : OPPORTUNITY.index(b"  </notif")]
    head = OPPORTUNITY[: OPPORTUNITY.index(b"   <Notification>")]
    tail = OPPORTUNITY[OPPORTUNITY.index(b"  </notif") :]
    return head + one * notification_count + tail


def test_at_most_max_notifications() -> None:
    assert len(parse_outbound(_message(MAX_NOTIFICATIONS)).notifications) == MAX_NOTIFICATIONS
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(_message(MAX_NOTIFICATIONS + 1))
    assert failure.value.reason == f"more than {MAX_NOTIFICATIONS} notifications"


def test_deeply_nested_xml_is_refused_early() -> None:
    body = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(body)
    assert failure.value.reason == "xml nested too deep"
    assert MAX_DEPTH >= 6  # a real message: Envelope/Body/notifications/Notification/sObject/field


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "invalid xml"),
        (b"not xml at all", "invalid xml"),
        (b'<?xml version="1.0" encoding="bogus"?><a/>', "invalid xml"),
        (b'<?xml version="1.0" encoding="UTF-16"?><a/>', "invalid xml"),
        (b'<!DOCTYPE a SYSTEM "http://attacker.example/x.dtd"><a/>', "unsafe xml"),
        (b'<!DOCTYPE a [<!ENTITY e SYSTEM "http://attacker.example/">]><a>&e;</a>', "unsafe xml"),
        (b"<a/>", "not an outbound message"),
        (f'<e:Envelope xmlns:e="{SOAP_NS}"><e:Body/></e:Envelope>'.encode(),
         "not an outbound message"),
        (f'<n:notifications xmlns:n="{OUTBOUND_NS}"/>'.encode(), "not an outbound message"),
    ],
    ids=["empty", "text", "unknown encoding", "lying encoding", "external dtd", "external entity",
         "other root", "empty body", "no envelope"],
)  # fmt: skip
def test_unreadable(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(body)
    assert failure.value.reason == reason


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"<OrganizationId>00D5e000000Hxb2EAC</OrganizationId>", b"",
         "OrganizationId: Field may not be null."),
        (b"00D5e000000Hxb2EAC", b"00D5e000000Hxb2EA-", "OrganizationId: not a Salesforce id"),
        (b"00D5e000000Hxb2EAC", b"00D5e000000Hxb2E\xc3\xa9C",
         "OrganizationId: not a Salesforce id"),
        (b"<ActionId>04k5e000000CaBcAAK</ActionId>", b"<ActionId/>",
         "ActionId: not a Salesforce id"),
        (b"<Id>04l5e00000AbCdEAAZ</Id>", b"", "Notification.0.Id: Field may not be null."),
        (b"<sf:Id>0065e00000GhIjKAAV</sf:Id>", b"", "Notification.0.sObject.Id: missing"),
        (b"<sf:Id>0065e00000GhIjKAAV</sf:Id>", b"<sf:Id>006 bad</sf:Id>",
         "Notification.0.sObject.Id: not a Salesforce id"),
        (b'xsi:type="sf:Opportunity"', b"", "Notification.0.sObjectType: not an sObject type"),
        (b'xsi:type="sf:Opportunity"', b'xsi:type="sf:Opp ortunity"',
         "Notification.0.sObjectType: not an sObject type"),
        (b"<sf:Amount>125000.0</sf:Amount>", b"<sf:Amount><sf:x>1</sf:x></sf:Amount>",
         "field Amount is not a plain value"),
    ],
    ids=["no org", "org punctuation", "org non-ascii", "empty action", "no notification id",
         "no record id", "bad record id", "no sobject type", "bad sobject type", "nested field"],
)  # fmt: skip
def test_invalid_content(old: bytes, new: bytes, reason: str) -> None:
    body = OPPORTUNITY.replace(old, new)
    assert body != OPPORTUNITY
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(body)
    assert failure.value.reason == reason


def test_no_notifications() -> None:
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(_message(0))
    assert failure.value.reason.startswith("Notification: ")


def test_a_notification_without_sobject() -> None:
    start, end = OPPORTUNITY.index(b"    <sObject"), OPPORTUNITY.index(b"   </Notification>")
    with pytest.raises(MalformedBody) as failure:
        parse_outbound(OPPORTUNITY[:start] + OPPORTUNITY[end:])
    assert failure.value.reason == "a notification has no sObject"


@given(st.binary(max_size=400))
def test_arbitrary_bytes_fail_only_with_malformed_body(body: bytes) -> None:
    with contextlib.suppress(MalformedBody):
        parse_outbound(body)


@given(st.integers(min_value=0, max_value=len(OPPORTUNITY)), st.binary(max_size=8))
def test_corrupted_messages_fail_only_with_malformed_body(at: int, junk: bytes) -> None:
    with contextlib.suppress(MalformedBody):
        parse_outbound(OPPORTUNITY[:at] + junk + OPPORTUNITY[at + len(junk) :])


# -- answers --


def test_ack_response() -> None:
    envelope = SafeET.fromstring(ack_response())
    assert envelope.tag == f"{{{SOAP_NS}}}Envelope"
    ack = envelope.find(
        f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse/{{{OUTBOUND_NS}}}Ack"
    )
    assert ack is not None and ack.text == "true"


@pytest.mark.parametrize("message", ["queue unavailable", "<script>&amp; ]]>", "nul\x00 \ud800 ok"])
def test_soap_fault_carries_any_text_safely(message: str) -> None:
    fault = SafeET.fromstring(soap_fault(message)).find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Server"
    assert fault.findtext("faultstring") == message.replace("\x00", "").replace("\ud800", "")


def test_soap_fault_for_the_senders_mistake() -> None:
    fault = SafeET.fromstring(soap_fault("bad org", sender_fault=True))
    assert fault.findtext(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault/faultcode") == "soapenv:Client"
