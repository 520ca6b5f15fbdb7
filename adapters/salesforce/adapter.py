"""The Salesforce adapter the jobs use: pull bundles, list changed opportunities, write fields.

Every request goes through `SalesforceClient.call` (token, usage, retries, error translation),
and the reads are few, wide SOQL queries, because the number of calls is what an org's daily
allowance spends and every other tool of the customer shares it (crm-apis.md traps 9). A
query batch holds up to 2,000 records, child records counted:

- `pull(ids)`: one query of the opportunities with their contact roles (the contacts' name,
  email and title as parent fields), stage history, tasks (email tasks left out: the
  EmailMessage they log stands for them) , events and email messages as child subqueries,
  owners as parent fields; then one query of the events' attendees (EventRelation), one of
  the tasks' contacts (TaskRelation, with Shared Activities) and one of the emails' contact
  recipients (EmailMessageRelation, by a semi-join on the same opportunities). Four queries
  whatever the number of deals (per 2,000 events, or 4,000 tasks naming a contact), each read
  to its end.
  Opportunities the query does not return are `Pulled.deleted`.
- `changed_since(cursor)`: one batch of `SELECT Id, SystemModstamp FROM Opportunity` ordered
  by SystemModstamp, after the cursor (epoch milliseconds of the last SystemModstamp seen);
  the batches of one listing follow its query locator; a listing cut short starts again at
  its cursor's own millisecond (repeating what was seen there rather than missing a tie), one
  read to its end just after it (nothing is listed again).
- `activities_changed_since(cursors)`: the Tasks, Events and contact roles stamped since their
  own cursors (ACTIVITY_LISTINGS, through queryAll), the first batches in one Composite
  request: the deals they name, the contacts of activities naming none (the jobs find those
  contacts' deals in the store), the activities' ids.
- `write_back(values)`: adapters/salesforce/writeback.py (sObject Collections, 200 a call).
- `create_task`, `complete_task`, `create_note` (`CrmActions`): adapters/salesforce/actions.py.
- `deals_for_events(bodies)`: the opportunities of stored events that named none the snapshot
  knew (a task on an opportunity not pulled yet, a contact's change).
- `api_usage()`: the org's usage read with `GET /limits`, for a paused tenant to learn when
  it may resume while nothing else calls.

Error policy: adapters.errors only (from the client); a record whose data cannot be mapped
(mapping.MappingError) is logged and its opportunity left out of the pull.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from adapters.base import (
    ActivityChanges,
    AdapterContext,
    ApiUsage,
    Changes,
    Pulled,
    TenantRef,
    WriteResult,
)
from adapters.errors import InvalidRequest
from adapters.salesforce import events as salesforce_events
from adapters.salesforce import writeback
from adapters.salesforce.actions import SalesforceActions
from adapters.salesforce.client import TIMEOUT, SalesforceClient
from adapters.salesforce.mapping import (
    MappingError,
    children,
    id18,
    to_contact,
    to_deal,
    to_email,
    to_event,
    to_task,
    to_user,
)
from adapters.webhooks import MalformedBody
from engine.model import Activity, Bundle, Contact, User

log = logging.getLogger(__name__)

T = TypeVar("T")

PULL_BATCH = 2000
"""Opportunities per refresh job (jobs.refresh reads it): the pull's three queries read
whatever their deals hold in full batches, so the fewer pulls the fewer part-filled batches;
2,000 ids keep each query under SOQL's 100,000 characters."""
INDEX_LAG_SECONDS = 60.0
"""A record's SystemModstamp is its transaction's time, stamped before the commit: the poll's
cursor stays this far behind its start, so a transaction still open then is seen later."""
LISTING_FIELDS = "Id, SystemModstamp"

