"""What every CRM adapter offers the jobs: pull bundles, list changes, write values back.

An adapter is built per tenant by the registry (`adapters.adapter_for`) and talks to one CRM
account. Its methods raise only `adapters.errors`; they never retry by themselves beyond what
the CRM's client does for a single call, so that the retry policy lives in one table in jobs/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.model import Bundle, User


@dataclass(frozen=True)
class Pulled:
    """Bundles for the deals asked for, and the ids the CRM no longer has."""

    bundles: Sequence[Bundle]
    deleted: Sequence[str] = ()


@dataclass(frozen=True)
class Changes:
    """Deals modified since a cursor, and the cursor to store once they are handled."""

    deal_ids: Sequence[str]
    cursor: str
    more: bool = False


@dataclass(frozen=True)
class ActivityChanges:
    """Activities created, edited or deleted since a set of cursors (one per CRM object), by
    what they concern: the deals they name, the contacts of those naming none, and their own
    ids (the deals the snapshot links them to concern them too: one moved to another deal, or
    deleted, changes the deal it left)."""

    deal_ids: Sequence[str]
    contact_ids: Sequence[str]
    activity_ids: Sequence[str]
    cursors: Mapping[str, str]
    more: bool = False


class ActivityFeed(Protocol):
    """An adapter whose CRM's deal listing does not show a deal's new activities (Salesforce:
    logging a call is not documented to stamp its opportunity): a poll follows the activity
    objects too, each from its own cursor."""

    activity_objects: Sequence[str]
    """The CRM objects followed, each the name of its cursor in `activities_changed_since`."""

    def activities_changed_since(self, cursors: Mapping[str, str]) -> ActivityChanges:
        """One page of each object's changes since its cursor ({object: cursor}, every one of
        `activity_objects`); `more` while a listing has pages left, read by calling again with
        the cursors returned."""
        ...


@dataclass(frozen=True)
class TenantRef:
    """What an adapter may know of its tenant."""

    id: str
    crm: str
    account_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    """The IANA zone the tenant's days are counted in: a CRM that shows a datetime in its
    user's zone (HubSpot's close date) is read as its users see it."""


class TokenSource(Protocol):
    """A tenant's OAuth access token, kept fresh by the application (adapters never store it)."""

    def current(self) -> str:
        """A token valid for a while yet, refreshed ahead of its expiry if need be."""
        ...

    def renew(self, rejected: str) -> str:
        """The CRM refused `rejected` before its expiry: refresh now (once, whoever else asks
        at the same moment) and return the new token. Raises PermissionDenied when the grant
        itself was revoked (an admin must install again)."""
        ...


class TokenDetails(TokenSource, Protocol):
    """A TokenSource that also hands out the non-secret values the CRM returned with the
    tokens: Salesforce's `instance_url` (the host every API call goes to, which changes when
    the org moves) and `login_url` (where its tokens are refreshed)."""

    def detail(self, name: str) -> str | None:
        """The value the token grant stored under `name`, None when it stored none."""
        ...


