"""Following Zendesk Sell's Firehose: which deals changed, one page at a time, and the record
mirror kept current on the way.

Sell pushes nothing (crm-apis.md 3.6): its Firehose (`GET /v3/<resource>/stream?position=`)
is read stream by stream: deals, contacts, calls, visits, tasks, notes, and custom field
definitions. Each `step(cursor)` reads one page of one stream (100 events), applies it to the
tenant's record mirror (adapters.base.RecordMirror: Sell cannot list a deal's calls, so the
adapter's pull reads a deal's activities from there) and returns the deals the page concerns
with the new cursor, which the jobs checkpoint after every page (jobs.schedule.follow_changes).
One adapter reads every stream at least once, then each until the Firehose says `top`.

The cursor is one JSON document: each stream's position, when it was taken (the position's
age: the Firehose keeps 72 hours of events, `position_ages`), and the generation of its last
full listing; and the streams being read in full.

A full listing replaces the feed where the feed cannot serve: on the first sync (no cursor),
and when Sell answers 410 Gone for a position older than the retention. The stream's `top`
position is taken first, then every record is listed through the Core API (`GET /v2/<resource>`,
100 per page, by id), each page checkpointed like a feed page; what the mirror held but the
listing did not show was deleted meanwhile, and its deals are refreshed too; then the stream
goes on from the position taken first, so a change made during the listing is read from the
feed as well. A listing of deals requests every deal: no deal is missed, whatever the gap.
Sell pages by number, so a record deleted from a page already read moves the next page's first
record onto it: after each page, the record now last on the page before is checked (`_shifted`),
and a page that moved is read again for what it gained.

A contact custom field's definition changing (renamed, deleted) lists the contacts again: their
values follow the field, and the contacts stream need not carry that.

What a page concerns: a deal's own events, except the echo of Deal Radar's write-back (an
update whose changed values are Deal Radar's custom fields only: refreshing for it would only
write again what was just written); a contact's, the deals it is on (as the pulls found them:
Sell streams no associated-contact changes); an activity's, its deals before and after. Each
deal update whose `previous` holds another `stage_id` is noted (the stage, and when Sell
recorded the move: the event's time) for the mapping's stage entry.

Error policy: adapters.errors from the client, except 410, handled here as described; a record
the mirror cannot take propagates (a bug, not data).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from adapters.base import Changes, Mirrored, RecordMirror
from adapters.sell.client import PER_PAGE, PositionExpired, SellClient, records
from adapters.sell.fields import NAMES
from adapters.sell.mapping import core_shape, deal_links

log = logging.getLogger(__name__)

STREAMS = ("deals", "contacts", "calls", "visits", "tasks", "notes", "custom_fields")
"""The Firehose streams read, in the order a step picks them."""
ACTIVITIES = ("calls", "visits", "tasks", "notes")
SHIFT_CHECKED = ("deals", *ACTIVITIES)
"""Listings whose page boundaries are checked for records a deletion moved (`_shifted`): a deal
missed would not be synced, an activity would be missing from its deal until edited. A contact
missed costs nothing: pulls read a deal's contacts by id, not from the mirror."""
STAGE_ENTRIES = "stage_entries"
"""The mirror's kind for the stage changes the feed saw ({deal id: {"stage_id", "at"}})."""
VERSION = 1


@dataclass
class Position:
    """Where a stream's reading got to."""

    pos: str
    at: float
    """When Sell gave this position (epoch seconds): its age against the retention."""
    gen: int
    """The generation of the stream's last full listing (the mirror's stamp)."""
    top: bool = False
    """Sell said the position is the newest."""


@dataclass
class Listing:
    """A stream being listed in full through the Core API."""

    gen: int
    page: int = 1
    top: str | None = None
    """The stream's position taken before the listing began."""
    at: float | None = None
    last: str | None = None
    """The last id of the page read before (see `_shifted`)."""


@dataclass
class FeedCursor:
    streams: dict[str, Position] = field(default_factory=dict)
    listings: dict[str, Listing] = field(default_factory=dict)

    @classmethod
    def load(cls, value: str | None) -> FeedCursor:
        """The cursor a step returned; None (a first sync) or a cursor of another shape (a
        tenant moved to this CRM) lists every stream in full."""
        try:
            raw = json.loads(value) if value else None
        except ValueError:
            raw = None
        if not isinstance(raw, dict) or raw.get("v") != VERSION:
            return cls(listings={s: Listing(gen=1) for s in STREAMS})
        cursor = cls(
            streams={s: Position(**p) for s, p in raw.get("streams", {}).items()},
            listings={s: Listing(**r) for s, r in raw.get("listings", {}).items()},
        )
        for stream in STREAMS:  # a stream added since this cursor was written
            if stream not in cursor.streams and stream not in cursor.listings:
                cursor.listings[stream] = Listing(gen=1)
        return cursor

    def dump(self) -> str:
        return json.dumps(
            {"v": VERSION,
             "streams": {s: asdict(p) for s, p in sorted(self.streams.items())},
             "listings": {s: asdict(r) for s, r in sorted(self.listings.items())}},
            separators=(",", ":"), sort_keys=True,
        )  # fmt: skip


