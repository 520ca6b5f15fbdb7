"""CRM webhooks: verify the raw bytes, persist to the inbox, enqueue; never call a CRM here.

Each handler is a ladder of early returns with fixed codes: 401 for a request we cannot prove
came from the CRM, 400 for a body we do not understand, 503 when the database cannot take the
events (the CRM retries), 200 for an authentic delivery with nothing for us (unknown account,
ignored events; logged with the reason), 202 once events are in the inbox. Redis being down is
no reason to refuse: the inbox has the events and the sweeper enqueues them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import orjson
from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from adapters import standard_webhooks
from adapters.hubspot import events as hubspot_events
from adapters.hubspot import signature as hubspot_signature
from adapters.salesforce import events as salesforce_events
from adapters.webhooks import Hint, MalformedBody, ParsedEvent, SignatureError
from connector.intake import InboxUnavailable, Incoming
from connector.store.credentials import WEBHOOK_SECRET, load_tokens
from connector.store.secrets import SecretError
from connector.store.snapshots import deals_of_records
from connector.store.tenants import get_tenant, tenant_for_api_key
from engine.text import storable

if TYPE_CHECKING:
    from connector.app import Services

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

HUBSPOT = "hubspot"


def _answer(code: int, **document: object) -> tuple[Response, int]:
    """A JSON answer written by orjson: every webhook request ends with one, and Flask's
    jsonify costs three times as much."""
    return Response(orjson.dumps(document), content_type="application/json"), code


def _refuse(source: str, status: int, reason: str, detail: str) -> tuple[Response, int]:
    metrics = current_app.extensions["dealradar"].metrics
    metrics.count(metrics.refused, source, reason)
    log.info("%s webhook refused (%d %s): %s", source, status, reason, detail)
    return _answer(status, error=reason, detail=detail)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
    """A body over the app's limit (werkzeug refuses it as the handler reads it): counted by
    source like every other refusal; a SOAP fault for an Outbound Message."""
    detail = "the body is over 1 MiB"
    if request.endpoint == "webhooks.salesforce_outbound":
        current_app.extensions["dealradar"].metrics.refused.labels(SALESFORCE, "too_large").inc()
        log.info("salesforce outbound message refused (413 too_large): %s", detail)
        return _soap(salesforce_events.soap_fault(detail), 413)
    source = _SOURCES.get(request.endpoint or "", "unknown")
    return _refuse(source, 413, "too_large", detail)


@bp.post("/webhooks/hubspot")
def hubspot() -> tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    config = services.config
    secret = config.crm.get("HUBSPOT_CLIENT_SECRET")
    if not secret:
        return _refuse(HUBSPOT, 503, "not_configured", "HUBSPOT_CLIENT_SECRET is not set")
    if request.mimetype != "application/json":
        return _refuse(HUBSPOT, 415, "content_type", "HubSpot sends application/json")
    body = request.get_data(cache=False)
    uri = config.public_url + request.full_path.rstrip("?")
    try:
        hubspot_signature.verify(
            headers=_headers(hubspot_signature.HEADERS),
            method=request.method,
            uri=uri,
            body=body,
            client_secret=secret,
            now_ms=int(time.time() * 1000),
        )
    except SignatureError as exc:
        return _refuse(HUBSPOT, 401, f"signature_{exc.reason}", _signature_detail(exc))
    try:
        parsed = hubspot_events.parse(body, app_id=config.crm.get("HUBSPOT_APP_ID"))
    except MalformedBody as exc:
        return _refuse(HUBSPOT, 400, "malformed", exc.reason)
    by_portal: dict[str, list[ParsedEvent]] = defaultdict(list)
    for event in parsed:
        if event.ignored_reason:
            log.info("hubspot event %s ignored: %s", event.dedupe_key, event.ignored_reason)
        else:
            by_portal[event.account_id].append(event)
    return _store_and_answer(services, HUBSPOT, by_portal.items(), body)


_SIGNATURE_DETAILS = {
    "missing": "no signature: sign the request and send the signature headers",
    "malformed": "the signature headers cannot be read",
    "stale": "the signed timestamp is over 5 minutes old: sign the request again",
    "future": "the signed timestamp is over 5 minutes ahead: check the sender's clock",
}


def _signature_detail(exc: SignatureError) -> str:
    """What the sender can do about the refusal; a mismatch says no more (a forger learns
    nothing from it)."""
    return _SIGNATURE_DETAILS.get(exc.reason, "the signature does not verify")


def _headers(names: Iterable[str]) -> dict[str, str]:
    """These request headers alone, read from the WSGI environ (where the server put them, as
    `HTTP_X_HUBSPOT_SIGNATURE_V3`): werkzeug's header view costs twice as much per header, and
    walking all of them more than the few a signature check reads."""
    environ = request.environ
    return {
        name: value
        for name in names
        if (value := environ.get("HTTP_" + name.upper().replace("-", "_"))) is not None
    }


SALESFORCE = "salesforce"
SOAP_TYPES = ("text/xml", "application/soap+xml")


def _soap(body: bytes, status: int) -> tuple[Response, int]:
    return Response(body, mimetype="text/xml"), status


@bp.post("/webhooks/salesforce/outbound")
def salesforce_outbound() -> tuple[Response, int]:
    """Outbound Messages carry no signature: the organization id must be a tenant's, and the
    Ack goes out only once the notifications are in the inbox (else Salesforce retries)."""
    services = current_app.extensions["dealradar"]
    if request.mimetype not in SOAP_TYPES:
        services.metrics.refused.labels(SALESFORCE, "content_type").inc()
        return _soap(salesforce_events.soap_fault("expected a SOAP (text/xml) body"), 415)
    body = request.get_data(cache=False)  # read once: the inbox keeps these very bytes
    try:
        message = salesforce_events.parse_outbound(body)
    except MalformedBody as exc:
        services.metrics.refused.labels(SALESFORCE, "malformed").inc()
        log.info("salesforce outbound message refused: %s", exc.reason)
        return _soap(salesforce_events.soap_fault(f"malformed message: {exc.reason}"), 400)
    try:
        if services.accounts.find(SALESFORCE, message.organization_id) is None:
            services.metrics.refused.labels(SALESFORCE, "unknown_org").inc()
            log.warning(
                "salesforce outbound message from unknown org %s (%d notifications) refused",
                message.organization_id, len(message.notifications),
            )  # fmt: skip
            return _soap(salesforce_events.soap_fault("unknown organization"), 403)
        _store(
            services,
            SALESFORCE,
            message.organization_id,
            salesforce_events.events(message),
            body,
        )
    except (InboxUnavailable, SQLAlchemyError):
        log.exception("salesforce outbound message: the database refused it; Salesforce retries")
        services.metrics.refused.labels(SALESFORCE, "database_unavailable").inc()
        return _soap(salesforce_events.soap_fault("temporarily unavailable, retry"), 503)
    services.metrics.accepted.labels(SALESFORCE).inc()
    return _soap(salesforce_events.ack_response(), 200)


@bp.post("/webhooks/salesforce/events")
def salesforce_flow() -> tuple[Response, int]:
    """Events from a Flow HTTP callout, authenticated by the tenant's API key as a bearer token
    (a Named Credential sends it); the tenant must be a Salesforce one."""
    services = current_app.extensions["dealradar"]
    if request.mimetype != "application/json":
        return _refuse(SALESFORCE, 415, "content_type", "send application/json")
    given = request.headers.get("Authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else ""
    try:
        tenant_id = tenant_for_api_key(services.store, token, services.clock()) if token else None
        tenant = get_tenant(services.store, tenant_id) if tenant_id else None
    except SQLAlchemyError:
        log.exception("salesforce flow events: the database is unavailable")
        return _refuse(SALESFORCE, 503, "database_unavailable", "try again later")
    if tenant is None or tenant.crm != SALESFORCE:
        return _refuse(SALESFORCE, 401, "bad_token", "send the tenant's API key as a bearer token")
    body = request.get_data(cache=False)
    try:
        parsed = salesforce_events.parse_flow(body, tenant.account_id)
    except MalformedBody as exc:
        return _refuse(SALESFORCE, 400, "malformed", exc.reason)
    return _store_and_answer(services, SALESFORCE, [(tenant.account_id, parsed)], body)


GENERIC = "events"


@bp.post("/webhooks/events/<tenant_id>")
def generic(tenant_id: str) -> tuple[Response, int]:
    """Deal events from systems we have no adapter for (Zapier, Make, a script), signed per the
    Standard Webhooks spec with the tenant's secret (`dealradar tenants webhook-secret`)."""
    services = current_app.extensions["dealradar"]
    if request.mimetype != "application/json":
        return _refuse(GENERIC, 415, "content_type", "send application/json")
    body = request.get_data(cache=False)
    if storable(tenant_id) != tenant_id:  # no tenant has such an id, nor can the database say
        return _refuse(GENERIC, 401, "signature_no_secret", "no signing secret for this tenant")
    try:
        secret = load_tokens(services.store, services.box, tenant_id, name=WEBHOOK_SECRET)
    except (SecretError, SQLAlchemyError):
        log.exception("generic webhook: the tenant's signing secret cannot be read")
        return _refuse(GENERIC, 503, "secret_unavailable", "try again later")
    if secret is None:
        return _refuse(GENERIC, 401, "signature_no_secret", "no signing secret for this tenant")
    try:
        message_id = standard_webhooks.verify(
            headers=request.headers, body=body, secret=secret.data["secret"],
            now_s=int(time.time()),
        )  # fmt: skip
    except SignatureError as exc:
        return _refuse(GENERIC, 401, f"signature_{exc.reason}", _signature_detail(exc))
    try:
        kind, deal_ids = standard_webhooks.parse_event(body)
    except MalformedBody as exc:
        return _refuse(GENERIC, 400, "malformed", exc.reason)
    g.tenant = tenant_id
    try:
        accepted = services.intake.accept(
            tenant_id, [Incoming(f"std:{message_id}", deal_ids)], source=GENERIC,
            body=body.decode("utf-8", "replace"), now=services.clock(),
        )  # fmt: skip
    except InboxUnavailable:
        log.exception("generic webhook: the database refused the event; the sender retries")
        return _refuse(GENERIC, 503, "database_unavailable", "try again later")
    services.metrics.accepted.labels(GENERIC).inc()
    if accepted.inbox_id is None:
        return _answer(200, status="ok", queued=0)
    log.info("generic event %s (%s) for %d deals", message_id, kind, len(deal_ids))
    return _answer(202, status="accepted", queued=1)


