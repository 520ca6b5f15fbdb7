"""Outgoing HubSpot webhooks: subscriptions, payloads, signatures, batched delivery with retries.

What HubSpot documents and this module does:
- a POST of a JSON **array** of events (at most 100 per request) to the app's target URL;
- headers ``X-HubSpot-Signature`` (v1: hex SHA-256 of client secret + raw body) with
  ``X-HubSpot-Signature-Version: v1``, and ``X-HubSpot-Signature-v3`` (base64 HMAC-SHA256 keyed by
  the client secret over ``POST`` + target URL + raw body + timestamp) with
  ``X-HubSpot-Request-Timestamp`` (ms);
- legacy subscription types for deals, contacts and companies (``deal.creation``,
  ``deal.propertyChange``, ``deal.deletion``, ``deal.associationChange``) and the generic format
  (``object.creation`` ... with ``objectTypeId``) for calls, emails, meetings, notes and tasks;
- event fields objectId, propertyName, propertyValue, changeSource, sourceId, eventId,
  subscriptionId, portalId, appId, occurredAt (ms), subscriptionType, attemptNumber (from 0),
  changeFlag on creation/deletion; associationChange events carry associationType (legacy) or
  associationTypeId/associationCategory and from/to object type ids (generic);
- a change made with the app's OAuth token has ``changeSource: "INTEGRATION"``; a change in the
  HubSpot UI has ``"CRM_UI"`` and ``sourceId`` ``"userId:<id>"`` (as in published samples). The
  docs do not give ``sourceId`` for an app's writes: the emulator sends the app id, as a string
  (UNCONFIRMED; one place to change: ``Source.integration``);
- retries on connection failure, timeout or any non-2xx, ``attemptNumber`` counting up.

``occurredAt`` and ``X-HubSpot-Request-Timestamp`` come from the portal's injected clock, so a
receiver sharing that clock checks v3 freshness against the same time.

What differs, on purpose: retries are a few and seconds apart (HubSpot: 10 over 24 h), delivery
is one request at a time (HubSpot: up to 10 concurrent), and ``propertyChange`` is sent for every
changed property a wildcard subscription covers (HubSpot needs one subscription per property).

Sources: https://developers.hubspot.com/docs/api/webhooks ;
https://developers.hubspot.com/docs/api/webhooks/validating-requests ;
https://developers.hubspot.com/changelog/public-beta-generic-webhook-subscriptions ;
https://developers.hubspot.com/changelog/new-subscription-types-for-webhooks ;
https://legacydocs.hubspot.com/docs/faq/v1-request-validation

Error policy: a delivery failure never reaches the code that changed the CRM; it is recorded in
``deliveries`` and retried ``max_attempts`` times, then dropped (and kept in ``dropped``).
"""

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests

from sandbox.hubspot_objects import (
    DEFAULT_ASSOCIATION_TYPES,
    OBJECT_TYPES,
    PRIMARY_ASSOCIATION_TYPES,
)

if TYPE_CHECKING:
    from sandbox.hubspot_state import Change, HubSpotState

__all__ = ["Delivery", "WebhookDispatcher", "sign_v1", "sign_v3"]

log = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 100
"""HubSpot sends "up to 100" events per request."""

BATCH_DELAY = 0.05
"""Seconds to wait after the first queued event so that a burst goes out as one batch."""

MAX_ATTEMPTS = 4
"""Deliveries of one batch before it is dropped (HubSpot: 10 over 24 hours)."""

RETRY_BACKOFF = 0.2
"""Seconds before the first retry; doubles after each failure."""

DELIVERY_TIMEOUT = 5.0
"""Seconds HubSpot waits for the target to answer."""

# Properties no subscription can name (webhooks docs) and calculated ones a wildcard skips.
_UNSUBSCRIBABLE = frozenset(
    {"hs_lastmodifieddate", "lastmodifieddate", "num_unique_conversion_events"}
)

