"""Business days in a tenant's timezone: when a task made for an alert falls due.

A business day is Monday to Friday in the tenant's timezone, less its days off (`DaysOff`): the
public holidays of the calendar it names (`tasks.public_holidays`, "FR" or "US-CA", from the
python-holidays library) and the days it lists itself (`tasks.holidays`: closures, and public
holidays no calendar knows). Due dates are local days, turned into an aware instant at a local hour
only at the end, so a DST change between the start and the due day moves the UTC instant, never
the local hour a rep sees.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as calendars

WEEKEND = frozenset({5, 6})
"""date.weekday() of Saturday and Sunday."""


class UnknownCalendar(ValueError):
    """A calendar name python-holidays does not know (the message says how to write one)."""


def public_holidays(calendar: str) -> calendars.HolidayBase:
    """The public holidays of a country ("FR") or of one of its subdivisions ("US-CA", "DE-BY"),
    for any year asked (the library computes a year when a day of it is first looked up)."""
    country, _, subdivision = calendar.partition("-")
    known = calendars.list_supported_countries()
    if country not in known:
        raise UnknownCalendar(
            f"{calendar!r}: no public holidays known for country {country!r}; write an ISO "
            "3166 country code such as FR or US, with a subdivision if it has its own "
            "holidays: US-CA, DE-BY"
        )
    if subdivision and subdivision not in known[country]:
        some = ", ".join(f"{country}-{s}" for s in known[country][:8]) or "none"
        raise UnknownCalendar(
            f"{calendar!r}: {country} has no subdivision {subdivision!r} with its own holidays "
            f"(some it has: {some})"
        )
    return calendars.country_holidays(country, subdiv=subdivision or None)


class DaysOff:
    """The local days that are not business days besides weekends: a calendar's public
    holidays, if one is named, and the days listed."""

    def __init__(self, listed: Iterable[date] = (), calendar: str | None = None) -> None:
        self.listed = frozenset(listed)
        self._public = public_holidays(calendar) if calendar else None

    def __contains__(self, day: object) -> bool:
        return day in self.listed or (self._public is not None and day in self._public)

    def __bool__(self) -> bool:
        return bool(self.listed) or self._public is not None


def is_business_day(day: date, holidays: Container[date] = ()) -> bool:
    return day.weekday() not in WEEKEND and day not in holidays


def next_business_day(day: date, holidays: Container[date] = ()) -> date:
    """The first business day after `day`."""
    day += timedelta(days=1)
    while not is_business_day(day, holidays):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, n: int, holidays: Container[date] = ()) -> date:
    """The n-th business day after `day` (n >= 1): Friday + 1 is Monday, Saturday + 1 too, and
    a holiday counts as a weekend day."""
    if n < 1:
        raise ValueError(f"add_business_days counts from 1, got {n}")
    if holidays:
        # Day by day: holidays break the weeks' pattern (n is at most MAX_DUE_BUSINESS_DAYS).
        for _ in range(n):
            day = next_business_day(day, holidays)
        return day
    # Whole weeks first (five business days each), so a large n costs no loop over its days.
    weeks, rest = divmod(n - 1, 5)
    day = next_business_day(day) + timedelta(weeks=weeks)
    for _ in range(rest):
        day = next_business_day(day)
    return day


def due_at(
    start: datetime,
    zone: ZoneInfo,
    business_days: int,
    hour: int,
    holidays: Container[date] = (),
) -> datetime:
    """When a task made at `start` is due: at `hour` local time on the `business_days`-th
    business day after the local day of `start`. With 0, the same day if it is a business day
    and `hour` has not yet passed there, else the next business day. An aware datetime in
    `zone`; a local hour that does not exist that day (a DST gap) becomes the first instant
    after it."""
    if start.tzinfo is None:
        raise ValueError(f"start must be an aware datetime (a time zone), got {start}")
    if not 0 <= hour <= 23:
        raise ValueError(f"the due hour is 0 to 23, got {hour}")
    local = start.astimezone(zone)
    if business_days > 0:
        day = add_business_days(local.date(), business_days, holidays)
    elif business_days == 0:
        day = local.date()
        if not is_business_day(day, holidays) or local.hour >= hour:
            day = next_business_day(day, holidays)
    else:
        raise ValueError(f"business days cannot be negative, got {business_days}")
    wall = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    # Through UTC and back: a wall time in a DST gap comes back as the real instant after it.
    return wall.astimezone(UTC).astimezone(zone)
