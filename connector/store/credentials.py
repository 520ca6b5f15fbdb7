"""A tenant's OAuth tokens: encrypted at rest, refreshed by one worker at a time.

The tokens live in the tenant's "oauth" Credential row, sealed by connector.store.secrets (so a
row copied to another tenant is refused). `fresh_tokens` is what a CRM client calls before each
batch of requests: it returns the stored tokens while they are valid, and otherwise refreshes
them under a per-tenant Redis lock, so that ten workers finding the same expired token make one
call to the CRM's token endpoint, not ten (most CRMs revoke a refresh token once it is used).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis as redis_lib
from redis.exceptions import LockError
from sqlalchemy import update

from adapters.errors import AuthExpired, PermissionDenied
from connector.store.db import Store
from connector.store.models import Credential
from connector.store.secrets import TokenBox
from connector.store.times import from_db, to_db

log = logging.getLogger(__name__)

OAUTH = "oauth"
WEBHOOK_SECRET = "webhook"
"""The signing secret of a tenant's generic events (POST /webhooks/events/<tenant id>)."""
"""The Credential row's name for a tenant's CRM OAuth tokens."""
REFRESH_MARGIN = timedelta(minutes=5)
"""Tokens expiring sooner than this are refreshed first, so none expires mid-batch."""
LOCK_KEY = "dealradar:lock:token:{tenant}"
LOCK_TIMEOUT = 40.0
"""Seconds the refresh lock lives: longer than any token endpoint call (5 s to connect, 30 to
read). Should one outlive it anyway, the save below refuses to overwrite newer tokens."""
LOCK_WAIT = 45.0
"""Seconds a worker waits for another's refresh: past the lock's life, so it ends one way or
another (the refresher finished, or its lock expired and this worker takes over)."""


class NoTokens(LookupError):
    """The tenant has no stored tokens: the app was never installed, or was uninstalled."""


class RefreshBusy(TimeoutError):
    """Another worker held the tenant's refresh lock for longer than LOCK_WAIT."""


