"""The tenants' CRM access tokens for the adapters' clients (adapters.base.TokenSource).

Tokens live encrypted in the store; `connector.store.credentials.fresh_tokens` refreshes them
under a per-tenant lock, so that many workers finding one expired token make one call to the
CRM's token endpoint. A source keeps the tokens it read until they near their expiry, so a
job's hundred calls read the store once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from connector.store.credentials import Tokens, fresh_tokens
from jobs.runtime import Runtime

Refresh = Callable[[dict[str, Any]], tuple[dict[str, Any], datetime | None]]
"""The CRM's refresh grant: stored tokens in, (new tokens, access token expiry or None when
the CRM says none) out."""


class StoreTokens:
    def __init__(self, rt: Runtime, tenant_id: str, refresh: Refresh) -> None:
        if rt.box is None:
            raise RuntimeError(
                "no DEALRADAR_SECRET_KEYS: the tenants' CRM tokens cannot be read; set it to the "
                "keys the web app uses"
            )
        self.rt, self.box, self.tenant_id, self.refresh = rt, rt.box, tenant_id, refresh
        self._tokens: Tokens | None = None

    def current(self) -> str:
        if self._tokens is None or not self._tokens.valid_at(self.rt.clock()):
            self._tokens = self._fresh(rejected=None)
        return self._tokens.data["access_token"]

    def renew(self, rejected: str) -> str:
        self._tokens = self._fresh(rejected=rejected)
        return self._tokens.data["access_token"]

    def detail(self, name: str) -> str | None:
        """A value the grant stored with the tokens (Salesforce's instance_url), current."""
        self.current()
        assert self._tokens is not None
        value = self._tokens.data.get(name)
        return None if value is None else str(value)

    def _fresh(self, rejected: str | None) -> Tokens:
        rt = self.rt
        return fresh_tokens(
            rt.store, self.box, rt.redis, self.tenant_id, self.refresh, rt.clock, rejected=rejected
        )
