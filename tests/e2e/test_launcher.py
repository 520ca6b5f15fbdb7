"""`make run`'s launcher, `dealradar sandbox`: it reaches the table of deals by alert on a fresh
directory, and stops every process it started on Ctrl-C or when one of them dies."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from connector.cli import main
from connector.commands.sandbox_cmd import Refused, load_or_make_secrets
from connector.commands.sandbox_cmd import _port as sandbox_port
from connector.commands.sandbox_report import deal_table, sync_line
from connector.processes import Children
from tests.e2e.launcher import (
    ROOT,
    Launcher,
    groups_alive,
    groups_left,
    port_free,
    processes_in,
)

DEALS = 25


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def launchers(workdir: Path) -> Iterator[list[Launcher]]:
    started: list[Launcher] = []
    yield started
    for launcher in started:
        launcher.kill(workdir)


def _ports(launcher: Launcher) -> list[int]:
    out = launcher.output
    return [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", out)] + [
        int(p) for p in re.findall(r"^Redis: redis://127\.0\.0\.1:(\d+)", out, re.M)
    ]


def _all_gone(launcher: Launcher, workdir: Path, pids: dict[str, int]) -> None:
    assert groups_left(pids) == {}
    assert processes_in(workdir) == []
    for port in set(_ports(launcher)):
        assert port_free(port), f"port {port} still taken"


def test_help_says_what_it_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "sandbox", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    for option in ("--deals", "--port", "--emulator-port", "Ctrl-C", "REDIS_URL"):
        assert option in done.stdout


def test_it_reaches_the_table_and_ctrl_c_stops_everything(
    workdir: Path, launchers: list[Launcher]
) -> None:
    launcher = Launcher(workdir, "--deals", str(DEALS))
    launchers.append(launcher)
    launcher.wait_for(r"^Running\. Press Ctrl-C", timeout=240)
    pids = launcher.pids()
    assert set(pids) == {"redis", "emulator", "web", "worker", "cron"}
    out = launcher.output
    assert re.search(rf"initial sync: {DEALS}/{DEALS} deals", out)
    assert re.search(r"^no_meeting_scheduled +\d+$", out, re.M)
    assert "time zone Europe/Paris (the portal's)" in out, "the tenant took the portal's zone"
    key = re.search(r"Authorization: Bearer (drk_[A-Za-z0-9_-]+)", out).group(1)
    app = re.search(r"^web app: (http://\S+);", out, re.M).group(1)
    listed = requests.get(
        f"{app}/api/v1/deals", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()["items"]
    assert len(listed) == DEALS, "the key printed in the curl example works"
    scrapes = [requests.get(f"{app}/metrics", timeout=10) for _ in range(6)]
    assert {r.status_code for r in scrapes} == {200}
    shared = list((workdir / "instance" / "sandbox" / "metrics").glob("*.db"))
    assert shared, "the web workers count into the shared directory /metrics adds up"
    secrets = (workdir / "instance" / "sandbox" / "secrets.json").read_text()
    for value in re.findall(r'"([A-Za-z0-9_=-]{40,})"', secrets):
        assert value not in out, "the encryption key and the client secret are never printed"

    assert launcher.interrupt() == 0
    assert launcher.output.rstrip().endswith("stopped")
    _all_gone(launcher, workdir, pids)


def test_a_process_that_dies_is_named_and_everything_stops(
    workdir: Path, launchers: list[Launcher]
) -> None:
    launcher = Launcher(workdir, "--deals", "5")
    launchers.append(launcher)
    pids = launcher.pids()
    os.kill(pids["cron"], signal.SIGKILL)
    assert launcher.wait(timeout=60) == 1
    assert re.search(r"cron \(.*\) exited with status -9", launcher.output)
    _all_gone(launcher, workdir, pids)


def test_ctrl_c_during_start_stops_what_was_started(
    workdir: Path, launchers: list[Launcher]
) -> None:
    launcher = Launcher(workdir, "--deals", "5", sigint_ignored=True)
    launchers.append(launcher)
    launcher.wait_for(r"^HubSpot emulator: http", timeout=120)
    time.sleep(0.5)
    assert launcher.interrupt() == 0
    assert launcher.output.rstrip().endswith("stopped")
    _all_gone(launcher, workdir, {})


@contextmanager
def _listening(*, reuse_address: bool = False) -> Iterator[tuple[socket.socket, int]]:
    """A socket listening on a free loopback port, and the port."""
    with socket.socket() as listener:
        if reuse_address:  # as servers bind, so that TIME_WAIT does not stop them
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener, listener.getsockname()[1]


def test_a_port_in_use_is_refused_before_anything_starts(workdir: Path) -> None:
    with _listening() as (_taken, port):
        done = subprocess.run(
            [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(port)],
            cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"port {port} is in use" in done.stderr
    assert "--port" in done.stderr
    assert not (workdir / "instance" / "sandbox" / "logs").exists()


def test_a_dir_that_cannot_be_made_is_refused_before_anything_starts(workdir: Path) -> None:
    """`--dir` naming a file (or under one) ended in mkdir's traceback."""
    taken = workdir / "a-file"
    taken.write_text("")
    for directory in (taken, taken / "sandbox"):
        done = subprocess.run(
            [sys.executable, "-m", "connector.cli", "sandbox", "--dir", str(directory),
             "--port", "0", "--emulator-port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert f"dealradar sandbox: cannot use --dir {directory}:" in done.stderr
        assert "give a directory" in done.stderr


@pytest.mark.parametrize("redis_url", ["localhost:6379", "bogus"])
def test_a_redis_url_that_is_no_url_is_refused_before_anything_starts(
    workdir: Path, redis_url: str
) -> None:
    """REDIS_URL=localhost:6379 (no scheme) ended in a traceback from printing it."""
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "sandbox", "--port", "0", "--emulator-port", "0"],
        cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "dealradar sandbox: REDIS_URL must be a URL such as redis://" in done.stderr
    assert not (workdir / "instance" / "sandbox" / "logs").exists()


# --- the launcher's parts, without processes ---------------------------------------------------


def _port_left_in_time_wait() -> int:
    """A port nothing listens on whose last connection the server closed first, as a stopped
    run's servers do: the server's end stays in TIME_WAIT for a minute."""
    with (
        _listening(reuse_address=True) as (listener, port),
        socket.create_connection(("127.0.0.1", port)) as client,
    ):
        served, _ = listener.accept()
        served.close()
        assert client.recv(1) == b""  # the server's FIN reached the client
    return port


def test_a_port_the_last_run_left_in_time_wait_is_taken_again() -> None:
    port = _port_left_in_time_wait()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what refused `make run` right after the last one
    assert sandbox_port(port, "--port") == port


def test_a_port_something_listens_on_is_still_refused() -> None:
    with (
        _listening(reuse_address=True) as (_taken, port),
        pytest.raises(Refused, match=f"port {port} is in use"),
    ):
        sandbox_port(port, "--port")


@pytest.mark.parametrize("seconds", ["-1", "nan"])
def test_a_sync_timeout_below_zero_is_refused_before_anything_starts(
    seconds: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`--sync-timeout -1` started every process, then printed "the initial sync has not
    finished after -1 s" at once, with an empty table."""
    argv = ["sandbox", "--dir", str(tmp_path / "sb"), "--sync-timeout", seconds]
    assert main(argv) == 2
    assert "--sync-timeout must be 0 or more seconds" in capsys.readouterr().err
    assert not (tmp_path / "sb").exists(), "nothing started"


@pytest.mark.parametrize("port", [65536, 99999, -1])
def test_a_port_out_of_range_is_refused_saying_which_ports_are(port: int) -> None:
    """`make run RUN_ARGS="--port 99999"` ended in bind()'s OverflowError, a traceback."""
    with pytest.raises(Refused, match="--emulator-port must be a port number, 0 to 65535"):
        sandbox_port(port, "--emulator-port", any_free=False)


def _deal(deal_id: str, alerts: list[str], score: int, status: str = "open") -> dict:
    return {
        "id": deal_id, "name": f"Deal {deal_id}", "stage": "s1", "status": status,
        "alerts": alerts, "health": {"score": score, "grade": "fair", "trend": None},
        "evaluated_at": "2026-12-01T10:00:00+00:00",
    }  # fmt: skip


def test_the_table_counts_open_deals_per_alert_and_lists_the_most_alerted_first() -> None:
    deals = [
        _deal("1", ["no_activity", "no_meeting_scheduled"], 30),
        _deal("2", ["no_meeting_scheduled"], 80),
        _deal("3", [], 90),
        _deal("4", ["no_activity", "no_meeting_scheduled", "amount_missing"], 50),
        _deal("5", ["no_activity"], 10, status="won"),
    ]
    table = deal_table(deals)
    counts = dict(re.findall(r"^([a-z_()]+) +(\d+)$", table, re.M))
    assert counts["no_meeting_scheduled"] == "3"
    assert counts["no_activity"] == "2", "the won deal is not counted"
    assert counts["amount_missing"] == "1"
    assert counts["stuck_in_stage"] == "0"
    assert counts["(none)"] == "1"
    top = re.findall(r"^(\d) +Deal \d", table, re.M)
    assert top == ["4", "1", "2", "3"], "most alerts first, then the poorest health"


def test_the_table_names_each_deals_stage_as_reps_read_it() -> None:
    """HubSpot's stages are internal ids (`sales_demo`, or a number in a real portal); the API
    gives `stage_name` ("Demo done"), which the table, printed for people, shows."""
    deals = [{**_deal("1", ["no_activity"], 30), "stage": "sales_demo", "stage_name": "Demo done"}]
    row = deal_table(deals).splitlines()[-1]
    assert "Demo done" in row and "sales_demo" not in row, row


def test_sync_progress_counts_evaluated_deals() -> None:
    deals = [_deal("1", [], 50), {**_deal("2", [], 50), "evaluated_at": None}]
    assert sync_line(deals, 4).startswith("initial sync: 1/4 deals synced and evaluated (25%)")


def test_secrets_are_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_or_make_secrets(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_make_secrets(path) == first
    assert Fernet(first["DEALRADAR_SECRET_KEYS"].encode())  # a usable encryption key
    assert len(first["HUBSPOT_CLIENT_SECRET"]) >= 32


def test_a_second_launcher_on_the_same_directory_is_refused(workdir: Path) -> None:
    directory = workdir / "instance" / "sandbox"
    directory.mkdir(parents=True)
    (directory / "dealradar.db").write_bytes(b"the first launcher's database")
    with (directory / "launcher.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running launcher holds it
        done = subprocess.run(
            [sys.executable, "-m", "connector.cli", "sandbox", "--port", "0",
             "--emulator-port", "0"],
            cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert "another `dealradar sandbox` is running" in done.stderr
    assert (directory / "dealradar.db").read_bytes() == b"the first launcher's database"


def test_a_child_that_ignores_sigterm_is_killed_with_its_whole_group(tmp_path: Path) -> None:
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    children = Children(tmp_path / "logs", os.environ)
    child = children.start("stubborn", [sys.executable, "-c", stubborn])
    polite = children.start("polite", [sys.executable, "-c", "import time; time.sleep(120)"])
    deadline = time.monotonic() + 30
    while "ready" not in child.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(groups_alive({"stubborn": child.process.pid})["stubborn"]) == 2

    started = time.monotonic()
    assert children.stop(grace=1.0) == ["stubborn"]
    assert time.monotonic() - started < 10
    assert groups_left({"stubborn": child.process.pid, "polite": polite.process.pid}) == {}
    assert polite.process.returncode == -signal.SIGTERM


def test_the_first_stage_stops_while_what_it_talks_to_is_still_up(tmp_path: Path) -> None:
    """A worker finishing its job on SIGTERM still reaches the emulator: it is stopped after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = (
        "import socket, time\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    s.accept()[0].close()\n"
    )
    finisher = (
        "import signal, socket, sys, time\n"
        "def finish(*_):\n"
        "    time.sleep(1.0)  # the job in hand\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, finish)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    children = Children(tmp_path / "logs", os.environ)
    started = [children.start("emulator", [sys.executable, "-c", server]),
               children.start("worker", [sys.executable, "-c", finisher])]  # fmt: skip
    deadline = time.monotonic() + 30
    while not all("ready" in c.log_path.read_text() for c in started):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)

    assert children.stop(grace=5.0, first=("worker",)) == []
    assert started[1].process.returncode == 0, "the worker reached the emulator while stopping"
    assert started[0].process.returncode == -signal.SIGTERM
