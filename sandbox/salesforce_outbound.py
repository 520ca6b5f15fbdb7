"""Outbound Messages out of the emulated org: a workflow rule on Opportunity ("when a record is
created or edited") whose action posts the SOAP ``notifications`` message to an endpoint.

Shape (Outbound Messaging WSDL, namespace ``http://soap.sforce.com/2005/09/outbound``): a SOAP
1.1 envelope whose body holds ``notifications`` with ``OrganizationId``, ``ActionId``,
``SessionId`` (nil unless the action sends one), ``EnterpriseUrl``, ``PartnerUrl`` and up to
100 ``Notification`` elements, each an ``Id`` (the notification's, for de-duplication) and an
``sObject`` of type ``sf:Opportunity`` (``urn:sobject.enterprise.soap.sforce.com``) with the
chosen fields at their *latest* values (read when sent, not when triggered). The listener must
answer a ``notificationsResponse`` whose ``Ack`` is ``true``; anything else (another status, a
body without it, a refused connection) keeps the notifications queued and retried with
exponential back-off, until they are 24 hours old (then dropped, as Salesforce does).

The back-off starts at ``retry_base`` seconds and doubles up to ``retry_cap`` (Salesforce: up to
2 hours; the emulator's default is quick so that tests and ``make run`` see retries).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import requests

from sandbox.salesforce_soql import json_value

if TYPE_CHECKING:
    from sandbox.salesforce_state import Change, SalesforceState

__all__ = ["DEFAULT_FIELDS", "NAMESPACE", "OutboundMessages"]

NAMESPACE = "http://soap.sforce.com/2005/09/outbound"
MAX_NOTIFICATIONS = 100
DEFAULT_FIELDS = (
    "Id",
    "Name",
    "StageName",
    "Amount",
    "CloseDate",
    "LastModifiedById",
    "SystemModstamp",
)
"""The fields an admin would tick; LastModifiedById tells a listener its own writes' echoes."""
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    notification_id: str
    record_id: str
    queued_at: datetime


class OutboundMessages:
    """The org's one outbound-message action on Opportunity, and its delivery thread."""

    def __init__(
        self, state: SalesforceState, *, retry_base: float = 0.2, retry_cap: float = 5.0
    ) -> None:
        self.state = state
        self.endpoint: str | None = None
        self.fields: tuple[str, ...] = ("Id",)
        self.send_session_id = False
        self.verify: str | bool = True
        self.action_id = state.ids.new("04k")
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.sent: list[dict[str, Any]] = []
        """Every attempt: ``{"ids": [...], "status": int|None, "acked": bool}``."""
        self._pending: list[_Pending] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._http = requests.Session()
        self._http.trust_env = False  # the endpoint is named exactly; no proxy, no CA bundle
        state.listeners.append(self._on_change)

    def configure(
        self,
        endpoint: str | None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        *,
        send_session_id: bool = False,
        verify: str | bool = True,
    ) -> None:
        """Point the action at ``endpoint`` (None: switch it off) with the sObject fields sent."""
        if "Id" not in fields:
            fields = ("Id", *fields)
        with self._wake:
            self.endpoint = endpoint
            self.fields = tuple(fields)
            self.send_session_id = send_session_id
            self.verify = verify
            if endpoint is None:
                self._pending.clear()
        if endpoint is not None:
            self._start()

    def _on_change(self, change: Change) -> None:
        if change.sobject != "Opportunity" or change.kind == "deleted":
            return
        with self._wake:
            if self.endpoint is None:
                return
            self._pending.append(
                _Pending(self.state.ids.new("04l"), change.record_id, self.state.clock())
            )
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._pending)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued (True), or the timeout passes (False)."""
        deadline = threading.Event()
        waited = 0.0
        while waited < timeout:
            if self.pending() == 0:
                return True
            deadline.wait(0.02)
            waited += 0.02
        return self.pending() == 0

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http.close()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="salesforce-outbound", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        delay = self.retry_base
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                now = self.state.clock()
                self._pending = [
                    p for p in self._pending if now - p.queued_at < timedelta(hours=24)
                ]
                batch = self._pending[:MAX_NOTIFICATIONS]
                endpoint, verify = self.endpoint, self.verify
            if not batch or endpoint is None:
                continue
            acked, status = self._deliver(endpoint, verify, batch)
            self.sent.append(
                {"ids": [p.notification_id for p in batch], "status": status, "acked": acked}
            )
            if acked:
                delay = self.retry_base
                with self._wake:
                    done = {p.notification_id for p in batch}
                    self._pending = [p for p in self._pending if p.notification_id not in done]
                continue
            with self._wake:
                if not self._stopping:
                    self._wake.wait(delay)
            delay = min(delay * 2, self.retry_cap)

    def _deliver(
        self, endpoint: str, verify: str | bool, batch: list[_Pending]
    ) -> tuple[bool, int | None]:
        body = self.envelope(batch)
        if "<Notification>" not in body:  # every record deleted meanwhile: nothing to say
            return True, None
        try:
            answer = self._http.post(
                endpoint,
                data=body.encode("utf-8"),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=10,
                verify=verify,
            )
        except requests.RequestException as exc:
            log.info("outbound message to %s failed: %s", endpoint, exc)
            return False, None
        return answer.status_code == 200 and _acked(answer.content), answer.status_code

    def envelope(self, batch: list[_Pending]) -> str:
        """The SOAP message for these notifications, with each record's current values."""
        state = self.state
        base = state.instance_url
        version = state.api_version
        org = state.org_id[:15]
        with state.lock:
            session = (
                state.issue_session(refresh=False).access_token if self.send_session_id else None
            )
            notes = []
            for pending in batch:
                record = state.records["Opportunity"].get(pending.record_id)
                if record is None:
                    continue
                values = "".join(
                    _element(f"sf:{name}", record.get(name))
                    for name in self.fields
                    if name in record
                )
                notes.append(
                    f"<Notification><Id>{pending.notification_id[:15]}</Id>"
                    '<sObject xsi:type="sf:Opportunity" '
                    'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                    f"{values}</sObject></Notification>"
                )
        session_xml = (
            f"<SessionId>{escape(session)}</SessionId>"
            if session
            else '<SessionId xsi:nil="true"/>'
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body>"
            f'<notifications xmlns="{NAMESPACE}">'
            f"<OrganizationId>{org}</OrganizationId>"
            f"<ActionId>{self.action_id[:15]}</ActionId>"
            f"{session_xml}"
            f"<EnterpriseUrl>{escape(base)}/services/Soap/c/{version}/{org}</EnterpriseUrl>"
            f"<PartnerUrl>{escape(base)}/services/Soap/u/{version}/{org}</PartnerUrl>"
            f"{''.join(notes)}"
            "</notifications></soapenv:Body></soapenv:Envelope>"
        )


def _element(tag: str, value: Any) -> str:
    if value is None:
        return f'<{tag} xsi:nil="true"/>'
    text = ("true" if value else "false") if isinstance(value, bool) else str(json_value(value))
    return f"<{tag}>{escape(text)}</{tag}>"


def _acked(content: bytes) -> bool:
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return False
    ack = root.find(f".//{{{NAMESPACE}}}notificationsResponse/{{{NAMESPACE}}}Ack")
    return ack is not None and (ack.text or "").strip().lower() == "true"
