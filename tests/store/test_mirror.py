"""The record mirror and notices in the store: what changed, links by deal, pruning."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import Mirrored
from connector.store.db import Store
from connector.store.mirror import StoreMirror, StoreNotices, notices
from connector.store.tenants import create_tenant

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _tenants(store: Store) -> tuple[str, str]:
    a, _ = create_tenant(store, crm="sell", account_id="1", now=NOW)
    b, _ = create_tenant(store, crm="sell", account_id="2", now=NOW)
    return a.id, b.id


def test_put_reports_what_changed_with_its_deals_before_and_after(store: Store) -> None:
    a, b = _tenants(store)
    mirror = StoreMirror(store, a, lambda: NOW)
    first = mirror.put("calls", [Mirrored("1", {"x": 1}, ["d1"]), Mirrored("2", {"x": 2}, [])], 1)
    assert first == {"1": {"d1"}, "2": set()}
    assert mirror.put("calls", [Mirrored("1", {"x": 1}, ["d1"])], 1) == {}, "same data, same deals"
    moved = mirror.put("calls", [Mirrored("1", {"x": 1}, ["d2"])], 1)
    assert moved == {"1": {"d1", "d2"}}, "a call moved off d1 concerns d1 too"
    assert mirror.put("calls", [Mirrored("1", {"x": 9})], 1) == {"1": {"d2"}}, "links kept"
    assert mirror.of_deals("calls", ["d1", "d2"]) == {"d2": [{"x": 9}]}
    assert StoreMirror(store, b, lambda: NOW).of_deals("calls", ["d2"]) == {}, "per tenant"


def test_links_by_deal_delete_and_prune(store: Store) -> None:
    a, _ = _tenants(store)
    mirror = StoreMirror(store, a, lambda: NOW)
    mirror.put("contacts", [Mirrored("c1", {"n": 1}), Mirrored("c2", {"n": 2})], 1)
    mirror.link("contacts", "d1", ["c1", "c2"])
    mirror.link("contacts", "d2", ["c2"])
    assert mirror.deals_of("contacts", ["c1", "c2"]) == {"c1": {"d1"}, "c2": {"d1", "d2"}}
    mirror.link("contacts", "d1", ["c1"])
    assert mirror.deals_of("contacts", ["c2"]) == {"c2": {"d2"}}
    assert mirror.delete("contacts", ["c2"]) == {"c2": {"d2"}}
    assert mirror.get("contacts", ["c1", "c2"]) == {"c1": {"n": 1}}
    mirror.put("contacts", [Mirrored("c3", {"n": 3})], 2)
    assert mirror.prune("contacts", 2) == {"c1": {"d1"}}
    assert set(mirror.get("contacts", ["c1", "c3"])) == {"c3"}


def test_notices_change_once(store: Store) -> None:
    a, b = _tenants(store)
    board = StoreNotices(store, a, lambda: NOW)
    assert board.set("sell.role_field", "missing") is True
    assert board.set("sell.role_field", "missing") is False
    assert notices(store, a) == {"sell.role_field": "missing"}
    assert notices(store, b) == {}
    assert board.set("sell.role_field", None) is True
    assert board.set("sell.role_field", None) is False
    assert notices(store, a) == {}
