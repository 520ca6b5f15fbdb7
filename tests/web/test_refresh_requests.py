"""The web process's refresh requests: held a moment, merged into one call per tenant, sent by a
thread that ends when there is nothing left; Redis refusing them loses no event (counted as not
queued); a webhook's events are counted as queued once their request was sent."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from connector import queues
from connector.refresh_requests import RefreshRequests
from connector.store.tenants import create_tenant
from tests.web.pending import PATIENCE, pending_deals
from tests.web.test_hubspot_webhook import PORTAL, _event, _post


class Told:
    """What a RefreshRequests reported as sent, waited for."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, bool]] = Counter()
        self.done = threading.Event()

    def __call__(self, source: str, events: int, taken: bool) -> None:
        self.counts[(source, taken)] += events
        self.done.set()

    def wait(self, total: int) -> Counter[tuple[str, bool]]:
        deadline = time.monotonic() + PATIENCE
        while sum(self.counts.values()) < total and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.counts


def _evalsha_calls(redis: Redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _senders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "refresh-requests"]


def test_requests_held_together_are_one_call_per_tenant(redis: Redis) -> None:
    told = Told()
    refreshes = RefreshRequests(redis, window=60.0, delay=0.2, sent=told)
    queues.request_refresh(redis, "warm", ["x"], window=60.0)  # the script loaded
    before = _evalsha_calls(redis)
    refreshes.add("tenant-a", ["d1", "d2"], source="hubspot", events=3)
    refreshes.add("tenant-a", ["d2", "d3"], source="hubspot", events=2)
    refreshes.add("tenant-b", ["d9"], source="events", events=1)
    refreshes.add("tenant-a", ["d4"], source="salesforce", events=1)

    assert told.wait(7) == {("hubspot", True): 5, ("events", True): 1, ("salesforce", True): 1}
    assert pending_deals(redis, "tenant-a", {"d1", "d2", "d3", "d4"}) == {"d1", "d2", "d3", "d4"}
    assert pending_deals(redis, "tenant-b", {"d9"}) == {"d9"}
    assert _evalsha_calls(redis) - before == 2, "one call per tenant"


def test_the_sender_ends_when_nothing_is_left_and_a_new_one_starts(redis: Redis) -> None:
    told = Told()
    refreshes = RefreshRequests(redis, window=60.0, delay=0.01, sent=told)
    refreshes.add("tenant-a", ["d1"], source="hubspot", events=1)
    told.wait(1)
    deadline = time.monotonic() + PATIENCE
    while _senders() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _senders(), "no thread left behind"
    refreshes.add("tenant-a", ["d2"], source="hubspot", events=1)
    assert pending_deals(redis, "tenant-a", {"d1", "d2"}) == {"d1", "d2"}


def test_events_naming_no_deal_are_counted_as_not_queued(redis: Redis) -> None:
    told = Told()
    refreshes = RefreshRequests(redis, window=60.0, delay=0.01, sent=told)
    refreshes.add("tenant-a", [], source="hubspot", events=2)
    refreshes.add("tenant-a", ["d1"], source="hubspot", events=1)
    assert told.wait(3) == {("hubspot", False): 2, ("hubspot", True): 1}


def test_redis_refusing_them_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    gone = Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)
    told = Told()
    refreshes = RefreshRequests(gone, window=60.0, delay=0.01, sent=told)
    refreshes.add("tenant-a", ["d1"], source="hubspot", events=4)
    assert told.wait(4) == {("hubspot", False): 4}
    assert "the sweeper will queue them" in caplog.text


@pytest.fixture
def hubspot_tenant(app: Flask) -> str:
    store = app.extensions["dealradar"].store
    tenant, _ = create_tenant(store, crm="hubspot", account_id=str(PORTAL), now=datetime.now(UTC))
    return tenant.id


def test_a_webhooks_events_are_counted_as_queued_once_sent(
    client: FlaskClient, redis: Redis, hubspot_tenant: str
) -> None:
    body = json.dumps([_event(1, 1000), _event(2, 1001)]).encode()
    assert _post(client, body).status_code == 202
    assert pending_deals(redis, hubspot_tenant, {"1000", "1001"}) == {"1000", "1001"}
    line = 'dealradar_events_queued_total{queued="true",source="hubspot"} 2.0'
    deadline = time.monotonic() + PATIENCE
    while line not in (text := client.get("/metrics").get_data(as_text=True)):
        assert time.monotonic() < deadline, text
        time.sleep(0.01)
