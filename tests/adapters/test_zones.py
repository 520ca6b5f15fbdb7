"""CRM time zones read as zoneinfo names: IANA names as they are, Sell's offsets as fixed zones."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.zones import zone_name


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
        ("UTC+05:30", None),  # no fixed zone for half hours: the tenant keeps its own
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