OPPORTUNITY_QUERY = (
    "SELECT Id, Name, StageName, Amount, CloseDate, CreatedDate, OwnerId, Owner.Name, "
    "Owner.Email, Owner.IsActive, IsClosed, IsWon, SystemModstamp, "
    "(SELECT ContactId, Role, IsPrimary, Contact.Name, Contact.Email, Contact.Title "
    "FROM OpportunityContactRoles), "
    "(SELECT StageName, CreatedDate FROM OpportunityHistories ORDER BY CreatedDate DESC), "
    "(SELECT Id, Status, IsClosed, ActivityDate, CompletedDateTime, CreatedDate, TaskSubtype, "
    "CallType, WhoId, OwnerId, Owner.Name, Owner.Email, Owner.IsActive, Description FROM Tasks "
    "WHERE TaskSubtype != 'Email'), "
    "(SELECT Id, StartDateTime, ActivityDateTime, ActivityDate, IsAllDayEvent, WhoId, OwnerId, "
    "Owner.Name, Owner.Email, Owner.IsActive FROM Events WHERE IsChild = false), "
    "(SELECT Id, MessageDate, CreatedDate, Incoming, Status, FromAddress, ToAddress, CcAddress, "
    "BccAddress, CreatedById, CreatedBy.Name, CreatedBy.Email, CreatedBy.IsActive "
    "FROM Emails) "
    "FROM Opportunity WHERE Id IN ({ids})"
)
"""What a pull reads of each opportunity (mapping.py reads these fields). Every user is read
with User.IsActive, so that a deal whose owner left carries that owner as inactive. Child
events are left out: each user invited to an event gets one, a copy of the event it owns
(IsChild), and the event itself stands for the meeting, with every attendee."""
ATTENDEES_QUERY = (
    "SELECT EventId, RelationId, Status FROM EventRelation WHERE EventId IN ({ids})"
)
"""The attendees of the events the opportunities query returned, by their ids: SOQL takes no
Event (nor Task) in a semi-join's inner select."""
TASK_CONTACTS_QUERY = (
    "SELECT TaskId, RelationId FROM TaskRelation WHERE TaskId IN ({ids}) AND IsWhat = false"
)
"""The contacts of the tasks the opportunities query returned: with Shared Activities a task
relates to up to 50 contacts, its WhoId only one of them (crm-apis.md 2.4). Orgs without
Shared Activities have no TaskRelation type (INVALID_TYPE): there, WhoId is the one contact."""
TASK_RELATION_IDS = 4_000
"""Task ids per TaskRelation query: 4,000 quoted 18-character ids are about 84,000 characters,
under SOQL's 100,000 (the client sends a query that long through Composite). Most tasks have one
contact or none, so the answer is far smaller than the ids asked: the fewer queries the better."""
CONTACT_ROLES = "OpportunityContactRole"
ACTIVITY_LISTINGS = {
    "Task": "SELECT Id, WhatId, WhoId, SystemModstamp FROM Task WHERE SystemModstamp >= {since} "
    "ORDER BY SystemModstamp",
    "Event": "SELECT Id, WhatId, WhoId, SystemModstamp FROM Event WHERE IsChild = false AND "
    "SystemModstamp >= {since} ORDER BY SystemModstamp",
    CONTACT_ROLES: "SELECT Id, OpportunityId, SystemModstamp "
    "FROM OpportunityContactRole WHERE SystemModstamp >= {since} ORDER BY SystemModstamp",
}
"""What a poll reads of the records changed since its cursors that concern an opportunity
without stamping it: a logged call, meeting or email (Enhanced Email logs each EmailMessage
with a Task) is a Task or an Event, and whether logging one stamps its opportunity is not
documented (LastActivityDate does not move LastModifiedDate); nor is it for a contact role
added, changed or removed (the deal's buying committee: key roles, single-threading). Through
queryAll: a deleted call changes its deal's last activity, and nothing else tells of it; a
removed role changes its committee, if Salesforce keeps deleted roles for queryAll
(UNCONFIRMED: a public report says it does not, and then the next refresh or sweep sees it).
Child events are the invitees' copies of an event (the pull's reasoning). At most 5 listings:
their first batches go in one Composite request."""
RECIPIENTS_QUERY = (
    "SELECT EmailMessageId, RelationId, RelationType FROM EmailMessageRelation "
    "WHERE EmailMessageId IN (SELECT Id FROM EmailMessage WHERE RelatedToId IN ({ids})) "
    "AND RelationObjectType = 'Contact'"
)
"""Only contacts' relations: users (the rep) and unknown addresses say nothing of who at the
customer took part."""


