"""The HubSpot adapter the jobs use: pull bundles, list changed deals, write Deal Radar's fields.

Every request goes through `HubSpotClient.call` (token, shared rate budget, retries, error
translation) and is batched to HubSpot's documented limits (crm-apis.md 1.2 to 1.5), because the
number of calls is what a portal's rate limit spends:

- `pull(ids)`: deals batch read with the `dealstage` history (50 per call), associations v4
  batch reads deal -> contacts, calls, emails, meetings, tasks, notes (1,000 per call, labels
  included), contacts and each activity type batch read (100 per call), each activity type ->
  contacts associations (1,000 per call: who took part), owners (active, then archived:
  deactivated users come back `active=False`) and pipelines once per adapter (an adapter lives
  for one job). Deals the batch read does not find (its 207's OBJECT_NOT_FOUND) are
  `Pulled.deleted`.
- `changed_since(cursor)`: one search page (200) on `hs_lastmodifieddate`, ascending. Each page
  is a new search from the last timestamp returned (`GTE`), `after` past the deals already
  returned at that timestamp, which are left out if they come again. Paging one search by
  offset would skip a deal whenever one already returned is edited meanwhile (it moves to the
  end, and the rest shift back past the offset); and no search nears the 10,000-result cap.
- `write_back(values)`: adapters/hubspot/writeback.py, batch update (100 per call) of the
  properties in adapters/hubspot/properties.py, values as strings.
- `deals_for_events(bodies)`: the deals of stored webhook events that named no deal known to
  the snapshot (a new call, a contact not yet pulled), through associations v4. A company's
  deals need a scope the app does not ask for: refused, that hint is dropped (OPTIONAL_HINTS),
  and not asked for again for an hour (HINT_REFUSED_FOR).
- `create_task`, `complete_task`, `create_note` (`CrmActions`): adapters/hubspot/actions.py,
  one task or note per outbox key, found again by reads rather than by search.

Reads ask the SDK for the raw answer (`_preload_content=False`) and decode HubSpot's JSON once:
mapping.py reads that shape, and building SDK models for 200,000 activities would be the slowest
part of a sync. Error policy: adapters.errors only (from the client); a deal whose data cannot
be mapped (mapping.MappingError) is logged and left out of the pull, so one odd record does not
hold back the others. Of a batch read's 207, only the records HubSpot finds nothing for are
taken as deleted (objects) or as having no links (associations); any other refusal (a missing
scope) raises, as a 403 would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from adapters.base import AdapterContext, Changes, Pulled, TenantRef, WriteResult
from adapters.errors import NotFound, PermissionDenied
from adapters.hubspot import events as hubspot_events
from adapters.hubspot import writeback
from adapters.hubspot.actions import HubSpotActions
from adapters.hubspot.client import (
    API_HOST,
    HubSpotClient,
    scope_refusal,
    translate_batch_error,
)
from adapters.hubspot.mapping import (
    MappingError,
    Pipelines,
    roles_from_associations,
    to_activity,
    to_contact,
    to_deal,
    to_user,
)
from adapters.webhooks import MalformedBody
from engine.model import Activity, Bundle, Contact, User

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_BATCH = 100
"""Records per batch read (crm-apis.md 1.2)."""
HISTORY_BATCH = 50
"""Records per batch read with `propertiesWithHistory` (crm-apis.md 1.2)."""
ASSOCIATION_BATCH = 1000
"""Inputs per associations v4 batch read (crm-apis.md 1.3)."""
SEARCH_PAGE = 200
"""Results per search page, the most HubSpot gives (crm-apis.md 1.2)."""
SEARCH_CAP = 10_000
"""Results one search can page through; past it HubSpot answers 400."""
INDEX_LAG_SECONDS = 120.0
"""HubSpot's search shows a change "after a few moments" (crm-apis.md, traps 2): a sync's cursor
stays this far behind its start, so a deal indexed late is found by the next search."""
OWNERS_PAGE = 500
PULL_BATCH = 500
"""Deals per refresh job (jobs.refresh reads it): each pull reads its deals' six association
types, the activities' contacts, owners and pipelines once whatever its size, so 200-deal pulls
spend a quarter more calls than HubSpot's limits require (bench/hubspot_sync.py); at 500 a pull
is about 150 calls, 15 s of the portal's rate budget, well inside a refresh job's timeout."""

ACTIVITY_TYPES = ("calls", "emails", "meetings", "tasks", "notes")
DEAL_PROPERTIES = [
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hubspot_owner_id",
    "deal_currency_code",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_lastmodifieddate",
]
DEAL_HISTORY = ["dealstage"]
CONTACT_PROPERTIES = ["firstname", "lastname", "email", "jobtitle"]
ACTIVITY_PROPERTIES: dict[str, list[str]] = {
    kind: props.split()
    for kind, props in {
        "calls": "hs_timestamp hubspot_owner_id hs_call_direction hs_call_status "
        "hs_call_disposition hs_call_has_voicemail",
        "emails": "hs_timestamp hubspot_owner_id hs_email_direction hs_email_status "
        "hs_email_from_email hs_email_to_email hs_email_cc_email hs_email_bcc_email "
        "hs_email_headers",
        "meetings": "hs_timestamp hubspot_owner_id hs_meeting_start_time hs_meeting_end_time "
        "hs_meeting_outcome hs_activity_type hs_meeting_source",
        "tasks": "hs_timestamp hubspot_owner_id hs_task_status hs_task_type hs_task_body "
        "hs_task_completion_date",
        "notes": "hs_timestamp hubspot_owner_id hs_note_body",
    }.items()
}
"""What mapping.py reads of each activity type."""
MODIFIED = "hs_lastmodifieddate"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Links = dict[str, list[dict[str, Any]]]
"""Associations of each record: {from id: [{"toObjectId", "associationTypes"}, ...]}."""


class HubSpotAdapter:
    needs_polling = False  # HubSpot sends webhooks; changed_since serves the initial sync
    index_lag_seconds = INDEX_LAG_SECONDS
    pull_batch = PULL_BATCH

    def __init__(
        self, tenant: TenantRef, context: AdapterContext, *, client: HubSpotClient | None = None
    ) -> None:
        """`client` replaces the one built from the context (benchmarks: no rate budget)."""
        self.tenant = tenant
        self.clock = context.clock
        self._redis = context.redis
        if client is None:
            if context.tokens is None:
                raise ValueError(f"tenant {tenant.id}: a HubSpot adapter needs OAuth tokens")
            budget: dict[str, Any] = {} if context.redis is not None else {
                "burst": None, "search_burst": None
            }  # fmt: skip
            client_id = context.crm.get("HUBSPOT_CLIENT_ID")
            secret = context.crm.get("HUBSPOT_CLIENT_SECRET")
            client = HubSpotClient(
                tenant.account_id, context.tokens, context.redis,
                host=context.crm.get("HUBSPOT_API_URL", API_HOST),
                app=(client_id, secret) if client_id and secret else None, **budget,
            )  # fmt: skip
        self.client = client
        self.actions = HubSpotActions(client)
        self.label_roles: Mapping[str, str | None] = tenant.extra.get("label_roles", {})
        self._pipelines: Pipelines | None = None
        self._owners: dict[str, User] | None = None
        self._zone = ZoneInfo(tenant.timezone)
        self._search: tuple[str, set[str]] | None = None
        """The listing under way: (cursor returned, ids returned at the cursor's timestamp)."""

    # -- pull ----------------------------------------------------------------------------------

    def pull(self, deal_ids: Sequence[str]) -> Pulled:
        wanted = list(dict.fromkeys(str(d) for d in deal_ids))
        deals = self._read("deals", wanted, DEAL_PROPERTIES, history=DEAL_HISTORY)
        found = [d for d in wanted if d in deals]
        deleted = [d for d in wanted if d not in deals]
        links = {
            kind: self._associations("deals", found, kind) for kind in ("contacts", *ACTIVITY_TYPES)
        }
        contact_ids = _targets(links["contacts"])
        contacts = self._read("contacts", contact_ids, CONTACT_PROPERTIES)
        activities: dict[str, dict[str, dict[str, Any]]] = {}
        people: dict[str, Links] = {}
        for kind in ACTIVITY_TYPES:
            ids = _targets(links[kind])
            activities[kind] = self._read(kind, ids, ACTIVITY_PROPERTIES[kind])
            people[kind] = self._associations(kind, list(activities[kind]), "contacts")
        pipelines, owners = self.pipelines(), self.owners()
        now = self.clock()
        bundles = []
        for deal_id in found:
            try:
                bundles.append(
                    self._bundle(deals[deal_id], links, contacts, activities, people,
                                 pipelines, owners, now)
                )  # fmt: skip
            except MappingError as exc:
                log.error("tenant %s: HubSpot deal %s left out: %s", self.tenant.id, deal_id, exc)
        return Pulled(bundles=bundles, deleted=deleted)

    def _bundle(
        self,
        deal_json: dict[str, Any],
        links: Mapping[str, Links],
        contacts: Mapping[str, dict[str, Any]],
        activities: Mapping[str, Mapping[str, dict[str, Any]]],
        people: Mapping[str, Links],
        pipelines: Pipelines,
        owners: Mapping[str, User],
        now: datetime,
    ) -> Bundle:
        deal = to_deal(
            deal_json, pipelines=pipelines, portal_id=self.tenant.account_id, zone=self._zone
        )
        deal_contacts: list[Contact] = []
        for link in links["contacts"].get(deal.id, ()):
            contact_json = contacts.get(str(link["toObjectId"]))
            if contact_json is not None:  # archived since the association was read
                roles = roles_from_associations(link["associationTypes"], self.label_roles)
                deal_contacts.append(to_contact(contact_json, roles=roles))
        deal_contacts.sort(key=lambda c: int(c.id) if c.id.isdigit() else c.id)
        ours = {c.id for c in deal_contacts}
        by_email = {c.email.lower(): c.id for c in deal_contacts if c.email}
        deal_activities: list[Activity] = []
        for kind in ACTIVITY_TYPES:
            for link in links[kind].get(deal.id, ()):
                activity_id = str(link["toObjectId"])
                obj = activities[kind].get(activity_id)
                if obj is None:
                    continue
                took_part = [
                    str(p["toObjectId"]) for p in people[kind].get(activity_id, ())
                    if str(p["toObjectId"]) in ours
                ]  # fmt: skip
                activity = to_activity(
                    kind, obj, contacts_by_email=by_email, associated_contacts=took_part,
                    deal_ids=[deal.id], now=now,
                )  # fmt: skip
                if activity is not None:
                    deal_activities.append(activity)
        user_ids = {deal.owner, *(a.user for a in deal_activities)}
        users = tuple(owners[u] for u in sorted(i for i in user_ids if i and i in owners))
        return Bundle(
            deal=deal, contacts=tuple(deal_contacts), activities=tuple(deal_activities),
            users=users,
        )  # fmt: skip

    def pipelines(self) -> Pipelines:
        """The portal's deal pipelines, read once per adapter (one job)."""
        if self._pipelines is None:
            data = self._json(
                "pipelines.get_all",
                lambda sdk: sdk.crm.pipelines.pipelines_api.get_all("deals", **_RAW),
            )
            self._pipelines = Pipelines.from_json(data)
        return self._pipelines

    def owners(self) -> dict[str, User]:
        """The portal's owners by owner id, read once per adapter (one job): the active ones,
        then the archived ones (deactivated users, `active=False`). HubSpot lists only active
        owners unless asked for `archived=true`, which lists only archived ones, so a deal still
        owned by a rep who left needs the second listing to name its owner at all."""
        if self._owners is None:
            owners: dict[str, User] = {}
            for archived in (False, True):
                # An owner deactivated between the two listings is in both: the later wins.
                for owner in self._owner_pages(archived):
                    user = to_user(owner, archived=archived)
                    owners[user.id] = user
            self._owners = owners
        return self._owners

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, User]:
        """Owners among these ids (`adapters.base.UserDirectory`): the two owner listings,
        which name every owner of the portal, active or archived."""
        owners = self.owners()
        return {i: owners[i] for i in user_ids if i in owners}

    def _owner_pages(self, archived: bool) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            page = self._json(
                "owners.get_page",
                lambda sdk, after=after: sdk.crm.owners.owners_api.get_page(
                    limit=OWNERS_PAGE, after=after, archived=archived, **_RAW
                ),
            )
            yield from page.get("results", ())
            after = _next_after(page)
            if after is None:
                return

    # -- changes -------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Changes:
        seen: set[str] = set()
        if self._search is not None and self._search[0] == cursor:
            seen = self._search[1]
        # Past the deals of the cursor's timestamp returned already (the ties of a bulk import);
        # one of them edited meanwhile would make this skip one other tie, never a later deal.
        after = len(seen) if len(seen) + SEARCH_PAGE <= SEARCH_CAP else 0
        body: dict[str, Any] = {
            "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            "properties": [MODIFIED],
            "limit": SEARCH_PAGE,
            "after": str(after),
        }
        if cursor is not None:
            body["filterGroups"] = [
                {"filters": [{"propertyName": MODIFIED, "operator": "GTE", "value": cursor}]}
            ]
        page = self._json(
            "deals.search",
            lambda sdk: sdk.crm.deals.search_api.do_search(body, **_RAW),
            search=True,
        )
        results = page.get("results", [])
        ids: list[str] = []
        last = cursor
        for result in results:
            deal_id = str(result["id"])
            stamp = _epoch_ms(result["properties"][MODIFIED])
            if stamp == cursor and deal_id in seen:
                continue  # returned already, before the search started again
            if stamp != last:
                last, seen = stamp, set()
            seen.add(deal_id)
            ids.append(deal_id)
        out = last if last is not None else "0"
        # A next call from this cursor searches again from it, past (and without) the deals
        # already returned at its timestamp.
        self._search = (out, seen)
        return Changes(ids, out, more=_next_after(page) is not None)

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
        priority: str = "MEDIUM",
    ) -> str:
        return self.actions.create_task(
            deal_id, owner_id=owner_id, subject=subject, body=body, due=due, key=key,
            priority=priority,
        )  # fmt: skip

    def complete_task(self, task_id: str) -> None:
        self.actions.complete_task(task_id)

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        return self.actions.reassign_task(task_id, owner_id)

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        return self.actions.create_note(deal_id, body=body, at=at, key=key)

    # -- unresolved events ---------------------------------------------------------------------

    def deals_of(self, object_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """The deals associated with each of these contacts, companies or activities
        ({id: [deal id]}); records without deals (or deleted) are left out."""
        links = self._associations(object_type, list(dict.fromkeys(ids)), "deals")
        return {i: [str(t["toObjectId"]) for t in to] for i, to in links.items() if to}

    def deals_for_events(self, bodies: Sequence[str]) -> list[set[str]]:
        """The deals each stored webhook event concerns (adapters.base.EventResolver): deals it
        names, and the deals of the contacts, companies and activities it names, read through
        associations v4 in one batch per object type for all the events together."""
        wanted = [_records_of(body) for body in bodies]
        ids_by_type: dict[str, list[str]] = {}
        for records in wanted:
            for object_type, object_id in records:
                if object_type != "deals":
                    ids_by_type.setdefault(object_type, []).append(object_id)
        deals_by_type = {t: self._hinted_deals(t, ids) for t, ids in ids_by_type.items()}
        return [
            {
                deal
                for object_type, object_id in records
                for deal in (
                    [object_id] if object_type == "deals"
                    else deals_by_type[object_type].get(object_id, ())
                )
            }
            for records in wanted
        ]  # fmt: skip

    def _hinted_deals(self, object_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """`deals_of`, but a read HubSpot refuses (403, or a 207's MISSING_SCOPES) for a scope
        the app does not require (OPTIONAL_HINTS) finds no deal: those records' part of the
        events is dropped, and their other records still place them, instead of a hint it can
        do without suspending the tenant. Any other refusal (a required scope lost, a user's or
        the portal's access) is raised: an admin must act, and the events wait. The refusal is
        remembered for the tenant for HINT_REFUSED_FOR, so that each later batch of such events
        does not spend a call of the portal's rate budget on the same answer; then it is asked
        again (granted meanwhile)."""
        refused_key = f"dealradar:hubspot:hint-refused:{self.tenant.id}:{object_type}"
        if object_type in OPTIONAL_HINTS and self._refused_lately(refused_key):
            log.info(
                "tenant %s: the deals of %d records of %s left unread (refused within the hour)",
                self.tenant.id, len(set(ids)), object_type,
            )  # fmt: skip
            return {}
        try:
            return self.deals_of(object_type, ids)
        except PermissionDenied as exc:
            scope = OPTIONAL_HINTS.get(object_type)
            named = scope_refusal(exc)
            if scope is None or named is None or (named and scope not in named):
                raise
            if self._redis is not None:
                # The clock decides (jobs and tests move it); the TTL only clears the key away.
                self._redis.set(
                    refused_key, str(self.clock().timestamp()), ex=int(HINT_REFUSED_FOR) + 60
                )
            log.warning(
                "tenant %s: HubSpot refused the deals of %d records of %s (%s); changes to %s "
                "re-evaluate no deal until the app is granted the %s scope (add it to the "
                "app's scopes, then install Deal Radar again)",
                self.tenant.id, len(set(ids)), object_type, exc, object_type, scope,
            )  # fmt: skip
            return {}

    def _refused_lately(self, key: str) -> bool:
        stamp = self._redis.get(key) if self._redis is not None else None
        if stamp is None:
            return False
        return self.clock().timestamp() - float(stamp) < HINT_REFUSED_FOR

    # -- reading -------------------------------------------------------------------------------

    def _read(
        self,
        kind: str,
        ids: Sequence[str],
        props: Sequence[str],
        *,
        history: Sequence[str] = (),
    ) -> dict[str, dict[str, Any]]:
        """Batch read; {id: object} for those HubSpot returns. The others are deleted when the
        207's errors say OBJECT_NOT_FOUND; any other error (a missing scope) raises, since a
        deal taken for deleted would be forgotten with its alert history."""
        size = HISTORY_BATCH if history else READ_BATCH
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(ids), size):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": props}
            if history:
                body["propertiesWithHistory"] = list(history)
            what = f"{kind}.batch_read"
            page = self._json(what, lambda sdk, body=body: _batch_api(sdk, kind).read(body, **_RAW))
            _raise_unless_not_found(page, what)
            for obj in page.get("results", ()):
                found[str(obj["id"])] = obj
        return found

    def _associations(self, from_type: str, ids: Sequence[str], to_type: str) -> Links:
        """Associations v4 batch read, following each record's own paging (500 per record).

        HubSpot answers 207 when some inputs have nothing to return, with one error each
        (OBJECT_NOT_FOUND, crm.associations.NO_ASSOCIATIONS_FOUND: a record without such
        associations, or deleted): those have no links. Any other error (a missing scope)
        raises: a record left without the links HubSpot did not give would be evaluated as
        having no contacts or activities, and its fields and tasks written so."""
        what = f"associations.{from_type}.{to_type}"
        links: Links = {}
        todo: list[dict[str, Any]] = [{"id": i} for i in ids]
        while todo:
            following: list[dict[str, Any]] = []
            for chunk in _chunks(todo, ASSOCIATION_BATCH):
                page = self._json(
                    what,
                    lambda sdk, chunk=chunk: sdk.crm.associations.v4.batch_api.get_page(
                        from_type, to_type, {"inputs": chunk}, **_RAW
                    ),
                )
                _raise_unless_not_found(page, what)
                for result in page.get("results", ()):
                    from_id = str(result["from"]["id"])
                    links.setdefault(from_id, []).extend(result.get("to", ()))
                    after = _next_after(result)
                    if after is not None:
                        following.append({"id": from_id, "after": after})
            todo = following
        return links

    def _json(self, what: str, fn: Callable[[Any], Any], *, search: bool = False) -> Any:
        raw = self.client.call(what, lambda sdk: fn(sdk).data, search=search)
        return json.loads(raw) if raw else {}


def _raise_unless_not_found(page: Mapping[str, Any], what: str) -> None:
    """Raise the first error of a 207 answer that is not HubSpot finding nothing for an input."""
    for error in page.get("errors") or ():
        problem = translate_batch_error(error, what)
        if not isinstance(problem, NotFound):
            raise problem


_RAW = {"_preload_content": False}
"""The SDK returns the HTTP response; the adapter decodes HubSpot's JSON itself."""


OBJECT_TYPES_BY_ID = {
    "0-3": "deals", "0-1": "contacts", "0-2": "companies", "0-48": "calls", "0-49": "emails",
    "0-47": "meetings", "0-46": "notes", "0-27": "tasks",
}  # fmt: skip
"""HubSpot's object type ids (crm-apis.md 1.2) and the names the v3/v4 paths take."""
HINT_TYPES = {"deal": "deals", "contact": "contacts", "company": "companies"}
OPTIONAL_HINTS = {"companies": "crm.objects.companies.read"}
"""Object types whose deals are read only to place an event, with the scope HubSpot may want
for it that oauth.SCOPES does not ask for: a refusal drops the hint, it suspends nothing."""
HINT_REFUSED_FOR = 3600.0
"""Seconds a tenant's refused OPTIONAL_HINTS read is not tried again: an hour of company events
costs one refused call, and a scope granted (the app installed again) is used within the hour."""


def _records_of(body: str) -> list[tuple[str, str]]:
    """(object type, id) of each record a stored event names. Activity hints carry no type:
    it comes from the event's own objectTypeId (the end of an association with that id)."""
    try:
        (event,) = hubspot_events.parse(f"[{body}]".encode(), app_id=None)
        raw = json.loads(body)
    except (MalformedBody, ValueError):
        log.warning("an inbox event HubSpot sent cannot be read again; left unplaced")
        return []
    records = []
    for hint in event.hints:
        object_type = HINT_TYPES.get(hint.kind)
        if object_type is None:
            type_id = next(
                (raw.get(t) for i, t in (("objectId", "objectTypeId"),
                                         ("fromObjectId", "fromObjectTypeId"),
                                         ("toObjectId", "toObjectTypeId"))
                 if str(raw.get(i)) == hint.id),
                None,
            )  # fmt: skip
            object_type = OBJECT_TYPES_BY_ID.get(str(type_id))
        if object_type is not None:
            records.append((object_type, hint.id))
    return records


def _batch_api(sdk: Any, kind: str) -> Any:
    if kind == "deals":
        return sdk.crm.deals.batch_api
    if kind == "contacts":
        return sdk.crm.contacts.batch_api
    return getattr(sdk.crm.objects, kind).batch_api


def _targets(links: Links) -> list[str]:
    return list(dict.fromkeys(str(t["toObjectId"]) for to in links.values() for t in to))


def _next_after(page: Mapping[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _epoch_ms(value: str) -> str:
    """HubSpot returns datetimes as ISO 8601; search filters take epoch milliseconds."""
    if value.isdigit():
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return str((moment - EPOCH) // timedelta(milliseconds=1))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
