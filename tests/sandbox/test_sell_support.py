"""Fixtures for the Sell emulator tests (imported by the other ``test_sell_*`` modules; no tests
of its own): a settable clock, an account, the emulator served over real HTTP and a small
``requests`` client that sends what Sell requires (User-Agent, Bearer token, JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox.sell import SellState, ServerHandle, serve
from sandbox.sell_state import Token

__all__ = ["clock", "pipeline", "sell", "server", "state", "token"]
"""The fixtures, for ``from tests.sandbox.test_sell_support import *`` in each test module."""

CLIENT_ID = "sell-test-client"
CLIENT_SECRET = "sell-test-client-secret"
USER_AGENT = "dealradar-tests/1.0"


class Clock:
    """The emulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.current = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class Sell:
    """A thin client over ``requests`` for one token; methods return the raw response."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: object) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, data: dict) -> requests.Response:
        return self.session.post(self.url + path, json={"data": data}, timeout=10)

    def put(self, path: str, data: dict) -> requests.Response:
        return self.session.put(self.url + path, json={"data": data}, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.url + path, timeout=10)


def error_code(response: requests.Response) -> str:
    """The first error's code of Sell's error envelope (checking the envelope on the way)."""
    body = response.json()
    assert body["meta"]["logref"]
    assert body["meta"]["http_status"].startswith(str(response.status_code))
    return body["errors"][0]["error"]["code"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SellState:
    # No hourly limit: tests make many calls at a standing clock; the limit tests set one.
    return SellState(
        clock=clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, hourly_limit=None
    )


@pytest.fixture
def server(state: SellState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


@pytest.fixture
def token(state: SellState) -> Token:
    return state.issue_token()


@pytest.fixture
def sell(server: ServerHandle, token: Token) -> Sell:
    return Sell(server.url, token.access_token)


@pytest.fixture
def pipeline(state: SellState) -> dict[str, int]:
    """A pipeline with three stages: ids by name."""
    sales = state.add_pipeline("Sales")
    stages = {"pipeline": sales}
    for position, (name, category, likelihood) in enumerate(
        [("Qualified", "incoming", 10), ("Proposal", "in_progress", 50), ("Won", "won", 100)], 1
    ):
        stages[name] = state.add_stage(
            sales, name, category=category, likelihood=likelihood, position=position
        )
    return stages