def _store_and_answer(
    services: Services,
    source: str,
    deliveries: Iterable[tuple[str, list[ParsedEvent]]],
    body: bytes,
) -> tuple[Response, int]:
    """Store each account's events; 202 when any was new, 200 when none was, 503 when the
    database refused them (the sender retries)."""
    try:
        stored = sum(
            _store(services, source, account, events, body) for account, events in deliveries
        )
    except (InboxUnavailable, SQLAlchemyError):
        log.exception("%s webhook: the database refused the events; the sender retries", source)
        return _refuse(source, 503, "database_unavailable", "try again later")
    metrics = services.metrics
    metrics.count(metrics.accepted, source)
    if not stored:
        return _answer(200, status="ok", queued=0)
    return _answer(202, status="accepted", queued=stored)


def _store(
    services: Services, source: str, account_id: str, events: list[ParsedEvent], body: bytes
) -> int:
    """Persist one account's events in one transaction, then request one refresh of their
    deals; how many events were new."""
    tenant_id = services.accounts.find(source, account_id)
    if tenant_id is None:
        log.warning(
            "%s webhook for unknown account %s: %d events dropped", source, account_id, len(events)
        )
        return 0
    g.tenant = tenant_id
    accepted = services.intake.accept(
        tenant_id, _incoming(services, tenant_id, events), source=source,
        body=body.decode("utf-8", "replace"), now=services.clock(),
    )  # fmt: skip
    return accepted.new  # counted as queued by the Intake's RefreshRequests, once sent


