"""Reading the loosely typed values CRMs send: text and numbers. Pure.

A CRM sends a number as a number, a string ("1200.50", HubSpot's every property) or nothing, and
text with stray spaces; a mapping reads each field through these so that an odd value reads as
missing rather than failing the whole deal.
"""

from __future__ import annotations

import math
from typing import Any

from engine.text import storable


def as_text(value: Any) -> str:
    """The value as stripped text every store takes (engine.text.storable); "" for None."""
    if value is None:
        return ""
    return storable(value.strip()) if isinstance(value, str) else str(value)


def as_number(value: Any) -> float | None:
    """A finite number from a number or its text, else None (booleans are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
