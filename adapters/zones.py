"""A CRM account's time zone as a name Python's zoneinfo loads.

HubSpot and Salesforce give IANA names. Zendesk Sell's account `timezone` is documented as
text: an IANA name in some accounts, an offset such as "UTC-06:00" in others. A whole-hour
offset reads as the matching fixed zone ("Etc/GMT+6": the tz database's sign is inverted), so
days still end at the account's midnight; anything else is unknown, and the caller keeps the
tenant's own zone and says so.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
        if int(minutes or 0) != 0 or int(hours) > 14:
            return None  # half-hour offsets have no fixed Etc zone
        return f"Etc/GMT{'-' if sign == '+' else '+'}{int(hours)}"
    return text if _known_zone(text) else None


def _known_zone(name: str) -> bool:
    """True when zoneinfo loads `name`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder, "../x" refused
        return False
    return True
