"""`dealradar db upgrade` and `dealradar db current`: the database schema (Alembic migrations);
`dealradar db rotate-secrets`: every stored secret re-encrypted under the newest key.

`upgrade` is safe to run on every deploy: on an up-to-date database it does nothing.
Errors exit with status 2 and a message on stderr.
"""

from __future__ import annotations

import argparse
import sys

from alembic.util import CommandError as MigrationError
from sqlalchemy.exc import DBAPIError

from connector.commands.common import (
    CommandError,
    add_database_option,
    database_problem,
    database_url,
    fail,
    in_store,
    masked,
)
from connector.config import Config
from connector.store import migrate
from connector.store.rotation import rotate_secrets
from connector.store.secrets import TokenBox


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
    rot = actions.add_parser(
        "rotate-secrets",
        help="re-encrypt every stored secret under the newest key",
        description="Re-encrypt every tenant's stored tokens and secrets (CRM tokens, Slack "
        "webhooks, hook and generic-event signing secrets) under the first key of "
        "DEALRADAR_SECRET_KEYS. To rotate: put the new key first, restart, run this, then "
        "remove the old key. Safe to run again; workers may run meanwhile.",
    )
    add_database_option(rot)
    rot.set_defaults(run=run_rotate)


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


def run_rotate(args: argparse.Namespace) -> int:
    config = Config.from_env()  # without keys: a ConfigError saying how to make one (cli)
    box = TokenBox(config.secret_keys)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"{done}/{total} tenants", file=sys.stderr, flush=True)

    try:
        rotated = in_store(args, lambda store: rotate_secrets(store, box, progress))
    except CommandError as exc:
        return fail("db rotate-secrets", str(exc))
    print(f"re-encrypted under the newest key: {rotated.credentials} credentials, "
          f"{rotated.hooks} hook secrets")  # fmt: skip
    if rotated.unreadable:
        for what in rotated.unreadable:
            print(f"  not readable with any key: {what}; {_remedy(what)}", file=sys.stderr)
        count = len(rotated.unreadable)
        return fail(
            "db rotate-secrets",
            f"{count} {'secret' if count == 1 else 'secrets'} no key in DEALRADAR_SECRET_KEYS "
            "opens: keep the old keys until each is replaced as said above",
        )
    print("the older keys can now be removed from DEALRADAR_SECRET_KEYS")
    return 0


def _remedy(what: str) -> str:
    """How the admin replaces one unreadable secret (named as rotation.Rotated names them)."""
    if "credential 'oauth'" in what:
        return "reinstall the app from the tenant's CRM (a Sell token: tenants add --token-stdin)"
    if "credential 'webhook'" in what:
        return "make a new one with `dealradar tenants webhook-secret` and give it to the sender"
    if "credential 'slack:" in what:
        return "add the Slack webhook again (PUT /api/v1/slack-webhooks/<name>)"
    return "subscribe the hook again (POST /api/v1/hooks) and delete the old one"
