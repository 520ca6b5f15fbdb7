"""Salesforce end to end over real HTTPS: an admin installs Deal Radar into an emulated org
(PKCE, the org's certificate verified), setup creates the Deal Radar fields and the initial
sync writes every open opportunity's; then a rep moves an opportunity that was stuck to a new
stage: the org posts its Outbound Message to our app, which acknowledges it once stored, and
within seconds `stuck_in_stage` leaves the opportunity's Deal Radar fields. Our write itself
makes the org post another Outbound Message (the echo): it is acknowledged and causes no
second write."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from sqlalchemy import select

from adapters.salesforce.adapter import INDEX_LAG_SECONDS
from adapters.salesforce.fields import BY_FIELD
from connector import queues
from connector.store import migrate
from connector.store.db import Store
from connector.store.models import InboxEvent
from sandbox.salesforce import SalesforceState, ServerHandle, serve
from sandbox.salesforce_seed import load_into_salesforce
from sandbox.seed import generate
from tests.e2e.conftest import Product, app_and_worker, base_env

DEALS = 30
SEED = 5
CLIENT_ID = "e2e-consumer-key"
CLIENT_SECRET = "e2e-consumer-secret-not-a-real-one"
ALERTS = BY_FIELD["alerts"].api_name
EVALUATED = BY_FIELD["evaluated_at"].api_name
SYNC_SECONDS = 120
CHANGE_SECONDS = 15
"""The issue says "within seconds": the coalescing window is 0.5 s here, 2 s by default."""
UPDATES = "PATCH composite/sobjects"


@dataclass
class Org:
    """What the test drives: the emulated org, our app's URL, and the worker's log."""

    state: SalesforceState
    emulator: ServerHandle
    app_url: str
    worker_log: Path
    behind: list[timedelta] = field(default_factory=lambda: [timedelta(0)])
    """How far the org's clock is behind ours (its SystemModstamps with it)."""

    wait = Product.wait

    def opportunity(self, opp_id: str) -> dict:
        with self.state.lock:
            return dict(self.state.records["Opportunity"][opp_id])

    def alerts(self, opp_id: str) -> set[str]:
        return set(filter(None, (self.opportunity(opp_id).get(ALERTS) or "").split(";")))

    def updates(self) -> int:
        return self.state.counts().get(UPDATES, 0)

    def browser(self) -> requests.Session:
        """The admin's browser: trusts the org's certificate (and nothing from the env)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.emulator.cert_path
        return session


@pytest.fixture
def org(database_url: str, redis: redis_lib.Redis, redis_url: str, tmp_path: Path) -> Iterator[Org]:
    with _org(database_url, redis_url, tmp_path, outbound=True) as served:
        yield served


@pytest.fixture
def quiet_org(
    database_url: str, redis: redis_lib.Redis, redis_url: str, tmp_path: Path
) -> Iterator[Org]:
    """An org whose admin set up neither an Outbound Message nor a Flow: it is polled. Its
    clock can be set back (`Org.behind`), so that what the install wrote is older than the
    polls' index lag by the time the test logs its call."""
    with _org(database_url, redis_url, tmp_path, outbound=False) as served:
        yield served


@contextmanager
def _org(database_url: str, redis_url: str, tmp_path: Path, *, outbound: bool) -> Iterator[Org]:
    behind = [timedelta(0)]
    state = SalesforceState(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        clock=lambda: datetime.now(UTC) - behind[0],
    )  # fmt: skip
    load_into_salesforce(state, generate(DEALS, SEED, datetime.now(UTC)))
    emulator = serve(state)
    migrate.upgrade(database_url)
    crm = {
        "SALESFORCE_CLIENT_ID": CLIENT_ID,
        "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
        "SALESFORCE_LOGIN_URL": emulator.url,
        "SALESFORCE_CA_BUNDLE": emulator.cert_path,
    }
    worker_log = tmp_path / "worker.log"
    try:
        with app_and_worker(
            base_env(database_url, redis_url), worker_log, lambda app_url: crm
        ) as (app_url, _worker):
            if outbound:
                # The admin's Outbound Message: on Opportunity, to our endpoint, default fields.
                emulator.outbound.configure(f"{app_url}/webhooks/salesforce/outbound")
            yield Org(state, emulator, app_url, worker_log, behind)
    finally:
        emulator.stop()


