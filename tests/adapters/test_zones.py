"""CRM time zones read as zoneinfo names: IANA names as they are, Sell's offsets as fixed zones."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.zones import FRACTIONAL_OFFSETS, zone_name


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("UTC", "UTC"),
        ("GMT", "UTC"),
        ("UTC+00:00", "UTC"),
        ("UTC-06:00", "Etc/GMT+6"),
        ("UTC+5", "Etc/GMT-5"),
        (" GMT+10:00 ", "Etc/GMT-10"),
        ("UTC+05:30", "Asia/Kolkata"),
        ("GMT+0545", "Asia/Kathmandu"),
        ("UTC-09:30", "Pacific/Marquesas"),
        ("UTC-03:30", None),  # Newfoundland's, with summer time: the tenant keeps its own
        ("UTC+05:20", None),
        ("UTC+15:00", None),
        ("Mars/Olympus", None),
        ("Europe", None),
        ("", None),
    ],
)
def test_a_crm_zone_reads_as_a_zone_python_loads(given: str, name: str | None) -> None:
    assert zone_name(given) == name


def test_an_offset_zone_ends_the_day_at_the_account_midnight() -> None:
    zone = ZoneInfo(zone_name("UTC-06:00") or "")
    assert datetime(2026, 12, 1, 6, 0, tzinfo=UTC).astimezone(zone).hour == 0


@pytest.mark.parametrize(("offset", "name"), sorted(FRACTIONAL_OFFSETS.items()))
def test_a_fractional_offset_reads_as_a_zone_at_that_offset_all_year(
    offset: str, name: str
) -> None:
    sign = 1 if offset[0] == "+" else -1
    minutes = sign * (int(offset[1:3]) * 60 + int(offset[4:]))
    zone = ZoneInfo(name)
    for month in (1, 4, 7, 10):
        at = datetime(2026, month, 15, 12, tzinfo=UTC).astimezone(zone)
        assert at.utcoffset().total_seconds() == minutes * 60, (name, month)
