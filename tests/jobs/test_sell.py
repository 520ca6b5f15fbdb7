"""The jobs on a Zendesk Sell tenant: a tenant with its token encrypted in the store, the Sell
emulator over HTTP on the jobs' clock, RQ workers running setup, polls, refreshes and write-back.

Covered here: the setup's check and initial sync, the poll chain the scheduler keeps, a call
clearing `no_activity` at the next poll, a position expired (410: every deal again, none
missed), the role field missing, a Deal Radar field missing, 429 backed off by the jobs' policy,
a deleted deal, a setup cut short resuming from its last page, the status an admin reads, and
a tenant added with a personal access token through `dealradar tenants add`, and its token,
once Sell refuses it, replaced the same way."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import select

from adapters.errors import AuthExpired, PermissionDenied
from adapters.sell import oauth
from adapters.sell.fields import FIELDS
from connector import queues
from connector.store import tenants
from connector.store.credentials import load_tokens, save_tokens
from connector.store.mirror import notices
from connector.store.models import Credential, DealRow, OutboxEffect, SetupRun, SyncCursor
from connector.store.status import describe, tenant_status
from engine.settings import ALERT_CODES
from jobs import policy, refresh, schedule, sweep
from jobs.runtime import Runtime
from sandbox.seed import generate
from sandbox.sell import SellState, ServerHandle, serve
from sandbox.sell_seed import load_into_sell
from tests.adapters.sell.conftest import provision_fields
from tests.jobs.conftest import run_jobs

ALERTS = "Deal Radar alerts"


@dataclass
class Account:
    state: SellState
    server: ServerHandle
    tenant_id: str
    rt: Runtime

    def fields(self, deal_id: int | str) -> dict:
        return self.state.get("deals", int(deal_id))["custom_fields"]

    def alerts(self, deal_id: int | str) -> set[str]:
        return {c["name"] for c in self.fields(deal_id).get(ALERTS) or ()}

    def open_deals(self) -> list[dict]:
        won_lost = {s["id"] for s in self.state.records("stages")
                    if s["category"] in ("won", "lost")}  # fmt: skip
        return [d for d in self.state.records("deals") if d["stage_id"] not in won_lost]

    def status(self) -> list[str]:
        return describe(tenant_status(self.rt.store, self.tenant_id, self.rt.clock()))

    def setup(self) -> None:
        queues.request_setup(self.rt.redis, self.tenant_id)
        run_jobs(self.rt.redis)

    def poll(self) -> None:
        schedule.poll(self.tenant_id)
        run_jobs(self.rt.redis)

    def cursor(self, name: str = "deals") -> SyncCursor | None:
        with self.rt.store.tenant(self.tenant_id) as s:
            return s.get(SyncCursor, (self.tenant_id, name))


@pytest.fixture
def make_account(rt: Runtime, clock) -> Iterator[Callable[..., Account]]:
    with ExitStack() as stack:
        yield lambda **kw: stack.enter_context(_account(rt, clock, **kw))


@contextmanager
def _account(rt: Runtime, clock, *, deals: int = 10, skip_fields: tuple[str, ...] = (),
             role_field: bool = True) -> Iterator[Account]:  # fmt: skip
    state = SellState(clock=clock, hourly_limit=None)
    load_into_sell(state, generate(deals, 11, clock()))
    provision_fields(state, skip=skip_fields)
    if not role_field:
        state.delete_custom_field("contact", "Buying role")
    tenant, _ = tenants.create_tenant(
        rt.store, crm="sell", account_id=str(state.account["id"]), now=clock()
    )
    token = state.personal_access_token().access_token
    save_tokens(rt.store, rt.box, tenant.id, {"access_token": token, "personal": True},  # type: ignore[arg-type]
                None, clock())  # fmt: skip
    with serve(state) as server:
        rt.crm = {"SELL_API_URL": server.url}
        yield Account(state, server, tenant.id, rt)


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()


def _scheduled_poll_in(redis: Redis, tenant_id: str) -> float:
    """Seconds until the tenant's next poll is due (its chain mark's life less the grace)."""
    return redis.pttl(queues.scheduled_key(tenant_id, "poll")) / 1000 - schedule.POLL_GRACE


def test_setup_checks_the_fields_syncs_every_deal_and_chains_the_polls(
    account: Account, redis: Redis
) -> None:
    started = time.monotonic()
    account.setup()
    # The chain mark ages in real time from when the setup scheduled the poll: up to the
    # setup's own duration has passed by now.
    poll_in, elapsed = _scheduled_poll_in(redis, account.tenant_id), time.monotonic() - started
    with account.rt.store.tenant(account.tenant_id) as s:
        run = s.get(SetupRun, account.tenant_id)
        stored = {d.crm_id for d in s.scalars(select(DealRow))}
    assert run is not None and run.status == "done"
    assert "custom fields: 8 of 8 usable" in (run.detail or "")
    assert stored == {str(d["id"]) for d in account.state.records("deals")}
    for deal in account.open_deals():
        assert account.fields(deal["id"]).get("Deal Radar evaluated at"), deal["id"]
    assert 15 - elapsed - 0.5 <= poll_in <= 15, "the next poll 15 s after the setup's own"
    lines = account.status()
    assert any(line.startswith("  feed position: 0 s old") for line in lines), lines
    assert any(line.startswith("  last poll: 0 s ago (ok;") for line in lines), lines
    assert not any("WARNING" in line for line in lines)
    assert notices(account.rt.store, account.tenant_id) == {}


def test_a_call_logged_clears_no_activity_at_the_next_poll(account: Account, clock) -> None:
    account.setup()
    target = next(d for d in account.open_deals() if "no_activity" in account.alerts(d["id"]))
    clock.now += timedelta(minutes=3)
    account.state.create("calls", {
        "associated_deal_ids": [target["id"]], "made_at": clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "incoming": False, "summary": "Caught up on pricing", "duration": 600,
    })  # fmt: skip
    account.state.reset_counts()
    account.poll()
    assert "no_activity" not in account.alerts(target["id"])
    assert account.fields(target["id"])["Deal Radar days since interaction"] == "0"
    puts = account.state.counts().get("PUT /v2/deals/{record_id}", 0)
    assert puts == 1, "one write, for the one deal that changed"
    account.state.reset_counts()
    account.poll()
    assert account.state.counts().get("PUT /v2/deals/{record_id}", 0) == 0, (
        "the echo of our own write caused no second write"
    )


def test_an_expired_position_lists_everything_again_and_misses_no_deal(
    account: Account, clock
) -> None:
    account.setup()
    deals = sorted(account.open_deals(), key=lambda d: d["id"])
    clock.now += timedelta(hours=49)
    assert any("WARNING: the feed position is 49 h old" in line for line in account.status())
    # Nobody polled for days; meanwhile a deal lost its amount and another was deleted.
    account.state.update("deals", deals[0]["id"], {"value": 0})
    account.state.delete("deals", deals[1]["id"])
    clock.now += timedelta(hours=25)
    account.poll()
    assert "amount_missing" in account.alerts(deals[0]["id"])
    with account.rt.store.tenant(account.tenant_id) as s:
        assert s.get(DealRow, (account.tenant_id, str(deals[1]["id"]))) is None
    lines = account.status()
    assert any(line.startswith("  feed position: 0 s old") for line in lines), lines
    assert not any("WARNING" in line for line in lines)


def test_a_missing_role_field_is_explained_and_the_other_alerts_still_work(
    rt: Runtime, make_account
) -> None:
    account = make_account(role_field=False)
    account.setup()
    message = notices(rt.store, account.tenant_id)["sell.role_field"]
    assert 'no contact custom field "Buying role"' in message
    assert any("notice sell.role_field:" in line for line in account.status())
    alerts = set().union(*(account.alerts(d["id"]) for d in account.open_deals()))
    assert "key_role_silent" not in alerts and {"no_activity", "no_meeting_scheduled"} & alerts


def test_a_missing_deal_radar_field_is_named_and_the_others_are_written(
    rt: Runtime, make_account
) -> None:
    account = make_account(skip_fields=("Deal Radar summary",))
    account.setup()
    message = notices(rt.store, account.tenant_id)["sell.deal_fields"]
    assert '"Deal Radar summary" (Text area)' in message
    deal = account.open_deals()[0]
    assert "Deal Radar summary" not in account.fields(deal["id"])
    assert account.fields(deal["id"]).get("Deal Radar health score")
    # The admin creates it; the feed shows the new definition, the notice goes, writes follow.
    spec = next(f for f in FIELDS if f.name == "Deal Radar summary")
    account.state.define_custom_field("deal", spec.name, spec.type)
    account.poll()
    assert "sell.deal_fields" not in notices(rt.store, account.tenant_id)


def test_values_a_missing_field_could_not_take_are_written_once_the_admin_creates_it(
    rt: Runtime, make_account, clock
) -> None:
    """A grade rarely changes from one day to the next: had the values Sell could not take been
    recorded as written, the new field would stay empty for as long as each deal's grade holds."""
    account = make_account(skip_fields=("Deal Radar health grade",))
    account.setup()
    deals = account.open_deals()
    assert all("Deal Radar health grade" not in account.fields(d["id"]) for d in deals)
    spec = next(f for f in FIELDS if f.name == "Deal Radar health grade")
    account.state.define_custom_field("deal", spec.name, spec.type, spec.choices)
    account.poll()
    clock.now += timedelta(days=1)
    assert sweep.start(account.tenant_id, clock().date().isoformat())
    run_jobs(rt.redis)
    grades = {d["id"]: account.fields(d["id"]).get("Deal Radar health grade") for d in deals}
    assert all(grade and grade["name"] in spec.choices for grade in grades.values()), grades


