"""`/api/v1/hooks` (REST hook subscriptions, the Zapier pattern) and `/api/v1/slack-webhooks`
(the tenant's Slack incoming webhooks, which settings name), on the API blueprint: the same
API keys, tenant sessions and error bodies as the rest of `/api/v1`.

A subscription's target URL goes through the SSRF policy here (https, public addresses after
DNS resolution) and again at every delivery (jobs.hooks). Its signing secret is returned once,
by the POST, and stored sealed; a Slack webhook URL is a secret too, stored sealed and never
returned (only its host). Thin handlers: validate, persist, answer; deliveries are the workers'.

Error policy: 422 for an invalid body or a URL the SSRF policy refuses (the reason in
`errors.target_url` / `errors.url`), 404 for a hook or webhook the tenant does not have, 409 at
MAX_HOOKS subscriptions, and the API's own 401/400/415/503 answers. A stored Slack URL that the
current keys cannot decrypt is listed with its `problem`, never a 500 for the whole list.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Response, g
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from adapters.standard_webhooks import new_secret
from connector.notify.ssrf import MAX_URL_LENGTH, UnsafeUrl
from connector.store.credentials import save_tokens
from connector.store.models import Credential, Hook, HookDelivery
from connector.store.secrets import SecretError
from connector.store.times import from_db, to_db
from connector.web import api
from connector.web.api_schemas import NO_NUL, NOT_AN_OBJECT
from engine.notify_settings import NOTIFY_EVENTS, WEBHOOK_NAME

log = logging.getLogger(__name__)

MAX_HOOKS = 100
"""Subscriptions per tenant: each event is delivered to every one of them."""
SLACK_PREFIX = "slack:"
"""Credential names of Slack webhooks: `slack:<name>` (jobs.notify.SLACK_CREDENTIAL)."""

_HOOK = "/hooks/<string(maxlength=36):hook_id>"
_SLACK = "/slack-webhooks/<string(maxlength=34):name>"
_URL = [validate.Length(min=1, max=MAX_URL_LENGTH), NO_NUL]


class HookInSchema(Schema):
    error_messages = NOT_AN_OBJECT
    target_url = fields.String(
        required=True, validate=_URL,
        metadata={"description": "Where to POST the events: https, on a public address"},
    )  # fmt: skip
    events = fields.List(
        fields.String(validate=validate.OneOf(NOTIFY_EVENTS)),
        required=True,
        validate=validate.Length(min=1, max=len(NOTIFY_EVENTS)),
        metadata={"description": "The event types to receive"},
    )
    description = fields.String(load_default="", validate=[validate.Length(max=200), NO_NUL])


class HookSchema(Schema):
    id = fields.String(required=True)
    target_url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    description = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(("active", "unsubscribed")),
        metadata={"description": "`unsubscribed` once the target answered 410 Gone"},
    )
    status_reason = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    deliveries = fields.Nested(
        lambda: HookDeliveriesSchema(),
        required=True,
        metadata={"description": "How its deliveries fare: a target failing shows here"},
    )


class HookDeliveriesSchema(Schema):
    pending = fields.Integer(
        required=True, metadata={"description": "Waiting for their first try or a retry"}
    )
    failed = fields.Integer(
        required=True, metadata={"description": "Given up after the retry window (48 hours)"}
    )
    last_delivered_at = fields.DateTime(required=True, allow_none=True)
    last_error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Why the latest delivery still pending or failed was not taken"},
    )


class HookCreatedSchema(HookSchema):
    secret = fields.String(
        required=True,
        metadata={
            "description": "The Standard Webhooks signing secret (whsec_...), shown only here: "
            "verify webhook-signature over webhook-id, webhook-timestamp and the body with it"
        },
    )


class HookListSchema(Schema):
    items = fields.List(fields.Nested(HookSchema), required=True)


class SlackWebhookInSchema(Schema):
    error_messages = NOT_AN_OBJECT
    url = fields.String(
        required=True, validate=_URL,
        metadata={"description": "The incoming webhook URL Slack gave (https://hooks.slack.com/...)"},
    )  # fmt: skip


class SlackWebhookSchema(Schema):
    name = fields.String(required=True)
    host = fields.String(
        required=True, allow_none=True,
        metadata={"description": "The URL's host (the URL is a secret and never shown); null "
                  "when the stored URL cannot be read (see `problem`)"},
    )  # fmt: skip
    updated_at = fields.DateTime(required=True)
    problem = fields.String(
        required=True, allow_none=True,
        metadata={"description": "Null when the webhook can be used; otherwise why not and what "
                  "to do, e.g. a URL the app's current secret keys cannot read (after a key "
                  "rotation), to be stored again with PUT"},
    )  # fmt: skip


class SlackWebhookListSchema(Schema):
    items = fields.List(fields.Nested(SlackWebhookSchema), required=True)


# --- hooks --------------------------------------------------------------------------------------


@api.bp.post("/hooks")
@api._json_body
@api.bp.arguments(HookInSchema)
@api.bp.response(201, HookCreatedSchema)
@api._errors(401, 409, 422)
def subscribe(body: dict[str, Any]) -> dict[str, Any]:
    """Subscribe a target URL to events; the answer carries the signing secret, once."""
    services = api._services()
    _safe_url("target_url", body["target_url"])
    secret = new_secret()
    now = to_db(services.clock())
    with services.store.tenant(g.tenant) as s:
        count = s.scalar(select(func.count()).select_from(Hook))
        if count >= MAX_HOOKS:
            abort(409, message=f"the tenant has {count} hooks, the most allowed; delete one first")
        hook = Hook(
            tenant_id=g.tenant,
            id=str(uuid.uuid4()),
            target_url=body["target_url"],
            events=sorted(set(body["events"]), key=NOTIFY_EVENTS.index),
            description=body["description"],
            secret=services.box.seal(g.tenant, {"secret": secret}),
            status="active",
            created_at=now,
            updated_at=now,
        )
        s.add(hook)
        out = {**_hook_out(hook), "secret": secret}
    return out


@api.bp.get("/hooks")
@api.bp.response(200, HookListSchema)
@api._errors(401)
def list_hooks() -> dict[str, Any]:
    """The tenant's hooks, oldest first (secrets are not shown again)."""
    with api._services().store.tenant(g.tenant) as s:
        hooks = s.scalars(select(Hook).order_by(Hook.created_at, Hook.id)).all()
        stats = _deliveries(s)
        return {"items": [_hook_out(h, stats.get(h.id)) for h in hooks]}


