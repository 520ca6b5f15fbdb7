"""Every stored secret re-encrypted under the newest key: the step between putting a new key in
front of DEALRADAR_SECRET_KEYS and removing the old one (`dealradar db rotate-secrets`).

Secrets that are never refreshed (a hook's signing secret, a Slack webhook, the generic events'
secret, a CRM token that does not expire) would otherwise stay sealed under the old key, and
removing it would break them. Each row is replaced only if it is still the ciphertext that was
read, so a token a worker refreshed meanwhile (sealed under the newest key already) is left as
it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update

from connector.store.db import Store
from connector.store.models import Credential, Hook
from connector.store.secrets import SecretError, TokenBox
from connector.store.tenants import list_tenants


@dataclass
class Rotated:
    credentials: int = 0
    hooks: int = 0
    unreadable: list[str] = field(default_factory=list)
    """What no configured key opens, named (never shown): a tenant's credential or hook."""


def rotate_secrets(
    store: Store, box: TokenBox, progress: Callable[[int, int], None] | None = None
) -> Rotated:
    """Re-encrypt every tenant's credentials and hook secrets under the newest key;
    `progress(done, total)` after each tenant."""
    out = Rotated()
    tenants = list_tenants(store)
    for done, tenant in enumerate(tenants, start=1):
        with store.tenant(tenant.id) as s:
            for name, sealed in s.execute(select(Credential.name, Credential.ciphertext)).all():
                fresh = _rotated(box, sealed, out, f"tenant {tenant.id}: credential {name!r}")
                if fresh is not None:
                    out.credentials += s.execute(
                        update(Credential)
                        .where(Credential.tenant_id == tenant.id, Credential.name == name,
                               Credential.ciphertext == sealed)
                        .values(ciphertext=fresh)
                    ).rowcount  # fmt: skip
            for hook_id, sealed in s.execute(select(Hook.id, Hook.secret)).all():
                fresh = _rotated(box, sealed, out, f"tenant {tenant.id}: hook {hook_id}")
                if fresh is not None:
                    out.hooks += s.execute(
                        update(Hook)
                        .where(Hook.tenant_id == tenant.id, Hook.id == hook_id,
                               Hook.secret == sealed)
                        .values(secret=fresh)
                    ).rowcount  # fmt: skip
        if progress is not None:
            progress(done, len(tenants))
    return out


def _rotated(box: TokenBox, sealed: str, out: Rotated, what: str) -> str | None:
    try:
        return box.rotate(sealed)
    except SecretError:
        out.unreadable.append(what)
        return None
