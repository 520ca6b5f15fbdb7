"""`make run`'s launcher, `dealradar sandbox`: it reaches the table of deals by alert on a fresh
directory, and stops every process it started on Ctrl-C or when one of them dies."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.launcher import ROOT, Launcher, groups_alive, port_free, processes_in

DEALS = 25


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    started: list[Launcher] = []
    yield started
    for launcher in started:
        launcher.kill()


def _ports(launcher: Launcher) -> list[int]:
    out = launcher.output
    return [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", out)] + [
        int(p) for p in re.findall(r"^Redis: redis://127\.0\.0\.1:(\d+)", out, re.M)
    ]


def _all_gone(launcher: Launcher, workdir: Path, pids: dict[str, int]) -> None:
    assert processes_in(workdir) == []
    assert groups_alive(pids) == {}
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
    key = re.search(r"Authorization: Bearer (drk_[A-Za-z0-9_-]+)", out).group(1)
    app = re.search(r"^web app: (http://\S+);", out, re.M).group(1)
    listed = requests.get(
        f"{app}/api/v1/deals", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()["items"]
    assert len(listed) == DEALS, "the key printed in the curl example works"
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
    launcher = Launcher(workdir, "--deals", "5")
    launchers.append(launcher)
    launcher.wait_for(r"^HubSpot emulator: http", timeout=120)
    time.sleep(0.5)
    assert launcher.interrupt() == 0
    assert launcher.output.rstrip().endswith("stopped")
    _all_gone(launcher, workdir, {})


def test_a_port_in_use_is_refused_before_anything_starts(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(port)],
            cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"port {port} is in use" in done.stderr
    assert "--port" in done.stderr
    assert not (workdir / "instance" / "sandbox" / "logs").exists()
