"""A tenant's mirror of CRM records (adapters.base.RecordMirror) and its notices (Notices).

The mirror keeps each record's JSON as the CRM showed it and its links to deals, so that an
adapter whose CRM streams changes but cannot list a deal's records (Zendesk Sell's calls link
their deals only on the call) reads a deal's records back in one query. Every method runs in
one transaction of the tenant's session; ids travel in chunks well under SQLite's parameter
limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from adapters.base import Mirrored
from connector.store.db import Store
from connector.store.models import MirrorLinkRow, MirrorRecordRow, Notice
from connector.store.sql import insert_new_many, upsert
from connector.store.times import to_db

T = TypeVar("T")

CHUNK = 500
"""Ids per IN list."""


class StoreMirror:
    """`RecordMirror` for one tenant, kept in the store."""

    def __init__(self, store: Store, tenant_id: str, clock: Callable[[], datetime]) -> None:
        self.store, self.tenant_id, self.clock = store, tenant_id, clock

    def put(self, kind: str, records: Sequence[Mirrored], generation: int) -> dict[str, set[str]]:
        if not records:
            return {}
        latest = {str(r.id): r for r in records}  # a page may name a record twice: last wins
        ids = list(latest)
        now = to_db(self.clock())
        with self.store.tenant(self.tenant_id) as s:
            before = self._data(s, kind, ids)
            links = _links(s, kind, ids)
            changed: dict[str, set[str]] = {}
            relinked: dict[str, set[str]] = {}
            for rid, record in latest.items():
                old = links.get(rid, set())
                new = old if record.deal_ids is None else {str(d) for d in record.deal_ids}
                if new != old:
                    relinked[rid] = new
                if before.get(rid) != record.data or new != old:
                    changed[rid] = old | new
            upsert(s, MirrorRecordRow, [
                {"tenant_id": self.tenant_id, "kind": kind, "crm_id": rid, "data": dict(r.data),
                 "generation": generation, "updated_at": now}
                for rid, r in latest.items()
            ], keys=["tenant_id", "kind", "crm_id"])  # fmt: skip
            if relinked:
                for chunk in _chunks(list(relinked)):
                    s.execute(
                        delete(MirrorLinkRow).where(
                            MirrorLinkRow.kind == kind, MirrorLinkRow.crm_id.in_(chunk)
                        )
                    )
                pairs = [(d, rid) for rid, deals in relinked.items() for d in deals]
                _insert_links(s, self.tenant_id, kind, pairs)
        return changed

    def delete(self, kind: str, ids: Sequence[str]) -> dict[str, set[str]]:
        ids = [str(i) for i in ids]
        with self.store.tenant(self.tenant_id) as s:
            return self._forget(s, kind, ids)

    def prune(self, kind: str, generation: int) -> dict[str, set[str]]:
        with self.store.tenant(self.tenant_id) as s:
            stale = list(
                s.scalars(
                    select(MirrorRecordRow.crm_id).where(
                        MirrorRecordRow.kind == kind, MirrorRecordRow.generation < generation
                    )
                )
            )
            return self._forget(s, kind, stale)

    def link(self, kind: str, deal_id: str, ids: Sequence[str]) -> None:
        deal_id = str(deal_id)
        with self.store.tenant(self.tenant_id) as s:
            s.execute(
                delete(MirrorLinkRow).where(
                    MirrorLinkRow.kind == kind, MirrorLinkRow.deal_id == deal_id
                )
            )
            _insert_links(s, self.tenant_id, kind, [(deal_id, str(i)) for i in dict.fromkeys(ids)])

    def deals_of(self, kind: str, ids: Sequence[str]) -> dict[str, set[str]]:
        with self.store.tenant(self.tenant_id) as s:
            return _links(s, kind, [str(i) for i in ids])

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.store.tenant(self.tenant_id) as s:
            return self._data(s, kind, [str(i) for i in ids])

    def of_deals(self, kind: str, deal_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self.store.tenant(self.tenant_id) as s:
            for chunk in _chunks([str(d) for d in deal_ids]):
                rows = s.execute(
                    select(MirrorLinkRow.deal_id, MirrorRecordRow.data)
                    .join(
                        MirrorRecordRow,
                        (MirrorRecordRow.tenant_id == MirrorLinkRow.tenant_id)
                        & (MirrorRecordRow.kind == MirrorLinkRow.kind)
                        & (MirrorRecordRow.crm_id == MirrorLinkRow.crm_id),
                    )
                    .where(MirrorLinkRow.kind == kind, MirrorLinkRow.deal_id.in_(chunk))
                    .order_by(MirrorLinkRow.deal_id, MirrorLinkRow.crm_id)
                )
                for deal_id, data in rows:
                    out[deal_id].append(data)
        return dict(out)

    # -- internals -----------------------------------------------------------------------------

    def _data(self, s: Session, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            for rid, data in s.execute(
                select(MirrorRecordRow.crm_id, MirrorRecordRow.data).where(
                    MirrorRecordRow.kind == kind, MirrorRecordRow.crm_id.in_(chunk)
                )
            ):
                found[rid] = data
        return found

    def _forget(self, s: Session, kind: str, ids: list[str]) -> dict[str, set[str]]:
        if not ids:
            return {}
        links = _links(s, kind, ids)
        for chunk in _chunks(ids):
            s.execute(
                delete(MirrorLinkRow).where(
                    MirrorLinkRow.kind == kind, MirrorLinkRow.crm_id.in_(chunk)
                )
            )
            s.execute(
                delete(MirrorRecordRow).where(
                    MirrorRecordRow.kind == kind, MirrorRecordRow.crm_id.in_(chunk)
                )
            )
        return {rid: links.get(rid, set()) for rid in ids}


class StoreNotices:
    """`Notices` for one tenant, kept in the store."""

    def __init__(self, store: Store, tenant_id: str, clock: Callable[[], datetime]) -> None:
        self.store, self.tenant_id, self.clock = store, tenant_id, clock

    def set(self, name: str, message: str | None) -> bool:
        with self.store.tenant(self.tenant_id) as s:
            row = s.get(Notice, (self.tenant_id, name))
            if message is None:
                if row is None:
                    return False
                s.delete(row)
                return True
            if row is not None and row.message == message:
                return False
            if row is None:
                row = Notice(tenant_id=self.tenant_id, name=name)
                s.add(row)
            row.message, row.updated_at = message, to_db(self.clock())
            return True


def notices(store: Store, tenant_id: str) -> dict[str, str]:
    """The tenant's notices by name."""
    with store.tenant(tenant_id) as s:
        return {n.name: n.message for n in s.scalars(select(Notice).order_by(Notice.name))}


def _links(s: Session, kind: str, ids: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(ids):
        for rid, deal_id in s.execute(
            select(MirrorLinkRow.crm_id, MirrorLinkRow.deal_id).where(
                MirrorLinkRow.kind == kind, MirrorLinkRow.crm_id.in_(chunk)
            )
        ):
            found[rid].add(deal_id)
    return dict(found)


def _insert_links(s: Session, tenant_id: str, kind: str, pairs: list[tuple[str, str]]) -> None:
    if pairs:
        insert_new_many(s, MirrorLinkRow, [
            {"tenant_id": tenant_id, "kind": kind, "deal_id": d, "crm_id": rid} for d, rid in pairs
        ], keys=["tenant_id", "kind", "deal_id", "crm_id"])  # fmt: skip


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