def test_429_backs_off_by_the_jobs_policy(account: Account, redis: Redis, clock) -> None:
    account.setup()
    token = load_tokens(account.rt.store, account.rt.box, account.tenant_id)  # type: ignore[arg-type]
    assert token is not None
    with account.state.lock:
        account.state.allowance.limit = 0  # the hour's allowance is spent
    schedule.poll(account.tenant_id)
    poll = account.cursor("poll")
    assert poll is not None and poll.value.startswith("stopped: Sell GET /v3/deals/stream: 429")
    waiting = _scheduled_poll_in(redis, account.tenant_id)
    assert waiting >= 3600 - 5, "the next poll waits for Sell's Retry-After, not 15 s"
    # A refresh refused the same way backs off as well, its deals kept pending.
    deal_id = str(account.open_deals()[0]["id"])
    queues.request_refresh(redis, account.tenant_id, [deal_id], window=0)
    run_jobs(redis)
    assert redis.pttl(queues.backoff_key(account.tenant_id)) >= (3600 - 5) * 1000
    assert redis.sismember(queues.pending_key(account.tenant_id), deal_id)
    assert any("stopped: Sell" in line for line in account.status())


def test_a_request_sell_refuses_is_not_sent_again_in_a_loop(
    account: Account, redis: Redis
) -> None:
    account.setup()
    with account.rt.store.tenant(account.tenant_id) as s:
        row = s.get(SyncCursor, (account.tenant_id, schedule.DEALS_CURSOR))
        assert row is not None
        feed = json.loads(row.value)
        feed["streams"]["deals"]["pos"] = "not-a-position"  # Sell answers 400 invalid_param
        row.value = json.dumps(feed)
    account.state.reset_counts()
    schedule.poll(account.tenant_id)
    poll = account.cursor("poll")
    assert poll is not None and poll.value.startswith("stopped: Sell GET /v3/deals/stream: 400")
    assert account.state.counts() == {"GET /v3/deals/stream": 1}, "sent once, not looped"
    assert _scheduled_poll_in(redis, account.tenant_id) >= 15 - 1, "the next poll 15 s later"
    for _ in range(9):  # it keeps failing: the polls space out, the chain goes on
        schedule.poll(account.tenant_id)
    assert _scheduled_poll_in(redis, account.tenant_id) >= 60


