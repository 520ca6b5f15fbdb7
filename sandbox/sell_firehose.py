"""The Firehose log of an emulated Sell account: one ordered event stream per resource, read
with ``GET /v3/<resource>/stream?position=&limit=``.

Shape, from the Firehose overview and resource pages
(https://developer.zendesk.com/api-reference/sales-crm/firehose/overview ; .../firehose/sources)::

    {"items": [{"data": {...the record now...},
                "meta": {"type": "deal", "event_type": "created|updated|deleted",
                         "event_id": "...", "event_time": "2017-09-25T13:52:42Z",
                         "event_cause": "interaction", "sequence": 1,
                         "previous": {...old values of the changed keys, updates only...}}}],
     "meta": {"position": "<opaque>", "top": false,
              "links": {"next": "<base>/v3/<resource>/stream?position=<opaque>"}}}

``position`` is required: ``tail`` (the oldest event kept), ``top`` (the newest: an empty page
whose position sees only what comes next) or a position the API returned. ``limit`` is 1 to 100
(default 25). ``top`` is true when the page reaches the newest event; clients must keep calling
until it is (the docs: never infer it from the number of items). Events are kept 72 hours: a
position whose next events were dropped, or that was issued more than 72 hours ago, answers
410 Gone (a Zendesk product manager's answer, crm-apis.md 3.6).

``data`` is the Firehose's own shape, not the Core API's: for deals, calls, notes and tasks
exactly the attributes the Firehose reference lists (``FIREHOSE_FIELDS``: no ``updated_at``; a
deal's ``value`` is a decimal string such as ``"10.25"``; a deal's custom fields come as the
``custom_field_values`` array; a task's ``reminder_offset``); ``previous`` holds the old values,
in that same shape, of the keys that changed. Custom field definitions have their stream too
(``/v3/custom_fields/stream``: ``id, name, resource_type, type``).

UNCONFIRMED: the element shape of ``custom_field_values`` (here ``{"id", "name", "value"}``:
the reference links a "Custom Field Value" page we could not read); the attributes of the
contacts, users, visits, stages and pipelines streams (here the Core API record without
``updated_at``, custom fields as ``custom_field_values``; visits, stages and pipelines streams
may not exist); ``sequence`` is the record's revision (1 at creation) here; events are ordered by
the time they happened (a write backdated with the Python API's ``at`` is sorted in); a
``deleted`` event carries the last snapshot; the position's encoding (here base64 of
``resource,sequence,issued-at``). The Sync API's ``meta.sync`` (``event_type``, ``ack_key``)
belongs to the Sync API, which the emulator does not serve.

Error policy: a malformed or foreign position is a 400, an expired one a 410 ``SellError``.
"""

import base64
import binascii
import bisect
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sandbox.sell_errors import bad_request, gone
from sandbox.sell_resources import ITEM_TYPE, format_datetime

__all__ = [
    "DEFAULT_LIMIT",
    "FIREHOSE_FIELDS",
    "MAX_LIMIT",
    "RETENTION",
    "Event",
    "Firehose",
    "snapshot",
]

RETENTION = timedelta(hours=72)
"""How long the Firehose keeps events."""

DEFAULT_LIMIT = 25
MAX_LIMIT = 100

FIREHOSE_FIELDS: dict[str, tuple[str, ...]] = {
    "deals": (
        "id",
        "creator_id",
        "owner_id",
        "name",
        "value",
        "currency",
        "hot",
        "stage_id",
        "source_id",
        "loss_reason_id",
        "last_stage_change_at",
        "last_stage_change_by_id",
        "dropbox_email",
        "contact_id",
        "organization_id",
        "estimated_close_date",
        "customized_win_likelihood",
        "tags",
        "custom_field_values",
        "created_at",
    ),
    "calls": (
        "id",
        "user_id",
        "summary",
        "recording_url",
        "outcome_id",
        "duration",
        "phone_number",
        "incoming",
        "missed",
        "resource_type",
        "resource_id",
        "associated_deal_ids",
        "made_at",
        "created_at",
    ),
    "notes": ("id", "creator_id", "content", "resource_id", "resource_type", "type", "created_at"),
    "tasks": (
        "id",
        "creator_id",
        "owner_id",
        "completed",
        "completed_at",
        "content",
        "resource_type",
        "resource_id",
        "reminder_offset",
        "due_date",
        "created_at",
    ),
    "custom_fields": ("id", "name", "resource_type", "type"),
}
"""The attributes of each documented Firehose resource, in the reference's order."""


