"""What an operator sees: `dealradar tenants status` and `dealradar jobs failed|retry`."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from rq import SimpleWorker

from adapters.folder.client import FolderClient
from connector import queues
from connector.cli import main
from connector.commands.jobs_cmd import failed_jobs, reason
from connector.commands.worker_cmd import COMMAND_WAIT, DealRadarWorker
from connector.intake import accept_event
from connector.store import tenants
from connector.store.credentials import save_tokens
from connector.store.db import Store
from connector.store.models import UserRow
from connector.store.secrets import TokenBox
from connector.store.status import describe, tenant_status
from connector.store.times import utc_now
from jobs import sweep
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs


def test_status_shows_sweep_progress_waiting_work_and_why_a_tenant_stopped(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock, monkeypatch
) -> None:
    queues.request_refresh(redis, tenant_id, ["d-1001", "d-1002", "d-1003", "d-1004"], window=0)
    run_jobs(redis)
    monkeypatch.setattr(sweep, "CHUNK", 2)
    monkeypatch.setattr(sweep, "BATCH", 2)
    sweep.start(tenant_id, "2026-11-25")
    # The chain is queued behind the users' read; a worker runs that and the first link only.
    SimpleWorker([queues.queue(redis, queues.SWEEP)], connection=redis).work(burst=True, max_jobs=2)
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert lines[0] == f"tenant {tenant_id} (test): active"
    assert "  last sweep: 2026-11-25 running, 2/4 deals (50%)" in lines

    crm.add_fault("pull", error="permission_denied")
    accept_event(
        rt.store, redis, tenant_id, dedupe_key="e1", source="test", body="{}",
        deal_ids=["d-1001"], now=clock(), window=0,
    )  # fmt: skip
    run_jobs(redis)
    clock.now += timedelta(minutes=5)
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert lines[0] == f"tenant {tenant_id} (test): suspended"
    assert lines[1] == "  why: injected permission_denied on pull"
    assert "  inbox: 1 pending, oldest 300 s old, 0 failed" in lines
    assert "  last sweep: 2026-11-25 done, 4/4 deals (100%)" in lines


def test_status_names_the_reps_who_left_and_where_their_tasks_go(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    queues.request_refresh(redis, tenant_id, ["d-1001", "d-1002", "d-1004"], window=0)
    run_jobs(redis)
    assert not any(
        "deactivated" in line for line in describe(tenant_status(rt.store, tenant_id, clock()))
    )
    with rt.store.tenant(tenant_id) as s:
        s.get(UserRow, (tenant_id, "u-tom")).active = False

    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    at = lines.index(
        "  deactivated users still owning open deals (reassign them in the CRM); their tasks are"
        " made unassigned: set tasks.fallback_owner to give them to someone:"
    )
    assert lines[at + 1] == "    Tom Becker (u-tom): 2 open deals"

    tenants.save_settings(
        rt.store, tenant_id, {"tasks": {"fallback_owner": "u-claire"}}, "admin", clock()
    )
    lines = describe(tenant_status(rt.store, tenant_id, clock()))
    assert (
        "  deactivated users still owning open deals (reassign them in the CRM); their tasks go"
        " to u-claire (tasks.fallback_owner):"
    ) in lines


def test_jobs_failed_lists_the_reason_and_retry_requeues(
    rt: Runtime, redis: Redis, redis_url: str, tenant_id: str, crm: FolderClient,
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    crm.add_fault("pull", error="invalid_request")
    queues.request_refresh(redis, tenant_id, ["d-1003"], window=0)
    run_jobs(redis)
    ((queue_name, job),) = failed_jobs(redis)
    assert queue_name == "refresh"
    assert reason(job) == (
        f"jobs.refresh.RefreshFailed: tenant {tenant_id}: injected invalid_request on pull"
    )
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["jobs", "failed"]) == 0
    out = capsys.readouterr().out
    assert job.id in out and "injected invalid_request on pull" in out
    assert main(["jobs", "retry", "no-such-job"]) == 1
    assert main(["jobs", "retry"]) == 0
    assert failed_jobs(redis) == []
    assert queues.queue(redis, queues.REFRESH).count == 1


def test_tenants_status_command(tmp_path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'dr.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    capsys.readouterr()
    assert (
        main(["tenants", "add", "--crm", "test", "--account-id", "acme", "--database-url", url])
        == 0
    )
    tenant_id = capsys.readouterr().out.split()[1]
    assert main(["tenants", "status", "--database-url", url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"tenant {tenant_id} (test): active",
        "  last sweep: none yet",
        "  inbox: 0 pending, 0 failed",
        "  outbox: nothing waiting",
    ]
    assert main(["tenants", "status", "nope", "--database-url", url]) == 2
    assert "nope" in capsys.readouterr().err


def test_status_says_a_tenant_added_but_never_installed_is_not_connected(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """`tenants add --crm hubspot` makes an active tenant that nothing can read for until it is
    installed: the status said only "active". Once its tokens are stored, the line goes."""
    url = f"sqlite:///{tmp_path / 'dr.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    capsys.readouterr()
    assert main(["tenants", "add", "--crm", "hubspot", "--account-id", "62515",
                 "--database-url", url]) == 0  # fmt: skip
    tenant_id = capsys.readouterr().out.split()[1]
    assert main(["tenants", "status", "--database-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "  not connected: no hubspot tokens yet, nothing is read or written; install Deal Radar "
        "from PUBLIC_URL/install/hubspot"
    )
    store = Store(url)
    box = TokenBox([Fernet.generate_key().decode()])
    save_tokens(store, box, tenant_id, {"access_token": "a", "refresh_token": "r"}, None,
                utc_now())  # fmt: skip
    assert not any("not connected" in line for line in describe(tenant_status(
        store, tenant_id, utc_now()
    )))  # fmt: skip


def test_a_worker_told_to_stop_is_not_held_by_its_command_channel(redis: Redis) -> None:
    """The worker's command-channel thread reads with a short wait: stopping it while it waits
    (as RQ does at every shutdown, sometimes just after a read) returns within seconds, not
    the minute RQ's own wait took, which Ctrl-C on `make run` sometimes met."""
    worker = DealRadarWorker([queues.queue(redis, queues.EVENTS)], connection=redis)
    worker.subscribe()
    try:
        time.sleep(0.3)  # the thread is in a read, with nothing to read
        began = time.monotonic()
        worker.pubsub_thread.stop()
        assert time.monotonic() - began < 3 * COMMAND_WAIT + 1
    finally:
        worker.pubsub.close()