@dataclass(frozen=True)
class ApiUsage:
    """A CRM account's API calls in its allowance window (Salesforce: the rolling 24 hours of
    `Sforce-Limit-Info: api-usage=USED/LIMIT`)."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        """The part of the allowance used, 0.0 to 1.0 (1.0 when the limit is 0)."""
        return min(1.0, self.used / self.limit) if self.limit > 0 else 1.0


@dataclass(frozen=True)
class Mirrored:
    """One CRM record as a mirror keeps it: the CRM's own JSON and the deals it belongs to
    (None: leave the record's deal links as they are)."""

    id: str
    data: Mapping[str, Any]
    deal_ids: Sequence[str] | None = None


class RecordMirror(Protocol):
    """A tenant's copy of CRM records, for a CRM that can stream its changes but cannot be asked
    for a deal's records (Zendesk Sell: no call lists by deal). An adapter fills it from the
    CRM's change feed, then reads a deal's records back from it. Lent by the application (the
    store keeps it), one tenant per mirror; `kind` names the CRM's resource ("calls")."""

    def put(self, kind: str, records: Sequence[Mirrored], generation: int) -> dict[str, set[str]]:
        """Insert or replace these records, stamped with `generation`; returns, for each record
        whose data or deal links changed, its deals before and after (a record moved off a deal
        concerns that deal too)."""
        ...

    def delete(self, kind: str, ids: Sequence[str]) -> dict[str, set[str]]:
        """Forget these records; returns each one's deals as they were."""
        ...

    def prune(self, kind: str, generation: int) -> dict[str, set[str]]:
        """Forget the records of `kind` stamped before `generation` (not seen by a full listing
        that stamped the survivors); returns each one's deals as they were."""
        ...

    def link(self, kind: str, deal_id: str, ids: Sequence[str]) -> None:
        """The records of `kind` on one deal are exactly `ids` (a deal's contacts, when the
        CRM lists them by deal but not the deals by record)."""
        ...

    def deals_of(self, kind: str, ids: Sequence[str]) -> dict[str, set[str]]:
        """The deals each record belongs to (records without deals are left out)."""
        ...

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of `kind` with these ids that the mirror holds."""
        ...

    def of_deals(self, kind: str, deal_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The records of `kind` on each of these deals ({deal id: [record data]})."""
        ...


class Notices(Protocol):
    """Problems an adapter found that an admin must fix in the CRM (a missing custom field),
    shown by `dealradar tenants status` until the adapter clears them."""

    def set(self, name: str, message: str | None) -> bool:
        """Record (or, with None, clear) the notice `name`; True if that changed anything."""
        ...


@dataclass(frozen=True)
class AdapterContext:
    """What the application lends an adapter: built by the jobs in one place
    (jobs/adapters.py), so an adapter never reads the environment or the store itself."""

    tokens: TokenSource | None
    """The tenant's OAuth tokens (None for a CRM without OAuth)."""
    redis: Any | None
    """Shared state across workers (a CRM client's rate budget); None where none is needed."""
    crm: Mapping[str, str]
    """The CRM apps' settings (Config.crm): client ids, API hosts."""
    clock: Callable[[], datetime]
    """Now, for mappings that judge what is past and what is to come."""
    mirror: RecordMirror | None = None
    """The tenant's record mirror (None where the CRM needs none)."""
    notices: Notices | None = None
    """Where the adapter leaves what an admin must fix (None: logged only)."""
    usage: Callable[[ApiUsage], None] | None = None
    """Where a client reports the CRM's API usage as the CRM states it (jobs/budget.py keeps
    it, decides when non-urgent work waits, and shows it in `dealradar tenants status`)."""


class Adapter(Protocol):
    needs_polling: bool
    """True for a CRM (or a kind of change) that sends no webhooks: the scheduler polls it."""
    index_lag_seconds: float
    """How late a change may become visible to `changed_since` (a search index's delay); the
    cursor is kept this far behind each poll's start, so a change indexed late is still seen by
    the next poll. Optional: an adapter without it has none."""

    def pull(self, deal_ids: Sequence[str]) -> Pulled:
        """The current bundles of these deals, read from the CRM (never from a cache)."""
        ...

    def changed_since(self, cursor: str | None) -> Changes:
        """Deals modified since `cursor` (None: the first sync), one page at a time."""
        ...

    def write_back(self, values: Mapping[str, Mapping[str, Any]]) -> WriteResult | None:
        """Write Deal Radar's fields on deals ({deal id: {field: value}}), batched to the CRM's
        limits; the values are only those that changed. An adapter whose CRM can refuse some
        records or fields of a batch (Salesforce Collections) returns a `WriteResult` saying
        what was not written; None means all of it was."""
        ...


@dataclass(frozen=True)
class WriteResult:
    """What a write-back left unwritten: {deal id: reason} for whole deals (deleted, refused),
    {deal id: [field, ...]} for fields the CRM would not take (not visible to our user yet).
    The jobs record as written only the rest, so those values are tried again later.

    `deleted` names the deals the CRM says no longer exist: the jobs forget them (their
    episodes end), as a pull that finds them gone does. For a CRM that sends no event when a
    record is deleted (Salesforce), this is how Deal Radar learns of it."""

    failed: Mapping[str, str] = field(default_factory=dict)
    skipped_fields: Mapping[str, Sequence[str]] = field(default_factory=dict)
    deleted: Sequence[str] = ()


class UserDirectory(Protocol):
    """An adapter that can read users from the CRM directly: the daily sweep asks it about the
    owners of open deals, so that a rep deactivated in the CRM is known before any of their
    deals changes (deals that rot are exactly the ones that do not change)."""

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, User]:
        """The CRM's users among these ids, by id, each with `active` as the CRM has it; an id
        the CRM does not know is left out."""
        ...


class EventResolver(Protocol):
    """An adapter that can place webhook events naming no known deal (a contact, an activity)
    on their deals by asking the CRM; the sweeper's `resolve` job uses it when it is there."""

    def deals_for_events(self, bodies: Sequence[str]) -> list[set[str]]:
        """The deals each stored event (its JSON as the inbox keeps it) concerns, in order; an
        empty set for an event whose records have no deal."""
        ...


class CrmActions(Protocol):
    """An adapter that can leave work for reps in the CRM: tasks and notes on a deal, for the
    actions (one per alert episode). Each create is idempotent by `key`, the outbox key of the
    episode: called again with the same key (a retry after a timeout, a worker killed before
    the outbox recorded the id) it returns the record made the first time and creates nothing."""

    def create_task(
        self,
        deal_id: str,
        *,
        owner_id: str | None,
        subject: str,
        body: str,
        due: datetime,
        key: str,
    ) -> str:
        """A task for `owner_id` (None: unassigned), linked to the deal, due at `due` (aware);
        returns its id."""
        ...

    def complete_task(self, task_id: str) -> None:
        """Mark the task completed if it is still open; a task already completed or deleted in
        the CRM is left alone (not an error)."""
        ...

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        """Give a task still open to `owner_id` (a deal handed to another rep); False when the
        task was completed or deleted in the CRM meanwhile, which is left alone. Raises
        OwnerInactive when the CRM refuses that user as deactivated."""
        ...

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        """A note on the deal's timeline at `at` (aware); returns its id."""
        ...
