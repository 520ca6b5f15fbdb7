"""Every stored secret re-encrypted under the newest key: the step between putting a new key in
front of DEALRADAR_SECRET_KEYS and removing the old one (`dealradar db rotate-secrets`).

Secrets that are never refreshed (a hook's signing secret, a Slack webhook, the generic events'
secret, a CRM token that does not expire) would otherwise stay sealed under the old key, and
removing it would break them. Each row is replaced only if it is still the ciphertext that was
read, so a token a worker refreshed meanwhile (sealed under the newest key already) is left as
it is. A hook whose secret an uninstall erased holds nothing sealed, and is passed over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

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
            out.credentials += _rotate(s, box, out, tenant.id, Credential.name,
                                       Credential.ciphertext, "credential")  # fmt: skip
            out.hooks += _rotate(s, box, out, tenant.id, Hook.id, Hook.secret, "hook")
        if progress is not None:
            progress(done, len(tenants))
    return out


def _rotate(
    s: Session,
    box: TokenBox,
    out: Rotated,
    tenant_id: str,
    key: InstrumentedAttribute[str],
    sealed_column: InstrumentedAttribute[str],
    what: str,
) -> int:
    """Re-seal one table's sealed column for the tenant, row by row; how many rows changed."""
    model = key.class_
    changed = 0
    # An uninstall erases its hooks' secrets (""): nothing sealed is left there to rotate.
    rows = s.execute(select(key, sealed_column).where(sealed_column != "")).all()
    for row_key, sealed in rows:
        try:
            fresh = box.rotate(sealed)
        except SecretError:
            out.unreadable.append(f"tenant {tenant_id}: {what} {row_key!r}")
            continue
        changed += s.execute(
            update(model)
            .where(model.tenant_id == tenant_id, key == row_key, sealed_column == sealed)
            .values({sealed_column: fresh})
        ).rowcount
    return changed
