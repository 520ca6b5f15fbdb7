"""The scan's shortcuts agree with the slow, obvious definitions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.signals import Moment, single_thread

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize("zone", ZONES)
@settings(max_examples=400, deadline=None)
@given(ts=st.floats(min_value=1.5e9, max_value=1.9e9, allow_nan=False))
def test_local_day_matches_zoneinfo(zone: str, ts: float) -> None:
    moment = Moment(now=NOW, zone=ZoneInfo(zone))
    assert moment.local_day(ts) == datetime.fromtimestamp(ts, ZoneInfo(zone)).toordinal()


@pytest.mark.parametrize("zone", ZONES)
def test_local_day_around_every_transition_of_2026(zone: str) -> None:
    moment = Moment(now=NOW, zone=ZoneInfo(zone))
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    # Every 10 minutes for a year, twice (the second pass reads the cache).
    for _ in range(2):
        for step in range(0, 366 * 24 * 6):
            ts = start + step * 600 + 59.5
            assert moment.local_day(ts) == datetime.fromtimestamp(ts, ZoneInfo(zone)).toordinal()


def _naive(threads: list[tuple[float, tuple[str, ...]]]) -> tuple[str, float, int] | None:
    """DESIGN.md's words, literally: latest interactions, back to the last one with anyone else."""
    if not threads:
        return None
    latest_ts = max(ts for ts, _ in threads)
    at_latest = {cs for ts, cs in threads if ts == latest_ts}
    if len(at_latest) != 1:
        return None
    (who_set,) = at_latest
    if len(who_set) != 1:
        return None
    others = [ts for ts, cs in threads if cs != who_set]
    last_other = max(others) if others else None
    streak = [ts for ts, cs in threads if last_other is None or ts > last_other]
    return who_set[0], min(streak), len(streak)


thread_lists = st.lists(
    st.tuples(
        st.integers(0, 30).map(float),
        st.lists(st.sampled_from("abc"), min_size=1, max_size=2, unique=True).map(tuple),
    ),
    max_size=12,
).map(lambda xs: sorted(xs, key=lambda t: t[0]))


@settings(max_examples=2000, deadline=None)
@given(thread_lists)
def test_single_thread_matches_the_naive_definition(threads: list) -> None:
    assert single_thread(threads) == _naive(threads)
