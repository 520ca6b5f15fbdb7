"""Running `dealradar sandbox` (what `make run` runs) in a subprocess, and checking that every
process it started is gone afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """`dealradar sandbox` in its own session; its output gathered line by line."""

    def __init__(self, workdir: Path, *args: str, sigint_ignored: bool = False) -> None:
        """`sigint_ignored`: start it as a non-interactive shell starts a background job."""
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "sandbox", "--port", "0",
             "--emulator-port", "0", *args],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if sigint_ignored else None,
        )  # fmt: skip
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of `pattern` in the output; AssertionError after `timeout` or exit."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = rx.search("\n".join(self.lines))
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no {pattern!r} in the launcher's output "
                        f"(exit status {self.process.poll()}):\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(left, 0.5))

    def pids(self) -> dict[str, int]:
        """The processes it said it started, by name."""
        found = self.wait_for(r"^processes: (.*?);", 180)
        return {
            name: int(pid)
            for name, pid in (part.rsplit(" ", 1) for part in found.group(1).split(", "))
        }

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it, and the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise

    def kill(self, workdir: Path) -> None:
        """Cleanup after a failed test: ask the launcher to stop its processes (SIGTERM), and
        if it cannot, kill it and every process left in `workdir` or in its children's
        groups, so that no test leaves processes behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        found = re.search(r"^processes: (.*?);", self.output, re.M)
        leaders = [int(p.rsplit(" ", 1)[1]) for p in found.group(1).split(", ")] if found else []
        for pid in leaders:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for line in processes_in(workdir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(line.split(" ", 1)[0]), signal.SIGKILL)


def groups_alive(leaders: dict[str, int]) -> dict[str, list[int]]:
    """Processes still alive in the process groups these leaders started (by name)."""
    left: dict[str, list[int]] = {}
    wanted = {pid: name for name, pid in leaders.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp in wanted and state != "Z":
            left.setdefault(wanted[pgrp], []).append(int(entry.name))
    return left


def groups_left(leaders: dict[str, int], within: float = 5.0) -> dict[str, list[int]]:
    """`groups_alive` once they had `within` seconds to go: a SIGKILL sent to a group is
    delivered as each process is next scheduled, which on a loaded machine is not at once."""
    deadline = time.monotonic() + within
    while (left := groups_alive(leaders)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def processes_in(directory: Path) -> list[str]:
    """Live processes whose working directory is `directory` (the launcher's children inherit
    it), as "pid command" lines."""
    found = []
    target = directory.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != target:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z":
            found.append(f"{entry.name} {command.strip()}")
    return found


def port_free(port: int) -> bool:
    """Nothing listens on the port (connections of the past, in TIME_WAIT, do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