def test_a_deleted_deal_is_forgotten_and_its_alerts_end(account: Account, clock) -> None:
    account.setup()
    deal = next(d for d in account.open_deals() if account.alerts(d["id"]))
    clock.now += timedelta(minutes=1)
    account.state.delete("deals", deal["id"])
    account.poll()
    with account.rt.store.tenant(account.tenant_id) as s:
        assert s.get(DealRow, (account.tenant_id, str(deal["id"]))) is None
        ended = [e for row in s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "event"))
                 for e in row.payload["events"]
                 if e["type"] == "alert.ended" and e["deal_id"] == str(deal["id"])]  # fmt: skip
    assert ended and all(e["reason"] == "deal deleted" for e in ended)


def test_a_setup_cut_short_resumes_from_its_last_page(
    rt: Runtime, make_account, redis: Redis
) -> None:
    account = make_account(deals=70)
    # Counted here are the setup's listings: the CRM tasks the alerts would make read a deal's
    # tasks (GET /v2/tasks?resource_id=...) to stay once per episode, so they are switched off.
    no_tasks = {"tasks": {"alerts": {code: {"enabled": False} for code in ALERT_CODES}}}
    tenants.save_settings(rt.store, account.tenant_id, no_tasks, "admin", rt.clock())
    with account.state.lock:
        account.state.allowance.limit = 12  # the hour runs out inside the first listings
    account.setup()
    with rt.store.tenant(account.tenant_id) as s:
        run = s.get(SetupRun, account.tenant_id)
    assert run is not None and run.status == "syncing" and "waiting to retry" in (run.detail or "")
    stopped = account.cursor()
    assert stopped is not None and '"listings"' in stopped.value
    with account.state.lock:
        account.state.allowance.limit = None
    # The hour passes: the setup's retry and the refreshes' backoff are due now.
    for what in ("setup", "drain"):
        redis.delete(queues.scheduled_key(account.tenant_id, what))
    redis.delete(queues.backoff_key(account.tenant_id))
    account.setup()
    after = account.state.counts()
    # Activities are listed by the setup only (pulls read them from the mirror): each page was
    # asked for once (and each page boundary checked once), but for the one request the
    # allowance refused, asked again, with the page read before it when it was that page's
    # boundary check (the page is checkpointed once checked).
    extra = 0
    for resource in ("calls", "visits", "tasks", "notes"):
        pages = max(1, -(-len(account.state.records(resource)) // 100))
        asked = 2 * pages - 1
        assert after[f"GET /v2/{resource}"] >= asked, resource
        extra += after[f"GET /v2/{resource}"] - asked
    assert extra <= 2, "no page listed before the cut was listed again"
    with rt.store.tenant(account.tenant_id) as s:
        assert s.get(SetupRun, account.tenant_id).status == "done"  # type: ignore[union-attr]
        stored = {d.crm_id for d in s.scalars(select(DealRow))}
    assert stored == {str(d["id"]) for d in account.state.records("deals")}


def test_the_tick_sets_up_a_token_tenant_then_keeps_its_poll_chain(
    account: Account, redis: Redis
) -> None:
    assert schedule.tick()["polls"] == 1, "no setup yet: the tick requests it"
    run_jobs(redis)
    with account.rt.store.tenant(account.tenant_id) as s:
        assert s.get(SetupRun, account.tenant_id) is not None
    assert schedule.tick()["polls"] == 0, "the chain's next poll is scheduled: nothing added"
    tenants.save_settings(account.rt.store, account.tenant_id, {"sell": {"poll_seconds": 5}},
                          "admin", account.rt.clock())  # fmt: skip
    redis.delete(queues.scheduled_key(account.tenant_id, "poll"))  # Redis lost the chain
    assert schedule.tick()["polls"] == 1, "the tick starts it again"
    started = time.monotonic()
    run_jobs(redis)
    poll_in, elapsed = _scheduled_poll_in(redis, account.tenant_id), time.monotonic() - started
    assert 5 - elapsed - 0.5 <= poll_in <= 5, "the tenant's own interval"


def test_tenants_add_with_a_personal_token(
    rt: Runtime, clock, redis: Redis, redis_url: str, monkeypatch, capsys, tmp_path
) -> None:
    from connector.cli import main
    from connector.store import migrate

    state = SellState(clock=clock, hourly_limit=None)
    token = state.personal_access_token().access_token
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)
    with serve(state) as server:
        monkeypatch.setenv("SELL_API_URL", server.url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("DEALRADAR_SECRET_KEYS", _fernet_key())
        monkeypatch.setattr("sys.stdin", io.StringIO("not-a-token\n"))
        add = ["tenants", "add", "--crm", "sell", "--token-stdin", "--database-url", url]
        assert main(add) == 2
        assert "64 letters and digits" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
        assert main(add) == 0
    out = capsys.readouterr().out
    assert f"for sell account {state.account['id']}" in out
    assert "setup is queued" in out and token not in out
    from connector.store.db import Store

    store = Store(url)
    try:
        (tenant,) = tenants.list_tenants(store)
        with store.tenant(tenant.id) as s:
            (row,) = s.scalars(select(Credential))
        assert token not in row.ciphertext, "encrypted at rest"
    finally:
        store.dispose()
    assert redis.exists(queues.scheduled_key(tenant.id, "setup"))


def test_a_refused_personal_token_is_replaced_as_the_suspension_says(
    clock, redis: Redis, redis_url: str, monkeypatch, capsys, tmp_path
) -> None:
    from connector.cli import main
    from connector.store import migrate
    from connector.store.db import Store
    from connector.store.secrets import TokenBox

    state = SellState(clock=clock, hourly_limit=None)
    old = state.personal_access_token().access_token
    url, secret = f"sqlite:///{tmp_path / 'cli.db'}", _fernet_key()
    migrate.upgrade(url)
    add = ["tenants", "add", "--crm", "sell", "--token-stdin", "--database-url", url]
    store = Store(url)
    with serve(state) as server:
        monkeypatch.setenv("SELL_API_URL", server.url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("DEALRADAR_SECRET_KEYS", secret)
        monkeypatch.setattr("sys.stdin", io.StringIO(old + "\n"))
        assert main(add) == 0
        capsys.readouterr()
        (tenant,) = tenants.list_tenants(store)
        # Sell refuses the token: what the workers count, and the reason they suspend with.
        for _ in range(policy.AUTH_RETRIES):
            policy.decide_attempt(redis, refresh._attempts_key(tenant.id), AuthExpired("401"))
        with pytest.raises(PermissionDenied) as refused:
            oauth.refresh_grant({"access_token": old, "personal": True}, client_id="",
                                client_secret="", now=clock)  # fmt: skip
        tenants.set_status(store, tenant.id, "suspended", str(refused.value), clock())
        assert "dealradar tenants add --crm sell --token-stdin" in str(refused.value)
        redis.delete(queues.scheduled_key(tenant.id, "setup"))  # the first setup ran
        new = state.personal_access_token().access_token
        monkeypatch.setattr("sys.stdin", io.StringIO(new + "\n"))
        code = main(add)  # as the reason says
    out, err = capsys.readouterr()
    try:
        assert (code, err) == (0, "")
        assert (
            f"tenant {tenant.id} of sell account {state.account['id']}: personal access "
            "token replaced; it was suspended, it is active again" in out
        )
        assert "drk_" not in out and new not in out, "no new key, the token never shown"
        after = tenants.get_tenant(store, tenant.id)
        assert (after.status, after.status_reason) == ("active", None)
        stored = load_tokens(store, TokenBox([secret]), tenant.id)
        assert stored is not None and stored.data == {"access_token": new, "personal": True}
        assert len(tenants.list_api_keys(store, tenant.id)) == 1, "its API keys are kept"
        decision = policy.decide_attempt(
            redis, refresh._attempts_key(tenant.id), AuthExpired("401")
        )
        assert decision.action == "retry", "the new token's first refusal is not a suspension"
        assert redis.exists(queues.scheduled_key(tenant.id, "setup"))
    finally:
        store.dispose()


def test_a_personal_token_never_replaces_an_oauth_install(
    redis_url: str, monkeypatch, capsys, tmp_path, clock
) -> None:
    from connector.cli import main
    from connector.store import migrate
    from connector.store.db import Store
    from connector.store.secrets import TokenBox

    state = SellState(clock=clock, hourly_limit=None)
    url, secret = f"sqlite:///{tmp_path / 'cli.db'}", _fernet_key()
    migrate.upgrade(url)
    store = Store(url)
    try:
        tenant, _ = tenants.create_tenant(store, crm="sell", account_id=str(state.account["id"]),
                                          now=clock())  # fmt: skip
        oauth_tokens = {"access_token": "a", "refresh_token": "r"}
        save_tokens(store, TokenBox([secret]), tenant.id, oauth_tokens, None, clock())
        with serve(state) as server:
            monkeypatch.setenv("SELL_API_URL", server.url)
            monkeypatch.setenv("REDIS_URL", redis_url)
            monkeypatch.setenv("DEALRADAR_SECRET_KEYS", secret)
            token = state.personal_access_token().access_token
            monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
            code = main(["tenants", "add", "--crm", "sell", "--token-stdin", "--database-url", url])
        out, err = capsys.readouterr()
        assert (code, out) == (2, "")
        assert "installed with OAuth" in err and "/install/sell" in err
        stored = load_tokens(store, TokenBox([secret]), tenant.id)
        assert stored is not None and stored.data == oauth_tokens
    finally:
        store.dispose()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.mark.parametrize(
    ("given", "taken"),
    [("Europe/Berlin", "Europe/Berlin"), ("UTC-06:00", "Etc/GMT+6"), ("Mars/Olympus", None)],
)
def test_the_tenant_takes_the_account_time_zone_when_it_can_read_it(
    account: Account, given: str, taken: str | None
) -> None:
    account.state.account["timezone"] = given
    account.setup()
    tenant = tenants.get_tenant(account.rt.store, account.tenant_id)
    with account.rt.store.tenant(account.tenant_id) as s:
        run = s.get(SetupRun, account.tenant_id)
    assert run is not None and run.status == "done", "an unreadable zone never stops the setup"
    if taken:
        assert tenant.timezone == taken
        assert f"time zone {taken} (the account's)" in (run.detail or "")
    else:
        assert tenant.timezone == "UTC", "the tenant keeps its own zone"
        assert f"account time zone {given!r} unknown, not taken" in (run.detail or "")


def test_a_zone_an_admin_chose_is_kept(account: Account) -> None:
    tenants.save_settings(account.rt.store, account.tenant_id, {"timezone": "America/Chicago"},
                          "admin", account.rt.clock())  # fmt: skip
    account.state.account["timezone"] = "Europe/Berlin"
    account.setup()
    with account.rt.store.tenant(account.tenant_id) as s:
        run = s.get(SetupRun, account.tenant_id)
    assert "time zone America/Chicago kept (the account's is Europe/Berlin)" in (run.detail or "")
