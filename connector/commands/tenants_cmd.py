"""`dealradar tenants add|list|status|webhook-secret|api-key`: the CRM accounts using Deal
Radar, their pipelines and their API keys.

`add` prints the new tenant's API key, the one time it is ever shown (only its hash is kept);
`api-key issue` gives a tenant another (a lost one cannot be shown again), `api-key revoke`
stops one working, `api-key list` tells them apart by prefix and label.
A Zendesk Sell account may be added with a personal access token instead of the OAuth install
(`--token-stdin`: the token is read from standard input, never from the command line, checked
against Sell, which also names the account, and stored encrypted like OAuth tokens); its setup
is enqueued at once when Redis answers, else by the next `dealradar cron` tick. Given for an
account that has a tenant already, the token replaces that tenant's (one Sell refused, which
suspended it: the suspension's reason says to do this) and the tenant is active again.
Errors exit with status 2 and a message on stderr; nothing is printed to stdout then.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError

from adapters.errors import AuthExpired, CrmError, PermissionDenied
from adapters.sell import client as sell_client
from adapters.sell import oauth as sell_oauth
from adapters.standard_webhooks import new_secret
from connector import queues
from connector.commands.common import (
    CommandError,
    add_database_option,
    fail,
    in_store,
)
from connector.config import Config, ConfigError
from connector.store.credentials import OAUTH, WEBHOOK_SECRET, load_tokens, save_tokens
from connector.store.db import Store
from connector.store.models import ApiKey, Tenant
from connector.store.secrets import SecretError, TokenBox
from connector.store.status import describe, tenant_status
from connector.store.tenants import (
    CRMS,
    TenantError,
    TenantExists,
    create_tenant,
    current_settings,
    find_tenant,
    get_tenant,
    issue_api_key,
    keys_refused,
    keys_refused_because,
    list_api_keys,
    list_tenants,
    revoke_api_key,
    set_status,
    uninstall_tenant,
)
from connector.store.times import from_db
from engine.settings import LOCALES

COLUMNS = ("id", "crm", "account", "name", "timezone", "locale", "status")
KEY_COLUMNS = ("id", "prefix", "label", "created", "last_used", "revoked")


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
        metavar="ID",
        help="the CRM account: HubSpot portal id, Salesforce org id (15 or 18 characters), "
        "Sell account id (required, except with --token-stdin: Sell names the account)",
    )
    add.add_argument(
        "--token-stdin",
        action="store_true",
        help="Zendesk Sell only: read a personal access token from standard input (Sell > "
        "Settings > Integrations > OAuth > Access tokens) and store it encrypted (needs "
        "DEALRADAR_SECRET_KEYS; SELL_API_URL if not Sell's own API); for an account that has "
        "a tenant already, replaces its token (one Sell refused) and makes it active again",
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
    gone = actions.add_parser(
        "uninstall",
        help="stop a tenant for good: its tokens and secrets deleted, its API keys refused",
        description="Mark a tenant uninstalled (a customer who left, an app removed from the "
        "CRM): its CRM tokens, signing secret and Slack webhooks are deleted, its REST hooks "
        "unsubscribed with their secrets (no delivery already queued goes out), its API keys "
        "refused and the workers leave it alone. Its evaluations stay. Installing the app again "
        "from the CRM account makes it active again, with new tokens; its API keys work again "
        "(revoke them with `tenants api-key revoke` if they should not); its hooks must be "
        "subscribed again.",
    )
    gone.add_argument("tenant_id", metavar="TENANT_ID")
    gone.add_argument(
        "--reason", default="uninstalled by an operator", metavar="R", help="kept on the tenant"
    )
    add_database_option(gone)
    gone.set_defaults(run=run_uninstall)
    _register_api_key(actions)


def _register_api_key(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "api-key",
        help="issue, list and revoke a tenant's API keys",
        description="A tenant's API keys (`Authorization: Bearer <key>` on /api/v1). Only a "
        "key's hash is stored: a lost key cannot be shown again, issue another and revoke it.",
    )
    keys = p.add_subparsers(dest="api_key_command", metavar="ACTION", required=True)
    issue = keys.add_parser(
        "issue",
        help="issue a new API key and print it (shown once)",
        description="Issue a new API key for the tenant and print it, the one time it is shown. "
        "The tenant's other keys keep working until revoked.",
    )
    issue.add_argument("tenant_id", metavar="TENANT_ID")
    issue.add_argument(
        "--label", default="", metavar="L", help="what the key is for, shown by `api-key list`"
    )
    ls = keys.add_parser(
        "list",
        help="print the tenant's keys: ids, prefixes, labels, dates (never the keys)",
        description="Print the tenant's API keys, revoked ones included: id, the first "
        "characters of the key, label, creation, last use (to the minute) and revocation.",
    )
    ls.add_argument("tenant_id", metavar="TENANT_ID")
    revoke = keys.add_parser(
        "revoke",
        help="revoke one of the tenant's keys: it stops working at once",
        description="Revoke an API key by its id (from `dealradar tenants api-key list`): "
        "requests with it are refused from now on. Revoking it again does nothing.",
    )
    revoke.add_argument("tenant_id", metavar="TENANT_ID")
    revoke.add_argument("key_id", metavar="KEY_ID")
    for parser, run in ((issue, run_key_issue), (ls, run_key_list), (revoke, run_key_revoke)):
        add_database_option(parser)
        parser.set_defaults(run=run)


def run_add(args: argparse.Namespace) -> int:
    personal: _PersonalToken | None = None
    try:
        if args.token_stdin:
            personal = _personal_token(args)
            args.account_id = args.account_id or personal.account.id
        elif not args.account_id:
            raise CommandError("give the CRM account with --account-id ID")
        now = datetime.now(UTC)
        tenant, key = in_store(args, lambda store: _add(store, args, personal, now))
    except (CommandError, TenantError) as exc:
        return fail("tenants add", str(exc))
    if personal is not None and key is None:
        _print_replaced(tenant, personal)
        return 0
    print(f"tenant {tenant.id} added for {tenant.crm} account {tenant.account_id}")
    print(f"API key: {key}")
    print("This API key will not be shown again: store it now (only its hash is kept).")
    if personal is not None:
        print("personal access token stored encrypted; " + _request_setup(personal, tenant.id))
    return 0


def _add(
    store: Store, args: argparse.Namespace, personal: _PersonalToken | None, now: datetime
) -> tuple[Tenant, str | None]:
    """The new tenant and its first API key; for a personal token of a Sell account that has a
    tenant already, that tenant (as it was) with its token replaced, and no key."""
    try:
        tenant, key = create_tenant(
            store,
            crm=args.crm,
            account_id=args.account_id,
            name=args.name or (personal.account.name if personal else ""),
            timezone=args.timezone,
            locale=args.locale,
            now=now,
        )
    except TenantExists:
        if personal is None:
            raise
        return _replace_token(store, personal, args.account_id, now), None
    if personal is not None:
        save_tokens(store, personal.box, tenant.id, personal.tokens, None, now)
    return tenant, key


def _replace_token(
    store: Store, personal: _PersonalToken, account_id: str, now: datetime
) -> Tenant:
    """The new token stored over the one Sell refused, and the tenant active again. A tenant
    installed with OAuth keeps its tokens: a reinstall renews those."""
    tenant = find_tenant(store, "sell", account_id)
    assert tenant is not None  # create_tenant has just found it
    if _has_oauth_tokens(store, personal.box, tenant.id):
        raise CommandError(
            f"Sell account {account_id} has tenant {tenant.id}, installed with OAuth: install "
            "Deal Radar again from PUBLIC_URL/install/sell (the tenant and its keys are kept)"
        )
    save_tokens(store, personal.box, tenant.id, personal.tokens, None, now)
    if tenant.status != "active":
        set_status(store, tenant.id, "active", "", now)
    return tenant


def _has_oauth_tokens(store: Store, box: TokenBox, tenant_id: str) -> bool:
    try:
        stored = load_tokens(store, box, tenant_id)
    except SecretError:
        return False  # tokens no configured key opens are of no use: replaced
    return stored is not None and not stored.data.get("personal")


def _print_replaced(tenant: Tenant, personal: _PersonalToken) -> None:
    again = "" if tenant.status == "active" else f"; it was {tenant.status}, it is active again"
    print(f"tenant {tenant.id} of sell account {tenant.account_id}: personal access token "
          f"replaced{again}")  # fmt: skip
    print(f"No new API key: its keys still work (`dealradar tenants api-key list {tenant.id}`).")
    print("personal access token stored encrypted; " + _request_setup(personal, tenant.id))


class _PersonalToken:
    def __init__(self, tokens: dict, account: sell_oauth.Account, box: TokenBox, redis_url: str):
        self.tokens, self.account, self.box, self.redis_url = tokens, account, box, redis_url


def _personal_token(args: argparse.Namespace) -> _PersonalToken:
    """The token on standard input, checked: its shape, then with Sell (which names its
    account; an --account-id given must be that one)."""
    if args.crm != "sell":
        raise CommandError("--token-stdin is for Zendesk Sell personal access tokens (--crm sell)")
    try:
        config = Config.from_env()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        tokens = sell_oauth.personal_tokens(sys.stdin.readline())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    host = config.crm.get("SELL_API_URL", sell_client.API_HOST)
    try:
        account = sell_oauth.account(tokens["access_token"], host=host)
    except (AuthExpired, PermissionDenied) as exc:
        raise CommandError(
            f"Zendesk Sell refused the token ({exc}); make a new one in Sell and try again"
        ) from None
    except CrmError as exc:
        raise CommandError(f"Zendesk Sell at {host} did not confirm the token ({exc})") from None
    if args.account_id and args.account_id.strip() != account.id:
        raise CommandError(
            f"the token belongs to Sell account {account.id}, not {args.account_id}: give the "
            "token of that account, or leave --account-id out"
        )
    return _PersonalToken(tokens, account, TokenBox(config.secret_keys), config.redis_url)


def _request_setup(personal: _PersonalToken, tenant_id: str) -> str:
    try:
        redis = Redis.from_url(personal.redis_url, socket_connect_timeout=2, socket_timeout=2)
        # A new token: the refusals counted against the old one must not suspend it again.
        queues.forget_tenant_failures(redis, tenant_id)
        queues.request_setup(redis, tenant_id)
    except RedisError:
        return (
            "its setup starts at the next `dealradar cron` tick (Redis did not answer; if this "
            "replaced a refused token, run it again once Redis answers, or the refusals counted "
            "against the old token may suspend the tenant again)"
        )
    return "its setup is queued (a `dealradar worker` runs it; follow `tenants status`)"


def run_list(args: argparse.Namespace) -> int:
    def rows_of(store: Store) -> list[tuple[str, ...]]:
        # The zone and locale in force: the saved settings' when they set them, else the row's.
        rows = []
        for t in list_tenants(store):
            settings = current_settings(store, t.id)
            rows.append(
                (t.id, t.crm, t.account_id, t.name, settings.timezone, settings.locale, t.status)
            )
        return rows

    try:
        rows = in_store(args, rows_of)
    except CommandError as exc:
        return fail("tenants list", str(exc))
    if not rows:
        print("no tenants yet: add one with `dealradar tenants add --crm CRM --account-id ID`")
        return 0
    print(render_table(COLUMNS, rows), end="")
    return 0


def run_status(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    def reports_of(store: Store) -> list[list[str]]:
        ids = args.tenant_ids or [t.id for t in list_tenants(store)]
        return [describe(tenant_status(store, tenant_id, now)) for tenant_id in ids]

    try:
        reports = in_store(args, reports_of)
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

    def issue(store: Store) -> None:
        get_tenant(store, args.tenant_id)
        _check_keys(store, box, args.tenant_id)
        save_tokens(
            store, box, args.tenant_id, {"secret": value}, None, datetime.now(UTC),
            name=WEBHOOK_SECRET,
        )  # fmt: skip

    try:
        in_store(args, issue)
    except (CommandError, TenantError) as exc:
        return fail("tenants webhook-secret", str(exc))
    print(f"signing secret for POST /webhooks/events/{args.tenant_id}: {value}")
    print("It will not be shown again: store it in the sending system now.")
    return 0


def _check_keys(store: Store, box: TokenBox, tenant_id: str) -> None:
    """Refuse keys that do not open what the tenant already has sealed: they are not the keys
    the app runs with, and a secret sealed under them would be unreadable to it (every signed
    event answered 503)."""
    for name in (OAUTH, WEBHOOK_SECRET):
        try:
            load_tokens(store, box, tenant_id, name=name)
        except SecretError:
            raise CommandError(
                "DEALRADAR_SECRET_KEYS does not open this tenant's stored secrets: give the keys "
                "the web app runs with (make run's are in instance/sandbox/secrets.json); "
                "nothing was changed"
            ) from None


def run_uninstall(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    def uninstall(store: Store) -> int:
        get_tenant(store, args.tenant_id)
        return uninstall_tenant(store, args.tenant_id, args.reason, now)

    try:
        deleted = in_store(args, uninstall)
    except (CommandError, TenantError) as exc:
        return fail("tenants uninstall", str(exc))
    print(f"tenant {args.tenant_id} uninstalled: {deleted} stored secrets deleted, its API keys "
          "refused; installing the app again from the CRM account brings it back")  # fmt: skip
    return 0


def run_key_issue(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    def issue(store: Store) -> str:
        tenant = get_tenant(store, args.tenant_id)
        if keys_refused(tenant):  # the key shown would be refused like the others: say why
            raise CommandError(f"no API key issued: {keys_refused_because(tenant)}")
        return issue_api_key(store, args.tenant_id, args.label, now)

    try:
        key = in_store(args, issue)
    except (CommandError, TenantError) as exc:
        return fail("tenants api-key issue", str(exc))
    print(f"API key issued for tenant {args.tenant_id}")
    print(f"API key: {key}")
    print("This API key will not be shown again: store it now (only its hash is kept).")
    return 0


def run_key_list(args: argparse.Namespace) -> int:
    def keys(store: Store) -> list[ApiKey]:
        get_tenant(store, args.tenant_id)  # an unknown tenant is an error, not "no keys"
        return list_api_keys(store, args.tenant_id)

    try:
        rows = [_key_row(key) for key in in_store(args, keys)]
    except (CommandError, TenantError) as exc:
        return fail("tenants api-key list", str(exc))
    if not rows:
        print(f"no API keys: issue one with `dealradar tenants api-key issue {args.tenant_id}`")
        return 0
    print(render_table(KEY_COLUMNS, rows), end="")
    return 0


def _key_row(key: ApiKey) -> tuple[str, ...]:
    def at(value: datetime | None, none: str) -> str:
        when = from_db(value)
        return when.isoformat(timespec="minutes") if when else none

    return (key.id, key.prefix + "...", key.label or "-", at(key.created_at, "-"),
            at(key.last_used_at, "never"), at(key.revoked_at, "no"))  # fmt: skip


def run_key_revoke(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    def revoke(store: Store) -> tuple[bool, int]:
        get_tenant(store, args.tenant_id)
        done = revoke_api_key(store, args.tenant_id, args.key_id, now)
        live = [k for k in list_api_keys(store, args.tenant_id) if k.revoked_at is None]
        return done, len(live)

    try:
        done, live = in_store(args, revoke)
    except (CommandError, TenantError) as exc:
        return fail("tenants api-key revoke", str(exc))
    print(f"API key {args.key_id} " + ("revoked" if done else "was revoked already"))
    if not live:
        print(f"tenant {args.tenant_id} has no live API key left: issue one with "
              f"`dealradar tenants api-key issue {args.tenant_id}`")  # fmt: skip
    return 0


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns, a rule under the headers."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=True)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)]) + "\n"
