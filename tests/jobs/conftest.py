"""Jobs run for real: a real Redis, RQ workers, a store on SQLite and PostgreSQL, and the folder
CRM (adapters/folder) standing in for a CRM until the real adapters land."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler

from adapters.base import TenantRef
from adapters.folder.client import FolderClient
from connector import queues
from connector.notify.config import NotifyConfig
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.tenants import create_tenant
from engine.model import dump_bundle
from jobs import runtime
from jobs.runtime import Runtime

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "bundles").glob("*.json"))


class Clock:
    """A settable clock for jobs: tests move time instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


INSTALLED = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
"""When the test tenant was installed: before the example deals were created, so the alerts
they show are news, not the install's backlog (jobs/pipeline.py `_backlog`)."""


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


@pytest.fixture
def rt(store: Store, redis: Redis, clock: Clock, tmp_path: Path) -> Iterator[Runtime]:
    installed = Runtime(
        store=store,
        redis=redis,
        clock=clock,
        coalesce_seconds=0.0,
        box=TokenBox([Fernet.generate_key().decode()]),
        notify=NotifyConfig(outbox_dir=str(tmp_path / "outbox")),  # mail never leaves the test
    )
    runtime.install(installed)
    yield installed
    runtime.install(None)


@pytest.fixture
def crm_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "crm"
    folder.mkdir()
    return folder


@pytest.fixture
def tenant_id(rt: Runtime, crm_folder: Path, clock: Clock) -> str:
    tenant, _key = create_tenant(
        rt.store, crm="test", account_id=str(crm_folder), timezone="Europe/Paris", now=INSTALLED
    )
    return tenant.id


@pytest.fixture
def crm(crm_folder: Path, tenant_id: str) -> FolderClient:
    client = FolderClient(TenantRef(id=tenant_id, crm="test", account_id=str(crm_folder)))
    for path in EXAMPLES:
        client.put_deal(json.loads(path.read_text()))
    return client


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel (pubsub), which a burst in a test never
    uses: a worker living a few milliseconds could stop it before redis-py's listener thread
    saw the subscription, and that thread then waited its full 60 s before the worker could
    return."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def log_a_call(crm: FolderClient, deal_id: str, at: str) -> None:
    """A rep's call with c-10 on the deal, logged in the folder CRM at `at`."""
    doc = dump_bundle(crm.pull([deal_id]).bundles[0])
    doc["activities"].append(
        {"id": f"a-call-{at}", "kind": "call", "at": at, "direction": "outbound",
         "status": "done", "contacts": ["c-10"], "cc": [], "user": "u-tom"}
    )  # fmt: skip
    crm.put_deal(doc)


def run_jobs(redis: Redis, *, rounds: int = 20) -> None:
    """Run every queued job, moving due scheduled jobs onto their queues, until nothing is left."""
    qs = [Queue(name, connection=redis) for name in queues.QUEUES]
    for _ in range(rounds):
        scheduler = RQScheduler([q.name for q in qs], connection=redis)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
        if not any(q.count for q in qs):
            return
        BurstWorker(qs, connection=redis).work(burst=True)
    raise AssertionError("jobs kept coming back")


def wait_scheduled(redis: Redis, timeout: float = 10.0) -> None:
    """Wait until every scheduled job is due, then run everything."""
    qs = [Queue(name, connection=redis) for name in queues.QUEUES]
    deadline = time.monotonic() + timeout
    while any(q.scheduled_job_registry.count for q in qs):
        assert time.monotonic() < deadline, "scheduled jobs never came due"
        time.sleep(0.1)
        run_jobs(redis)
    run_jobs(redis)


def leaves_the_team(crm: FolderClient, user_id: str) -> None:
    """An admin deactivates a rep in the CRM; their deals stay theirs, nothing else changes."""
    for path in sorted((crm.root / "deals").glob("*.json")):
        doc = dump_bundle(crm.pull([path.stem]).bundles[0])
        for user in doc["users"]:
            if user["id"] == user_id:
                user["active"] = False
        crm.put_deal(doc)