def _incoming(services: Services, tenant_id: str, events: list[ParsedEvent]) -> list[Incoming]:
    """The events with the deals each concerns: deal hints directly, contacts and activities
    through the snapshot's links (one query each for the whole delivery)."""
    contact_ids: set[str] = set()
    activity_ids: set[str] = set()
    for event in events:
        for hint in event.hints:
            if hint.kind == "contact":
                contact_ids.add(hint.id)
            elif hint.kind == "activity":
                activity_ids.add(hint.id)
    if not contact_ids and not activity_ids:  # the usual delivery: deal events alone
        return [Incoming(e.dedupe_key, _deal_hints(e.hints), e.body) for e in events]
    with services.store.tenant(tenant_id) as s:
        by_contact, by_activity = deals_of_records(s, contact_ids, activity_ids)

    def deals_of(event: ParsedEvent) -> list[str]:
        found: set[str] = set()
        for hint in event.hints:
            if hint.kind == "deal":
                found.add(hint.id)
            elif hint.kind == "contact":
                found |= by_contact.get(hint.id, set())
            elif hint.kind == "activity":
                found |= by_activity.get(hint.id, set())
        return sorted(found)

    return [Incoming(e.dedupe_key, deals_of(e), e.body) for e in events]


_SOURCES = {
    "webhooks.hubspot": HUBSPOT,
    "webhooks.salesforce_outbound": SALESFORCE,
    "webhooks.salesforce_flow": SALESFORCE,
    "webhooks.generic": GENERIC,
}
"""The metrics source of each endpoint, for refusals raised before its handler names it."""


def _deal_hints(hints: Sequence[Hint]) -> list[str]:
    """The deals named by hints that name no contact or activity, sorted, each once."""
    if len(hints) == 1:  # one record per event, as most events name
        return [hints[0].id] if hints[0].kind == "deal" else []
    return sorted({hint.id for hint in hints if hint.kind == "deal"})
