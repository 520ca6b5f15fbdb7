"""Zendesk Sell end to end over real HTTP: an admin installs Deal Radar into an emulated Sell
account (OAuth), the initial sync writes every open deal's Deal Radar custom fields, then a rep
logs a call: it appears in the Firehose, the poller (scheduled by the app itself: the setup
starts the poll chain, `dealradar cron` keeps it) picks it up, and `no_activity` leaves that
deal's custom fields within one polling interval and a few seconds. Real processes: the web app
on a port, `dealradar worker` and `dealradar cron` in subprocesses, Redis, the store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from connector.app import create_app
from connector.config import Config
from connector.store import migrate
from engine.settings import DEFAULTS
from sandbox.seed import generate
from sandbox.sell import SellState, ServerHandle, serve
from sandbox.sell_seed import load_into_sell
from tests.adapters.sell.conftest import provision_fields

ROOT = Path(__file__).resolve().parents[2]
DEALS = 30
CLIENT_ID, CLIENT_SECRET = "e2e-sell-client", "e2e-sell-secret-not-a-real-one"
POLL_SECONDS = DEFAULTS["sell"]["poll_seconds"]
SLACK_SECONDS = 8
"""'A few seconds' on top of one polling interval: the refresh's coalescing window (0.5 s
here), the pull, the write-back, and a loaded machine."""
SYNC_SECONDS = 120


@dataclass
class Product:
    state: SellState
    emulator: ServerHandle
    app_url: str
    logs: list[Path]

    def wait(self, what: str, ready: Callable[[], bool], timeout: float) -> float:
        started = time.monotonic()
        while not ready():
            if time.monotonic() - started > timeout:
                tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                                  for p in self.logs)  # fmt: skip
                pytest.fail(f"{what}: not within {timeout:.0f} s.\n{tails}")
            time.sleep(0.1)
        return time.monotonic() - started

    def custom(self, deal_id: int) -> dict:
        return self.state.get("deals", deal_id)["custom_fields"]

    def alerts(self, deal_id: int) -> set[str]:
        return {c["name"] for c in self.custom(deal_id).get("Deal Radar alerts") or ()}

    def open_deals(self) -> list[int]:
        closed = {s["id"] for s in self.state.records("stages")
                  if s["category"] in ("won", "lost")}  # fmt: skip
        return [d["id"] for d in self.state.records("deals") if d["stage_id"] not in closed]


@pytest.fixture
def product(
    database_url: str, redis: redis_lib.Redis, redis_url: str, tmp_path: Path
) -> Iterator[Product]:
    state = SellState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    load_into_sell(state, generate(DEALS, 5, datetime.now(UTC)))
    provision_fields(state)
    emulator = serve(state)
    migrate.upgrade(database_url)
    holder: dict[str, Callable] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),
                         threaded=True)  # fmt: skip
    app_url = f"http://127.0.0.1:{server.server_port}"
    env = {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(), "PUBLIC_URL": app_url,
        "SELL_CLIENT_ID": CLIENT_ID, "SELL_CLIENT_SECRET": CLIENT_SECRET,
        "SELL_API_URL": emulator.url, "SELL_AUTHORIZE_URL": f"{emulator.url}/oauth2/authorize",
        "DEALRADAR_COALESCE_SECONDS": "0.5",
    }  # fmt: skip
    holder["app"] = create_app(Config.from_env(env))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    thread.start()
    processes, logs = [], []
    for command in (["worker"], ["cron", "--interval", "5"]):
        log = tmp_path / f"{command[0]}.log"
        logs.append(log)
        with log.open("wb") as out:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "connector.cli", *command], cwd=ROOT,
                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            ))  # fmt: skip
    try:
        yield Product(state, emulator, app_url, logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.shutdown()
        server.server_close()
        emulator.stop()


def test_install_sync_then_a_call_clears_no_activity_within_a_poll(product: Product) -> None:
    answer = requests.get(f"{product.app_url}/install/sell",
                          headers={"Accept": "application/json"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    installed = answer.json()
    assert installed["status"] == "installed"
    assert installed["account_id"] == str(product.state.account["id"])
    open_ids = product.open_deals()
    product.wait(
        "the initial sync writes every open deal's Deal Radar fields",
        lambda: all(product.custom(d).get("Deal Radar evaluated at") for d in open_ids),
        SYNC_SECONDS,
    )
    auth = {"Authorization": f"Bearer {installed['api_key']}"}
    listed = requests.get(f"{product.app_url}/api/v1/deals", params={"limit": 200},
                          headers=auth, timeout=10).json()["items"]  # fmt: skip
    assert len(listed) == DEALS
    target = next(d for d in open_ids if "no_activity" in product.alerts(d))
    bystander = next(d for d in open_ids if d != target and product.alerts(d))
    bystander_before = product.custom(bystander)

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    top = requests.get(
        f"{product.emulator.url}/v3/calls/stream",
        params={"position": "top"},
        headers={
            "User-Agent": "e2e",
            "Authorization": "Bearer " + product.state.issue_token().access_token,
        },
        timeout=10,
    )
    call = product.state.create("calls", {
        "associated_deal_ids": [target], "made_at": now, "incoming": False,
        "summary": "Walked through the proposal", "duration": 900,
    })  # fmt: skip
    feed = requests.get(f"{product.emulator.url}/v3/calls/stream",
                        params={"position": top.json()["meta"]["position"]},
                        headers=top.request.headers, timeout=10).json()  # fmt: skip
    assert [i["data"]["id"] for i in feed["items"]] == [call["id"]], "the call is in the Firehose"

    seconds = product.wait(
        "no_activity leaves the deal's Deal Radar fields in Sell",
        lambda: "no_activity" not in product.alerts(target),
        POLL_SECONDS + SLACK_SECONDS,
    )
    assert seconds < POLL_SECONDS + SLACK_SECONDS
    assert product.custom(target)["Deal Radar days since interaction"] == "0"
    time.sleep(2)
    assert product.custom(bystander) == bystander_before, "nothing else was rewritten"
