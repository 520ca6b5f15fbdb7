"""Writes behind: done in order on their own thread, one waiting at most, failures raised to
the producer and never leaving a `then` (the sweep's deal locks) undone."""

from __future__ import annotations

import threading

import pytest

from jobs.behind import WritesBehind


def test_writes_run_in_order_on_another_thread_and_close_waits_for_them() -> None:
    done: list[tuple[str, int]] = []
    freed: list[int] = []
    here = threading.get_ident()
    threads: set[int] = set()

    def write(n: int):
        def step() -> None:
            threads.add(threading.get_ident())
            done.append(("write", n))

        return step

    with WritesBehind() as behind:
        for n in range(5):
            behind.hand(write(n), lambda n=n: freed.append(n))
    assert done == [("write", n) for n in range(5)]
    assert freed == [0, 1, 2, 3, 4]
    assert here not in threads


def test_the_producer_is_at_most_one_write_ahead() -> None:
    """While the thread is busy with one write and one waits, handing a third blocks."""
    release = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    behind = WritesBehind()
    behind.hand(slow, lambda: None)
    started.wait(5)
    behind.hand(lambda: None, lambda: None)  # waits in the queue
    third = threading.Thread(target=behind.hand, args=(lambda: None, lambda: None))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "a third write was accepted while two were pending"
    release.set()
    third.join(5)
    assert not third.is_alive()
    behind.close()


def test_a_failed_write_is_raised_to_the_producer_and_later_writes_are_skipped() -> None:
    ran: list[int] = []
    freed: list[int] = []
    failed = threading.Event()

    def fail() -> None:
        try:
            raise RuntimeError("the database refused batch 1")
        finally:
            failed.set()

    handed: list[int] = []
    with pytest.raises(RuntimeError, match="batch 1"), WritesBehind() as behind:
        behind.hand(lambda: ran.append(0), lambda: freed.append(0))
        behind.hand(fail, lambda: freed.append(1))
        failed.wait(5)
        for n in range(2, 10):
            handed.append(n)
            behind.hand(lambda n=n: ran.append(n), lambda n=n: freed.append(n))
    assert ran == [0], "a write after the failure ran"
    assert handed and len(handed) < 8, "the producer went on after the failure"
    assert sorted(freed) == [0, 1, *handed], "a batch's locks were left held"


def test_the_producers_own_error_wins_and_the_writes_handed_still_finish() -> None:
    done: list[int] = []
    with pytest.raises(KeyError), WritesBehind() as behind:
        behind.hand(lambda: done.append(1), lambda: done.append(2))
        raise KeyError("evaluation failed")
    assert done == [1, 2]


def test_a_failing_then_is_raised_and_does_not_stop_the_thread() -> None:
    freed: list[int] = []

    def broken() -> None:
        raise ConnectionError("redis went away")

    behind = WritesBehind()
    behind.hand(lambda: None, broken)
    with pytest.raises(ConnectionError):
        for n in range(3):
            behind.hand(lambda: None, lambda n=n: freed.append(n))
        behind.close()
    with pytest.raises(ConnectionError):
        behind.close()
