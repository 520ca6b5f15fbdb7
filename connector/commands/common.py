"""What the store's sub-commands share: where the database is, and how errors end a command.

Every error ends the command with EXIT_USAGE and one message on stderr that says what to do;
database URLs are shown with their password masked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from connector.config import Config, ConfigError, check_database_url
from connector.store import migrate
from connector.store.db import Store

EXIT_USAGE = 2
T = TypeVar("T")


class CommandError(Exception):
    """A command cannot go on; the message says what to do."""


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="the database (e.g. sqlite:///instance/dealradar.db or postgresql://...); "
        "default: DATABASE_URL from the environment, read with the rest of the configuration",
    )


def database_url(args: argparse.Namespace) -> str:
    """--database-url, else the configuration's; CommandError if neither can be had."""
    if args.database_url:
        url = args.database_url
    else:
        try:
            url = Config.from_env(require_keys=False).database_url
        except ConfigError as exc:
            # The configuration is read whole: only an error about the database has this way out.
            about_it = "DATABASE_URL" in str(exc)
            hint = "\nOr give the database with --database-url URL." if about_it else ""
            raise CommandError(f"{exc}{hint}") from None
    try:
        make_url(url)
    except ArgumentError:
        raise CommandError(
            "the database URL is not a URL: give one like sqlite:///instance/dealradar.db "
            "or postgresql://user@host/dbname"
        ) from None
    try:
        return check_database_url(url, "--database-url" if args.database_url else "DATABASE_URL")
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def open_store(url: str) -> Store:
    """The store, once its schema is known to be the one this code expects."""
    try:
        revision = migrate.current(url)
    except DBAPIError as exc:
        raise database_problem(url, exc) from None
    head = migrate.head()
    if revision is None:
        raise CommandError(
            f"the database at {masked(url)} has no tables yet: run `dealradar db upgrade` first"
        )
    if revision != head:
        raise CommandError(
            f"the database at {masked(url)} is at revision {revision}, this version needs "
            f"{head}: run `dealradar db upgrade`"
        )
    return Store(url)


def in_store(args: argparse.Namespace, work: Callable[[Store], T]) -> T:
    """`work` done on the command's database (its schema checked first), then closed; a
    database error becomes a CommandError saying what to check."""
    url = database_url(args)
    store = open_store(url)
    try:
        return work(store)
    except DBAPIError as exc:
        raise database_problem(url, exc) from None
    finally:
        store.dispose()


def masked(url: str) -> str:
    """The URL as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def database_problem(url: str, exc: DBAPIError) -> CommandError:
    """A database error as a message: the driver's first line, never the statement's values."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return CommandError(
        f"the database at {masked(url)} failed: {detail}\n"
        "Check that it is running and that the URL (DATABASE_URL or --database-url) is right."
    )


def fail(command: str, message: str) -> int:
    print(f"dealradar {command}: {message}", file=sys.stderr)
    return EXIT_USAGE
