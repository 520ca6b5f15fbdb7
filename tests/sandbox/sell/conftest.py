"""Fixtures for the Sell emulator tests: an account on a settable clock, the emulator served
over real HTTP, a token and a client (tests/sandbox/sell/support.py). They stand in for the
HubSpot fixtures of the same names in tests/sandbox/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.sell import SellState, ServerHandle, serve
from sandbox.sell_state import Token
from tests.sandbox.sell.support import CLIENT_ID, CLIENT_SECRET, Clock, Sell


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