def position_ages(cursor: str | None, now: datetime) -> dict[str, float | None]:
    """Seconds since each stream's position was taken (None: the stream is being listed in
    full); {} for a cursor that is not a Sell feed cursor. For `dealradar tenants status`."""
    try:
        raw = json.loads(cursor) if cursor else None
    except ValueError:
        return {}
    if not isinstance(raw, dict) or raw.get("v") != VERSION:
        return {}
    ages: dict[str, float | None] = {
        s: now.timestamp() - float(p["at"]) for s, p in raw.get("streams", {}).items()
    }
    for stream in raw.get("listings", {}):
        ages[stream] = None
    return ages


class Firehose:
    """The feed of one Sell account, for one adapter (one job)."""

    def __init__(
        self,
        client: SellClient,
        mirror: RecordMirror,
        clock: Callable[[], datetime],
        *,
        on_fields_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.client, self.mirror, self.clock = client, mirror, clock
        self.on_fields_changed = on_fields_changed
        """Called when custom field definitions may have changed (re-check the account's)."""
        self.visited: set[str] = set()

    def step(self, cursor: str | None) -> Changes:
        state = FeedCursor.load(cursor)
        stream = next((s for s in STREAMS if s in state.listings), None)
        if stream is not None:
            deals = self._list(state, stream)
        else:
            stream = next(
                (s for s in STREAMS if s not in self.visited or not state.streams[s].top), None
            )
            if stream is None:  # every stream read to its top by this adapter already
                return Changes([], state.dump(), more=False)
            deals = self._read(state, stream)
        more = bool(state.listings) or any(
            s not in self.visited or not state.streams[s].top for s in STREAMS
        )
        return Changes(sorted(deals, key=_numeric), state.dump(), more=more)

    # -- the feed ------------------------------------------------------------------------------

    def _read(self, state: FeedCursor, stream: str) -> set[str]:
        position = state.streams[stream]
        try:
            answer = self.client.get(
                f"/v3/{stream}/stream", endpoint=f"/v3/{stream}/stream",
                position=position.pos, limit=PER_PAGE,
            )  # fmt: skip
        except PositionExpired:
            log.warning(
                "Sell Firehose: the %s position is older than the 72-hour retention; listing "
                "every %s again", stream, stream,
            )  # fmt: skip
            del state.streams[stream]
            state.listings[stream] = Listing(gen=position.gen + 1)
            return set()
        meta = answer.get("meta") or {}
        items = [i for i in answer.get("items") or () if isinstance(i, dict)]
        deals = self._apply(stream, items, position.gen)
        state.streams[stream] = Position(
            pos=str(meta.get("position") or position.pos), at=self.clock().timestamp(),
            gen=position.gen, top=bool(meta.get("top")) or not items,
        )  # fmt: skip
        self.visited.add(stream)
        if stream == "custom_fields" and any(
            (i.get("data") or {}).get("resource_type") == "contact" for i in items
        ) and "contacts" in state.streams:  # fmt: skip
            # A contact field renamed or deleted changes every contact's values, and the
            # contacts stream need not say so: list the contacts again.
            log.info("Sell contact custom fields changed; listing every contact again")
            old = state.streams.pop("contacts")
            state.listings["contacts"] = Listing(gen=old.gen + 1)
        return deals

    def _apply(self, stream: str, items: list[dict[str, Any]], gen: int) -> set[str]:
        """Apply a page of events to the mirror; the deals it concerns."""
        if stream == "custom_fields":
            if items:
                self.on_fields_changed()
            return set()
        latest: dict[str, tuple[str, dict[str, Any], Mapping[str, Any]]] = {}
        deals: set[str] = set()
        for item in items:
            meta, data = item.get("meta") or {}, item.get("data") or {}
            if data.get("id") is None:
                continue
            rid, event = str(data["id"]), str(meta.get("event_type") or "updated")
            latest.pop(rid, None)  # keep each record's last event, in page order
            latest[rid] = (event, core_shape(stream, data), meta)
            if stream == "deals" and not _echo(event, data, meta):
                deals.add(rid)
            deals.update(deal_links(stream, core_shape(stream, data)))
        gone = [rid for rid, (event, _, _) in latest.items() if event == "deleted"]
        kept = [(rid, data, meta) for rid, (event, data, meta) in latest.items()
                if event != "deleted"]  # fmt: skip
        changed = self.mirror.put(
            stream, [Mirrored(rid, data, _links(stream, rid, data)) for rid, data, _ in kept], gen
        )
        if stream != "deals":
            deals.update(d for ds in changed.values() for d in ds)
            deals.update(d for ds in self.mirror.delete(stream, gone).values() for d in ds)
        else:
            self.mirror.delete(stream, gone)
            self._note_stages(items, {rid for rid, _, _ in kept})
        return deals

    def _note_stages(self, items: Iterable[Mapping[str, Any]], kept: set[str]) -> None:
        """Each kept deal's last stage move in the page, from every event (not only the deal's
        last one: a move followed by another edit before the next poll would be lost)."""
        moves: dict[str, dict[str, Any]] = {}
        for item in items:
            meta, data = item.get("meta") or {}, item.get("data") or {}
            previous = meta.get("previous") or {}
            if "stage_id" in previous and previous["stage_id"] != data.get("stage_id"):
                at = meta.get("event_time") or data.get("last_stage_change_at")
                moves[str(data.get("id"))] = {"stage_id": data.get("stage_id"), "at": at}
        entries = [Mirrored(rid, entry) for rid, entry in moves.items() if rid in kept]
        self.mirror.put(STAGE_ENTRIES, entries, 0)

    # -- full listings -------------------------------------------------------------------------

    def _list(self, state: FeedCursor, stream: str) -> set[str]:
        listing = state.listings[stream]
        if listing.top is None:
            answer = self.client.get(
                f"/v3/{stream}/stream", endpoint=f"/v3/{stream}/stream", position="top", limit=1
            )
            listing.top = str((answer.get("meta") or {})["position"])
            listing.at = self.clock().timestamp()
        if stream == "custom_fields":
            self.on_fields_changed()
            return self._listed(state, stream)
        answer = self.client.get(
            f"/v2/{stream}", endpoint=f"/v2/{stream}", page=listing.page, per_page=PER_PAGE,
            sort_by="id:asc",
        )  # fmt: skip
        found = records(answer)
        shifted = self._shifted(stream, listing, found)
        if found:
            listing.last = str(found[-1]["id"])
        found += shifted
        changed = self.mirror.put(
            stream,
            [Mirrored(str(r["id"]), r, _links(stream, str(r["id"]), r)) for r in found],
            listing.gen,
        )
        if stream == "deals":
            deals = {str(r["id"]) for r in found}  # every deal: no change is missed
        else:
            deals = {d for ds in changed.values() for d in ds}
        if ((answer.get("meta") or {}).get("links") or {}).get("next_page"):
            listing.page += 1
            return deals
        return deals | self._listed(state, stream)

    def _shifted(
        self, stream: str, listing: Listing, page: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The records a deletion moved from this page onto the one read before, unseen.

        Sell lists by page number: a record deleted from a page already read moves the next
        page's first record onto it. So, once a page is read, the record now last on the page
        before is asked for alone; when it is no longer the one read there, that page is read
        again and what lies between the two pages' ids is taken too. New records take higher
        ids (the listing is by id), so only deletions shift it."""
        if listing.page == 1 or listing.last is None or stream not in SHIFT_CHECKED:
            return []
        boundary = (listing.page - 1) * PER_PAGE
        probe = records(self.client.get(
            f"/v2/{stream}", endpoint=f"/v2/{stream}", page=boundary, per_page=1,
            sort_by="id:asc",
        ))  # fmt: skip
        if probe and str(probe[0]["id"]) == listing.last:
            return []
        before = records(self.client.get(
            f"/v2/{stream}", endpoint=f"/v2/{stream}", page=listing.page - 1,
            per_page=PER_PAGE, sort_by="id:asc",
        ))  # fmt: skip
        low = int(listing.last)
        high = int(page[0]["id"]) if page else None
        missed = [
            r for r in before if int(r["id"]) > low and (high is None or int(r["id"]) < high)
        ]
        if missed:
            log.info("Sell %s: %d records moved onto a page already listed (a deletion "
                     "meanwhile), taken from it again", stream, len(missed))  # fmt: skip
        return missed

    def _listed(self, state: FeedCursor, stream: str) -> set[str]:
        """The listing is complete: forget what it did not see, go on from the feed."""
        listing = state.listings.pop(stream)
        pruned = self.mirror.prune(stream, listing.gen) if stream != "custom_fields" else {}
        assert listing.top is not None and listing.at is not None
        state.streams[stream] = Position(listing.top, listing.at, listing.gen, top=False)
        if pruned:
            log.info("Sell %s: %d deleted while the feed could not say", stream, len(pruned))
        return {d for ds in pruned.values() for d in ds}


def _links(stream: str, rid: str, data: Mapping[str, Any]) -> list[str] | None:
    """What a mirrored record is linked to: a deal to itself (so that pruning deals names the
    deleted ones), an activity to its deals; a contact's links come from the pulls (None)."""
    if stream == "deals":
        return [rid]
    if stream == "contacts":
        return None
    return deal_links(stream, data)


def _echo(event: str, data: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """A deal update that changed Deal Radar's custom fields and nothing else: our write-back."""
    previous = meta.get("previous")
    if event != "updated" or not isinstance(previous, Mapping) or not previous:
        return False
    if set(previous) - {"custom_field_values"}:
        return False
    before = _values(previous.get("custom_field_values"))
    after = _values(data.get("custom_field_values"))
    changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    return bool(changed) and changed <= NAMES


def _values(values: Any) -> dict[str, Any]:
    return {
        str(v.get("name")): v.get("value")
        for v in values or ()
        if isinstance(v, Mapping) and v.get("name")
    }


def _numeric(deal_id: str) -> tuple[int, str]:
    return (int(deal_id), "") if deal_id.isdigit() else (0, deal_id)
