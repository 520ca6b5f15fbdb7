"""The one place the jobs build a tenant's adapter: its tokens, Redis, CRM settings and clock.

Refresh, poll, write-back and setup all call `adapter_for_tenant(rt, tenant)`. OAuth CRMs get a
`StoreTokens` with their refresh grant (the tenant's encrypted tokens, refreshed once for all
workers); the store's own token errors are translated into `adapters.errors`, so that the jobs'
one policy table decides about them too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters import adapter_for
from adapters.base import Adapter, AdapterContext, TenantRef, TokenSource
from adapters.errors import InvalidRequest, PermissionDenied, Transient
from adapters.hubspot.client import API_HOST
from adapters.hubspot.oauth import refresh_grant
from adapters.salesforce import oauth as salesforce_oauth
from adapters.salesforce.client import salesforce_session
from adapters.sell import client as sell_client
from adapters.sell import oauth as sell_oauth
from connector.store import tenants
from connector.store.credentials import NoTokens, RefreshBusy
from connector.store.mirror import StoreMirror, StoreNotices
from connector.store.models import SetupRun, Tenant
from jobs import budget
from jobs.runtime import Runtime
from jobs.tokens import Refresh, StoreTokens


def tenant_ref(rt: Runtime, tenant: Tenant) -> TenantRef:
    """The tenant as its adapter sees it; `label_roles` is the CRM's contact labels mapped to
    the tenant's roles: matched at install (jobs/install.py keeps them on the setup run), then
    the admin's own mapping from the settings (`role_labels`) over them. A Sell tenant's adapter
    also gets its `sell` settings and the roles its alerts watch (`roles`)."""
    settings = tenants.current_settings(rt.store, tenant.id)
    with rt.store.tenant(tenant.id) as s:
        run = s.get(SetupRun, tenant.id)
        labels = dict(run.labels) if run is not None and run.labels else {}
    labels.update(settings.role_labels)
    extra: dict[str, Any] = {"label_roles": labels} if labels else {}
    if tenant.crm == "sell":
        extra["sell"] = dict(settings.sell)
        extra["roles"] = list(settings.document["alerts"]["key_role_silent"]["roles"])
    return TenantRef(
        id=tenant.id, crm=tenant.crm, account_id=tenant.account_id, extra=extra,
        timezone=settings.timezone,
    )  # fmt: skip


def adapter_for_tenant(rt: Runtime, tenant: Tenant) -> Adapter:
    grant = REFRESH_GRANTS.get(tenant.crm)
    tokens = None if grant is None else _Tokens(StoreTokens(rt, tenant.id, grant(rt)), tenant.id)
    context = AdapterContext(
        tokens=tokens, redis=rt.redis, crm=rt.crm, clock=rt.clock,
        mirror=StoreMirror(rt.store, tenant.id, rt.clock),
        notices=StoreNotices(rt.store, tenant.id, rt.clock),
        usage=lambda usage: budget.record(rt, tenant.id, usage),
    )  # fmt: skip
    return adapter_for(tenant_ref(rt, tenant), context)


def _hubspot_grant(rt: Runtime) -> Refresh:
    def refresh(stored: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
        client_id, secret = rt.crm.get("HUBSPOT_CLIENT_ID"), rt.crm.get("HUBSPOT_CLIENT_SECRET")
        if not client_id or not secret:
            raise InvalidRequest(
                "HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET are not both set: the worker cannot "
                "refresh HubSpot tokens; set them to the app's credentials and restart it"
            )
        return refresh_grant(
            stored["refresh_token"], client_id=client_id, client_secret=secret,
            host=rt.crm.get("HUBSPOT_API_URL", API_HOST), now=rt.clock,
        )  # fmt: skip

    return refresh


def _sell_grant(rt: Runtime) -> Refresh:
    def refresh(stored: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
        client_id, secret = rt.crm.get("SELL_CLIENT_ID"), rt.crm.get("SELL_CLIENT_SECRET")
        if not stored.get("personal") and (not client_id or not secret):
            raise InvalidRequest(
                "SELL_CLIENT_ID and SELL_CLIENT_SECRET are not both set: the worker cannot "
                "refresh Zendesk Sell tokens; set them to the app's credentials and restart it"
            )
        return sell_oauth.refresh_grant(
            stored, client_id=client_id or "", client_secret=secret or "",
            host=rt.crm.get("SELL_API_URL", sell_client.API_HOST), now=rt.clock,
        )  # fmt: skip

    return refresh


def _salesforce_grant(rt: Runtime) -> Refresh:
    def refresh(stored: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        client_id = rt.crm.get("SALESFORCE_CLIENT_ID")
        secret = rt.crm.get("SALESFORCE_CLIENT_SECRET")
        if not client_id or not secret:
            raise InvalidRequest(
                "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not both set: the worker "
                "cannot refresh Salesforce tokens; set them to the connected app's consumer key "
                "and secret and restart it"
            )
        tokens = salesforce_oauth.refresh_grant(
            stored, client_id=client_id, client_secret=secret,
            session=salesforce_session(rt.crm),
        )  # fmt: skip
        # Salesforce says no lifetime (the org's session timeout): refreshed when refused.
        return tokens, None

    return refresh


REFRESH_GRANTS: dict[str, Callable[[Runtime], Refresh]] = {
    "hubspot": _hubspot_grant,
    "sell": _sell_grant,
    "salesforce": _salesforce_grant,
}
"""The token refresh of each OAuth CRM, by CRM kind."""


class _Tokens:
    """StoreTokens whose store errors speak adapters.errors."""

    def __init__(self, inner: TokenSource, tenant_id: str) -> None:
        self.inner, self.tenant_id = inner, tenant_id

    def current(self) -> str:
        return self._translated(self.inner.current)

    def renew(self, rejected: str) -> str:
        return self._translated(lambda: self.inner.renew(rejected))

    def detail(self, name: str) -> str | None:
        detail = getattr(self.inner, "detail", None)
        return None if detail is None else self._translated(lambda: detail(name))

    def _translated(self, fn: Callable[[], str]) -> str:
        try:
            return fn()
        except NoTokens as exc:
            raise PermissionDenied(
                f"tenant {self.tenant_id} has no CRM tokens stored; install the app again"
            ) from exc
        except RefreshBusy as exc:
            raise Transient(str(exc)) from exc
