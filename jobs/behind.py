"""Writes done on a thread of their own, one step behind the work that produces them.

The daily sweep reads a batch of deals, evaluates it (Python, on one core) and writes the
results (mostly the database's own work, in its process, on the other core, and the disk's).
Done in turn, each side waits for the other. With the writes one batch behind, the database
writes batch N while this process evaluates batch N+1: on PostgreSQL that hides most of the
write time. psycopg and sqlite3 release the GIL while they wait on the database, so the
evaluation runs meanwhile.

At most one write waits for the thread, so memory holds two batches at most, and a failed
write stops the producer at its next hand-over: it is raised there, and again by `close`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from types import TracebackType

Step = tuple[Callable[[], None], Callable[[], None]]
"""A write, and what must follow it whether it ran, failed or was skipped (freeing locks)."""


class WritesBehind:
    """A thread that runs the writes handed to it, in order, one waiting at most.

    Use as a context manager: leaving it waits for every write handed over, and raises the
    first write's error if one failed (and the writes after a failure are skipped, their
    `then` still run).
    """

    def __init__(self, name: str = "writes-behind") -> None:
        self._steps: queue.Queue[Step | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def hand(self, write: Callable[[], None], then: Callable[[], None]) -> None:
        """Queue `write` (then `then`) behind the writes already handed; blocks while one is
        waiting. Raises the error of a write that failed before, without queueing."""
        self._raise_failure(then)
        self._steps.put((write, then))

    def close(self) -> None:
        """Wait for the writes handed over; raise the first failure."""
        if self._thread.is_alive():
            self._steps.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _raise_failure(self, then: Callable[[], None]) -> None:
        if self._error is not None:
            then()
            raise self._error

    def _run(self) -> None:
        while (step := self._steps.get()) is not None:
            write, then = step
            for each in (write, then):
                if each is write and self._error is not None:
                    continue
                try:
                    each()
                except BaseException as exc:  # handed to the producer, which decides
                    self._error = self._error or exc

    def __enter__(self) -> WritesBehind:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        # Already failing: wait for the thread (so that locks get freed), keep the first error.
        with contextlib.suppress(BaseException):
            self.close()
