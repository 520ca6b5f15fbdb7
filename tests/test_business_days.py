"""When a CRM task falls due: business days in the tenant's timezone, at a local hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.business_days import add_business_days, due_at

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
CAIRO = ZoneInfo("Africa/Cairo")


def _counted(day: date, n: int) -> date:
    """The reference: step one calendar day at a time, counting Mondays to Fridays."""
    while n:
        day += timedelta(days=1)
        if day.isoweekday() <= 5:
            n -= 1
    return day


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 11, 23), 1, date(2026, 11, 24)),  # Monday -> Tuesday
        (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday -> Monday
        (date(2026, 11, 28), 1, date(2026, 11, 30)),  # Saturday -> Monday
        (date(2026, 11, 29), 1, date(2026, 11, 30)),  # Sunday -> Monday
        (date(2026, 11, 25), 5, date(2026, 12, 2)),  # Wednesday + a week of business days
        (date(2026, 11, 25), 6, date(2026, 12, 3)),
        (date(2026, 11, 27), 3, date(2026, 12, 2)),  # across a weekend
    ],
)
def test_add_business_days(start: date, n: int, expected: date) -> None:
    assert add_business_days(start, n) == expected


def test_add_business_days_agrees_with_counting_day_by_day() -> None:
    first = date(2026, 1, 1)
    for offset in range(21):
        for n in range(1, 31):
            day = first + timedelta(days=offset)
            assert add_business_days(day, n) == _counted(day, n), (day, n)


def test_add_business_days_counts_from_one() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        add_business_days(date(2026, 11, 23), 0)


def test_due_the_next_business_day_at_the_local_hour() -> None:
    start = datetime(2026, 11, 24, 9, 15, tzinfo=PARIS)  # Tuesday morning
    due = due_at(start, PARIS, 1, 17)
    assert due == datetime(2026, 11, 25, 17, 0, tzinfo=PARIS)
    assert due.tzinfo is PARIS and due.utcoffset() == timedelta(hours=1)


def test_friday_evening_is_due_on_monday() -> None:
    friday_evening = datetime(2026, 11, 27, 18, 45, tzinfo=PARIS)
    assert due_at(friday_evening, PARIS, 1, 17) == datetime(2026, 11, 30, 17, 0, tzinfo=PARIS)
    # Two business days from Friday evening: Tuesday, not Sunday.
    assert due_at(friday_evening, PARIS, 2, 17) == datetime(2026, 12, 1, 17, 0, tzinfo=PARIS)


def test_weekend_starts_count_from_monday() -> None:
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=PARIS)
    sunday = datetime(2026, 11, 29, 23, 59, tzinfo=PARIS)
    monday = datetime(2026, 11, 30, 17, 0, tzinfo=PARIS)
    assert due_at(saturday, PARIS, 1, 17) == monday
    assert due_at(sunday, PARIS, 1, 17) == monday


def test_the_local_day_of_the_tenant_decides_not_utc() -> None:
    # Friday 23:30 UTC is already Saturday in Tokyo but still Friday in New York.
    start = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert due_at(start, TOKYO, 1, 17) == datetime(2026, 11, 30, 17, 0, tzinfo=TOKYO)
    assert due_at(start, NEW_YORK, 1, 17) == datetime(2026, 11, 30, 17, 0, tzinfo=NEW_YORK)
    # Monday 02:00 UTC is Sunday evening in New York: due Monday there, Tuesday in Tokyo.
    monday_utc = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert due_at(monday_utc, NEW_YORK, 1, 17).date() == date(2026, 11, 30)
    assert due_at(monday_utc, TOKYO, 1, 17).date() == date(2026, 12, 1)
    assert due_at(monday_utc, UTC, 1, 17).date() == date(2026, 12, 1)


def test_dst_moves_the_utc_instant_not_the_local_hour() -> None:
    # Paris springs forward on Sunday 29 March 2026: Friday is +01:00, Monday +02:00.
    friday = datetime(2026, 3, 27, 10, 0, tzinfo=PARIS)
    due = due_at(friday, PARIS, 1, 17)
    assert (due.date(), due.hour, due.minute) == (date(2026, 3, 30), 17, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 15, 0, tzinfo=UTC)
    # And falls back on Sunday 25 October 2026: Monday is +01:00 again.
    due = due_at(datetime(2026, 10, 23, 10, 0, tzinfo=PARIS), PARIS, 1, 17)
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 16, 0, tzinfo=UTC)
    # New York springs forward on Sunday 8 March 2026.
    due = due_at(datetime(2026, 3, 6, 20, 0, tzinfo=NEW_YORK), NEW_YORK, 1, 17)
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 21, 0, tzinfo=UTC)


def test_a_due_hour_inside_a_dst_gap_becomes_the_first_real_instant() -> None:
    # Cairo springs forward at midnight on Friday 24 April 2026: 00:00 does not exist there.
    thursday = datetime(2026, 4, 23, 10, 0, tzinfo=CAIRO)
    due = due_at(thursday, CAIRO, 1, 0)
    assert due.astimezone(UTC) == datetime(2026, 4, 23, 22, 0, tzinfo=UTC)
    assert (due.date(), due.hour, due.utcoffset()) == (date(2026, 4, 24), 1, timedelta(hours=3))


def test_zero_business_days_means_today_if_there_is_time_left() -> None:
    monday_morning = datetime(2026, 11, 30, 9, 0, tzinfo=PARIS)
    monday_evening = datetime(2026, 11, 30, 17, 0, tzinfo=PARIS)
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=PARIS)
    assert due_at(monday_morning, PARIS, 0, 17) == datetime(2026, 11, 30, 17, tzinfo=PARIS)
    assert due_at(monday_evening, PARIS, 0, 17) == datetime(2026, 12, 1, 17, tzinfo=PARIS)
    assert due_at(saturday, PARIS, 0, 17) == datetime(2026, 11, 30, 17, tzinfo=PARIS)


def test_due_is_always_after_the_start() -> None:
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    for hours in range(0, 24 * 14, 5):
        moment = start + timedelta(hours=hours)
        for n in (0, 1, 3):
            assert due_at(moment, PARIS, n, 17) > moment


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_at(datetime(2026, 11, 23, 9, 0), PARIS, 1, 17)
    with pytest.raises(ValueError, match="negative"):
        due_at(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), PARIS, -1, 17)
    with pytest.raises(ValueError, match="0 to 23"):
        due_at(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), PARIS, 1, 24)


def test_a_holiday_counts_as_a_weekend_day() -> None:
    christmas, boxing_day = date(2026, 12, 25), date(2026, 12, 26)
    thursday_evening = datetime(2026, 12, 24, 19, 0, tzinfo=PARIS)
    due = due_at(thursday_evening, PARIS, 1, 17, {christmas})
    assert due == datetime(2026, 12, 28, 17, 0, tzinfo=PARIS), "Friday off: due on Monday"
    assert add_business_days(date(2026, 12, 24), 2, {christmas, boxing_day}) == date(2026, 12, 29)
    same_day = datetime(2026, 12, 25, 9, 0, tzinfo=PARIS)
    assert due_at(same_day, PARIS, 0, 17, {christmas}) == datetime(2026, 12, 28, 17, 0,
                                                                    tzinfo=PARIS)  # fmt: skip


def test_holidays_agree_with_counting_day_by_day() -> None:
    holidays = {date(2026, 12, 25), date(2027, 1, 1), date(2026, 12, 31)}
    for offset in range(14):
        day = date(2026, 12, 20) + timedelta(days=offset)
        for n in range(1, 12):
            counted, left = day, n
            while left:
                counted += timedelta(days=1)
                if counted.weekday() < 5 and counted not in holidays:
                    left -= 1
            assert add_business_days(day, n, holidays) == counted, (day, n)
