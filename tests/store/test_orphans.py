"""What no deal needs any more (connector.store.orphans): the contacts and activities of deals
deleted in the CRM, and their ended episodes, go once untouched for the keeping period; what a
live deal still links, and a live deal's alert history, stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from connector.store.db import Store
from connector.store.models import ActivityRow, AlertEpisode, ContactRow, Tenant
from connector.store.orphans import (
    episodes_of_deleted_deals,
    unlinked_activities,
    unlinked_contacts,
)
from connector.store.snapshots import delete_deals, save_bundles
from engine.model import load_bundle
from jobs.pipeline import forget

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "bundles").glob("*.json"))


def _tenant(store: Store) -> str:
    with store.global_session() as s:
        s.add(Tenant(id="T", crm="test", account_id="T", created_at=NOW, updated_at=NOW))
    return "T"


def _docs() -> dict[str, dict]:
    docs = {d["deal"]["id"]: d for d in (json.loads(p.read_text()) for p in EXAMPLES)}
    acme, globex = docs["d-1001"], docs["d-1002"]
    globex["contacts"].append(acme["contacts"][0])  # Acme's c-1 is on Globex's deal too
    return docs


def _save(store: Store, docs: list[dict], at: datetime) -> None:
    with store.tenant("T") as s:
        save_bundles(s, "T", [load_bundle(d) for d in docs], at)


def _episode(deal_id: str, ended_at: datetime | None) -> AlertEpisode:
    return AlertEpisode(
        tenant_id="T", deal_id=deal_id, key="no_activity", code="no_activity",
        started_at=NOW - timedelta(days=3), ended_at=ended_at, facts={}, message="",
    )  # fmt: skip


def _left(store: Store) -> tuple[set[str], int, set[str]]:
    with store.tenant("T") as s:
        contacts = set(s.scalars(select(ContactRow.crm_id)))
        activities = s.scalar(select(func.count()).select_from(ActivityRow))
        episodes = set(s.scalars(select(AlertEpisode.deal_id)))
    return contacts, activities, episodes


def _purge(store: Store, before: datetime, limit: int = 1000) -> tuple[int, int, int]:
    """One batch of each from the start: how many rows each deleted."""
    with store.tenant("T") as s:
        return (unlinked_activities(s, before, limit)[0], unlinked_contacts(s, before, limit)[0],
                episodes_of_deleted_deals(s, before, limit)[0])  # fmt: skip


def test_a_deleted_deals_contacts_activities_and_episodes_go_and_nothing_else(
    store: Store,
) -> None:
    _tenant(store)
    docs = _docs()
    _save(store, list(docs.values()), NOW)
    with store.tenant("T") as s:
        s.add_all([_episode("d-1001", NOW), _episode("d-1003", NOW), _episode("d-1004", None)])
        delete_deals(s, ["d-1001"])  # Acme's deal deleted in the CRM
    contacts, activities, _ = _left(store)
    acme_activities = len(docs["d-1001"]["activities"])

    assert _purge(store, NOW) == (0, 0, 0), "nothing goes within the keeping period"
    assert _purge(store, NOW + timedelta(days=1), limit=2) == (2, 2, 1), "in batches"
    assert _purge(store, NOW + timedelta(days=1)) == (acme_activities - 2, 0, 0)

    assert _left(store) == (
        contacts - {"c-2", "c-3"}, activities - acme_activities, {"d-1003", "d-1004"}
    ), "c-1 is still on Globex's deal; live deals keep their alert history"


def test_a_row_linked_again_before_the_purge_stays(store: Store) -> None:
    _tenant(store)
    docs = _docs()
    _save(store, list(docs.values()), NOW)
    with store.tenant("T") as s:
        delete_deals(s, ["d-1001"])
    later = NOW + timedelta(days=40)
    _save(store, [docs["d-1001"]], later)  # restored from the CRM's recycle bin

    assert _purge(store, later - timedelta(days=30)) == (0, 0, 0)
    assert {"c-1", "c-2", "c-3"} <= _left(store)[0]


def test_each_batch_goes_on_where_the_last_stopped(store: Store) -> None:
    """A day's purge reads each row once: a batch starts after the last key the one before
    looked at, so the rows that stay are not read again batch after batch."""
    _tenant(store)
    docs = _docs()
    _save(store, list(docs.values()), NOW)
    with store.tenant("T") as s:
        delete_deals(s, ["d-1001"])
    batches, after = [], None
    while True:
        with store.tenant("T") as s:
            deleted, after = unlinked_contacts(s, NOW + timedelta(days=1), 1, after)
        batches.append((deleted, after))
        if after is None:
            break
    assert batches == [(1, "c-2"), (1, "c-3"), (0, None)]


def test_a_deleted_deals_old_history_is_kept_for_the_keeping_period_from_its_deletion(
    store: Store,
) -> None:
    """A deal whose alerts ended long ago, deleted today: a restore from the recycle bin within
    the keeping period must find its alert history, so the period runs from the deletion."""
    _tenant(store)
    _save(store, list(_docs().values()), NOW)
    long_ago = NOW - timedelta(days=90)
    with store.tenant("T") as s:
        s.add_all([_episode("d-1001", long_ago), _episode("d-1003", None)])
        s.flush()
        forget(s, "T", ["d-1001"], NOW)  # the CRM's deletion, as a refresh records it

    assert _purge(store, NOW - timedelta(days=1))[2] == 0, "deleted a day within the period"
    assert "d-1001" in _left(store)[2]
    assert _purge(store, NOW + timedelta(days=1))[2] == 1
    assert _left(store)[2] == {"d-1003"}
