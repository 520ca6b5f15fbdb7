"""Instants in and out of the database: always aware, always UTC.

SQLite keeps no offset (SQLAlchemy writes the wall-clock digits and reads back a naive value), so
every instant is converted to UTC before it is written and read back as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(moment: datetime) -> datetime:
    """`moment` in UTC, for storage; a naive datetime is a bug (whose clock?), so it raises."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be stored: {moment!r}; pass an aware one")
    return moment.astimezone(UTC)


def from_db(value: datetime | None) -> datetime | None:
    """A stored instant as an aware UTC datetime (SQLite hands them back naive)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The real clock, for the processes' edges (web, workers); the engine is given `now`."""
    return datetime.now(UTC)
