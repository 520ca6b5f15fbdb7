"""StoreTokens: the adapters' clients get a tenant's stored token, read once per job and
renewed through the store's single-flight refresh."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from connector.store.credentials import load_tokens, save_tokens
from connector.store.tenants import create_tenant
from jobs.runtime import Runtime
from jobs.tokens import StoreTokens

OLD = {"access_token": "at-1", "refresh_token": "rt-1"}


def test_tokens_are_read_once_then_renewed_when_refused(rt: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    assert rt.box is not None, "the jobs' runtime in tests carries a TokenBox"
    tid = create_tenant(rt.store, crm="hubspot", account_id="42", now=clock())[0].id
    save_tokens(rt.store, rt.box, tid, OLD, clock() + timedelta(hours=1), clock())
    refreshed: list[dict] = []

    def refresh(old: dict) -> tuple[dict, datetime]:
        refreshed.append(old)
        return {"access_token": "at-2", "refresh_token": "rt-2"}, clock() + timedelta(hours=1)

    tokens = StoreTokens(rt, tid, refresh)
    queries: list[str] = []
    event.listen(rt.store.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    assert [tokens.current() for _ in range(5)] == ["at-1"] * 5
    assert len(queries) == 1, "one read of the store for many calls"
    assert tokens.renew("at-1") == "at-2" and tokens.current() == "at-2"
    assert refreshed == [OLD]
    assert load_tokens(rt.store, rt.box, tid).data["access_token"] == "at-2"


def test_without_secret_keys_it_says_what_to_set(rt: Runtime) -> None:
    rt.box = None
    with pytest.raises(RuntimeError, match="DEALRADAR_SECRET_KEYS"):
        StoreTokens(rt, "t", lambda old: (old, None))  # type: ignore[arg-type,return-value]
