"""What no deal needs any more: contacts and activities no deal links (their deals deleted in
the CRM, or a rep unlinked them), and the ended alert episodes of deleted deals.

A deal's pull replaces its links and upserts its contacts and activities, so a row that lost
its last link stays behind; nothing reads it again (the sweep and the API start from deals).
These functions delete such rows of the session's tenant in batches, for the daily purge
(jobs.purge). A row is taken only once it has gone untouched since `before`: a pull that links
it again (another deal's, the same deal restored) rewrites its `synced_at` in the transaction
that adds the link, and the delete checks both again, so a row linked meanwhile stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from connector.store.models import (
    ActivityDealRow,
    ActivityRow,
    AlertEpisode,
    ContactRow,
    DealContactRow,
    DealRow,
)
from connector.store.sql import tenant_of
from connector.store.times import to_db

Batch = tuple[int, Any]
"""(rows deleted, the last key looked at, where the next batch starts; None once done)."""


def unlinked_activities(
    session: Session, before: datetime, limit: int, after: Any = None
) -> Batch:
    """Delete up to `limit` activities no deal links, last saved before `before`, among those
    after the key `after`."""
    return _unlinked(session, ActivityRow, ActivityDealRow.activity_id, before, limit, after)


def unlinked_contacts(session: Session, before: datetime, limit: int, after: Any = None) -> Batch:
    """Delete up to `limit` contacts no deal links, last saved before `before`, among those
    after the key `after`."""
    return _unlinked(session, ContactRow, DealContactRow.contact_id, before, limit, after)


def _unlinked(
    session: Session, model: Any, link: Any, before: datetime, limit: int, after: Any
) -> Batch:
    """Rows of `model` (a record keyed by `crm_id`) that no row of `link`'s table names."""
    links = link.class_
    linked = exists().where(links.tenant_id == model.tenant_id, link == model.crm_id)
    return _delete_some(
        session, model, model.crm_id, limit, after, model.synced_at < to_db(before), ~linked
    )


def episodes_of_deleted_deals(
    session: Session, before: datetime, limit: int, after: Any = None
) -> Batch:
    """Delete up to `limit` episodes of deals deleted before `before` (episodes that also ended
    before it, for deals deleted before the deletion was recorded) and gone still, among those
    after the id `after`. A live deal's ended episodes are its alert history, and stay; so do
    those of a deal deleted since `before`, however long ago they ended, for a restore."""
    deal = exists().where(
        DealRow.tenant_id == AlertEpisode.tenant_id, DealRow.crm_id == AlertEpisode.deal_id
    )
    # The tenant's newest episode stays whatever its deal: SQLite gives a new row the highest
    # id + 1, so deleting the highest would hand its id to the next episode, whose task, note
    # and notifications the outbox would then take for the old one's (their keys name the
    # episode id, and stay while they keep anything from being made twice: jobs.retention).
    # Keeping each tenant's newest keeps the table's, and ids only grow.
    newest = session.scalar(
        select(func.max(AlertEpisode.id)).where(AlertEpisode.tenant_id == tenant_of(session))
    )
    if newest is None:
        return 0, None
    return _delete_some(
        session, AlertEpisode, AlertEpisode.id, limit, after,
        AlertEpisode.ended_at < to_db(before), ~deal, AlertEpisode.id < newest,
        or_(AlertEpisode.deal_deleted_at.is_(None), AlertEpisode.deal_deleted_at < to_db(before)),
    )  # fmt: skip


def _delete_some(
    session: Session, model: Any, key: Any, limit: int, after: Any, *criteria: Any
) -> Batch:
    """Delete up to `limit` rows of the session's tenant matching `criteria` (which the delete
    itself checks again: a row changed since the look-up stays), looked for in `key` order
    after `after`: each batch goes on where the last stopped instead of reading again the rows
    that stay, so a day's purge reads each row once."""
    tenant_id = tenant_of(session)
    where = [model.tenant_id == tenant_id, *criteria]
    if after is not None:
        where.append(key > after)
    keys = list(session.scalars(select(key).where(*where).order_by(key).limit(limit)))
    if not keys:
        return 0, None
    deleted = session.execute(
        delete(model).where(model.tenant_id == tenant_id, key.in_(keys), *criteria)
    ).rowcount
    return deleted, keys[-1] if len(keys) == limit else None
