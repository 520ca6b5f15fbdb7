"""`dealradar tenants add|list|status`: the CRM accounts using Deal Radar, and their pipelines.

`add` prints the new tenant's API key, the one time it is ever shown (only its hash is kept).
Errors exit with status 2 and a message on stderr; nothing is printed to stdout then.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from adapters.standard_webhooks import new_secret
from connector.commands.common import (
    CommandError,
    add_database_option,
    database_problem,
    database_url,
    fail,
    masked,
)
from connector.config import Config
from connector.store import migrate
from connector.store.credentials import WEBHOOK_SECRET, save_tokens
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.status import describe, tenant_status
from connector.store.tenants import CRMS, TenantError, create_tenant, get_tenant, list_tenants
from engine.settings import LOCALES

COLUMNS = ("id", "crm", "account", "name", "timezone", "locale", "status")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tenants",
        help="add and list tenants (the CRM accounts using Deal Radar)",
        description="Tenants are the CRM accounts (HubSpot portals, Salesforce orgs, Sell "
        "accounts) that use Deal Radar; each has its own settings, data and API keys.",
    )
    actions = p.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add a tenant and print its API key (shown once)",
        description="Add a tenant for a CRM account and print its id and first API key. The key "
        "is shown this once: only its hash is stored.",
    )
    add.add_argument("--crm", required=True, choices=CRMS, help="the tenant's CRM")
    add.add_argument(
        "--account-id",
        required=True,
        metavar="ID",
        help="the CRM account: HubSpot portal id, Salesforce org id (15 or 18 characters), "
        "Sell account id",
    )
    add.add_argument("--name", default="", metavar="N", help="a name to tell tenants apart")
    add.add_argument(
        "--timezone",
        default="UTC",
        metavar="TZ",
        help="IANA time zone for days and the daily sweep, e.g. Europe/Paris (default: UTC)",
    )
    add.add_argument(
        "--locale", default="en", choices=LOCALES, help="language of alert messages (default: en)"
    )
    add_database_option(add)
    add.set_defaults(run=run_add)
    ls = actions.add_parser(
        "list", help="print every tenant as a table", description="Print every tenant."
    )
    add_database_option(ls)
    ls.set_defaults(run=run_list)
    status = actions.add_parser(
        "status",
        help="show each tenant's pipeline: sweep progress, waiting work, why it stopped",
        description="Show, per tenant, its status (and why it is suspended), the progress of "
        "its last daily sweep, the events and effects still waiting, and its sync cursors.",
    )
    status.add_argument("tenant_ids", nargs="*", metavar="TENANT_ID", help="default: all")
    add_database_option(status)
    status.set_defaults(run=run_status)
    secret = actions.add_parser(
        "webhook-secret",
        help="issue (or rotate) a tenant's signing secret for generic events; shown once",
        description="Issue a new signing secret for POST /webhooks/events/<tenant id> (Standard "
        "Webhooks: webhook-id, webhook-timestamp, webhook-signature). The previous secret stops "
        "working. Needs DEALRADAR_SECRET_KEYS: the secret is stored encrypted.",
    )
    secret.add_argument("tenant_id", metavar="TENANT_ID")
    add_database_option(secret)
    secret.set_defaults(run=run_webhook_secret)


def run_add(args: argparse.Namespace) -> int:
    try:
        url = database_url(args)
        store = _open(url)
        try:
            tenant, key = create_tenant(
                store,
                crm=args.crm,
                account_id=args.account_id,
                name=args.name,
                timezone=args.timezone,
                locale=args.locale,
                now=datetime.now(UTC),
            )
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
        finally:
            store.dispose()
    except (CommandError, TenantError) as exc:
        return fail("tenants add", str(exc))
    print(f"tenant {tenant.id} added for {tenant.crm} account {tenant.account_id}")
    print(f"API key: {key}")
    print("This API key will not be shown again: store it now (only its hash is kept).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        url = database_url(args)
        store = _open(url)
        try:
            tenants = list_tenants(store)
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
        finally:
            store.dispose()
    except CommandError as exc:
        return fail("tenants list", str(exc))
    if not tenants:
        print("no tenants yet: add one with `dealradar tenants add --crm CRM --account-id ID`")
        return 0
    rows = [(t.id, t.crm, t.account_id, t.name, t.timezone, t.locale, t.status) for t in tenants]
    print(render_table(COLUMNS, rows), end="")
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        url = database_url(args)
        store = _open(url)
        try:
            now = datetime.now(UTC)
            ids = args.tenant_ids or [t.id for t in list_tenants(store)]
            reports = [describe(tenant_status(store, tenant_id, now)) for tenant_id in ids]
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
        finally:
            store.dispose()
    except (CommandError, TenantError) as exc:
        return fail("tenants status", str(exc))
    if not reports:
        print("no tenants yet: add one with `dealradar tenants add --crm CRM --account-id ID`")
    for lines in reports:
        print("\n".join(lines))
    return 0


def run_webhook_secret(args: argparse.Namespace) -> int:
    box = TokenBox(Config.from_env().secret_keys)  # a ConfigError ends the command (cli)
    value = new_secret()
    try:
        url = database_url(args)
        store = _open(url)
        try:
            get_tenant(store, args.tenant_id)
            save_tokens(
                store, box, args.tenant_id, {"secret": value}, None, datetime.now(UTC),
                name=WEBHOOK_SECRET,
            )  # fmt: skip
        except DBAPIError as exc:
            raise database_problem(url, exc) from None
        finally:
            store.dispose()
    except (CommandError, TenantError) as exc:
        return fail("tenants webhook-secret", str(exc))
    print(f"signing secret for POST /webhooks/events/{args.tenant_id}: {value}")
    print("It will not be shown again: store it in the sending system now.")
    return 0


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns, a rule under the headers."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=True)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)]) + "\n"


def _open(url: str) -> Store:
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