# Legacy associationChange exists only between these types (changelog "new subscription types").
_LEGACY_ASSOCIATION_TYPES = frozenset({"deals", "contacts", "companies"})

_CHANGE_FLAGS = {"creation": "CREATED", "deletion": "DELETED"}


def sign_v1(client_secret: str, body: bytes) -> str:
    """``X-HubSpot-Signature`` v1: hex SHA-256 of the client secret followed by the raw body."""
    return hashlib.sha256(client_secret.encode() + body).hexdigest()


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 over method + URI + body + timestamp."""
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Delivery:
    """One POST to the target: what was sent and what came back."""

    attempt: int
    events: list[dict]
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the target answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Batch:
    events: list[dict]
    attempt: int = 0
    due: float = 0.0


@dataclass
class _Config:
    target_url: str
    client_secret: str
    subscriptions: list[dict]
    batch_delay: float
    max_attempts: int
    retry_backoff: float
    timeout: float
    max_batch: int = MAX_EVENTS_PER_REQUEST
    extra_headers: dict[str, str] = field(default_factory=dict)


class WebhookDispatcher:
    """Turns the portal's changes into signed webhook deliveries, in a background thread.

    Off until ``configure``; ``flush`` waits until everything queued was delivered or dropped,
    which makes tests deterministic; ``disable`` stops sending (queued events are discarded).
    """

    def __init__(self, state: "HubSpotState") -> None:
        self.state = state
        self.deliveries: list[Delivery] = []
        self.dropped: list[list[dict]] = []
        self._config: _Config | None = None
        self._queue: deque[dict] = deque()
        self._retries: list[_Batch] = []
        self._first_queued_at: float | None = None
        self._busy = False
        self._flushing = 0  # callers inside flush(): the batching delay is skipped
        self._next_event_id = 1
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        state.on_change(self._on_change)

    # ---- configuration ---------------------------------------------------------------------

    def configure(
        self,
        target_url: str,
        *,
        client_secret: str | None = None,
        app_id: int | None = None,
        subscriptions: Iterable[Mapping] | None = None,
        batch_delay: float = BATCH_DELAY,
        max_attempts: int = MAX_ATTEMPTS,
        retry_backoff: float = RETRY_BACKOFF,
        timeout: float = DELIVERY_TIMEOUT,
        max_batch: int = MAX_EVENTS_PER_REQUEST,
    ) -> None:
        """Send webhooks to ``target_url`` from now on.

        ``client_secret``/``app_id`` default to the portal's app. ``subscriptions`` items are
        ``{"subscriptionType": "deal.propertyChange", "propertyName": "dealstage"}`` or, generic,
        ``{"subscriptionType": "object.creation", "objectTypeId": "0-27"}``; each gets an ``id``
        unless given. None subscribes to everything the add-on could use (see
        ``default_subscriptions``)."""
        if client_secret is not None:
            self.state.client_secret = client_secret
        if app_id is not None:
            self.state.app_id = app_id
        subs = default_subscriptions() if subscriptions is None else _number(subscriptions)
        with self._cond:
            self._config = _Config(
                target_url=target_url,
                client_secret=self.state.client_secret,
                subscriptions=subs,
                batch_delay=batch_delay,
                max_attempts=max(1, max_attempts),
                retry_backoff=retry_backoff,
                timeout=timeout,
                max_batch=max(1, min(max_batch, MAX_EVENTS_PER_REQUEST)),
            )
            self._stopping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hubspot-webhooks", daemon=True
                )
                self._thread.start()

    @property
    def enabled(self) -> bool:
        """True once configured and not disabled."""
        return self._config is not None

    @property
    def subscriptions(self) -> list[dict]:
        """The active subscriptions (copies)."""
        config = self._config
        return [dict(s) for s in config.subscriptions] if config else []

    def disable(self) -> None:
        """Stop sending; queued and retrying events are discarded."""
        with self._cond:
            self._config = None
            self._queue.clear()
            self._retries.clear()
            self._cond.notify_all()

    def stop(self) -> None:
        """Disable and end the background thread."""
        self.disable()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what is queued without the batching delay and wait until every batch is
        delivered or dropped, retries (with their backoff) included; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._retries or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def delivered_events(self) -> list[dict]:
        """Every event of every successful delivery, in delivery order."""
        with self._cond:
            return [e for d in self.deliveries if d.ok for e in d.events]

    # ---- from changes to events ------------------------------------------------------------

    def _on_change(self, change: "Change") -> None:
        """Called by the state (under its lock): queue the events subscriptions ask for."""
        config = self._config
        if config is None:
            return
        events = [e for sub in config.subscriptions if (e := self._event(sub, change))]
        if not events:
            return
        with self._cond:
            for event in events:
                event["eventId"] = self._next_event_id
                self._next_event_id += 1
                self._queue.append(event)
            if self._first_queued_at is None:
                self._first_queued_at = time.monotonic()
            self._cond.notify_all()

    def _event(self, sub: Mapping, change: "Change") -> dict | None:
        spec = OBJECT_TYPES[change.object_type]
        kind = sub["subscriptionType"]
        generic = kind.startswith("object.")
        if generic:
            if kind != f"object.{change.kind}" or sub.get("objectTypeId") != spec.type_id:
                return None
        elif spec.legacy_prefix is None or kind != f"{spec.legacy_prefix}.{change.kind}":
            return None
        if change.kind == "propertyChange" and not _property_matches(sub, change):
            return None
        if change.kind == "associationChange" and not generic and not _legacy_association(change):
            return None
        event: dict = {
            "eventId": 0,
            "subscriptionId": sub["id"],
            "portalId": self.state.portal_id,
            "appId": self.state.app_id,
            "occurredAt": _ms(change),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": int(change.object_id),
            "changeSource": change.source.change_source,
        }
        if change.source.source_id is not None:
            event["sourceId"] = change.source.source_id
        if generic:
            event["objectTypeId"] = spec.type_id
        if change.kind in _CHANGE_FLAGS:
            event["changeFlag"] = _CHANGE_FLAGS[change.kind]
        if change.kind == "propertyChange":
            event["propertyName"] = change.property_name
            event["propertyValue"] = change.property_value
        if change.kind == "associationChange":
            event.update(_association_fields(change, generic))
        return event

    # ---- delivery thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                while batch is None:
                    if self._stopping:
                        return
                    self._cond.wait(self._wait_time())
                    batch = self._next_batch()
                config = self._config
                self._busy = True
            try:
                if config is not None:
                    self._deliver(batch, config)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_batch(self) -> _Batch | None:
        """A due retry, or fresh events once the batching delay has passed (lock held)."""
        now = time.monotonic()
        for batch in self._retries:
            if batch.due <= now:
                self._retries.remove(batch)
                return batch
        config = self._config
        if not self._queue or config is None or self._first_queued_at is None:
            return None
        if not self._flushing and now - self._first_queued_at < config.batch_delay:
            return None
        events = [self._queue.popleft() for _ in range(min(config.max_batch, len(self._queue)))]
        self._first_queued_at = time.monotonic() if self._queue else None
        return _Batch(events)

    def _wait_time(self) -> float:
        now = time.monotonic()
        due = [b.due - now for b in self._retries]
        config = self._config
        if self._queue and self._first_queued_at is not None and config is not None:
            delay = 0.0 if self._flushing else config.batch_delay
            due.append(self._first_queued_at + delay - now)
        return max(0.001, min(due)) if due else 1.0

    def _deliver(self, batch: _Batch, config: _Config) -> None:
        events = [{**e, "attemptNumber": batch.attempt} for e in batch.events]
        body = json.dumps(events, separators=(",", ":")).encode()
        timestamp = int(self.state.now().timestamp() * 1000)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (sandbox)",
            "X-HubSpot-Signature": sign_v1(config.client_secret, body),
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Signature-v3": sign_v3(
                config.client_secret, "POST", config.target_url, body, timestamp
            ),
            "X-HubSpot-Request-Timestamp": str(timestamp),
        }
        delivery = Delivery(batch.attempt, events, body, headers)
        try:
            answer = requests.post(
                config.target_url, data=body, headers=headers, timeout=config.timeout
            )
            delivery.status = answer.status_code
        except requests.RequestException as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self.deliveries.append(delivery)
            if delivery.ok:
                return
            if batch.attempt + 1 >= config.max_attempts:
                log.warning("webhook batch of %d events dropped after %d attempts",
                            len(events), batch.attempt + 1)  # fmt: skip
                self.dropped.append(batch.events)
                return
            delay = config.retry_backoff * (2**batch.attempt)
            self._retries.append(_Batch(batch.events, batch.attempt + 1, time.monotonic() + delay))


# --------------------------------------------------------------------------------------------
# Subscriptions and payload fields
# --------------------------------------------------------------------------------------------


def default_subscriptions() -> list[dict]:
    """Everything the add-on may use: legacy creation/deletion/propertyChange/associationChange
    for deals, contacts and companies, generic ones for the five activity types. A
    ``propertyName`` of ``"*"`` (emulator-only) covers every non-calculated property."""
    subs: list[dict] = []
    for spec in OBJECT_TYPES.values():
        for kind in ("creation", "deletion", "propertyChange", "associationChange"):
            sub: dict = (
                {"subscriptionType": f"{spec.legacy_prefix}.{kind}"}
                if spec.legacy_prefix
                else {"subscriptionType": f"object.{kind}", "objectTypeId": spec.type_id}
            )
            if kind == "propertyChange":
                sub["propertyName"] = "*"
            subs.append(sub)
    return _number(subs)


def _number(subscriptions: Iterable[Mapping]) -> list[dict]:
    out = []
    for i, sub in enumerate(subscriptions):
        copy = dict(sub)
        copy.setdefault("id", 1000 + i)
        copy.setdefault("active", True)
        if copy["active"]:
            out.append(copy)
    return out


def _property_matches(sub: Mapping, change: "Change") -> bool:
    name = sub.get("propertyName")
    if name == "*":
        return (
            change.property_name not in _UNSUBSCRIBABLE
            and change.source.change_source != "CALCULATED"
        )
    return name == change.property_name and name not in _UNSUBSCRIBABLE


def _legacy_association(change: "Change") -> bool:
    """Legacy events exist between CRM objects only, and name default or primary types."""
    if change.to_object_type not in _LEGACY_ASSOCIATION_TYPES:
        return False
    pair = (change.object_type, change.to_object_type)
    return change.association_type_id in (
        DEFAULT_ASSOCIATION_TYPES.get(pair),
        PRIMARY_ASSOCIATION_TYPES.get(pair),
    )


def _association_fields(change: "Change", generic: bool) -> dict:
    src = OBJECT_TYPES[change.object_type]
    dst = OBJECT_TYPES[change.to_object_type or ""]
    fields: dict = {
        "fromObjectId": int(change.object_id),
        "toObjectId": int(change.to_object_id or 0),
        "associationRemoved": change.association_removed,
        "isPrimaryAssociation": change.is_primary,
    }
    if generic:
        fields.update(
            {
                "fromObjectTypeId": src.type_id,
                "toObjectTypeId": dst.type_id,
                "associationTypeId": change.association_type_id,
                "associationCategory": change.association_category,
            }
        )
    else:
        fields["associationType"] = f"{src.singular}_TO_{dst.singular}".upper()
    return fields


def _ms(change: "Change") -> int:
    return int(change.occurred_at.timestamp() * 1000)
