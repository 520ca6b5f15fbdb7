"""Child processes for `dealradar sandbox`: each in its own process group, logging to its own
file, watched, and stopped cleanly.

A child gets its own session, so a Ctrl-C in the terminal reaches only the launcher, which then
stops the children in stages: SIGTERM to each leader of a stage (gunicorn and RQ shut down
gracefully on it), a grace period, then SIGKILL to whatever is left of each group (an RQ work
horse, a gunicorn worker), so nothing outlives the launcher. The stages let a worker finish the
job in hand while what it talks to (the CRM emulator) is still up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

GRACE_SECONDS = 30.0
"""How long a child has to stop after SIGTERM before its whole group is killed. The worker
stops once its job in hand is done, and a job making CRM tasks for a batch of alerts took more
than 10 s on a loaded machine; killed, it would only be run again later, but a clean stop
loses no time."""
TAIL_LINES = 15
"""Lines of a dead child's log shown to say why it died."""


class ChildDied(RuntimeError):
    """A child exited while it should be running; the message names it and shows its log."""


@dataclass
class Child:
    """One started process: its name, command, log file and `Popen`."""

    name: str
    command: Sequence[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    _log: IO[bytes] = field(repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of its log, for a message saying why it stopped."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def died(self) -> ChildDied:
        return ChildDied(
            f"{self.name} ({' '.join(self.command[-3:])}) exited with status "
            f"{self.process.returncode}; its log is {self.log_path}. Last lines:\n{self.tail()}"
        )

    def terminate(self) -> None:
        """Ask the leader to stop (SIGTERM); `wait_or_kill` finishes the job."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def wait_or_kill(self, deadline: float) -> bool:
        """Wait for the leader until `deadline` (monotonic), then kill the whole group; False
        when the leader itself had to be killed."""
        stopped = True
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within the grace period: killed", self.name)
            stopped = False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of the group, if any
        self.process.wait()
        self._log.close()
        return stopped


class Children:
    """The started children, in start order; `stop()` ends them all, last started first."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.started: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Child:
        """Start `command` in a new session, stdout and stderr to `<log_dir>/<name>.log`."""
        path = self.log_dir / f"{name}.log"
        out = path.open("wb")
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**self.env, **(env or {})},
            start_new_session=True,
        )
        child = Child(name, tuple(command), path, process, out)
        self.started.append(child)
        return child

    def check(self) -> None:
        """Raise `ChildDied` for the first child that is no longer running."""
        for child in self.started:
            if not child.running:
                raise child.died()

    def stop(self, grace: float = GRACE_SECONDS, first: Collection[str] = ()) -> list[str]:
        """Stop every child: those named in `first` before the others, each stage with SIGTERM
        to all of it (last started first), then `grace` seconds, then a kill for what is left.
        Returns the names of those that had to be killed."""
        leading = [c for c in reversed(self.started) if c.name in first]
        trailing = [c for c in reversed(self.started) if c.name not in first]
        killed = _stop_stage(leading, grace) + _stop_stage(trailing, grace)
        self.started.clear()
        return killed


def _stop_stage(stage: list[Child], grace: float) -> list[str]:
    for child in stage:
        child.terminate()
    deadline = time.monotonic() + grace
    return [c.name for c in stage if not c.wait_or_kill(deadline)]


def run_once(
    command: Sequence[str], env: Mapping[str, str], log_path: Path, timeout: float = 120.0
) -> None:
    """Run a command to completion (its output to `log_path`); ChildDied if it fails."""
    with log_path.open("wb") as out:
        done = subprocess.run(
            list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(env), timeout=timeout, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        tail = "\n".join(text.splitlines()[-TAIL_LINES:])
        raise ChildDied(
            f"{' '.join(command[-3:])} failed with status {done.returncode}; its log is "
            f"{log_path}. Last lines:\n{tail}"
        )
