"""Tenants, their API keys and their settings documents.

Every function takes the Store and explicit ids, and the current time as `now` (aware). A tenant
is created with its first API key in one transaction; the key's plaintext is returned once and
only its SHA-256 is kept. Settings are append-only versions: every save adds a row, the latest
one is in force, and the history is what an admin sees.

Error policy: bad input raises InvalidTenant (the message names the field and what is allowed),
a missing tenant UnknownTenant, a duplicate TenantExists; settings errors are engine.settings'
SettingsError, unchanged. Database errors other than the ones named here propagate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.salesforce import mapping as salesforce_mapping
from connector.store import work
from connector.store.db import Store
from connector.store.models import ApiKey, Credential, Hook, OutboxEffect, SettingsVersion, Tenant
from connector.store.times import from_db, to_db
from engine.settings import LOCALES, Settings, SettingsError, load_settings, rename_users

CRMS = ("hubspot", "salesforce", "sell", "test")
DEFAULT_TIMEZONE = "UTC"
"""A tenant's zone until someone (an admin, or its CRM account at install) says otherwise."""
STATUSES = ("active", "suspended", "uninstalled")
API_KEY_PREFIX = "drk_"
API_KEY_RANDOM_BYTES = 30
"""30 random bytes are 40 url-safe base64 characters after the prefix."""
API_KEY_LENGTH = len(API_KEY_PREFIX) + 40
API_KEY_DISPLAY = 8
"""Characters of a key kept in clear (`drk_` and four more) so an admin can tell keys apart."""
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is rewritten at most this often, so that API reads do not each cost a write."""
SETTINGS_SAVE_ATTEMPTS = 2
"""A save that loses the race for a version number is retried once with the next number."""
SALESFORCE_PREFIX = 15
"""Salesforce ids come in a case-sensitive 15-character form and an 18-character form."""
_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
USER_IDS: dict[str, Callable[[str], str]] = {"salesforce": salesforce_mapping.user_id}
"""CRMs whose user ids an admin may write in more than one form: the form the CRM's API sends
for what the admin wrote, ValueError for what can be no user id. Other CRMs' ids are compared as
written."""
_MAX_ACCOUNT_ID: int = Tenant.__table__.c.account_id.type.length  # type: ignore[attr-defined]
_NUMBER = re.compile(r"[1-9][0-9]*")
NUMBERED_ACCOUNTS: dict[str, str] = {
    "hubspot": "HubSpot portal id: give the portal's number (its Hub ID, in HubSpot's account "
    "menu), e.g. 1234567",
    "sell": "Zendesk Sell account id: give the account's number (the `id` Sell's "
    "GET /v2/accounts/self answers), e.g. 7000001",
}
"""CRMs whose accounts are positive integers, written as their API sends them (HubSpot's
webhooks and token introspection, Sell's accounts/self): under any other spelling (a domain,
leading zeros) no webhook or reinstall would ever find the tenant. What to give instead."""


class TenantError(Exception):
    """A tenant operation that cannot be done; the message says why and what to do."""


class InvalidTenant(TenantError, ValueError):
    """A tenant field (or a key label, a settings author) with a value that is not allowed."""


class TenantExists(TenantError):
    """A tenant for this CRM account exists already."""


class UnknownTenant(TenantError):
    """No tenant has this id."""


class UnknownApiKey(TenantError):
    """The tenant has no API key with this id."""


class SettingsConflict(TenantError):
    """Concurrent saves kept taking the next settings version; the save can be retried."""


# --- tenants ------------------------------------------------------------------------------------


def create_tenant(
    store: Store,
    *,
    crm: str,
    account_id: str,
    name: str = "",
    timezone: str = DEFAULT_TIMEZONE,
    locale: str = "en",
    now: datetime,
) -> tuple[Tenant, str]:
    """Create a tenant and its first API key; returns the tenant and the key's plaintext, once.

    Raises InvalidTenant for a bad field and TenantExists when the CRM account has a tenant.
    """
    crm, account_id = _valid_account(crm, account_id)
    name = _fits("name", name.strip(), Tenant.name)
    _valid_timezone(timezone)
    _valid_locale(locale)
    at = to_db(now)
    tenant = Tenant(
        id=uuid.uuid4().hex,
        crm=crm,
        account_id=account_id,
        name=name,
        timezone=timezone,
        locale=locale,
        status="active",
        status_reason=None,
        created_at=at,
        updated_at=at,
    )
    try:
        # The tenant's own session: the tenant row and its first key commit together or not at all.
        with store.tenant(tenant.id) as s:
            if _find(s, crm, account_id) is not None:
                raise _exists(crm, account_id)
            s.add(tenant)
            s.flush()
            key = _add_api_key(s, tenant.id, "initial", at)
    except IntegrityError:
        # Lost a race with a concurrent install of the same account.
        if find_tenant(store, crm, account_id) is not None:
            raise _exists(crm, account_id) from None
        raise
    return tenant, key


def find_tenant(store: Store, crm: str, account_id: str) -> Tenant | None:
    """The tenant of a CRM account, or None (webhooks from unknown accounts are acknowledged).

    Salesforce org ids match in their 15- or 18-character forms alike (first 15 characters,
    case-sensitive).
    """
    with store.global_session() as s:
        return _find(s, crm, account_id.strip())


class AccountTenants:
    """The tenant id of a CRM account, remembered for `ttl` seconds, for the webhook receiver.

    Every delivery names its account; looking it up costs the receiver more than storing the
    events does. Only found tenants are remembered: a portal installing right now must not
    have its first webhooks dropped as "unknown" for a minute. An uninstalled tenant counts as
    unknown. A tenant deleted (or uninstalled) meanwhile is
    seen within `ttl`; until then its events are stored, never worked on, and the hourly purge
    deletes them (the inbox has no foreign key to refuse them: migration 0010).
    """

    def __init__(
        self, store: Store, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._known: dict[tuple[str, str], tuple[str, float]] = {}

    def find(self, crm: str, account_id: str) -> str | None:
        key = (crm, account_id)
        known = self._known.get(key)
        if known is not None and self.clock() < known[1]:
            return known[0]
        tenant = find_tenant(self.store, crm, account_id)
        if tenant is None or tenant.status == "uninstalled":
            # A customer who left but whose CRM still sends: acknowledged like an unknown
            # account, not stored (nothing will ever work on it; a reinstall syncs anew).
            self._known.pop(key, None)
            return None
        self._known[key] = (tenant.id, self.clock() + self.ttl)
        return tenant.id


def get_tenant(store: Store, tenant_id: str) -> Tenant:
    """The tenant with this id; raises UnknownTenant."""
    with store.global_session() as s:
        return _require(s, tenant_id)


def list_tenants(store: Store, *, status: str | None = None) -> list[Tenant]:
    """Every tenant (optionally of one status), oldest first."""
    query = select(Tenant).order_by(Tenant.created_at, Tenant.id)
    if status is not None:
        _valid_status(status)
        query = query.where(Tenant.status == status)
    with store.global_session() as s:
        return list(s.scalars(query))


def set_status(store: Store, tenant_id: str, status: str, reason: str, now: datetime) -> Tenant:
    """Mark a tenant active, suspended (a permanent CRM error: say which) or uninstalled."""
    _valid_status(status)
    with store.global_session() as s:
        tenant = _require(s, tenant_id)
        tenant.status = status
        tenant.status_reason = reason or None
        tenant.updated_at = to_db(now)
    return tenant


def uninstall_tenant(store: Store, tenant_id: str, reason: str, now: datetime) -> int:
    """Mark the tenant uninstalled and delete what it stored to act for it (CRM tokens, signing
    secret, Slack webhooks, its REST hooks' signing secrets): its API keys are refused from now
    on (`tenant_for_key`), and its hooks are unsubscribed, so that no delivery already queued
    goes out after it left. Its outbox's waiting effects (mails, Slack posts, CRM tasks and
    write-backs held back by an outage) fail with the reason: none goes out after it left, nor
    stale after a reinstall. So does a message being sent at that moment (`sending`), which
    its worker then records as sent if it was, but no longer puts back for a retry
    (work.settle). Returns how many secrets were deleted."""
    set_status(store, tenant_id, "uninstalled", reason, now)
    with store.tenant(tenant_id) as s:
        fail_waiting_effects(s, f"tenant uninstalled: {reason}", now)
        hooks = s.execute(
            update(Hook)
            .where(Hook.secret != "")
            .values(status="unsubscribed", status_reason=f"tenant uninstalled: {reason}",
                    secret="", updated_at=to_db(now))
        ).rowcount  # fmt: skip
        return s.execute(delete(Credential)).rowcount + hooks


def fail_waiting_effects(session: Session, reason: str, now: datetime) -> int:
    """Fail the session tenant's outbox effects that wait (or are being sent) with `reason`, as
    of `now`: an uninstalled tenant's; how many."""
    return session.execute(
        update(OutboxEffect)
        .where(OutboxEffect.status.in_(("pending", "sending")))
        .values(last_error=reason, **work.failed_at(now))
    ).rowcount


