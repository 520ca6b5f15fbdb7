"""The working copy of each tenant's CRM: bundles in, bundles out, upserted by CRM id.

`save_bundles` writes what a refresh pulled (deal, contacts and their roles on the deal,
activities and their deal links, users), replacing the deal's links so that a contact removed
from a deal or an activity unlinked in the CRM disappears here too. `delete_deals` honours
deletions. `load_bundles` reads many deals back in a few wide queries: the daily sweep streams
a tenant through it in batches and never loads a tenant whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from connector.store import jsoncodec
from connector.store.models import (
    ActivityDealRow,
    ActivityRow,
    ContactRow,
    DealContactRow,
    DealRow,
    UserRow,
)
from connector.store.sql import of_deals, raw_rows, tenant_of, upsert
from engine.model import Activity, Bundle, Contact, Deal, User, load_deal

_ZONES: dict[int, timezone] = {}


def pack_activities(activities: Iterable[Activity]) -> str:
    """A deal's activities as one compact JSON array of rows (`_activity` reads a row back)."""
    rows = [
        [a.id, a.kind, a.ts, _offset_minutes(a.at), a.direction, a.status, list(a.contacts),
         list(a.cc), a.user]
        for a in activities
    ]  # fmt: skip
    return jsoncodec.dumps(rows)


def _activity(
    aid: str,
    kind: str,
    at: float,
    offset: int,
    direction: str,
    status: str,
    people: Sequence[str],
    cc: Sequence[str],
    user: str | None,
) -> Activity:
    when = datetime.fromtimestamp(at, _zone(offset))
    return Activity(aid, kind, when, direction, status, tuple(people), tuple(cc), user, ts=at)


def _unpack(
    packed: str,
    loads: Any = jsoncodec.loads,
    at: Any = datetime.fromtimestamp,
    zones: Any = _ZONES,
    new: Any = Activity,
) -> list[Activity]:
    """A deal's packed activities (`pack_activities`) as engine objects: `_activity` inlined,
    with its helpers bound as locals, since the sweep runs it some forty times per deal.
    Every argument is positional (a keyword costs the call more) and an empty list becomes the
    empty tuple without a call: most activities have no cc."""
    return [
        new(aid, kind, at(ts, zones.get(offset) or _zone(offset)), direction, status,
            tuple(people) if people else (), tuple(cc) if cc else (), user, (), ts)
        for aid, kind, ts, offset, direction, status, people, cc, user in loads(packed)
    ]  # fmt: skip


def _deal_row(tenant_id: str, bundle: Bundle, now: datetime) -> dict[str, Any]:
    d = bundle.deal
    return {
        "tenant_id": tenant_id,
        "crm_id": d.id,
        "pipeline": d.pipeline,
        "stage": d.stage,
        "status": d.status,
        "owner": d.owner,
        "data": {
            "id": d.id,
            "name": d.name,
            "pipeline": d.pipeline,
            "stage": d.stage,
            "stage_entered_at": d.stage_entered_at.isoformat(),
            "amount": d.amount,
            "currency": d.currency,
            "close_date": d.close_date.isoformat() if d.close_date else None,
            "created_at": d.created_at.isoformat(),
            "owner": d.owner,
            "status": d.status,
            "url": d.url,
            "stage_name": d.stage_name,
        },
        "activities": pack_activities(bundle.activities),
        "modified_at": None,
        "synced_at": now,
    }


def _offset_minutes(at: datetime) -> int:
    offset = at.utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def save_users(session: Session, tenant_id: str, users: Iterable[User]) -> None:
    """Upsert users (each id once) as the CRM has them: name, email, whether active."""
    rows = [
        {"tenant_id": tenant_id, "crm_id": u.id, "name": u.name, "email": u.email,
         "active": u.active}
        for u in users
    ]  # fmt: skip
    if rows:
        upsert(session, UserRow, rows, ("tenant_id", "crm_id"))


def inactive_users(session: Session, *user_ids: str | None) -> set[str]:
    """Those of these users the CRM is known to have deactivated (`users.active`)."""
    wanted = [u for u in user_ids if u]
    if not wanted:
        return set()
    found = select(UserRow.crm_id).where(UserRow.crm_id.in_(wanted), ~UserRow.active)
    return set(session.scalars(found))


