"""The HubSpot client against the emulator over real HTTP: tokens, the shared rate budget,
429 storms, outages and the translation of HubSpot's errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hubspot.crm.deals import ApiException, SimplePublicObjectInput
from redis import Redis

from adapters.errors import InvalidRequest, NotFound, PermissionDenied, RateLimited, Transient
from adapters.hubspot import client as client_module
from adapters.hubspot.client import HubSpotClient, RateBudget
from adapters.hubspot.oauth import refresh_grant
from jobs import policy
from sandbox.hubspot import HubSpotState, ServerHandle, serve

PORTAL = 62515


class Tokens:
    """A TokenSource that refreshes through the emulator's OAuth endpoint, counting renewals."""

    def __init__(self, state: HubSpotState, url: str) -> None:
        issued = state.issue_token()
        self.access, self.refresh = issued.access_token, issued.refresh_token
        self.state, self.url, self.renewals = state, url, 0

    def current(self) -> str:
        return self.access

    def renew(self, rejected: str) -> str:
        self.renewals += 1
        data, _ = refresh_grant(
            self.refresh, client_id=self.state.client_id, client_secret=self.state.client_secret,
            host=self.url, now=lambda: datetime.now(UTC),
        )  # fmt: skip
        self.access, self.refresh = data["access_token"], data["refresh_token"]
        return self.access


@pytest.fixture
def state() -> Iterator[HubSpotState]:
    """Unlike tests/sandbox's portal, on the system clock: the shared-budget test needs the
    emulator's rolling window to move in real time."""
    portal = HubSpotState(portal_id=PORTAL, rate_limit=None, search_rate_limit=None)
    yield portal
    portal.webhooks.stop()