class SalesforceAdapter:
    activity_objects = tuple(ACTIVITY_LISTINGS)
    """The activity objects a poll follows (`adapters.base.ActivityFeed`)."""
    needs_polling = True
    """Orgs push through an Outbound Message or a Flow when their admin set one up; the
    scheduler polls the others (and polls hourly only while pushes arrive: `push_optional`)."""
    push_optional = True
    index_lag_seconds = INDEX_LAG_SECONDS
    pull_batch = PULL_BATCH

    def __init__(
        self, tenant: TenantRef, context: AdapterContext, *, client: SalesforceClient | None = None
    ) -> None:
        """`client` replaces the one built from the context (tests, benchmarks)."""
        self.tenant = tenant
        self.clock = context.clock
        if client is None:
            if context.tokens is None:
                raise ValueError(f"tenant {tenant.id}: a Salesforce adapter needs OAuth tokens")
            client = SalesforceClient(
                tenant.account_id, context.tokens,
                ca_bundle=context.crm.get("SALESFORCE_CA_BUNDLE"), usage=context.usage,
            )  # fmt: skip
        self.client = client
        self.actions = SalesforceActions(client)
        self.label_roles: Mapping[str, str | None] = tenant.extra.get("label_roles", {})
        self._zone = ZoneInfo(tenant.timezone)
        self._listing: tuple[str, str] | None = None
        """The listing under way: (cursor returned, nextRecordsUrl of its next batch)."""
        self._activity_listings: dict[str, tuple[str, str]] = {}
        """The activity listings under way: {object: (cursor returned, its next batch's URL)}."""
        self._shared_activities = True
        """False once the org answered that it has no TaskRelation (no Shared Activities)."""

    # -- pull ----------------------------------------------------------------------------------

    def pull(self, deal_ids: Sequence[str]) -> Pulled:
        asked = {str(d): id18(str(d)) for d in deal_ids}
        wanted = list(dict.fromkeys(asked.values()))
        if not wanted:
            return Pulled(bundles=[])
        ids = soql_ids(wanted)
        opportunities = self.client.query(OPPORTUNITY_QUERY.format(ids=ids), "query Opportunity")
        attendees: dict[str, list[Mapping[str, Any]]] = {}
        events = [str(e["Id"]) for o in opportunities for e in children(o, "Events")]
        for chunk in _chunks(events, PULL_BATCH):
            query = ATTENDEES_QUERY.format(ids=soql_ids(chunk))
            for row in self.client.query(query, "query EventRelation"):
                attendees.setdefault(str(row["EventId"]), []).append(row)
        # A task with contacts names one of them (its primary) as WhoId: only those can have more.
        tasks = [
            str(t["Id"]) for o in opportunities for t in children(o, "Tasks") if t.get("WhoId")
        ]
        task_contacts = self._task_contacts(tasks)
        recipients: dict[str, list[Mapping[str, Any]]] = {}
        if any(children(o, "Emails") for o in opportunities):
            for row in self.client.query(
                RECIPIENTS_QUERY.format(ids=ids), "query EmailMessageRelation"
            ):
                recipients.setdefault(str(row["EmailMessageId"]), []).append(row)
        now = self.clock()
        found = {str(o["Id"]) for o in opportunities}
        bundles = []
        for opp in opportunities:
            try:
                bundles.append(self._bundle(opp, attendees, task_contacts, recipients, now))
            except MappingError as exc:
                log.error("tenant %s: Salesforce opportunity left out: %s", self.tenant.id, exc)
        deleted = [given for given, full in asked.items() if full not in found]
        return Pulled(bundles=bundles, deleted=deleted)

    def _task_contacts(self, task_ids: Sequence[str]) -> dict[str, list[str]]:
        """The contacts each task relates to through TaskRelation, by task id; none in an org
        without Shared Activities (asked once per adapter: the refusal costs a call)."""
        found: dict[str, list[str]] = {}
        for chunk in _chunks(task_ids, TASK_RELATION_IDS):
            if not self._shared_activities:
                break
            query = TASK_CONTACTS_QUERY.format(ids=soql_ids(chunk))
            try:
                rows = self.client.query(query, "query TaskRelation")
            except InvalidRequest as exc:
                if getattr(exc, "code", "") != "INVALID_TYPE":
                    raise
                self._shared_activities = False
                break
            for row in rows:
                found.setdefault(str(row["TaskId"]), []).append(str(row["RelationId"]))
        return found

    def _bundle(
        self,
        opp: Mapping[str, Any],
        attendees: Mapping[str, Sequence[Mapping[str, Any]]],
        task_contacts: Mapping[str, Sequence[str]],
        recipients: Mapping[str, Sequence[Mapping[str, Any]]],
        now: datetime,
    ) -> Bundle:
        deal = to_deal(opp, instance_url=self.client.instance_url)
        contacts = _contacts(children(opp, "OpportunityContactRoles"), self.label_roles)
        ours = {c.id for c in contacts}
        by_email = {c.email: c.id for c in contacts if c.email}
        users: dict[str, User] = {}
        _note_user(users, opp.get("OwnerId"), opp.get("Owner"))
        activities: list[Activity] = []
        for task in children(opp, "Tasks"):
            activity = to_task(
                task, deal_id=deal.id, contacts=ours, zone=self._zone,
                related=task_contacts.get(str(task["Id"]), ()),
            )  # fmt: skip
            if activity is not None:
                activities.append(activity)
                _note_user(users, task.get("OwnerId"), task.get("Owner"))
        for event in children(opp, "Events"):
            activities.append(
                to_event(
                    event, deal_id=deal.id, attendees=attendees.get(str(event["Id"]), ()),
                    contacts=ours, now=now, zone=self._zone,
                )
            )  # fmt: skip
            _note_user(users, event.get("OwnerId"), event.get("Owner"))
        for message in children(opp, "Emails"):
            activity = to_email(
                message, deal_id=deal.id, relations=recipients.get(str(message["Id"]), ()),
                contacts=ours, contacts_by_email=by_email, now=now,
            )  # fmt: skip
            if activity is not None:
                activities.append(activity)
                _note_user(users, message.get("CreatedById"), message.get("CreatedBy"))
        return Bundle(
            deal=deal, contacts=tuple(contacts), activities=tuple(activities),
            users=tuple(users[u] for u in sorted(users)),
        )  # fmt: skip

    # -- changes -------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Changes:
        if self._listing is not None and self._listing[0] == cursor:
            url = self._listing[1]
            page = self.client.call(
                "query Opportunity changes (more)",
                lambda sf: sf.query_more(url, identifier_is_url=True, timeout=TIMEOUT),
            )
        else:
            where = ""
            if cursor is not None:
                where = f" WHERE SystemModstamp >= {_soql_datetime(int(float(cursor)))}"
            soql = f"SELECT {LISTING_FIELDS} FROM Opportunity{where} ORDER BY SystemModstamp"
            # After the first listing, queryAll: a deletion stamps the record, and no Outbound
            # Message or Flow tells of it, so this is how a deleted deal comes to be forgotten
            # (its pull finds it gone).
            deleted = cursor is not None
            page = self.client.call(
                "query Opportunity changes",
                lambda sf: sf.query(soql, include_deleted=deleted, timeout=TIMEOUT),
            )
        records = page.get("records") or []
        ids = [str(r["Id"]) for r in records]
        more = not page.get("done", True) and bool(page.get("nextRecordsUrl"))
        out = _after_page(records, cursor, more)
        self._listing = (out or "0", page["nextRecordsUrl"]) if more else None
        return Changes(ids, out or "0", more=more)

    def activities_changed_since(self, cursors: Mapping[str, str]) -> ActivityChanges:
        """One batch of the Tasks, of the Events and of the contact roles stamped since their
        cursors (epoch milliseconds, as `changed_since`'s): the first batches in one Composite
        request (one call), then, while a listing has batches left, only those listings,
        through their locators. Each is read as the opportunities' listing is (`_after_page`)."""
        going = {
            sobject: url
            for sobject, (cursor, url) in self._activity_listings.items()
            if cursors.get(sobject) == cursor
        }
        if going:
            pages = {
                sobject: self.client.call(
                    f"query {sobject} changes (more)",
                    lambda sf, url=url: sf.query_more(url, identifier_is_url=True, timeout=TIMEOUT),
                )
                for sobject, url in going.items()
            }
        else:
            queries = {
                sobject: soql.format(since=_soql_datetime(int(float(cursors[sobject]))))
                for sobject, soql in ACTIVITY_LISTINGS.items()
            }
            pages = self.client.first_pages(queries, "query activity changes", include_deleted=True)
        self._activity_listings = {}
        out = dict(cursors)
        deals: set[str] = set()
        contacts: set[str] = set()
        activities: set[str] = set()
        for sobject, page in pages.items():
            records = page.get("records") or []
            more = not page.get("done", True) and bool(page.get("nextRecordsUrl"))
            out[sobject] = _after_page(records, cursors[sobject], more) or cursors[sobject]
            if more:
                self._activity_listings[sobject] = (out[sobject], page["nextRecordsUrl"])
            if sobject == CONTACT_ROLES:  # of their opportunities only
                deals.update(id18(str(r["OpportunityId"])) for r in records)
                continue
            for record in records:
                activities.add(id18(str(record["Id"])))
                what, who = str(record.get("WhatId") or ""), str(record.get("WhoId") or "")
                if _prefix(what) == PREFIXES["Opportunity"]:
                    deals.add(id18(what))
                elif _prefix(who) == PREFIXES["Contact"]:
                    contacts.add(id18(who))
        return ActivityChanges(
            sorted(deals), sorted(contacts), sorted(activities), out,
            more=bool(self._activity_listings),
        )  # fmt: skip

    # -- write-back ----------------------------------------------------------------------------

    def write_back(self, values: Mapping[str, Mapping[str, Any]]) -> WriteResult:
        return writeback.write_back(self.client, values)

    # -- actions (CrmActions) ------------------------------------------------------------------

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
        return self.actions.create_task(
            id18(deal_id), owner_id=owner_id, subject=subject, body=body, due=due, key=key
        )

    def complete_task(self, task_id: str) -> None:
        self.actions.complete_task(task_id)

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        return self.actions.reassign_task(task_id, owner_id)

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        return self.actions.create_note(id18(deal_id), body=body, at=at, key=key)

    # -- budget --------------------------------------------------------------------------------

    def api_usage(self) -> ApiUsage:
        """The org's API usage now (one call to `GET /limits`)."""
        return self.client.limits()

    # -- users -------------------------------------------------------------------------------

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, User]:
        """Users among these ids (`adapters.base.UserDirectory`), with `IsActive`: one query
        per PULL_BATCH ids."""
        found: dict[str, User] = {}
        for chunk in _chunks(sorted({id18(i) for i in user_ids}), PULL_BATCH):
            for row in self.client.query(
                f"SELECT Id, Name, Email, IsActive FROM User WHERE Id IN ({soql_ids(chunk)})",
                "query User",
            ):
                user_id = id18(str(row["Id"]))
                found[user_id] = to_user(user_id, row)
        return found

    # -- unresolved events ---------------------------------------------------------------------

    def deals_for_events(self, bodies: Sequence[str]) -> list[set[str]]:
        """The opportunities of each stored event (the delivery's body, SOAP or Flow JSON):
        its opportunity hints, the WhatId of its tasks and events, the RelatedToId of its
        emails, the opportunities its contacts hold roles on. One query per kind of record
        for all the events."""
        hints = [self._hints(body) for body in bodies]
        activity_ids = sorted({h for found in hints for k, h in found if k == "activity"})
        contact_ids = sorted({h for found in hints for k, h in found if k == "contact"})
        of_activity: dict[str, set[str]] = {}
        for sobject, field in (("Task", "WhatId"), ("Event", "WhatId"),
                               ("EmailMessage", "RelatedToId")):  # fmt: skip
            ids = [i for i in activity_ids if _prefix(i) == PREFIXES[sobject]]
            for chunk in _chunks(ids, PULL_BATCH):
                for row in self.client.query(
                    f"SELECT Id, {field} FROM {sobject} WHERE Id IN ({soql_ids(chunk)})",
                    f"query {sobject} deals",
                ):
                    what = str(row.get(field) or "")
                    if _prefix(what) == PREFIXES["Opportunity"]:
                        of_activity.setdefault(id18(str(row["Id"])), set()).add(what)
        of_contact: dict[str, set[str]] = {}
        for chunk in _chunks(contact_ids, PULL_BATCH):
            for row in self.client.query(
                "SELECT ContactId, OpportunityId FROM OpportunityContactRole "
                f"WHERE ContactId IN ({soql_ids(chunk)})",
                "query OpportunityContactRole deals",
            ):
                of_contact.setdefault(str(row["ContactId"]), set()).add(str(row["OpportunityId"]))
        out = []
        for found in hints:
            deals: set[str] = set()
            for kind, hint in found:
                if kind == "deal":
                    deals.add(id18(hint))
                elif kind == "activity":
                    deals |= of_activity.get(id18(hint), set())
                elif kind == "contact":
                    deals |= of_contact.get(id18(hint), set())
            out.append(deals)
        return out

    def _hints(self, body: str) -> list[tuple[str, str]]:
        data = body.encode()
        try:
            parsed = salesforce_events.events(salesforce_events.parse_outbound(data))
        except MalformedBody:
            try:
                parsed = salesforce_events.parse_flow(data, self.tenant.account_id)
            except MalformedBody:
                log.warning("an inbox event Salesforce sent cannot be read again; left unplaced")
                return []
        return [(h.kind, h.id) for event in parsed for h in event.hints]


