"""One pass over a bundle's activities, collecting everything the alerts and the health read.

The engine re-evaluates whole pipelines every day, so the activities are walked once per deal
and every rule works from these few numbers. Activities after `now` that claim to be done (clock
skew, or evaluating the past with `--now`) are left out: the engine sees the deal as of `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from math import exp

from engine.model import Activity

HEALTH_KINDS = ("email", "meeting", "call", "task")
"""The activity kinds the relationship health weighs (notes do not count)."""

_EPOCH_ORDINAL = 719163
"""date(1970, 1, 1).toordinal(): turns epoch seconds into a day number without a datetime."""


@dataclass(slots=True)
class Moment:
    """`now` and the tenant's calendar: every day count is in the tenant's timezone."""

    now: datetime
    zone: tzinfo  # UTC takes a fast path that needs no datetime
    now_ts: float = 0.0
    today: int = 0  # proleptic ordinal of today's local date
    _utc: bool = False
    _offsets: dict[int, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("now must carry a timezone (an aware datetime)")
        self.now_ts = self.now.timestamp()
        self._utc = str(self.zone) in ("UTC", "Etc/UTC", "Z") or self.zone is UTC
        self.today = self.local_day(self.now_ts)

    def local_day(self, ts: float) -> int:
        """The proleptic ordinal of the local calendar date of an epoch timestamp."""
        if self._utc:
            return int(ts // 86400) + _EPOCH_ORDINAL
        # A zone's offset is looked up once per hour of time and reused: evaluating a pipeline
        # asks about the same few weeks again and again.
        hour = int(ts // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            offset = self._steady_offset(hour)
            if offset is None:  # the offset changes within this hour: no shortcut
                return datetime.fromtimestamp(ts, self.zone).toordinal()
        return int((ts + offset) // 86400) + _EPOCH_ORDINAL

    def _steady_offset(self, hour: int) -> float | None:
        first = datetime.fromtimestamp(hour * 3600, self.zone).utcoffset()
        last = datetime.fromtimestamp(hour * 3600 + 3599.999, self.zone).utcoffset()
        if first is None or first != last:
            return None
        self._offsets[hour] = offset = first.total_seconds()
        return offset

    def days_since(self, ts: float) -> int:
        """Calendar days from the local date of `ts` to today (0 when it is today)."""
        return self.today - self.local_day(ts)

    def iso(self, ts: float) -> str:
        """An epoch timestamp as ISO 8601 in the tenant's timezone, for facts."""
        if self._utc:
            return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=ts)).isoformat()
        return datetime.fromtimestamp(ts, self.zone).isoformat()


@dataclass(slots=True)
class Signals:
    last_interaction: float | None = None
    """Epoch seconds of the latest done email, call or meeting."""
    last_by_contact: dict[str, float] = field(default_factory=dict)
    """Latest interaction per direct participant (cc does not count)."""
    threads: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    """(when, direct participants) of every interaction that names a contact."""
    next_meeting: float | None = None
    """The earliest meeting scheduled after now."""
    next_step: float | None = None
    """The earliest meeting or task scheduled after now."""
    counts: dict[str, int] = field(default_factory=dict)
    """Done activities per health kind."""
    decayed: dict[str, float] = field(default_factory=dict)
    """Per health kind, the sum of each done activity's fading factor (1 now, half a period ago)."""
    last_by_kind: dict[str, float] = field(default_factory=dict)
    """Latest done activity per health kind."""


def scan(activities: Sequence[Activity], now_ts: float, half_life_days: float) -> Signals:
    """Walk a bundle's activities (chronological, as Bundle keeps them) once.

    `half_life_days` sets how fast old activity fades for the health score.
    """
    rate = 0.6931471805599453 / (half_life_days * 86400.0)  # ln 2 per half-life, in seconds
    s = Signals()
    done: dict[str, list[float]] = {kind: [] for kind in HEALTH_KINDS}
    last_by_contact = s.last_by_contact
    threads = s.threads
    last_interaction = next_meeting = next_step = None
    for a in activities:
        ts = a.ts
        if ts > now_ts:
            # The future holds only plans; the first of each kind is the next one.
            if a.status == "scheduled":
                kind = a.kind
                if kind == "meeting":
                    if next_meeting is None:
                        next_meeting = ts
                    if next_step is None:
                        next_step = ts
                elif kind == "task" and next_step is None:
                    next_step = ts
            continue
        kind = a.kind
        if a.status != "done" and kind != "meeting":
            continue
        # A meeting still scheduled once its start has passed was held: CRMs are rarely told
        # so, and nothing reads the deal again when the time comes, so a meeting read while
        # still to come would otherwise never count.
        if kind == "note":
            continue
        done[kind].append(ts)
        if kind == "task":
            continue
        last_interaction = ts
        contacts = a.contacts
        if contacts:
            threads.append((ts, contacts))
            for c in contacts:
                last_by_contact[c] = ts
    s.last_interaction = last_interaction
    s.next_meeting = next_meeting
    s.next_step = next_step
    s.counts = {kind: len(times) for kind, times in done.items()}
    s.last_by_kind = {kind: times[-1] for kind, times in done.items() if times}
    s.decayed = {
        kind: sum([exp((t - now_ts) * rate) for t in times]) for kind, times in done.items()
    }
    return s


def single_thread(threads: list[tuple[float, tuple[str, ...]]]) -> tuple[str, float, int] | None:
    """The contact the latest interactions all involve alone, when the streak started, its length.

    `threads` is chronological. Walking back from the latest interaction, the streak runs while
    each interaction's direct participants are that one contact, and stops at the latest
    interaction with anyone else. Interactions that name no contact are not in `threads`, so
    they neither extend nor break it. Two different interactions at the very same instant break
    it, whatever order they come in.
    """
    if not threads:
        return None
    latest_ts, latest = threads[-1]
    if len(latest) != 1:
        return None
    i = len(threads) - 1
    # Participant ids are unique per activity, so "anyone else" is a tuple compare.
    while i >= 0 and threads[i][1] == latest:
        i -= 1
    first = i + 1
    if i >= 0:
        rival_ts = threads[i][0]
        if rival_ts == latest_ts:
            return None
        while threads[first][0] == rival_ts:  # simultaneous with the rival: not in the streak
            first += 1
    return latest[0], threads[first][0], len(threads) - first
