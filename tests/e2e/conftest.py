"""The whole product over real HTTP for the end-to-end tests: the HubSpot emulator seeded with
a generated org, the web app on a real server, a real `dealradar worker` in a subprocess, real
Redis and the store (SQLite, and PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from cryptography.fernet import Fernet
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connector.app import create_app
from connector.config import Config
from connector.store import migrate
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot_seed import load_into_hubspot
from sandbox.seed import generate

ROOT = Path(__file__).resolve().parents[2]
DEALS = 30
SEED = 5
CLIENT_ID = "e2e-client-id"
CLIENT_SECRET = "e2e-client-secret-not-a-real-one"
APP_ID = 70707


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class Product:
    """What a test drives: the emulated portal, our app's URL, the worker and its log, and the
    services the product runs on."""

    state: HubSpotState
    emulator: ServerHandle
    app_url: str
    worker_log: Path
    database_url: str = ""
    redis_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    worker: subprocess.Popen | None = None

    def start_worker(self) -> None:
        """A `dealradar worker` subprocess, as `make run` starts one; its output appended to
        `worker_log`."""
        with self.worker_log.open("ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "connector.cli", "worker"],
                cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill_worker(self) -> None:
        """SIGKILL to the worker and to the work horse RQ forked for the job under way (in a
        process group of its own): the job dies mid-way, as when its machine is lost."""
        assert self.worker is not None
        horses = _children(self.worker.pid)
        self.worker.kill()
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker.wait()

    def stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        self.worker.terminate()
        try:
            self.worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()

    def wait(self, what: str, ready: Callable[[], bool], timeout: float) -> float:
        """Seconds until `ready()`; fails naming `what` and showing the worker's log."""
        started = time.monotonic()
        while not ready():
            if time.monotonic() - started > timeout:
                log = self.worker_log.read_text(errors="replace")[-4000:]
                pytest.fail(f"{what}: not within {timeout:.0f} s. Worker log:\n{log}")
            time.sleep(0.1)
        return time.monotonic() - started

    def deal(self, deal_id: str) -> dict[str, str | None]:
        with self.state.lock:
            return dict(self.state.record("deals", deal_id).properties)

    def history_lengths(self, deal_id: str) -> dict[str, int]:
        with self.state.lock:
            record = self.state.record("deals", deal_id)
            return {name: len(versions) for name, versions in record.history.items()}


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def product(
    database_url: str, redis: redis_lib.Redis, redis_url: str, tmp_path: Path
) -> Iterator[Product]:
    state = HubSpotState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_id=APP_ID)
    load_into_hubspot(state, generate(DEALS, SEED, datetime.now(UTC)))
    emulator = serve(state)
    migrate.upgrade(database_url)

    # The app must know its own URL (PUBLIC_URL: OAuth redirects, webhook signatures): bind
    # first, then build the app behind the bound server.
    holder: dict[str, Callable] = {}
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True,
        request_handler=_Quiet,
    )  # fmt: skip
    app_url = f"http://127.0.0.1:{server.server_port}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": app_url,
        "HUBSPOT_APP_ID": str(APP_ID),
        "HUBSPOT_CLIENT_ID": CLIENT_ID,
        "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET,
        "HUBSPOT_API_URL": emulator.url,
        "HUBSPOT_AUTHORIZE_URL": f"{emulator.url}/oauth/authorize",
        "DEALRADAR_COALESCE_SECONDS": "0.5",
    }
    holder["app"] = create_app(Config.from_env(env))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.webhooks.configure(f"{app_url}/webhooks/hubspot")

    product = Product(state, emulator, app_url, tmp_path / "worker.log", database_url,
                      redis_url, env)  # fmt: skip
    product.start_worker()
    try:
        yield product
    finally:
        product.stop_worker()
        state.webhooks.stop()
        server.shutdown()
        server.server_close()
        emulator.stop()


def install(app_url: str) -> dict:
    """An admin installing the app: our install URL, HubSpot's consent, our callback."""
    answer = requests.get(
        f"{app_url}/install/hubspot",
        headers={"Accept": "application/json"},
        allow_redirects=True,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()
