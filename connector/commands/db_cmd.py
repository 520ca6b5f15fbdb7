"""`dealradar db upgrade` and `dealradar db current`: the database schema (Alembic migrations).

`upgrade` is safe to run on every deploy: on an up-to-date database it does nothing.
Errors exit with status 2 and a message on stderr.
"""

from __future__ import annotations

import argparse

from alembic.util import CommandError as MigrationError
from sqlalchemy.exc import DBAPIError

from connector.commands.common import (
    CommandError,
    add_database_option,
    database_problem,
    database_url,
    fail,
    masked,
)
from connector.store import migrate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "db",
        help="create or upgrade the database schema",
        description="Manage the database schema: Deal Radar's tables are created and changed "
        "by migrations, never by hand.",
    )
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = actions.add_parser(
        "upgrade",
        help="apply the migrations the database has not had yet",
        description="Bring the database up to the newest schema (or to --revision). Safe to run "
        "on every deploy: an up-to-date database is left as it is.",
    )
    up.add_argument("--revision", default="head", help="the revision to reach (default: head)")
    add_database_option(up)
    up.set_defaults(run=run_upgrade)
    cur = actions.add_parser(
        "current",
        help="print the revision the database is at",
        description="Print the database's schema revision, and whether it is the newest.",
    )
    add_database_option(cur)
    cur.set_defaults(run=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    try:
        url = database_url(args)
        try:
            before = migrate.current(url)
            after = migrate.upgrade(url, args.revision)
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
    except CommandError as exc:
        return fail("db upgrade", str(exc))
    except MigrationError as exc:  # an unknown --revision, mainly
        return fail("db upgrade", f"{exc}; see `dealradar db current` for where the database is")
    if before == after:
        print(f"{masked(url)}: already up to date, nothing done")
    else:
        print(f"{masked(url)}: upgraded from {before or 'an empty database'} to {after}")
    print(f"database at revision {after}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    try:
        url = database_url(args)
        try:
            revision = migrate.current(url)
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
    except CommandError as exc:
        return fail("db current", str(exc))
    head = migrate.head()
    if revision is None:
        print(f"{masked(url)}: no schema yet; run `dealradar db upgrade`")
    elif revision == head:
        print(f"database at revision {revision} (the newest)")
    else:
        print(f"database at revision {revision}; the newest is {head}: run `dealradar db upgrade`")
    return 0