def adopt_timezone(store: Store, tenant_id: str, timezone: str, now: datetime) -> bool:
    """Put the tenant on its CRM account's time zone unless someone chose one: only a tenant
    still on DEFAULT_TIMEZONE whose saved settings set no `timezone` takes it. Returns whether
    it did. Raises InvalidTenant for a name zoneinfo cannot load."""
    _valid_timezone(timezone)
    with store.tenant(tenant_id) as s:
        tenant = _require(s, tenant_id)
        document = _latest_document(s, tenant_id)
        if tenant.timezone != DEFAULT_TIMEZONE or (document or {}).get("timezone"):
            return False
        tenant.timezone = timezone
        tenant.updated_at = to_db(now)
    return True


# --- API keys -----------------------------------------------------------------------------------


def issue_api_key(store: Store, tenant_id: str, label: str, now: datetime) -> str:
    """A new API key for the tenant; returns its plaintext, which is not kept anywhere. Like
    the tenant's other keys, it is refused while the tenant is uninstalled (`keys_refused`)."""
    _fits("label", label, ApiKey.label)
    with store.tenant(tenant_id) as s:
        _require(s, tenant_id)
        return _add_api_key(s, tenant_id, label, to_db(now))


def keys_refused_because(tenant: Tenant) -> str:
    """Why the tenant's API keys are refused, and what makes them work again, for whoever holds
    one of them (an admin of that tenant: nothing of another tenant is told)."""
    return (
        f"tenant {tenant.id} is {tenant.status} ({tenant.status_reason or 'no reason given'}): "
        "its API keys, new ones included, are refused until Deal Radar is installed again for "
        f"its {tenant.crm} account (PUBLIC_URL/install/{tenant.crm}); the reinstall makes its "
        "keys work again"
    )