def snapshot(resource: str, record: dict, definitions: Mapping[str, dict]) -> dict:
    """``record`` (Core API shape) as the Firehose shows it; ``definitions`` are the custom
    fields of the record's resource type by name."""
    out = {k: v for k, v in record.items() if k not in ("updated_at", "custom_fields")}
    if "custom_fields" in record:
        out["custom_field_values"] = [
            {
                "id": definitions[name]["id"] if name in definitions else None,
                "name": name,
                "value": value,
            }
            for name, value in record["custom_fields"].items()
        ]
    if resource == "deals" and out.get("value") is not None:
        out["value"] = f"{out['value']:.2f}"
    if resource == "tasks":
        out["reminder_offset"] = None  # remind_at is not kept as an offset here
    fields = FIREHOSE_FIELDS.get(resource)
    if fields is not None:
        out = {k: out.get(k) for k in fields}
    return _copy(out)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    at: datetime
    item: dict


class Firehose:
    """Event logs per resource; the caller holds the state's lock."""

    def __init__(self, retention: timedelta = RETENTION) -> None:
        self.retention = retention
        self._events: dict[str, list[Event]] = {r: [] for r in ITEM_TYPE}
        self._last_seq: dict[str, int] = dict.fromkeys(ITEM_TYPE, 0)
        self._dropped_upto: dict[str, int] = dict.fromkeys(ITEM_TYPE, 0)  # highest seq purged
        self._unordered: set[str] = set()  # resources with a backdated event to sort in
        self._revisions: dict[tuple[str, int], int] = {}

    @staticmethod
    def resources() -> tuple[str, ...]:
        return tuple(ITEM_TYPE)

    def append(
        self, resource: str, event_type: str, data: dict, at: datetime, before: dict | None
    ) -> None:
        """Log one event; ``data`` and ``before`` (the old snapshot, for updates) are in the
        Firehose's shape (``snapshot``)."""
        key = (resource, data["id"])
        self._revisions[key] = self._revisions.get(key, 0) + 1
        meta: dict = {
            "type": ITEM_TYPE[resource],
            "event_type": event_type,
            "event_id": secrets.token_urlsafe(16),
            "event_time": format_datetime(at),
            "event_cause": "interaction",
            "sequence": self._revisions[key],
        }
        if before is not None:
            meta["previous"] = {k: before.get(k) for k in data if data[k] != before.get(k)}
        events = self._events[resource]
        if events and at < events[-1].at:
            self._unordered.add(resource)
        self._last_seq[resource] += 1
        events.append(Event(self._last_seq[resource], at, {"data": data, "meta": meta}))

    def read(self, resource: str, position: str | None, limit: int, now: datetime) -> dict:
        if not position:
            raise bad_request(
                "missing_param",
                "position is required: tail, top or a position from a previous answer",
            )
        cutoff = now - self.retention
        if resource in self._unordered:
            self._sort(resource)
        self._purge(resource, cutoff)
        events = self._events[resource]
        if position == "tail":
            start = self._dropped_upto[resource]
        elif position == "top":
            start = self._last_seq[resource]
        else:
            start, issued = _decode(resource, position)
            if issued < cutoff or start < self._dropped_upto[resource]:
                raise gone(
                    "The position is older than the Firehose's 72-hour retention: start again "
                    "from position=tail or top after a full resynchronisation."
                )
        first = bisect.bisect_right(events, start, key=lambda e: e.seq)
        page = events[first : first + limit]
        end = page[-1].seq if page else start
        return {
            "items": [_copy_item(e.item) for e in page],
            "position": _encode(resource, end, now),
            "top": end >= self._last_seq[resource],
        }

    def _sort(self, resource: str) -> None:
        """Put backdated events (written with ``at`` in the past, as seeding does) in time
        order and number the log again. Positions issued before may then skip or repeat
        events: only a world being built backdates, before anyone reads the stream."""
        events = sorted(self._events[resource], key=lambda e: e.at)
        base = self._dropped_upto[resource]
        self._events[resource] = [Event(base + i, e.at, e.item) for i, e in enumerate(events, 1)]
        self._unordered.discard(resource)

    def _purge(self, resource: str, cutoff: datetime) -> None:
        events = self._events[resource]
        if not events or events[0].at >= cutoff:
            return
        first_kept = bisect.bisect_left(events, cutoff, key=lambda e: e.at)
        self._dropped_upto[resource] = events[first_kept - 1].seq
        del events[:first_kept]


def _encode(resource: str, seq: int, issued: datetime) -> str:
    raw = f"firehose.{resource},{seq},{int(issued.timestamp())}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(resource: str, position: str) -> tuple[int, datetime]:
    try:
        name, seq, issued = base64.urlsafe_b64decode(position.encode()).decode().split(",")
        if name != f"firehose.{resource}":
            raise ValueError(name)
        return int(seq), datetime.fromtimestamp(int(issued), UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request(
            "invalid_param", f"position {position!r} is not a position of the {resource} stream"
        ) from exc


def _copy(record: dict) -> dict:
    return {
        k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
        for k, v in record.items()
    }


def _copy_item(item: dict) -> dict:
    return {"data": _copy(item["data"]), "meta": _copy(item["meta"])}
