"""Nothing is lost and nothing happens twice when Redis freezes or a worker is killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector.embedded import start_redis
from connector.intake import accept_event
from connector.store.models import InboxEvent
from jobs import runtime, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]


def _statuses(rt: Runtime, tenant_id: str) -> list[str]:
    with rt.store.tenant(tenant_id) as s:
        return list(s.scalars(select(InboxEvent.status).order_by(InboxEvent.id)))


def test_events_wait_in_the_inbox_while_redis_is_frozen(
    rt: Runtime, tenant_id: str, crm: FolderClient, clock
) -> None:
    own = start_redis()  # a Redis this test may freeze
    try:
        frozen = Redis.from_url(own.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        runtime.install(Runtime(store=rt.store, redis=frozen, clock=clock, coalesce_seconds=0))
        os.kill(own.process.pid, signal.SIGSTOP)
        try:
            accepted = [
                accept_event(
                    rt.store,
                    frozen,
                    tenant_id,
                    dedupe_key=f"evt-{d}",
                    source="test",
                    body="{}",
                    deal_ids=[d],
                    now=clock(),
                    window=0,
                )
                for d in DEALS
            ]
        finally:
            os.kill(own.process.pid, signal.SIGCONT)
        assert all(a.inbox_id and not a.queued for a in accepted), "accepted, not queued"
        assert _statuses(rt, tenant_id) == ["pending"] * 5
        clock.now += timedelta(seconds=rt.stale_seconds + 1)
        assert sweeper.run()["deals"] == 5
        run_jobs(frozen)
        assert _statuses(rt, tenant_id) == ["done"] * 5
        assert len(crm.calls("pull")) == 1 and len(crm.calls("write")) == 1
    finally:
        own.stop()


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "dealradar"
    return subprocess.Popen(
        [str(exe), "worker"],
        env=env,
        start_new_session=True,  # its own process group: the worker and its work horse
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_refresh_is_run_again_and_acts_once(
    rt: Runtime, redis: Redis, redis_url: str, tenant_id: str, crm: FolderClient, database_url: str
) -> None:
    rt.clock = lambda: datetime.now(UTC)  # real time: a real worker process runs this one
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "DEALRADAR_LOCK_SECONDS": "4",
        "DEALRADAR_STALE_SECONDS": "3",
        "DEALRADAR_COALESCE_SECONDS": "0",
    }
    rt.lock_seconds, rt.stale_seconds = 4, 3
    crm.add_fault("pull", sleep=60)  # the first pull hangs: the worker is killed during it
    accept_event(
        rt.store,
        redis,
        tenant_id,
        dedupe_key="evt-1",
        source="test",
        body="{}",
        deal_ids=["d-1002"],
        now=rt.clock(),
        window=0,
    )
    first = _worker(env)
    started = time.monotonic()
    try:
        while not crm.calls("pull"):
            assert time.monotonic() - started < 60, "the worker never started the refresh"
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its work horse, mid-pull
        first.wait()
        killed = time.monotonic()
        second = _worker(env)
        try:
            while _statuses(rt, tenant_id) != ["done"]:
                assert time.monotonic() - killed < 180, "not run again within 3 minutes"
                sweeper.run()
                time.sleep(1)
            while not crm.calls("write"):  # the write-back follows the refresh
                assert time.monotonic() - killed < 180
                time.sleep(0.2)
            time.sleep(2)  # anything that would happen twice has had its chance
        finally:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert len(crm.calls("pull")) == 2, "the refresh ran again, once"
    assert len(crm.calls("write")) == 1, "its effects happened once"
    assert "no_activity" in crm.written("d-1002")["alerts"]
