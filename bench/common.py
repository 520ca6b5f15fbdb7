"""What the benchmarks share: a throw-away PostgreSQL schema, and which code was measured."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from connector.store.db import normalize_url

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def fresh_schema(url: str, keep: bool) -> Iterator[str]:
    """A new PostgreSQL schema, reached through the URL's search_path; dropped at the end."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        if keep:
            print(f"kept the schema {schema}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def git_revision(packages: Sequence[str], missing: str = "") -> str:
    """The checked-out commit, "+dirty" when `packages` have uncommitted changes; `missing`
    without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", *packages],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return missing
    return head + ("+dirty" if dirty else "")