def save_bundles(session: Session, tenant_id: str, bundles: Iterable[Bundle], now: datetime) -> int:
    """Upsert the bundles' records and replace each deal's links; returns the deals saved."""
    deals, contacts, links, activities, activity_links, users = [], {}, [], {}, [], {}
    deal_ids = []
    for b in bundles:
        deal_ids.append(b.deal.id)
        deals.append(_deal_row(tenant_id, b, now))
        for c in b.contacts:
            contacts[c.id] = {
                "tenant_id": tenant_id, "crm_id": c.id, "name": c.name, "email": c.email,
                "title": c.title, "synced_at": now,
            }  # fmt: skip
            links.append(
                {
                    "tenant_id": tenant_id,
                    "deal_id": b.deal.id,
                    "contact_id": c.id,
                    "roles": list(c.roles),
                    "is_primary": c.primary,
                }
            )
        for a in b.activities:
            activities[a.id] = {
                "tenant_id": tenant_id, "crm_id": a.id, "kind": a.kind, "at_epoch": a.ts,
                "offset_minutes": _offset_minutes(a.at), "direction": a.direction,
                "status": a.status, "contacts": " ".join(a.contacts), "cc": " ".join(a.cc),
                "user_id": a.user, "synced_at": now,
            }  # fmt: skip
            activity_links.append(
                {"tenant_id": tenant_id, "deal_id": b.deal.id, "activity_id": a.id}
            )
        for u in b.users:
            users[u.id] = u
    if not deal_ids:
        return 0
    upsert(session, DealRow, deals, ("tenant_id", "crm_id"))
    upsert(session, ContactRow, list(contacts.values()), ("tenant_id", "crm_id"))
    upsert(session, ActivityRow, list(activities.values()), ("tenant_id", "crm_id"))
    save_users(session, tenant_id, users.values())
    # The bundle is the whole truth about a deal's links: drop the old ones, write the new.
    for chunk in _chunks(deal_ids, 500):
        session.execute(delete(DealContactRow).where(DealContactRow.deal_id.in_(chunk)))
        session.execute(delete(ActivityDealRow).where(ActivityDealRow.deal_id.in_(chunk)))
    if links:
        session.execute(insert(DealContactRow), links)
    if activity_links:
        session.execute(insert(ActivityDealRow), activity_links)
    return len(deal_ids)


def delete_deals(session: Session, deal_ids: Sequence[str]) -> None:
    """Forget deals the CRM deleted, with their links (contacts and activities may be shared)."""
    for chunk in _chunks(list(deal_ids), 500):
        session.execute(delete(DealContactRow).where(DealContactRow.deal_id.in_(chunk)))
        session.execute(delete(ActivityDealRow).where(ActivityDealRow.deal_id.in_(chunk)))
        session.execute(delete(DealRow).where(DealRow.crm_id.in_(chunk)))


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _zone(minutes: int) -> timezone:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = _ZONES[minutes] = UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
    return zone