def _deliveries(s: Session) -> dict[str, dict[str, Any]]:
    """Per hook: deliveries pending and failed, the last taken, the latest error (two grouped
    queries, whatever the number of hooks and deliveries)."""
    d = HookDelivery
    stats: dict[str, dict[str, Any]] = {}
    counts = select(d.hook_id, d.status, func.count(), func.max(d.delivered_at))
    for hook_id, status, count, delivered in s.execute(counts.group_by(d.hook_id, d.status)):
        out = stats.setdefault(hook_id, _no_deliveries())
        if status in ("pending", "failed"):
            out[status] = count
        if status == "done" and delivered is not None:
            out["last_delivered_at"] = from_db(delivered)
    unsent = d.status.in_(("pending", "failed")) & d.last_error.is_not(None)
    latest = select(func.max(d.id)).where(unsent).group_by(d.hook_id).scalar_subquery()
    for hook_id, error in s.execute(select(d.hook_id, d.last_error).where(d.id.in_(latest))):
        stats.setdefault(hook_id, _no_deliveries())["last_error"] = error
    return stats


def _no_deliveries() -> dict[str, Any]:
    return {"pending": 0, "failed": 0, "last_delivered_at": None, "last_error": None}


@api.bp.delete(_HOOK)
@api.bp.response(204)
@api._errors(401, 404)
def unsubscribe(hook_id: str) -> Response:
    """Unsubscribe: the hook and its deliveries still waiting are deleted."""
    with api._services().store.tenant(g.tenant) as s:
        gone = s.execute(delete(Hook).where(Hook.id == hook_id)) if api._lookable(hook_id) else None
    if gone is None or not gone.rowcount:
        abort(404, message=f"no hook {hook_id!r}")
    return Response(status=204)


