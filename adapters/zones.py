"""A CRM account's time zone as a name Python's zoneinfo loads.

HubSpot and Salesforce give IANA names. Zendesk Sell's account `timezone` is documented as
text: an IANA name in some accounts, an offset such as "UTC-06:00" in others. A whole-hour
offset reads as the matching fixed zone ("Etc/GMT+6": the tz database's sign is inverted), so
days still end at the account's midnight. The tz database has no fixed zone for the offsets
that are not whole hours, so those read as a place that keeps that offset all year
(FRACTIONAL_OFFSETS: "UTC+05:30" is Asia/Kolkata); one that only some zones with summer time
have (Newfoundland's -03:30) is unknown, as is anything else, and the caller keeps the tenant's
own zone and says so.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FRACTIONAL_OFFSETS = {
    "+03:30": "Asia/Tehran",
    "+04:30": "Asia/Kabul",
    "+05:30": "Asia/Kolkata",
    "+05:45": "Asia/Kathmandu",
    "+06:30": "Asia/Yangon",
    "+08:45": "Australia/Eucla",
    "+09:30": "Australia/Darwin",
    "-09:30": "Pacific/Marquesas",
}
"""Offsets that are not whole hours, to a zone at that offset all year (no summer time)."""

_OFFSET = re.compile(r"^(?:UTC|GMT)\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?$", re.IGNORECASE)


def zone_name(text: str) -> str | None:
    """The zoneinfo name for a CRM's zone text, or None when there is none to be had."""
    text = text.strip()
    if not text:
        return None
    offset = _OFFSET.match(text)
    if offset:
        sign, hours, minutes = offset.groups()
        if not sign or (int(hours) == 0 and int(minutes or 0) == 0):
            return "UTC"
        if int(minutes or 0) != 0:
            return FRACTIONAL_OFFSETS.get(f"{sign}{int(hours):02d}:{minutes}")
        if int(hours) > 14:
            return None
        return f"Etc/GMT{'-' if sign == '+' else '+'}{int(hours)}"
    return text if _known_zone(text) else None


def _known_zone(name: str) -> bool:
    """True when zoneinfo loads `name`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder, "../x" refused
        return False
    return True
