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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from cryptography.fernet import Fernet
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from adapters.hubspot.subscriptions import wanted
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
class WorkerProcess:
    """A `dealradar worker` subprocess, as `make run` starts one; its output appended to
    `log`."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector.cli", "worker"],
                cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL to the worker and to the work horse RQ forked for the job under way (in a
        process group of its own): the job dies mid-way, as when its machine is lost."""
        assert self.process is not None
        horses = _children(self.process.pid)
        self.process.kill()
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
    worker: WorkerProcess | None = None

    def start_worker(self) -> None:
        assert self.worker is not None
        self.worker.start()

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

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


@contextmanager
def app_and_worker(
    env: dict[str, str], worker_log: Path, emulator_env: Callable[[str], dict[str, str]]
) -> Iterator[tuple[str, WorkerProcess]]:
    """Our web app on a real port and a `dealradar worker` subprocess, configured by `env`
    plus what `emulator_env(app_url)` adds (the app must know its own URL before it is built:
    it binds first); yields the app's URL and the worker, and stops both."""
    holder: dict[str, Callable] = {}
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True,
        request_handler=_Quiet,
    )  # fmt: skip
    app_url = f"http://127.0.0.1:{server.server_port}"
    env = {**env, "PUBLIC_URL": app_url, **emulator_env(app_url)}
    holder["app"] = create_app(Config.from_env(env))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    worker = WorkerProcess(env, worker_log)
    worker.start()
    try:
        yield app_url, worker
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()


def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "DEALRADAR_COALESCE_SECONDS": "0.5",
    }


@pytest.fixture
def product(
    database_url: str, redis: redis_lib.Redis, redis_url: str, tmp_path: Path
) -> Iterator[Product]:
    state = HubSpotState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_id=APP_ID)
    load_into_hubspot(state, generate(DEALS, SEED, datetime.now(UTC)))
    emulator = serve(state)
    migrate.upgrade(database_url)
    crm = {
        "HUBSPOT_APP_ID": str(APP_ID),
        "HUBSPOT_CLIENT_ID": CLIENT_ID,
        "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET,
        "HUBSPOT_API_URL": emulator.url,
        "HUBSPOT_AUTHORIZE_URL": f"{emulator.url}/oauth/authorize",
    }
    worker_log = tmp_path / "worker.log"
    try:
        with app_and_worker(
            base_env(database_url, redis_url), worker_log, lambda app_url: crm
        ) as (app_url, worker):
            # Exactly the subscriptions `dealradar hubspot subscriptions` tells a developer to
            # set: the HubSpot journeys below prove they carry every change that matters.
            state.webhooks.configure(f"{app_url}/webhooks/hubspot", subscriptions=wanted())
            yield Product(state, emulator, app_url, worker_log, database_url, redis_url, worker)
    finally:
        state.webhooks.stop()
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