def _hook_out(hook: Hook, deliveries: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": hook.id,
        "target_url": hook.target_url,
        "events": list(hook.events),
        "description": hook.description,
        "status": hook.status,
        "status_reason": hook.status_reason,
        "created_at": from_db(hook.created_at),
        "deliveries": deliveries or _no_deliveries(),
    }


# --- Slack webhooks -----------------------------------------------------------------------------


@api.bp.put(_SLACK)
@api._json_body
@api.bp.arguments(SlackWebhookInSchema)
@api.bp.response(200, SlackWebhookSchema)
@api._errors(401, 422)
def put_slack_webhook(body: dict[str, Any], name: str) -> dict[str, Any]:
    """Store (or replace) a Slack incoming webhook under a name that settings refer to
    (`notifications.slack`, `notifications.reps.<id>.slack`)."""
    if not re.fullmatch(WEBHOOK_NAME, name):
        api._invalid({"name": ["a-z, 0-9, '-' and '_', 1 to 34 characters"]}, "invalid name")
    _safe_url("url", body["url"])
    services = api._services()
    now = services.clock()
    save_tokens(services.store, services.box, g.tenant, {"url": body["url"]}, None, now,
                name=SLACK_PREFIX + name)  # fmt: skip
    return _slack_out(name, body["url"], now)


@api.bp.get("/slack-webhooks")
@api.bp.response(200, SlackWebhookListSchema)
@api._errors(401)
def list_slack_webhooks() -> dict[str, Any]:
    """The stored Slack webhooks: names and hosts (the URLs are secrets), and for one that
    cannot be used, why (`problem`)."""
    services = api._services()
    with services.store.tenant(g.tenant) as s:
        rows = s.scalars(
            select(Credential)
            .where(Credential.name.startswith(SLACK_PREFIX, autoescape=True))
            .order_by(Credential.name)
        ).all()
        sealed = [(r.name.removeprefix(SLACK_PREFIX), r.ciphertext, r.updated_at) for r in rows]
    items = []
    for name, ciphertext, updated_at in sealed:
        try:
            url = services.box.open(g.tenant, ciphertext).get("url", "")
        except SecretError:
            # A key dropped from DEALRADAR_SECRET_KEYS (or a copied row) spoils this one URL:
            # the others stay listed, and this one says how to mend it.
            log.warning("Slack webhook %r of tenant %s cannot be decrypted", name, g.tenant)
            items.append(_unreadable_slack_out(name, from_db(updated_at)))
        else:
            items.append(_slack_out(name, url, from_db(updated_at)))
    return {"items": items}


def _slack_out(name: str, url: str, updated_at: datetime) -> dict[str, Any]:
    host = urlsplit(url).hostname or ""
    return {"name": name, "host": host, "updated_at": updated_at, "problem": None}


def _unreadable_slack_out(name: str, updated_at: datetime) -> dict[str, Any]:
    problem = (
        "the stored URL cannot be read with the app's current secret keys "
        "(DEALRADAR_SECRET_KEYS: was its key dropped after a rotation?); notifications naming "
        f"it fail until it is stored again with PUT /api/v1/slack-webhooks/{name}"
    )
    return {"name": name, "host": None, "updated_at": updated_at, "problem": problem}


@api.bp.delete(_SLACK)
@api.bp.response(204)
@api._errors(401, 404)
def delete_slack_webhook(name: str) -> Response:
    """Forget a stored Slack webhook; notifications naming it fail until it is stored again."""
    with api._services().store.tenant(g.tenant) as s:
        name_gone = delete(Credential).where(Credential.name == SLACK_PREFIX + name)
        gone = s.execute(name_gone) if api._lookable(name) else None
    if gone is None or not gone.rowcount:
        abort(404, message=f"no Slack webhook named {name!r}")
    return Response(status=204)


def _safe_url(field: str, url: str) -> None:
    try:
        api._services().config.notify.outbound.check(url)
    except UnsafeUrl as exc:
        api._invalid({field: [str(exc)]}, f"{field} is refused: {exc}")