@pytest.fixture
def server(state: HubSpotState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _client(state, server, redis: Redis, sleeps: list[float], **kw) -> tuple[HubSpotClient, Tokens]:  # type: ignore[no-untyped-def]
    tokens = Tokens(state, server.url)
    client = HubSpotClient(
        str(state.portal_id), tokens, redis, host=server.url, sleep=sleeps.append, **kw
    )
    return client, tokens


def _deal(state: HubSpotState, name: str = "Acme") -> str:
    return state.create_object("deals", {"dealname": name})


def _read(client: HubSpotClient, deal_id: str) -> str:
    return client.call(
        "deals.get", lambda sdk: sdk.crm.deals.basic_api.get_by_id(deal_id, properties=["dealname"])
    ).properties["dealname"]


def test_an_expired_token_is_renewed_once_and_the_call_repeated(
    state, server, redis, sleeps
) -> None:  # type: ignore[no-untyped-def]
    client, tokens = _client(state, server, redis, sleeps)
    deal = _deal(state)
    assert _read(client, deal) == "Acme"
    state.expire_access_tokens()
    assert _read(client, deal) == "Acme"
    assert tokens.renewals == 1
    assert _read(client, deal) == "Acme"
    assert tokens.renewals == 1


def test_a_revoked_grant_is_permission_denied_not_a_retry_loop(
    state, server, redis, sleeps
) -> None:  # type: ignore[no-untyped-def]
    client, tokens = _client(state, server, redis, sleeps)
    deal = _deal(state)
    state.revoke_refresh_token(tokens.refresh)
    state.expire_access_tokens()
    with pytest.raises(PermissionDenied, match="install Deal Radar again"):
        _read(client, deal)
    assert tokens.renewals == 1 and sleeps == []


def test_a_429_storm_is_waited_out_within_the_call(state, server, redis, sleeps) -> None:  # type: ignore[no-untyped-def]
    client, _ = _client(state, server, redis, sleeps, burst=None)
    deal = _deal(state)
    state.rate_limit = 1  # the emulator's window is now full after every single call
    _read(client, deal)
    with pytest.raises(RateLimited) as raised:
        _read(client, deal)
    assert raised.value.retry_after == pytest.approx(10.0)
    assert len(sleeps) == 3 and all(s >= 10.0 for s in sleeps), "waits for HubSpot's window"
    state.rate_limit = None
    assert _read(client, deal) == "Acme"


def test_a_429_of_the_daily_limit_goes_back_to_the_job_to_retry_hourly(redis, sleeps) -> None:  # type: ignore[no-untyped-def]
    """The day's allowance comes back at the portal's midnight: waiting out a 10 s window in
    the call, then every few minutes in the job, would only spend the error budget."""
    daily = ApiException(status=429, reason="Too Many Requests")
    daily.body = json.dumps({
        "status": "error", "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT", "policyName": "DAILY", "correlationId": "c-1",
    })  # fmt: skip
    tries: list[int] = []

    def refused(sdk: object) -> None:
        tries.append(1)
        raise daily

    client = HubSpotClient(str(PORTAL), StaticTokens(), redis, burst=None, sleep=sleeps.append)
    with pytest.raises(RateLimited) as raised:
        client.call("deals.batch_read", refused)
    assert raised.value.retry_after == client_module.DAILY_RETRY == 3600
    assert (len(tries), sleeps) == (1, []), "not retried within the call"
    assert policy.backoff(1, raised.value.retry_after) == 3600, "the job waits the hour"


class StaticTokens:
    def current(self) -> str:
        return "token"

    def renew(self, rejected: str) -> str:
        return "token"


def test_workers_sharing_the_budget_never_meet_a_429(state, server, redis) -> None:  # type: ignore[no-untyped-def]
    """Three workers, one portal: the Redis budget (10 a second) keeps them together under the
    limit the emulator enforces (12 in a rolling second here, not 110 in ten: a short test)."""
    state.rate_window = timedelta(seconds=1)
    deal = _deal(state)
    state.rate_limit = 12
    errors: list[Exception] = []

    def worker() -> None:
        client, _ = _client(state, server, redis, [], burst=(10, 1.0))
        client.budget.sleep = time.sleep
        try:
            for _ in range(10):
                _read(client, deal)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert time.monotonic() - started >= 2.0, "30 calls at 10 a second take two seconds at least"


def test_a_full_budget_waits_then_gives_up(redis) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    budget = RateBudget(
        redis, "test:budget", 2, 10.0, clock=lambda: now[0], sleep=sleep, max_wait=15
    )
    budget.take()
    now[0] += 4
    budget.take()
    budget.take()  # the window is full until the first call is 10 s old: 6 s from now
    assert waits == [pytest.approx(6.0)]
    impatient = RateBudget(
        redis, "test:budget", 2, 10.0, clock=lambda: now[0], sleep=sleep, max_wait=3
    )
    with pytest.raises(RateLimited) as raised:  # room again in 4 s: longer than it may wait
        impatient.take()
    assert raised.value.retry_after == pytest.approx(4.0)


def test_errors_are_translated(state, server, redis, sleeps) -> None:  # type: ignore[no-untyped-def]
    client, _ = _client(state, server, redis, sleeps)
    with pytest.raises(NotFound):
        _read(client, "999999")
    deal = _deal(state)
    with pytest.raises(InvalidRequest, match="400"):
        client.call(
            "deals.update",
            lambda sdk: sdk.crm.deals.basic_api.update(
                deal, SimplePublicObjectInput(properties={"no_such_property": "x"})
            ),
        )
    assert sleeps == [], "a refused request is not retried"


def test_an_outage_is_retried_then_raised_as_transient(state, redis, sleeps) -> None:  # type: ignore[no-untyped-def]
    with serve(state) as gone:
        url = gone.url
    client = HubSpotClient(str(PORTAL), Tokens(state, url), redis, host=url, sleep=sleeps.append)
    with pytest.raises(Transient):
        _read(client, "1")
    assert len(sleeps) == 3


def test_a_hubspot_that_stops_answering_is_a_timeout_retried_then_transient(
    state, redis, sleeps, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A connection HubSpot accepts but never answers must not hold the worker: every call,
    batch reads and writes included, has the client's timeout unless it gives its own."""
    monkeypatch.setattr(client_module, "TIMEOUT", (2.0, 0.5))
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.extend(silent.accept()[0] for _ in range(8)),
                     daemon=True).start()  # fmt: skip
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    client = HubSpotClient(str(PORTAL), Tokens(state, url), redis, host=url, sleep=sleeps.append)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            client.call("deals.batch_read", lambda sdk: sdk.crm.deals.batch_api.read(
                {"inputs": [{"id": "1"}], "properties": []}, _preload_content=False,
            ).data)  # fmt: skip
        except BaseException as exc:
            raised.append(exc)

    caller = threading.Thread(target=read, daemon=True)  # without a timeout it never returns
    caller.start()
    caller.join(15)
    silent.close()
    assert not caller.is_alive(), "the call hung on a connection that never answers"
    assert [type(e) for e in raised] == [Transient]
    assert len(sleeps) == 3, "each try timed out, then the call gave up"


def test_a_wrong_client_secret_is_our_configuration_not_a_revoked_grant(state, server) -> None:  # type: ignore[no-untyped-def]
    issued = state.issue_token()
    with pytest.raises(InvalidRequest, match="400"):
        refresh_grant(
            issued.refresh_token, client_id=state.client_id, client_secret="wrong",
            host=server.url, now=lambda: datetime.now(UTC),
        )  # fmt: skip
