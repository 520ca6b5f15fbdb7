"""The registry of CRM adapters: one line per CRM kind.

`adapter_for(tenant)` builds the adapter that talks to that tenant's CRM account.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import Adapter, TenantRef
from adapters.folder.client import FolderClient

ADAPTERS: dict[str, Callable[[TenantRef], Adapter]] = {
    "test": FolderClient,
}


class UnknownCrm(LookupError):
    """A tenant whose CRM kind has no adapter (yet)."""


def adapter_for(tenant: TenantRef) -> Adapter:
    try:
        factory = ADAPTERS[tenant.crm]
    except KeyError:
        raise UnknownCrm(
            f"no adapter for CRM {tenant.crm!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return factory(tenant)