PREFIXES = {
    "Opportunity": "006", "Contact": "003", "Task": "00T", "Event": "00U", "EmailMessage": "02s",
}  # fmt: skip
"""Key prefixes: the first three characters of every record id name its object type."""


def soql_ids(ids: Iterable[str]) -> str:
    """An IN list of ids, in their 15-character form: SOQL takes either, and the shorter keeps
    a query of 2,000 ids well inside its 100,000 characters. Quoted as SOQL strings: an id
    from a setting or a request (a fallback owner, a deal to refresh) is not trusted to be one."""
    return ", ".join("'" + i[:15].replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids)


def _contacts(
    roles: Iterable[Mapping[str, Any]], label_roles: Mapping[str, str | None]
) -> list[Contact]:
    """One Contact per contact with roles on the opportunity (a contact holds one row per
    role). A row without its `Contact` is a contact the user cannot see or that was deleted
    (OpportunityContactRole ignores contact sharing: crm-apis.md 2.3): left out."""
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for row in roles:
        if row.get("Contact") and row.get("ContactId"):
            rows.setdefault(str(row["ContactId"]), []).append(row)
    return [
        to_contact(
            contact_id, held[0]["Contact"], [r.get("Role") for r in held],
            primary=any(r.get("IsPrimary") for r in held), label_roles=label_roles,
        )
        for contact_id, held in sorted(rows.items())
    ]  # fmt: skip


def _note_user(users: dict[str, User], user_id: Any, parent: Any) -> None:
    if user_id and str(user_id) not in users and isinstance(parent, Mapping):
        users[str(user_id)] = to_user(str(user_id), parent)


def _prefix(record_id: str) -> str:
    return record_id[:3]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(value: str) -> int:
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return (datetime.fromisoformat(text) - _EPOCH) // timedelta(milliseconds=1)


def _after_page(records: Sequence[Mapping[str, Any]], cursor: str | None, more: bool) -> str | None:
    """The cursor after a page of a SystemModstamp listing: the last record's millisecond while
    the listing goes on (a listing started again there misses no tie), the millisecond after it
    once the listing was read to its end, which saw every record stamped then; a record
    committed late with an earlier stamp is the index lag's (the jobs keep the cursor behind
    it), not a reason to list the last record again at every poll, each time a pull."""
    if not records:
        return cursor
    last = _epoch_ms(str(records[-1]["SystemModstamp"]))
    return str(last if more else last + 1)


def _soql_datetime(epoch_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
