"""The Sell client over real HTTP: what Sell requires on every request, envelopes, error
translation, a renewed token, 429 handed to the jobs' policy, 5xx retried."""

from __future__ import annotations

import pytest
import requests
import responses

from adapters.errors import AuthExpired, InvalidRequest, NotFound, RateLimited, Transient
from adapters.sell.client import USER_AGENT, PositionExpired, SellClient
from sandbox.sell import SellState
from tests.adapters.sell.conftest import StaticToken
from tests.sandbox.sell.support import Clock


class Rotating:
    """An OAuth token source: `renew` swaps the refused token for a fresh one."""

    def __init__(self, state: SellState) -> None:
        self.state = state
        self.token = state.issue_token().access_token
        self.renewals = 0

    def current(self) -> str:
        return self.token

    def renew(self, rejected: str) -> str:
        self.renewals += 1
        self.token = self.state.issue_token().access_token
        return self.token


def test_requests_carry_the_user_agent_and_come_back_unwrapped(sell_server) -> None:
    state, url = sell_server
    seen: list[str] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda r, *a, **k: seen.append(r.request.headers["User-Agent"])
    )
    client = SellClient(StaticToken(state.personal_access_token().access_token), host=url,
                        session=session)  # fmt: skip
    me = client.get("/v2/users/self")
    assert me["data"]["id"] == state.admin_id and seen == [USER_AGENT]
    created = client.call("POST", "/v2/contacts", data={"last_name": "Lee"})
    assert created["data"]["last_name"] == "Lee", "the write went in Sell's envelope"
    assert client.calls == {"GET /v2/users/self": 1, "POST /v2/contacts": 1}


def test_errors_speak_the_adapters_vocabulary(sell_server, clock: Clock) -> None:
    state, url = sell_server
    client = SellClient(StaticToken(state.personal_access_token().access_token), host=url)
    with pytest.raises(NotFound):
        client.get("/v2/deals/424242")
    with pytest.raises(InvalidRequest, match="last_name"):
        client.call("POST", "/v2/contacts", data={"first_name": "No last name"})
    with pytest.raises(InvalidRequest, match="invalid_param"):
        client.get("/v3/deals/stream", position="not-a-position")
    position = client.get("/v3/deals/stream", position="top")["meta"]["position"]
    clock.advance(hours=73)
    with pytest.raises(PositionExpired, match="410"):
        client.get("/v3/deals/stream", position=position)


def test_an_expired_token_is_renewed_once(sell_server, clock: Clock) -> None:
    state, url = sell_server
    tokens = Rotating(state)
    client = SellClient(tokens, host=url)
    with state.lock:
        state.oauth.expire(tokens.token, clock())
    assert client.get("/v2/users/self")["data"]["id"] == state.admin_id
    assert tokens.renewals == 1
    stuck = StaticToken("x" * 64)
    with pytest.raises(AuthExpired):
        SellClient(stuck, host=url).get("/v2/users/self")
    assert len(stuck.renewed) == 1, "renewed once, then given up"


def test_429_goes_to_the_jobs_at_once_with_sells_retry_after(sell_server, clock: Clock) -> None:
    state, url = sell_server
    state.allowance.limit = 3
    slept: list[float] = []
    client = SellClient(StaticToken(state.personal_access_token().access_token), host=url,
                        sleep=slept.append)  # fmt: skip
    for _ in range(3):
        client.get("/v2/users/self")
    with pytest.raises(RateLimited) as caught:
        client.get("/v2/users/self")
    assert caught.value.retry_after == 3600
    assert slept == [] and client.calls["GET /v2/users/self"] == 4, "no retry inside the call"


@responses.activate
def test_a_5xx_is_retried_within_the_call_then_raised() -> None:
    url = "https://sell.test"
    responses.get(f"{url}/v2/users/self", status=503, json={"errors": []})
    responses.get(f"{url}/v2/users/self", status=200, json={"data": {"id": 1}})
    slept: list[float] = []
    client = SellClient(StaticToken("t" * 64), host=url, sleep=slept.append)
    assert client.get("/v2/users/self") == {"data": {"id": 1}}
    assert len(slept) == 1
    responses.replace(responses.GET, f"{url}/v2/users/self", status=502, body="bad gateway")
    with pytest.raises(Transient):
        client.get("/v2/users/self")
    assert len(slept) == 1 + client.attempts - 1


@pytest.fixture
def sell_server(state: SellState):
    from sandbox.sell import serve

    with serve(state) as server:
        yield state, server.url
