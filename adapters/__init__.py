"""The registry of CRM adapters: one line per CRM kind.

`adapter_for(tenant, context)` builds the adapter that talks to that tenant's CRM account; the
jobs build the context (tokens, Redis, CRM settings, clock) in jobs/adapters.py.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import Adapter, AdapterContext, TenantRef
from adapters.folder.client import FolderClient
from adapters.hubspot.adapter import HubSpotAdapter
from adapters.salesforce.adapter import SalesforceAdapter
from adapters.sell.adapter import SellAdapter

ADAPTERS: dict[str, Callable[[TenantRef, AdapterContext], Adapter]] = {
    "test": FolderClient,
    "hubspot": HubSpotAdapter,
    "sell": SellAdapter,
    "salesforce": SalesforceAdapter,
}


class UnknownCrm(LookupError):
    """A tenant whose CRM kind has no adapter (yet)."""


def adapter_for(tenant: TenantRef, context: AdapterContext) -> Adapter:
    try:
        factory = ADAPTERS[tenant.crm]
    except KeyError:
        raise UnknownCrm(
            f"no adapter for CRM {tenant.crm!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return factory(tenant, context)
