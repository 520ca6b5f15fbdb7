"""Outbound REST hooks, end to end: a receiver on loopback (a real HTTP server thread)
subscribes through the API, events are delivered signed per Standard Webhooks (checked by the
`standardwebhooks` library), retried while the receiver is away, and all arrive once it is back;
410 unsubscribes; the SSRF policy is applied again at delivery. Time is the injected clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import standardwebhooks.webhooks as standard
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from connector import queues
from connector.app import create_app
from connector.config import Config
from connector.notify.config import NotifyConfig
from connector.notify.ssrf import OutboundPolicy
from connector.store import tenants
from connector.store.models import Hook, HookDelivery
from connector.store.secrets import TokenBox
from connector.store.snapshots import save_bundles
from connector.store.times import from_db
from engine.model import load_bundle
from jobs import actions, hooks, pipeline, purge, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import EXAMPLES, Clock, run_jobs
from tests.receiver import Receiver

KEY = Fernet.generate_key().decode()
LOOPBACK = OutboundPolicy(allow_http=True, allow_loopback=True)
STARTED = 18  # alert.started events of the example deals' first evaluation


@pytest.fixture
def receiver(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The receiver verifies every delivery with the standardwebhooks library, whose clock is
    the test's (it checks webhook-timestamp against its `now`)."""

    class Now(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return clock.now.astimezone(tz)

    monkeypatch.setattr(standard, "datetime", Now)
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def api(rt: Runtime, redis: Redis, clock: Clock, tmp_path: Any) -> FlaskClient:
    """The web app and the workers on one store, one Redis, one clock and one key."""
    rt.box = TokenBox([KEY])
    rt.notify = NotifyConfig(outbox_dir=str(tmp_path / "outbox"), outbound=LOOPBACK)
    config = Config(
        database_url=rt.store.url,
        secret_keys=(KEY,),
        public_url="https://dealradar.example",
        notify=NotifyConfig(outbound=LOOPBACK),
    )
    return create_app(config, store=rt.store, redis=redis, clock=clock).test_client()


@pytest.fixture
def auth(rt: Runtime, tenant_id: str, clock: Clock) -> dict[str, str]:
    key = tenants.issue_api_key(rt.store, tenant_id, "zapier", clock())
    return {"Authorization": f"Bearer {key}"}


def _subscribe(api: FlaskClient, auth: dict, receiver: Receiver, events: list[str]) -> dict:
    answer = api.post(
        "/api/v1/hooks", json={"target_url": receiver.url, "events": events}, headers=auth
    )
    assert answer.status_code == 201, answer.get_json()
    hook = answer.get_json()
    secret = hook["secret"]
    receiver.check = lambda headers, body: standard.Webhook(secret).verify(body, headers)
    return hook


def _evaluate(rt: Runtime, tenant_id: str, clock: Clock, change: Any = None) -> None:
    bundles = [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]
    if change:
        change(bundles)
    settings = tenants.current_settings(rt.store, tenant_id)
    with rt.store.tenant(tenant_id) as s:
        save_bundles(s, tenant_id, bundles, clock())
        pipeline.record(s, tenant_id, bundles, settings, clock())
    actions.dispatch(tenant_id)


def _deliveries(rt: Runtime, tenant_id: str) -> list[HookDelivery]:
    with rt.store.tenant(tenant_id) as s:
        return list(s.scalars(select(HookDelivery).order_by(HookDelivery.id)))


def test_deliveries_are_signed_per_standard_webhooks(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    hook = _subscribe(api, auth, receiver, ["alert.started"])
    assert hook["secret"].startswith("whsec_")
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert receiver.refused == []
    assert len(receiver.received) == STARTED
    first = receiver.received[0]
    assert first.headers["webhook-id"].startswith("msg_")
    assert first.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))
    assert first.headers["content-type"] == "application/json"
    body = json.loads(first.body)
    assert body["type"] == "alert.started"
    assert set(body["data"]) >= {"key", "deal_id", "code", "message", "facts", "deal"}
    assert {json.loads(r.body)["data"]["deal"]["name"] for r in receiver.received} >= {
        "Globex expansion",
        "Acme Corp renewal",
    }
    # A delivery with a byte changed, or signed with another secret, fails the library's check.
    tampered = dict(first.headers)
    with pytest.raises(standard.WebhookVerificationError):
        standard.Webhook(hook["secret"]).verify(first.body.replace(b"alert", b"alarm"), tampered)
    with pytest.raises(standard.WebhookVerificationError):
        standard.Webhook("whsec_" + "A" * 32).verify(first.body, first.headers)
    # The same events dispatched again deliver nothing more.
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert len(receiver.received) == STARTED