def _install(org: Org) -> dict:
    answer = org.browser().get(
        f"{org.app_url}/install/salesforce", headers={"Accept": "application/json"},
        allow_redirects=True, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def _open_opportunities(org: Org) -> list[str]:
    with org.state.lock:
        return [r["Id"] for r in org.state.live("Opportunity") if not r["IsClosed"]]


def test_install_sync_then_a_stage_change_clears_stuck_in_stage(org: Org) -> None:
    browser = org.browser()
    answer = browser.get(
        f"{org.app_url}/install/salesforce", headers={"Accept": "application/json"},
        allow_redirects=True, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    installed = answer.json()
    assert installed["status"] == "installed"
    assert installed["org_id"][:15] == org.state.org_id[:15]
    auth = {"Authorization": f"Bearer {installed['api_key']}"}

    def listed() -> list[dict]:
        got = requests.get(
            f"{org.app_url}/api/v1/deals", params={"limit": 200}, headers=auth, timeout=10
        )
        got.raise_for_status()
        return got.json()["items"]

    open_ids = _open_opportunities(org)
    assert open_ids
    org.wait(
        "the initial sync evaluates every opportunity",
        lambda: sum(1 for d in listed() if d["evaluated_at"]) == DEALS,
        SYNC_SECONDS,
    )
    org.wait(
        "every open opportunity's Deal Radar fields are written back",
        lambda: all(org.opportunity(o).get(EVALUATED) for o in open_ids),
        SYNC_SECONDS,
    )
    by_api = {d["id"]: set(d["alerts"]) for d in listed()}
    for opp_id in open_ids:
        assert org.alerts(opp_id) == by_api[opp_id], "Salesforce shows what the API says"

    target = next(o for o in open_ids if "stuck_in_stage" in org.alerts(o))
    assert org.emulator.outbound.flush(30), "the sync's own echoes were delivered"
    time.sleep(2)  # and whatever refresh they caused has run
    updates_before = org.updates()
    assert updates_before > 0, "the initial sync wrote through sObject Collections"
    sent_before = len(org.emulator.outbound.sent)

    stage = org.opportunity(target)["StageName"]
    new_stage = next(s for s, info in org.state.stages.items() if not info.closed and s != stage)
    moved = requests.patch(
        f"{org.emulator.url}/_sandbox/ui/Opportunity/{target}", json={"StageName": new_stage},
        verify=org.emulator.cert_path, timeout=10,
    )  # fmt: skip
    assert moved.status_code == 204
    seconds = org.wait(
        "stuck_in_stage leaves the opportunity's Deal Radar fields in Salesforce",
        lambda: "stuck_in_stage" not in org.alerts(target),
        CHANGE_SECONDS,
    )
    assert seconds < CHANGE_SECONDS
    delivered = org.emulator.outbound.sent[sent_before:]
    assert delivered and delivered[0]["acked"] and delivered[0]["status"] == 200, (
        "the rep's change reached us as an Outbound Message, stored, then acknowledged"
    )
    assert "stuck_in_stage" not in {a for d in listed() if d["id"] == target for a in d["alerts"]}
    assert org.updates() == updates_before + 1, "one Collections update, for the one opportunity"

    # The echo: our write is an edit of the opportunity, which the org's rule sends too.
    org.wait(
        "the echo of our write is delivered and acknowledged",
        lambda: (
            len(org.emulator.outbound.sent) > sent_before + 1
            and org.emulator.outbound.pending() == 0
        ),
        CHANGE_SECONDS,
    )
    assert all(d["acked"] for d in org.emulator.outbound.sent[sent_before:])
    time.sleep(3)  # the refresh the echo asks for has had its chance
    assert org.updates() == updates_before + 1, "the echo caused no second write"


def test_a_reps_deal_after_they_left_gets_its_task_for_the_fallback_owner(org: Org) -> None:
    """A rep leaves (an admin deactivates their user; their opportunities stay theirs), then an
    alert starts on one of their opportunities: the task goes to the manager named in
    `tasks.fallback_owner`, where Salesforce would refuse it for the rep."""
    answer = org.browser().get(
        f"{org.app_url}/install/salesforce", headers={"Accept": "application/json"},
        allow_redirects=True, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    auth = {"Authorization": f"Bearer {answer.json()['api_key']}"}
    open_ids = _open_opportunities(org)
    org.wait(
        "the initial sync writes every open opportunity's fields",
        lambda: all(org.opportunity(o).get(EVALUATED) for o in open_ids),
        SYNC_SECONDS,
    )
    target = next(
        o for o in open_ids
        if org.opportunity(o).get("Amount") and "amount_missing" not in org.alerts(o)
    )  # fmt: skip
    rep = org.opportunity(target)["OwnerId"]
    with org.state.lock:
        manager = next(
            u["Id"] for u in org.state.live("User")
            if u["IsActive"] and u["Id"] not in (rep, org.state.api_user_id)
        )  # fmt: skip
        org.state.records["User"][rep]["IsActive"] = False
    saved = requests.patch(
        f"{org.app_url}/api/v1/settings", json={"tasks": {"fallback_owner": manager}},
        headers=auth, timeout=10,
    )  # fmt: skip
    assert saved.status_code == 200, saved.text

    cleared = requests.patch(
        f"{org.emulator.url}/_sandbox/ui/Opportunity/{target}", json={"Amount": None},
        verify=org.emulator.cert_path, timeout=10,
    )  # fmt: skip
    assert cleared.status_code == 204

    def tasks_on_target() -> list[dict]:
        with org.state.lock:
            return [dict(t) for t in org.state.live("Task") if t.get("WhatId") == target]

    org.wait(
        "the amount_missing task is made on the opportunity",
        lambda: any("amount" in (t.get("Subject") or "").lower() for t in tasks_on_target()),
        CHANGE_SECONDS,
    )
    [task] = [t for t in tasks_on_target() if "amount" in (t.get("Subject") or "").lower()]
    assert task["OwnerId"] == manager, "the manager, not the rep who left"
    assert org.opportunity(target)["OwnerId"] == rep, "the opportunity itself is left alone"


def test_without_pushes_a_call_logged_on_a_silent_opportunity_ends_no_activity_at_the_next_poll(
    quiet_org: Org, redis: redis_lib.Redis, database_url: str
) -> None:
    """An org that pushes nothing: a rep logs a call on an opportunity that had gone silent.
    Logging it does not stamp the opportunity (Salesforce does not document that it does), so
    only the poll's reading of Tasks finds it: the next poll requests the opportunity's
    refresh and `no_activity` leaves its Deal Radar fields, with no daily sweep."""
    org = quiet_org
    org.behind[0] = timedelta(seconds=2 * INDEX_LAG_SECONDS)
    tenant_id = _install(org)["tenant_id"]
    open_ids = _open_opportunities(org)
    org.wait(
        "the initial sync writes every open opportunity's fields",
        lambda: all(org.opportunity(o).get(EVALUATED) for o in open_ids),
        SYNC_SECONDS,
    )
    silent = next(o for o in open_ids if "no_activity" in org.alerts(o))
    store = Store(database_url)
    try:

        def poll() -> None:
            """What `dealradar cron` enqueues every `schedule.poll_minutes`, and its refreshes."""
            job = queues.queue(redis, queues.EVENTS).enqueue("jobs.schedule.poll", tenant_id)
            org.wait("the poll runs", lambda: job.get_status(refresh=True) == "finished", 30)
            org.wait("the deals the poll found are refreshed", settled, CHANGE_SECONDS)

        def settled() -> bool:
            with store.tenant(tenant_id) as s:
                return not s.scalars(
                    select(InboxEvent.id).where(InboxEvent.status == "pending")
                ).first()

        poll()  # the install's own writes, stamped a lag ago on the org's clock
        org.behind[0] = timedelta(0)
        updates = org.updates()
        called = requests.post(
            f"{org.emulator.url}/_sandbox/ui/Task",
            json={"WhatId": silent, "Subject": "Call", "Status": "Completed", "Priority": "Normal",
                  "TaskSubtype": "Call", "ActivityDate": datetime.now(UTC).date().isoformat()},
            verify=org.emulator.cert_path, timeout=10,
        )  # fmt: skip
        assert called.status_code == 200, called.text
        poll()
        org.wait(
            "no_activity leaves the opportunity's Deal Radar fields in Salesforce",
            lambda: "no_activity" not in org.alerts(silent),
            CHANGE_SECONDS,
        )
        assert org.updates() == updates + 1, "one write: the opportunity called"
    finally:
        store.dispose()