@dataclass(frozen=True)
class Tokens:
    """A tenant's decrypted tokens; the repr names the fields, never their values."""

    data: dict[str, Any] = field(repr=False)
    expires_at: datetime | None
    """When the access token expires (UTC); None when the CRM did not say."""
    version: int
    """The Credential row's version: bumped by every save."""

    def __repr__(self) -> str:
        return (
            f"Tokens(fields={sorted(self.data)!r}, expires_at={self.expires_at!r}, "
            f"version={self.version})"
        )

    __str__ = __repr__

    def valid_at(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        """True if the tokens are still good `margin` after `now` (no expiry: assumed good)."""
        return self.expires_at is None or self.expires_at - margin > now


def save_tokens(
    store: Store,
    box: TokenBox,
    tenant_id: str,
    tokens: dict[str, Any],
    expires_at: datetime | None,
    now: datetime,
    *,
    name: str = OAUTH,
) -> Tokens:
    """Encrypt and store the tenant's tokens (insert or replace), bumping the row's version.
    `name` keeps other secrets apart (the "webhook" signing secret of generic events)."""
    ciphertext, expires = _sealed(box, tenant_id, tokens, expires_at)
    at = to_db(now)
    with store.tenant(tenant_id) as s:
        row = s.get(Credential, (tenant_id, name))
        if row is None:
            row = Credential(tenant_id=tenant_id, name=name, version=1)
            s.add(row)
        else:
            # Incremented in SQL, so two writers never store the same version.
            row.version = Credential.version + 1
        row.ciphertext = ciphertext
        row.expires_at = expires
        row.updated_at = at
        s.flush()
        version = row.version
    return Tokens(data=dict(tokens), expires_at=from_db(expires), version=version)


def replace_tokens(
    store: Store,
    box: TokenBox,
    tenant_id: str,
    tokens: dict[str, Any],
    expires_at: datetime | None,
    now: datetime,
    *,
    version: int,
) -> Tokens | None:
    """Store refreshed tokens only if the row is still at `version` (the tokens refreshed);
    None when another writer replaced them meanwhile (a reinstall, or a refresh that outlived
    its lock): theirs are newer and stay."""
    ciphertext, expires = _sealed(box, tenant_id, tokens, expires_at)
    with store.tenant(tenant_id) as s:
        replaced = s.execute(
            update(Credential)
            .where(
                Credential.tenant_id == tenant_id,
                Credential.name == OAUTH,
                Credential.version == version,
            )
            .values(
                version=version + 1,
                ciphertext=ciphertext,
                expires_at=expires,
                updated_at=to_db(now),
            )
        )
        if replaced.rowcount != 1:
            return None
    return Tokens(data=dict(tokens), expires_at=from_db(expires), version=version + 1)


def _sealed(
    box: TokenBox, tenant_id: str, tokens: dict[str, Any], expires_at: datetime | None
) -> tuple[str, datetime | None]:
    """The tokens encrypted for the tenant, and their expiry as the database keeps it."""
    return box.seal(tenant_id, tokens), to_db(expires_at) if expires_at is not None else None


def load_tokens(store: Store, box: TokenBox, tenant_id: str, *, name: str = OAUTH) -> Tokens | None:
    """The tenant's tokens, or None if none are stored.

    Raises SecretError if no configured key decrypts them, TokenMismatch if they were sealed
    for another tenant.
    """
    with store.tenant(tenant_id) as s:
        row = s.get(Credential, (tenant_id, name))
        if row is None:
            return None
        ciphertext, expires_at, version = row.ciphertext, row.expires_at, row.version
    return Tokens(
        data=box.open(tenant_id, ciphertext), expires_at=from_db(expires_at), version=version
    )


def _usable(tokens: Tokens, now: datetime, margin: timedelta, rejected: str | None) -> bool:
    if rejected is not None and tokens.data.get("access_token") == rejected:
        return False
    return tokens.valid_at(now, margin)


def fresh_tokens(
    store: Store,
    box: TokenBox,
    redis: redis_lib.Redis,
    tenant_id: str,
    refresh: Callable[[dict[str, Any]], tuple[dict[str, Any], datetime | None]],
    now: Callable[[], datetime],
    margin: timedelta = REFRESH_MARGIN,
    *,
    rejected: str | None = None,
) -> Tokens:
    """Tokens valid for at least `margin`, refreshed if need be, once per tenant at a time.

    Valid stored tokens are returned without touching Redis. Otherwise the tenant's refresh lock
    is taken (waiting up to LOCK_WAIT), the row is read again (another worker may have refreshed
    while this one waited: its tokens are returned and `refresh` is not called), and else
    `refresh(old_tokens)` is called exactly once and its result saved. With `rejected` (an
    access token the CRM refused before its expiry), tokens carrying that access token are
    refreshed whatever their expiry says, unless another worker already replaced them.

    Error policy: errors from `refresh` (an adapters.errors.AuthExpired for a revoked grant, a
    Transient, ...) propagate unchanged and nothing is saved; Redis and database errors
    propagate; NoTokens if the tenant has none; RefreshBusy if the lock could not be had in
    LOCK_WAIT. The lock is always released, whatever happened; if it expired first (a refresh
    slower than LOCK_TIMEOUT), that is logged, and the refresh's own outcome stands.
    """
    current = _require(load_tokens(store, box, tenant_id), tenant_id)
    if _usable(current, now(), margin, rejected):
        return current
    lock = redis.lock(
        LOCK_KEY.format(tenant=tenant_id), timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT
    )
    if not lock.acquire():
        raise RefreshBusy(
            f"tenant {tenant_id!r}: another worker has been refreshing its tokens for over "
            f"{LOCK_WAIT:.0f} s; the job will retry"
        )
    try:
        latest = _require(load_tokens(store, box, tenant_id), tenant_id)
        if latest.version != current.version or _usable(latest, now(), margin, rejected):
            return latest
        try:
            data, expires_at = refresh(dict(latest.data))
        except (AuthExpired, PermissionDenied):
            # Refused: but if new tokens were stored meanwhile (a reinstall, or a worker that
            # refreshed after this lock expired), they are the ones to use.
            newer = _require(load_tokens(store, box, tenant_id), tenant_id)
            if newer.version != latest.version:
                return newer
            raise
        saved = replace_tokens(
            store, box, tenant_id, data, expires_at, now(), version=latest.version
        )
        if saved is None:
            log.warning(
                "tenant %s: its OAuth tokens were replaced during a refresh; the newer stay",
                tenant_id,
            )
            return _require(load_tokens(store, box, tenant_id), tenant_id)
        log.info("refreshed the OAuth tokens of tenant %s (version %d)", tenant_id, saved.version)
        return saved
    finally:
        try:
            lock.release()
        except LockError:
            # Expired (and maybe taken by another worker): nothing of ours left to release.
            log.warning(
                "tenant %s: the token refresh outlived its %.0f s lock", tenant_id, LOCK_TIMEOUT
            )


def _require(tokens: Tokens | None, tenant_id: str) -> Tokens:
    if tokens is None:
        raise NoTokens(
            f"tenant {tenant_id!r} has no stored OAuth tokens: install (or reinstall) the app "
            "from its CRM account"
        )
    return tokens
