"""What the Sell emulator tests share: a settable clock and a small ``requests`` client that
sends what Sell requires (User-Agent, Bearer token, JSON); the fixtures are in conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

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