def test_a_receiver_away_for_hours_gets_every_delivery_once_it_returns(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    _subscribe(api, auth, receiver, ["alert.started", "alert.ended", "health.grade_changed"])
    receiver.status = 503  # up, but failing
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert receiver.answered == [503] * STARTED and receiver.received == []
    pending = _deliveries(rt, tenant_id)
    assert {d.status for d in pending} == {"pending"} and {d.attempts for d in pending} == {1}
    assert {d.last_status for d in pending} == {503}
    assert min(from_db(d.due_at) for d in pending) > clock.now
    port = receiver.port
    receiver.stop()  # now down: connections refused
    tries = 0
    for _ in range(36):  # six hours away; the scheduled job runs every ten minutes meanwhile
        clock.now += timedelta(minutes=10)
        counts = hooks.deliver(tenant_id)
        assert counts["delivered"] == 0, counts
        tries += counts["retry"]
    waiting = _deliveries(rt, tenant_id)
    assert {d.status for d in waiting} == {"pending"}
    assert tries == sum(d.attempts - 1 for d in waiting)
    # 36 chances to retry, but the backoff spaced the tries out, at most an hour apart.
    assert all(10 <= d.attempts <= 16 for d in waiting), [d.attempts for d in waiting]
    assert "cannot reach the target" in waiting[0].last_error
    now = clock.now
    assert all(now < from_db(d.due_at) <= now + timedelta(hours=1) for d in waiting)
    receiver.port = port
    receiver.status = 200
    receiver.start()  # back, on the same port
    clock.now += timedelta(hours=2)
    redis.flushdb()  # and Redis lost the scheduled retry meanwhile: the sweeper finds them
    sweeper.run()
    run_jobs(redis)
    assert receiver.refused == []
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == STARTED == len(set(ids)), "every delivery arrived, once"
    assert {d.status for d in _deliveries(rt, tenant_id)} == {"done"}
    sweeper.run()
    run_jobs(redis)
    assert len(receiver.received) == STARTED


def test_a_target_down_for_hours_never_holds_back_another_targets_deliveries(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, api: FlaskClient, auth: dict,
    receiver: Receiver,
) -> None:  # fmt: skip
    """The down target's retry is scheduled up to an hour ahead; a new alert must still reach
    the healthy target at once, not with that retry."""
    down = Receiver(status=503).start()
    try:
        _subscribe(api, auth, receiver, ["alert.started"])
        api.post("/api/v1/hooks", json={"target_url": down.url, "events": ["alert.started"]},
                 headers=auth)  # fmt: skip
        _evaluate(rt, tenant_id, clock)
        run_jobs(redis)
        for _ in range(9):  # the down target's retries, each at its due time: backoff grows
            with rt.store.tenant(tenant_id) as s:
                clock.now = max(from_db(d.due_at) for d in s.scalars(
                    select(HookDelivery).where(HookDelivery.status == "pending")))  # fmt: skip
            hooks.deliver(tenant_id)
        with rt.store.tenant(tenant_id) as s:
            retry = min(from_db(d.due_at) for d in s.scalars(
                select(HookDelivery).where(HookDelivery.status == "pending")))  # fmt: skip
        assert retry - clock.now > timedelta(minutes=15), "the down target's retry is far"
        before = len(receiver.received)

        def amount_emptied(bundles: list) -> None:
            bundles[0].deal.amount = None

        clock.now += timedelta(seconds=1)
        _evaluate(rt, tenant_id, clock, amount_emptied)
        run_jobs(redis)
        assert len(receiver.received) == before + 1, "delivered at once"
    finally:
        down.stop()


def test_deliveries_are_retried_for_at_least_a_day_then_given_up(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    _subscribe(api, auth, receiver, ["alert.started"])
    receiver.status = 500
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    start = clock.now
    while clock.now - start < timedelta(hours=24):
        clock.now += timedelta(hours=1)
        hooks.deliver(tenant_id)
        assert {d.status for d in _deliveries(rt, tenant_id)} == {"pending"}
    clock.now += timedelta(hours=25)
    hooks.deliver(tenant_id)
    given_up = _deliveries(rt, tenant_id)
    assert {d.status for d in given_up} == {"failed"}
    assert given_up[0].last_error == "the target answered 500"


def test_a_target_answering_410_is_unsubscribed(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    hook = _subscribe(api, auth, receiver, ["alert.started", "alert.ended"])
    receiver.status = 410
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert receiver.answered == [410], "the first 410 stops the hook"
    (listed,) = api.get("/api/v1/hooks", headers=auth).get_json()["items"]
    assert listed["id"] == hook["id"] and listed["status"] == "unsubscribed"
    assert "410" in listed["status_reason"]
    assert {d.status for d in _deliveries(rt, tenant_id)} == {"cancelled"}
    receiver.status = 200

    def drop_amount(bundles: list) -> None:  # a new alert starts on d-1001
        bundles[0].deal.amount = None

    clock.now += timedelta(hours=1)
    _evaluate(rt, tenant_id, clock, drop_amount)
    run_jobs(redis)
    assert receiver.answered == [410], "nothing more goes to an unsubscribed hook"


def test_unsubscribing_through_the_api_stops_deliveries(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    hook = _subscribe(api, auth, receiver, ["alert.started"])
    receiver.status = 503
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert api.delete(f"/api/v1/hooks/{hook['id']}", headers=auth).status_code == 204
    assert _deliveries(rt, tenant_id) == [], "its waiting deliveries went with it"
    receiver.status = 200
    clock.now += timedelta(hours=1)
    hooks.deliver(tenant_id)
    assert receiver.received == []


def test_the_ssrf_policy_is_applied_again_at_delivery(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    _subscribe(api, auth, receiver, ["alert.started"])  # accepted: loopback allowed then
    rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir)  # production's policy now
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert receiver.answered == []
    refused = _deliveries(rt, tenant_id)
    assert {d.status for d in refused} == {"pending"}
    assert "only https" in refused[0].last_error


def test_finished_deliveries_are_purged_after_a_week(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    clock: Clock,
    api: FlaskClient,
    auth: dict,
    receiver: Receiver,
) -> None:
    _subscribe(api, auth, receiver, ["alert.started"])
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert len(_deliveries(rt, tenant_id)) == STARTED
    clock.now += timedelta(days=6)
    purge.run()
    assert len(_deliveries(rt, tenant_id)) == STARTED
    clock.now += timedelta(days=2)
    purge.run()
    assert _deliveries(rt, tenant_id) == []


def test_an_uninstalled_tenants_hooks_send_nothing_more_and_keep_no_secret(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, api: FlaskClient, auth: dict,
    receiver: Receiver,
) -> None:
    """Deliveries already queued when the customer leaves must not go out after, signed with a
    secret Deal Radar said it deleted."""
    _subscribe(api, auth, receiver, ["alert.started"])
    _evaluate(rt, tenant_id, clock)  # deliveries due, as at any moment of a live tenant
    tenants.uninstall_tenant(rt.store, tenant_id, "the customer left", clock())
    run_jobs(redis)

    assert receiver.received == []
    with rt.store.tenant(tenant_id) as s:
        subscribed = list(s.scalars(select(Hook)))
        statuses = set(s.scalars(select(HookDelivery.status)))
    assert subscribed and all(h.secret == "" and h.status == "unsubscribed" for h in subscribed)
    assert "the customer left" in subscribed[0].status_reason
    assert statuses == {"cancelled"}


def test_a_run_slower_than_the_job_timeout_is_not_killed_mid_delivery(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, api: FlaskClient, auth: dict,
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A target that takes its time to answer (10 s is allowed; 0.2 s here): a run with many
    deliveries went on past RQ's job timeout (60 s; 2 s here) and was killed mid-delivery. The
    job failed, the delivery it was sending went again after its lease (a repeat for a target
    that took it), and the rest waited for the sweeper."""
    monkeypatch.setitem(queues.enqueue_once.__kwdefaults__, "timeout", 2)
    monkeypatch.setattr(hooks, "TIME_BUDGET", timedelta(seconds=1), raising=False)
    _subscribe(api, auth, receiver, ["alert.started"])
    verify = receiver.check
    assert verify is not None

    def slow(headers: dict[str, str], body: bytes) -> None:
        verify(headers, body)
        time.sleep(0.2)
        clock.now += timedelta(seconds=0.4)  # the run's clock: its budget ends well in time

    receiver.check = slow
    _evaluate(rt, tenant_id, clock)
    run_jobs(redis)
    assert receiver.refused == []
    assert queues.queue(redis, queues.ACTIONS).failed_job_registry.count == 0, "no job killed"
    assert {d.status for d in _deliveries(rt, tenant_id)} == {"done"}
    assert len(receiver.received) == STARTED == len(receiver.answered), "each once"
