"""Snapshots: what a refresh saves is what the sweep reads back, scoped and kept current."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update

from connector.store.db import Store
from connector.store.models import ActivityRow, DealContactRow, DealRow, TaskRotation, Tenant
from connector.store.snapshots import (
    delete_deals,
    load_bundles,
    open_deal_ids,
    save_bundles,
    save_users,
)
from connector.store.sql import increment
from engine.model import User, dump_bundle, load_bundle
from tests.store.side_by_side import side_by_side

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "bundles").glob("*.json"))


def _tenant(store: Store, tid: str = "T") -> str:
    with store.global_session() as s:
        s.add(Tenant(id=tid, crm="test", account_id=tid, created_at=NOW, updated_at=NOW))
    return tid


def _examples() -> list:
    return [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]


def test_bundles_round_trip_through_the_store(store: Store) -> None:
    tid = _tenant(store)
    bundles = _examples()
    with store.tenant(tid) as s:
        assert save_bundles(s, tid, bundles, NOW) == len(bundles)
    with store.tenant(tid) as s:
        loaded = load_bundles(s, [b.deal.id for b in bundles])
    assert [dump_bundle(b) for b in loaded] == [dump_bundle(b) for b in bundles]


def test_text_no_database_stores_is_replaced_and_the_batch_saved(store: Store) -> None:
    """A truncated emoji (a lone surrogate, as a CRM's JSON may escape it) or a NUL in a name:
    had the batch been refused, the other deals of the pull would be lost with it, at every
    retry."""
    tid = _tenant(store)
    docs = [json.loads(p.read_text()) for p in EXAMPLES[:2]]
    docs[1]["deal"]["name"] = json.loads('"Renewal \\ud83d"')
    docs[1]["contacts"][0]["name"] = "Ann\x00Lee"
    bundles = [load_bundle(d) for d in docs]
    with store.tenant(tid) as s:
        assert save_bundles(s, tid, bundles, NOW) == 2
    with store.tenant(tid) as s:
        loaded = {b.deal.id: b for b in load_bundles(s, [b.deal.id for b in bundles])}
    odd = loaded[bundles[1].deal.id]
    assert odd.deal.name == "Renewal \ufffd"
    assert odd.contacts[0].name == "Ann\ufffdLee"


def test_deals_saved_before_activity_packs_read_the_same_through_the_links(store: Store) -> None:
    """A database upgraded to the pack column holds deals without one until their next refresh:
    the sweep must read their activities all the same."""
    tid = _tenant(store)
    bundles = _examples()
    with store.tenant(tid) as s:
        save_bundles(s, tid, bundles, NOW)
    with store.tenant(tid) as s:
        s.execute(update(DealRow).values(activities=None))
    with store.tenant(tid) as s:
        loaded = load_bundles(s, [b.deal.id for b in bundles])
    assert sum(len(b.activities) for b in bundles) > 0
    assert [dump_bundle(b) for b in loaded] == [dump_bundle(b) for b in bundles]


def test_saving_again_replaces_links_and_updates_records(store: Store) -> None:
    tid = _tenant(store)
    bundle = _examples()[0]
    with store.tenant(tid) as s:
        save_bundles(s, tid, [bundle], NOW)
    doc = dump_bundle(bundle)
    doc["deal"]["stage"] = "closedwon"
    doc["deal"]["status"] = "won"
    doc["contacts"] = doc["contacts"][:1]
    doc["contacts"][0]["title"] = "Chief Procurement Officer"
    kept = doc["contacts"][0]["id"]
    doc["activities"] = [a for a in doc["activities"] if set(a["contacts"] + a["cc"]) <= {kept}]
    changed = load_bundle(doc)
    with store.tenant(tid) as s:
        save_bundles(s, tid, [changed], NOW)
    with store.tenant(tid) as s:
        (again,) = load_bundles(s, [bundle.deal.id])
        assert s.scalar(select(func.count()).select_from(DealContactRow)) == 1
        assert open_deal_ids(s) == []
    assert dump_bundle(again) == dump_bundle(changed)


def test_deletions_are_honoured(store: Store) -> None:
    tid = _tenant(store)
    bundles = _examples()
    with store.tenant(tid) as s:
        save_bundles(s, tid, bundles, NOW)
        delete_deals(s, [bundles[0].deal.id])
    with store.tenant(tid) as s:
        assert load_bundles(s, [bundles[0].deal.id]) == []
        assert s.get(DealRow, (tid, bundles[0].deal.id)) is None
        assert len(load_bundles(s, [b.deal.id for b in bundles])) == len(bundles) - 1


def test_open_deal_ids_pages_in_order(store: Store) -> None:
    tid = _tenant(store)
    with store.tenant(tid) as s:
        save_bundles(s, tid, _examples(), NOW)
        first = open_deal_ids(s, limit=2)
        rest = open_deal_ids(s, after=first[-1], limit=10)
    assert first + rest == ["d-1001", "d-1002", "d-1003", "d-1004"]


def test_another_tenant_reads_nothing(store: Store) -> None:
    a, b = _tenant(store, "A"), _tenant(store, "B")
    bundles = _examples()
    with store.tenant(a) as s:
        save_bundles(s, a, bundles, NOW)
    with store.tenant(b) as s:
        assert load_bundles(s, [x.deal.id for x in bundles]) == []
        assert open_deal_ids(s) == []
        assert s.scalar(select(func.count()).select_from(ActivityRow)) == 0


def test_two_jobs_saving_the_same_users_at_once_never_deadlock(store: Store) -> None:
    # Two refresh jobs of one tenant, on two workers, save bundles whose owners overlap, each in
    # its own order: every upsert takes its rows' locks in key order, so one waits for the other.
    tenant = _tenant(store)
    users = [User(f"u{i:03d}", f"Rep {i}", f"rep{i}@example.com") for i in range(200)]
    with store.tenant(tenant) as s:
        save_users(s, tenant, users)

    def save(side: int, _round: int) -> None:
        with store.tenant(tenant) as s:
            save_users(s, tenant, users if side == 0 else users[::-1])

    side_by_side(30, save)  # raises the first failure (PostgreSQL's DeadlockDetected)


def test_two_writers_drawing_a_teams_turns_at_once_never_draw_the_same_one(store: Store) -> None:
    tid, other = _tenant(store), _tenant(store, "U")

    def draw(tenant: str) -> int:
        with store.tenant(tenant) as s:
            row = {"tenant_id": tenant, "team": "revops"}
            return increment(s, TaskRotation, row, ("tenant_id", "team"), "turns")

    with ThreadPoolExecutor(4) as pool:
        drawn = list(pool.map(draw, [tid] * 40))
    assert sorted(drawn) == list(range(1, 41))
    assert draw(other) == 1, "each tenant's team counts its own turns"