def load_bundles(session: Session, deal_ids: Sequence[str]) -> list[Bundle]:
    """The stored bundles of these deals (those that exist), in the order asked.

    This is the sweep's hot path, so it reads the tables with Core statements that name the
    session's tenant themselves (the ORM's per-row work costs more than the rows), and turns rows
    back into engine objects directly: they were validated on their way in.
    """
    if not deal_ids:
        return []
    tenant = tenant_of(session)
    ids = list(deal_ids)
    run = session.connection().execute
    d, dc, c = DealRow.__table__.c, DealContactRow.__table__.c, ContactRow.__table__.c
    u = UserRow.__table__.c

    deals: dict[str, Deal] = {}
    activities: dict[str, list[Activity]] = {}
    unpacked: list[str] = []
    for crm_id, data, packed in run(
        of_deals(
            session, select(d.crm_id, d.data, d.activities).where(d.tenant_id == tenant), d.crm_id,
            ids,
        )
    ).all():  # fmt: skip
        deals[crm_id] = load_deal(data)
        if packed is None:
            unpacked.append(crm_id)
        else:
            activities[crm_id] = _unpack(packed)
    contacts: dict[str, list[Contact]] = defaultdict(list)
    roles_of_contacts = (
        select(dc.deal_id, dc.roles, dc.is_primary, c.crm_id, c.name, c.email, c.title)
        .join(ContactRow.__table__, (c.tenant_id == dc.tenant_id) & (c.crm_id == dc.contact_id))
        .where(dc.tenant_id == tenant)
    )
    for deal_id, roles, primary, cid, name, email, title in run(
        of_deals(session, roles_of_contacts, dc.deal_id, ids)
    ).all():
        contacts[deal_id].append(Contact(cid, name, email, title, tuple(roles or ()), primary))
    if unpacked:
        activities.update(_joined_activities(session, tenant, unpacked))
    # Each deal's users (its owner's and its activities'), found in one pass over the activities.
    wanted_by_deal = {
        deal_id: {deal.owner, *[x.user for x in activities.get(deal_id, ())]} - {None, ""}
        for deal_id, deal in deals.items()
    }
    users_needed = set().union(*wanted_by_deal.values())
    users = {}
    if users_needed:
        users = {
            uid: User(uid, name, email, active)
            for uid, name, email, active in run(
                select(u.crm_id, u.name, u.email, u.active).where(
                    u.tenant_id == tenant, u.crm_id.in_(list(users_needed))
                )
            )
        }
    bundles = []
    for deal_id in ids:
        deal = deals.get(deal_id)
        if deal is None:
            continue
        bundles.append(
            Bundle(
                deal=deal,
                contacts=tuple(contacts.get(deal_id, ())),
                activities=tuple(activities.get(deal_id, ())),
                users=tuple(users[uid] for uid in sorted(wanted_by_deal[deal_id]) if uid in users),
            )
        )
    return bundles


def _joined_activities(
    session: Session, tenant: str, deal_ids: Sequence[str]
) -> dict[str, list[Activity]]:
    """Activities of deals saved before they carried a pack, through the link table."""
    a, ad = ActivityRow.__table__.c, ActivityDealRow.__table__.c
    found: dict[str, list[Activity]] = defaultdict(list)
    for deal_id, *row in raw_rows(
        session,
        select(
            ad.deal_id, a.crm_id, a.kind, a.at_epoch, a.offset_minutes, a.direction, a.status,
            a.contacts, a.cc, a.user_id,
        )
        .join(ActivityRow.__table__, (a.tenant_id == ad.tenant_id) & (a.crm_id == ad.activity_id))
        .where(ad.tenant_id == tenant, ad.deal_id.in_(list(deal_ids))),
    ):  # fmt: skip
        aid, kind, at, offset, direction, status, people, cc, user = row
        found[deal_id].append(
            _activity(aid, kind, at, offset, direction, status, (people or "").split(),
                      (cc or "").split(), user)
        )  # fmt: skip
    return found  # in any order: a Bundle sorts its activities


def deals_of_records(
    session: Session, contact_ids: Iterable[str], activity_ids: Iterable[str]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The deals the snapshot links each contact and each activity to ({contact id: deals},
    {activity id: deals}; one query each): where a CRM event or a poll naming a contact or an
    activity, but no deal, finds the deals it concerns."""
    return (
        _deals_by(session, DealContactRow.contact_id, DealContactRow.deal_id, contact_ids),
        _deals_by(session, ActivityDealRow.activity_id, ActivityDealRow.deal_id, activity_ids),
    )


def _deals_by(session: Session, record: Any, deal: Any, ids: Iterable[str]) -> dict[str, set[str]]:
    """{record id: its deals} through one link table's (record column, deal column)."""
    wanted = set(ids)
    found: dict[str, set[str]] = defaultdict(set)
    if wanted:
        for record_id, deal_id in session.execute(select(record, deal).where(record.in_(wanted))):
            found[record_id].add(deal_id)
    return dict(found)


def open_deal_ids(session: Session, after: str = "", limit: int = 1000) -> list[str]:
    """A page of the tenant's open deal ids, in id order after `after` (keyset pagination)."""
    return list(
        session.scalars(
            select(DealRow.crm_id)
            .where(DealRow.status == "open", DealRow.crm_id > after)
            .order_by(DealRow.crm_id)
            .limit(limit)
        )
    )
