"""Outbound REST hooks: every subscribed event delivered, signed, until the target takes it.

`on_event` is an actions handler (jobs.actions.HANDLERS): for each active subscription of the
tenant to the event's type it records a delivery, keyed by (hook, event key) so a dispatch run
twice records nothing new, with its body fixed once (every attempt sends the same bytes under
the same `webhook-id`, so receivers can drop repeats). `deliver(tenant)` sends what is due,
signed per Standard Webhooks (adapters.standard_webhooks.sign: webhook-id, webhook-timestamp,
webhook-signature), through the SSRF policy (the target is checked again at every attempt,
and the connection goes to the address checked).

Error policy: a 2xx answer delivers. 410 Gone unsubscribes the hook (REST hooks' convention)
and cancels its pending deliveries. Anything else (another status, a timeout, a refused
connection, an address the SSRF policy refuses now) is retried with a jittered exponential
backoff, 30 s doubling up to an hour apart, until RETRY_WINDOW (48 hours) after the event, then
the delivery is `failed` with its last error. No worker sleeps: a retry is a `due_at` in the
database, run by a scheduled job at that time and, should Redis lose it, by the sweeper. A run
takes no new delivery after TIME_BUDGET and enqueues the next, so RQ's job timeout never stops
one mid-delivery.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import requests
from redis.exceptions import RedisError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from adapters.standard_webhooks import sign
from connector import queues
from connector.notify.ssrf import UnsafeUrl
from connector.store.models import DealRow, Hook, HookDelivery, Tenant
from connector.store.secrets import SecretError
from connector.store.sql import insert_new_many
from connector.store.times import from_db, to_db
from engine.notify_settings import NOTIFY_EVENTS
from jobs import policy
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

DELIVERY = "hook_delivery"
"""The work kind the sweeper and the queue marks know hook deliveries by."""
EVENT_TYPES = NOTIFY_EVENTS
RETRY_BASE = 30.0
RETRY_CAP = 3600.0
RETRY_WINDOW = timedelta(hours=48)
"""How long after the event a delivery is still retried (at least a day, as REST hooks expect)."""
LEASE = timedelta(minutes=5)
"""A delivery being sent is not due for anyone else for this long (a killed worker's returns)."""
BATCH = 100
TIMEOUT = (5.0, 10.0)
"""Seconds to connect to a target and to wait for its answer."""
TIME_BUDGET = timedelta(seconds=30)
"""A run takes no new delivery after this long and enqueues the next run: RQ kills a job at
60 s, and one delivery takes at most 15 s (TIMEOUT)."""
USER_AGENT = "DealRadar-Hooks/1"
KEEP_FINISHED = timedelta(days=7)
"""Finished deliveries (done, failed, cancelled) are kept this long after their event, then
purged hourly with the inbox (jobs.purge)."""


def on_event(tenant_id: str, event: dict[str, Any]) -> dict[str, int]:
    rt = current()
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        hooks = [
            h.id
            for h in s.scalars(select(Hook).where(Hook.status == "active").order_by(Hook.id))
            if event["type"] in h.events
        ]
        if not hooks:
            return {"deliveries": 0}
        body = _body(s, tenant_id, event, now)
        rows = [
            {
                "tenant_id": tenant_id,
                "hook_id": hook_id,
                "event_key": event["key"],
                "event_type": event["type"],
                "msg_id": _msg_id(hook_id, event["key"]),
                "body": body,
                "status": "pending",
                "attempts": 0,
                "created_at": to_db(now),
                "due_at": to_db(now),
            }
            for hook_id in hooks
        ]
        new = insert_new_many(s, HookDelivery, rows, ("tenant_id", "hook_id", "event_key"))
    if new:
        request_delivery(rt, tenant_id)
    return {"deliveries": new}


def _msg_id(hook_id: str, event_key: str) -> str:
    return "msg_" + hashlib.sha256(f"{hook_id}\n{event_key}".encode()).hexdigest()[:32]


def _body(s: Session, tenant_id: str, event: dict[str, Any], now: datetime) -> str:
    """The delivery's JSON: Standard Webhooks' {type, timestamp, data}, the event with the
    deal's name, link, owner and amount, so a Zap needs no second call."""
    deal = s.get(DealRow, (tenant_id, event["deal_id"]))
    data = deal.data if deal is not None else {}
    summary = {
        "id": event["deal_id"],
        "name": data.get("name"),
        "url": data.get("url"),
        "owner": deal.owner if deal is not None else None,
        "pipeline": data.get("pipeline"),
        "stage": data.get("stage"),
        "stage_name": data.get("stage_name") or data.get("stage"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
    }
    payload = {key: value for key, value in event.items() if key != "type"}
    document = {
        "type": event["type"],
        "timestamp": now.isoformat(),
        "data": {**payload, "deal": summary},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def request_delivery(rt: Runtime, tenant_id: str, delay: float = 0.0) -> None:
    """A delivery run now, or one `delay` seconds ahead for a retry (queues.enqueue_now_or_later:
    a target failing for hours never holds back what another target may have at once)."""
    try:
        queues.enqueue_now_or_later(
            rt.redis, queues.ACTIONS, "jobs.hooks.deliver", tenant_id, what=DELIVERY, delay=delay
        )
    except RedisError:
        log.warning("tenant %s: hook deliveries wait for the sweeper (Redis refused)", tenant_id)


def due_tenants(s: Session, due_before: datetime) -> Iterable[str]:
    """Active tenants with deliveries due by `due_before` (the sweeper's cross-tenant session)."""
    return s.scalars(
        select(HookDelivery.tenant_id)
        .join(Tenant, Tenant.id == HookDelivery.tenant_id)
        .where(
            HookDelivery.status == "pending",
            HookDelivery.due_at <= to_db(due_before),
            Tenant.status == "active",
        )
        .distinct()
    )


def deliver(tenant_id: str) -> dict[str, int]:
    rt = current()
    queues.runs_started(rt.redis, tenant_id, DELIVERY)
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        due = s.execute(
            select(HookDelivery.id, HookDelivery.due_at)
            .where(HookDelivery.status == "pending", HookDelivery.due_at <= to_db(now))
            .order_by(HookDelivery.id)
            .limit(BATCH)
        ).all()
    counts = dict.fromkeys(("delivered", "retry", "failed", "gone", "cancelled", "skipped"), 0)
    taken = 0
    with rt.notify.outbound.session() as http:
        for delivery_id, due_at in due:
            if rt.clock() - now > TIME_BUDGET:
                break
            taken += 1
            counts[_attempt(rt, http, tenant_id, delivery_id, due_at)] += 1
    if taken < len(due) or len(due) == BATCH:
        request_delivery(rt, tenant_id)
    else:
        _schedule_next(rt, tenant_id)
    if due:
        log.info("tenant %s: hook deliveries %s", tenant_id, counts)
    return counts


def _attempt(
    rt: Runtime, http: requests.Session, tenant_id: str, delivery_id: int, due_at: datetime
) -> str:
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        claimed = s.execute(
            update(HookDelivery)
            .where(
                HookDelivery.id == delivery_id,
                HookDelivery.status == "pending",
                HookDelivery.due_at == due_at,
            )
            .values(due_at=to_db(now + LEASE), attempts=HookDelivery.attempts + 1)
        ).rowcount
        delivery = s.get(HookDelivery, delivery_id)
        hook = s.get(Hook, delivery.hook_id) if delivery is not None else None
        if not claimed or delivery is None:
            return "skipped"  # another worker has it
        if hook is None or hook.status != "active":
            delivery.status = "cancelled"
            return "cancelled"
        attempt = delivery.attempts
        msg_id, body, created_at = delivery.msg_id, delivery.body, from_db(delivery.created_at)
        url, sealed = hook.target_url, hook.secret
    if rt.box is None:
        return _failed(rt, tenant_id, delivery_id, attempt, created_at, None,
                       "no DEALRADAR_SECRET_KEYS: the hook's secret cannot be opened")  # fmt: skip
    try:
        secret = rt.box.open(tenant_id, sealed)["secret"]
    except SecretError as exc:  # a key dropped from DEALRADAR_SECRET_KEYS: retried, then given up
        return _failed(rt, tenant_id, delivery_id, attempt, created_at, None, str(exc))
    timestamp = int(now.timestamp())
    raw = body.encode()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id=msg_id, timestamp=timestamp, body=raw, secret=secret),
    }
    try:
        response = http.post(url, data=raw, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except UnsafeUrl as exc:
        return _failed(rt, tenant_id, delivery_id, attempt, created_at, None, str(exc))
    except requests.RequestException as exc:
        return _failed(rt, tenant_id, delivery_id, attempt, created_at, None,
                       f"cannot reach the target ({type(exc).__name__})")  # fmt: skip
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        with rt.store.tenant(tenant_id) as s:
            s.execute(
                update(HookDelivery)
                .where(HookDelivery.id == delivery_id)
                .values(
                    status="done",
                    delivered_at=to_db(rt.clock()),
                    last_status=status,
                    last_error=None,
                )
            )
        return "delivered"
    if status == 410:
        unsubscribe(rt, tenant_id, hook_id_of(rt, tenant_id, delivery_id),
                    "the target answered 410 Gone")  # fmt: skip
        return "gone"
    return _failed(rt, tenant_id, delivery_id, attempt, created_at, status,
                   f"the target answered {status}")  # fmt: skip


def hook_id_of(rt: Runtime, tenant_id: str, delivery_id: int) -> str:
    with rt.store.tenant(tenant_id) as s:
        return s.scalar(select(HookDelivery.hook_id).where(HookDelivery.id == delivery_id))


def _failed(
    rt: Runtime,
    tenant_id: str,
    delivery_id: int,
    attempt: int,
    created_at: datetime | None,
    status: int | None,
    error: str,
) -> str:
    now = rt.clock()
    due = now + timedelta(seconds=policy.backoff(attempt, base=RETRY_BASE, cap=RETRY_CAP))
    give_up = due - (created_at or now) > RETRY_WINDOW
    values: dict[str, Any] = {"last_status": status, "last_error": error[:500]}
    values.update({"status": "failed"} if give_up else {"due_at": to_db(due)})
    with rt.store.tenant(tenant_id) as s:
        s.execute(update(HookDelivery).where(HookDelivery.id == delivery_id).values(**values))
    log.info("tenant %s: hook delivery %s attempt %d: %s%s", tenant_id, delivery_id, attempt,
             error, "; given up" if give_up else "")  # fmt: skip
    return "failed" if give_up else "retry"


def unsubscribe(rt: Runtime, tenant_id: str, hook_id: str, reason: str) -> None:
    """Stop a hook: no more deliveries, its pending ones cancelled; kept, with the reason."""
    now = to_db(rt.clock())
    with rt.store.tenant(tenant_id) as s:
        s.execute(
            update(Hook)
            .where(Hook.id == hook_id)
            .values(status="unsubscribed", status_reason=reason, updated_at=now)
        )
        s.execute(
            update(HookDelivery)
            .where(HookDelivery.hook_id == hook_id, HookDelivery.status == "pending")
            .values(status="cancelled", last_error=reason)
        )
    log.info("tenant %s: hook %s unsubscribed: %s", tenant_id, hook_id, reason)


def _schedule_next(rt: Runtime, tenant_id: str) -> None:
    """A job at the earliest pending delivery's due time (the sweeper covers a lost one)."""
    with rt.store.tenant(tenant_id) as s:
        due = from_db(
            s.scalar(select(func.min(HookDelivery.due_at)).where(HookDelivery.status == "pending"))
        )
    if due is not None:
        request_delivery(rt, tenant_id, delay=max(1.0, (due - rt.clock()).total_seconds()))


def purge_finished(s: Session, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the session tenant's finished deliveries created before
    `before`; how many. Pending ones are work and stay."""
    ids = list(
        s.scalars(
            select(HookDelivery.id)
            .where(
                HookDelivery.status.in_(("done", "failed", "cancelled")),
                HookDelivery.created_at < to_db(before),
            )
            .order_by(HookDelivery.id)
            .limit(limit)
        )
    )
    if ids:
        s.execute(delete(HookDelivery).where(HookDelivery.id.in_(ids)))
    return len(ids)
