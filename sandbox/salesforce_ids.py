"""Salesforce record ids: 15 case-sensitive characters (a 3-character key prefix naming the
object type, then the record's number in base 62), and the 18-character case-insensitive form
that appends a checksum of the capital letters, five characters at a time."""

from __future__ import annotations

import functools
import itertools
import threading

__all__ = ["IdMaker", "normalize", "to18"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to18(id15: str) -> str:
    """Append the checksum: one character per 5-character chunk, bit i set when character i
    of the chunk is an upper-case letter."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix


@functools.lru_cache(maxsize=1 << 18)  # the same ids come back in every query and write
def normalize(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None when it is not an id at all."""
    if not isinstance(record_id, str) or not record_id.isalnum():
        return None
    if len(record_id) == 15:
        return to18(record_id)
    if len(record_id) == 18 and to18(record_id[:15]).upper() == record_id.upper():
        return to18(record_id[:15])
    return None


class IdMaker:
    """Fresh ids for one org: ``new("006")`` -> ``006Dx00000BxK2aQAF``-like ids."""

    def __init__(self, pod: str = "Dx") -> None:
        self._pod = pod
        self._counter = itertools.count(62**5 + 8_191)  # 6 base-62 digits, mixed case early
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            n = next(self._counter) * 7_919  # spread the digits so ids do not look sequential
        digits = ""
        for _ in range(12 - len(self._pod)):
            n, r = divmod(n, 62)
            digits = _BASE62[r] + digits
        return to18(prefix + self._pod + digits)