def keys_refused(tenant: Tenant) -> bool:
    """Whether the tenant refuses all its API keys (uninstalled). A suspended tenant's keys still
    work: its admin reads and fixes settings through them."""
    return tenant.status == "uninstalled"


def list_api_keys(store: Store, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, revoked ones included, oldest first (hashes and prefixes only)."""
    with store.tenant(tenant_id) as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(store: Store, tenant_id: str, key_id: str, now: datetime) -> bool:
    """Revoke one of the tenant's keys; False if it was revoked already. Raises UnknownApiKey."""
    with store.tenant(tenant_id) as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            raise UnknownApiKey(
                f"tenant {tenant_id!r} has no API key {key_id!r}: see the ids with "
                f"`dealradar tenants api-key list {tenant_id}`"
            )
        if row.revoked_at is not None:
            return False
        row.revoked_at = to_db(now)
        return True


def tenant_for_api_key(store: Store, key: str, now: datetime) -> str | None:
    """The id of the tenant a presented API key belongs to, or None.

    None for anything that is not a live key: malformed, unknown, revoked, or of an uninstalled
    tenant. Never raises on bad input, never logs the key.
    """
    at = to_db(now)
    if not _well_formed(key):
        return None
    with store.all_tenants("API key authentication: the key is what names the tenant") as s:
        row = _live_key(s, key)
        tenant = s.get(Tenant, row.tenant_id) if row is not None else None
        if row is None or tenant is None or keys_refused(tenant):
            return None
        last = from_db(row.last_used_at)
        if last is None or at - last >= LAST_USED_RESOLUTION:
            row.last_used_at = at
        return row.tenant_id


def refusing_tenant(store: Store, key: str) -> Tenant | None:
    """The tenant of a live (unrevoked) API key that tenant_for_api_key refused because the
    tenant refuses its keys (uninstalled), so that the 401 can say so; None for any other key.
    Only the key's holder learns of its own tenant."""
    if not _well_formed(key):
        return None
    with store.all_tenants("API key refusal: the key is what names the tenant") as s:
        row = _live_key(s, key)
        tenant = s.get(Tenant, row.tenant_id) if row is not None else None
        return tenant if tenant is not None and keys_refused(tenant) else None


def _well_formed(key: object) -> bool:
    return isinstance(key, str) and len(key) == API_KEY_LENGTH and key.startswith(API_KEY_PREFIX)


def _live_key(s: Session, key: str) -> ApiKey | None:
    """The unrevoked key row a well-formed key is, or None."""
    digest = _hash(key)
    row = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    # The index lookup finds the row; the constant-time compare is what decides.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return row if row.revoked_at is None else None


# --- settings -----------------------------------------------------------------------------------


def save_settings(
    store: Store,
    tenant_id: str,
    document: Mapping[str, Any],
    changed_by: str,
    now: datetime,
    comment: str = "",
    *,
    based_on: int | None = None,
) -> int:
    """Validate and save a new version of the tenant's settings; returns its version number.

    The document is saved as written. For a CRM of USER_IDS, the user ids it names must be
    that CRM's (a Salesforce tenant's: 15 or 18 characters, starting 005, the 18's suffix
    matching), each user named once (not in both forms): current_settings reads them in the
    form the CRM's API sends.

    `based_on`: the version the document was made from (0: none yet), for a change that must
    not overwrite another saved since (a patch); None saves whatever the latest is.

    Raises engine.settings.SettingsError (unchanged) for an invalid document, UnknownTenant,
    and SettingsConflict if concurrent saves took the next version twice in a row, or a
    version was saved after `based_on`.
    """
    load_settings(document)
    _fits("changed_by", changed_by, SettingsVersion.changed_by)
    rename = USER_IDS.get(get_tenant(store, tenant_id).crm)
    if rename is not None:
        _, errors = rename_users(document, rename)
        if errors:
            raise SettingsError(errors)
    # A plain JSON copy: what is stored is exactly what will be read back.
    stored = json.loads(json.dumps(dict(document)))
    at = to_db(now)
    for attempt in range(1, SETTINGS_SAVE_ATTEMPTS + 1):
        try:
            with store.tenant(tenant_id) as s:
                _require(s, tenant_id)
                version = _next_settings_version(s, tenant_id)
                if based_on is not None and version != based_on + 1:
                    raise SettingsConflict(
                        f"tenant {tenant_id!r}'s settings were saved (version {version - 1}) "
                        f"since version {based_on} was read; apply the change to the new one"
                    )
                s.add(
                    SettingsVersion(
                        tenant_id=tenant_id,
                        version=version,
                        document=stored,
                        changed_by=changed_by,
                        changed_at=at,
                        comment=comment,
                    )
                )
            return version
        except IntegrityError as exc:
            # The primary key (tenant, version) refused a concurrent writer's number.
            if attempt == SETTINGS_SAVE_ATTEMPTS:
                raise SettingsConflict(
                    f"tenant {tenant_id!r}'s settings were saved concurrently "
                    f"{SETTINGS_SAVE_ATTEMPTS} times; reload them and save again"
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _latest_document(s: Session, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's latest saved settings document, None before any is saved."""
    return s.scalar(
        select(SettingsVersion.document)
        .where(SettingsVersion.tenant_id == tenant_id)
        .order_by(SettingsVersion.version.desc())
        .limit(1)
    )


def current_settings(store: Store, tenant_id: str) -> Settings:
    """The settings in force: the latest saved document (or the defaults) resolved.

    The tenant's timezone and locale (from its tenants row) apply unless the document sets them.
    The user ids it names are in the form the CRM's API sends (USER_IDS): for Salesforce, the
    18 characters of an id written in 15, so that it matches deals' owners and the users read.
    Here rather than when saving, so that documents saved before (and any saved otherwise) are
    read so too; an id that is none is left as written, to match nothing as before.
    """
    with store.tenant(tenant_id) as s:
        tenant = _require(s, tenant_id)
        document = _latest_document(s, tenant_id)
    document = dict(document or {})
    rename = USER_IDS.get(tenant.crm)
    if rename is not None:
        document, _ = rename_users(document, rename)
    document.setdefault("timezone", tenant.timezone)
    document.setdefault("locale", tenant.locale)
    return load_settings(document)


def settings_history(store: Store, tenant_id: str) -> list[SettingsVersion]:
    """Every saved version of the tenant's settings, newest first."""
    with store.tenant(tenant_id) as s:
        return list(
            s.scalars(
                select(SettingsVersion)
                .where(SettingsVersion.tenant_id == tenant_id)
                .order_by(SettingsVersion.version.desc())
            )
        )


# --- helpers ------------------------------------------------------------------------------------


def _find(s: Session, crm: str, account_id: str) -> Tenant | None:
    query = select(Tenant).where(Tenant.crm == crm)
    if crm == "salesforce":
        # `=` is case-sensitive on both SQLite (BINARY) and PostgreSQL; LIKE would not be.
        prefix = account_id[:SALESFORCE_PREFIX]
        query = query.where(func.substr(Tenant.account_id, 1, SALESFORCE_PREFIX) == prefix)
    else:
        query = query.where(Tenant.account_id == account_id)
    return s.scalars(query.order_by(Tenant.created_at)).first()


def _require(s: Session, tenant_id: str) -> Tenant:
    tenant = s.get(Tenant, tenant_id)
    if tenant is None:
        raise UnknownTenant(f"no tenant {tenant_id!r}: list them with `dealradar tenants list`")
    return tenant


def _exists(crm: str, account_id: str) -> TenantExists:
    return TenantExists(
        f"{crm} account {account_id!r} already has a tenant: see `dealradar tenants list`"
    )


def _add_api_key(s: Session, tenant_id: str, label: str, at: datetime) -> str:
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    s.add(
        ApiKey(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            prefix=key[:API_KEY_DISPLAY],
            key_hash=_hash(key),
            label=label,
            created_at=at,
        )
    )
    return key


def _hash(key: str) -> str:
    # A plain SHA-256 is enough: the key is 240 random bits, not a password to stretch.
    return hashlib.sha256(key.encode()).hexdigest()


def _next_settings_version(s: Session, tenant_id: str) -> int:
    latest = s.scalar(
        select(func.max(SettingsVersion.version)).where(SettingsVersion.tenant_id == tenant_id)
    )
    return (latest or 0) + 1


def _valid_account(crm: str, account_id: str) -> tuple[str, str]:
    if crm not in CRMS:
        raise InvalidTenant(f"unknown CRM {crm!r}; use one of {', '.join(CRMS)}")
    account_id = (account_id or "").strip()
    if not account_id:
        raise InvalidTenant("the CRM account id is empty; give the portal, org or account id")
    if len(account_id) > _MAX_ACCOUNT_ID:
        raise InvalidTenant(f"the CRM account id is longer than {_MAX_ACCOUNT_ID} characters")
    if crm in NUMBERED_ACCOUNTS and not _NUMBER.fullmatch(account_id):
        raise InvalidTenant(f"{account_id!r} is not a {NUMBERED_ACCOUNTS[crm]}")
    if crm == "salesforce" and not (
        _SALESFORCE_ID.fullmatch(account_id) and account_id.startswith("00D")
    ):
        raise InvalidTenant(
            f"{account_id!r} is not a Salesforce org id: give its 15- or 18-character id "
            "(letters and digits, starting 00D)"
        )
    if crm == "salesforce" and len(account_id) == 18:
        full = salesforce_mapping.id18(account_id[:15])
        if account_id[15:].upper() != full[15:]:
            raise InvalidTenant(
                f"{account_id!r} is not a Salesforce org id: its last three characters, which "
                f"say which of the first 15 are capitals, should be {full[15:]}; a character "
                "was mistyped or changed case: copy the id from Setup > Company Information"
            )
    return crm, account_id


def _fits(what: str, value: str, column: Any) -> str:
    # SQLite would store an over-long string; PostgreSQL would refuse it with a DataError.
    limit = column.type.length
    if len(value) > limit:
        raise InvalidTenant(f"the {what} is longer than {limit} characters")
    return value


def _valid_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # "Europe" is a folder
        raise InvalidTenant(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris or America/New_York"
        ) from None


def _valid_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise InvalidTenant(f"unsupported locale {locale!r}; use one of {', '.join(LOCALES)}")


def _valid_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidTenant(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
