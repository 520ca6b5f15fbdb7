"""Two writers at once, round after round: how the store's tests show that concurrent writes of
the same rows neither deadlock nor fail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def side_by_side(
    rounds: int, work: Callable[[int, int], T], *, timeout: float = 120.0
) -> tuple[list[T], list[T]]:
    """Run `work(side, round)` for sides 0 and 1 in two threads, both sides starting each round
    together; each side's results, in round order. The first failure is raised here (a side
    that stops breaks the other's next round); a side still running after `timeout` fails."""
    start = threading.Barrier(2)
    results: tuple[list[T], list[T]] = ([], [])
    failures: list[BaseException] = []

    def run(side: int) -> None:
        try:
            for round_ in range(rounds):
                start.wait(timeout)
                results[side].append(work(side, round_))
        except BaseException as exc:  # raised below, in the test's thread
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=run, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), f"a side still runs after {timeout:.0f} s"
    causes = [f for f in failures if not isinstance(f, threading.BrokenBarrierError)]
    if failures:
        raise (causes or failures)[0]
    return results
