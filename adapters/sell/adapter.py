"""The Zendesk Sell adapter the jobs use: follow the Firehose, pull bundles, write Deal Radar's
custom fields, leave tasks and notes.

Sell sends no webhooks (crm-apis.md 3.6), so the scheduler polls it every `sell.poll_seconds`
(15 s by default; jobs/schedule.py) and `changed_since` follows its Firehose
(adapters/sell/firehose.py), keeping the tenant's record mirror current. Every request goes
through `SellClient.call`.

- `pull(ids)`: the deals by id through the Core API (`GET /v2/deals?ids=`, 100 per call: the
  record as it is now; ids Sell does not return are `Pulled.deleted`), each deal's associated
  contacts (`GET /v2/deals/{id}/associated_contacts`: no stream carries them, so they are read
  for every deal pulled, i.e. every deal that changed), the contacts from the mirror (the
  contacts stream keeps it current; those it lacks by `GET /v2/contacts?ids=`), the deal's
  calls, visits, tasks and notes from the mirror (Sell lists no calls by deal), the stages and
  users once per adapter (an adapter lives for one job). Roles come from the contact field or
  tags the settings name (`sell.role_field`, `sell.role_tag_prefix`).
- `changed_since(cursor)`: one page of one Firehose stream, or of a full listing.
- `write_back(values)`: adapters/sell/writeback.py, the fields the account has; what it could
  not take is named in the result, so the jobs send it again later.
- `create_task`, `complete_task`, `create_note` (`CrmActions`): adapters/sell/actions.py.
- `check_fields()`: the Deal Radar and role custom fields checked, their notices updated
  (adapters/sell/provision.py); at setup, and when the feed shows a definition change.

Error policy: adapters.errors only (from the client); a deal whose data cannot be mapped
(mapping.MappingError) is logged and left out of the pull, and so is an activity, so one odd
record does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.base import (
    AdapterContext,
    Changes,
    Mirrored,
    Pulled,
    RecordMirror,
    TenantRef,
    WriteResult,
)
from adapters.errors import NotFound
from adapters.sell import provision, writeback
from adapters.sell.actions import SellActions
from adapters.sell.client import API_HOST, PER_PAGE, SellClient, records
from adapters.sell.firehose import ACTIVITIES, STAGE_ENTRIES, Firehose
from adapters.sell.mapping import (
    MappingError,
    Stages,
    observed_stage,
    roles_of,
    to_activity,
    to_contact,
    to_deal,
    to_user,
)
from engine.model import Activity, Bundle, User
from engine.settings import DEFAULTS

log = logging.getLogger(__name__)

PULL_BATCH = 500
"""Deals per refresh job (jobs.refresh reads it): stages and users are read once per job, the
deals 100 per call, and each deal's associated contacts one call each whatever the batch."""


class SellAdapter:
    needs_polling = True  # Sell pushes nothing: its Firehose is polled
    index_lag_seconds = 0.0  # the cursor is a feed position, not a timestamp
    pull_batch = PULL_BATCH

    @staticmethod
    def poll_seconds(settings: Any) -> float:
        """Seconds between two polls of a tenant's feed (settings `sell.poll_seconds`)."""
        return float(settings.sell["poll_seconds"])

    def __init__(
        self, tenant: TenantRef, context: AdapterContext, *, client: SellClient | None = None
    ) -> None:
        """`client` replaces the one built from the context (benchmarks, tests)."""
        self.tenant = tenant
        self.clock = context.clock
        if client is None:
            if context.tokens is None:
                raise ValueError(f"tenant {tenant.id}: a Sell adapter needs the tenant's tokens")
            client = SellClient(context.tokens, host=context.crm.get("SELL_API_URL", API_HOST))
        if context.mirror is None:
            raise ValueError(f"tenant {tenant.id}: a Sell adapter needs the tenant's mirror")
        self.client = client
        self.mirror: RecordMirror = context.mirror
        self.notices = context.notices
        sell = {**DEFAULTS["sell"], **tenant.extra.get("sell", {})}
        self.role_field: str = sell["role_field"]
        self.tag_prefix: str | None = sell["role_tag_prefix"]
        self.roles: list[str] = list(
            tenant.extra.get("roles", DEFAULTS["alerts"]["key_role_silent"]["roles"])
        )
        self.role_labels: Mapping[str, str] = {
            k: v or "" for k, v in tenant.extra.get("label_roles", {}).items()
        }
        self.feed = Firehose(client, self.mirror, self.clock, on_fields_changed=self._recheck)
        self.actions = SellActions(client)
        self._stages: Stages | None = None
        self._users: dict[str, User] | None = None
        self._fields: provision.FieldCheck | None = None

    # -- changes -------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Changes:
        return self.feed.step(cursor)

    # -- pull ----------------------------------------------------------------------------------

    def pull(self, deal_ids: Sequence[str]) -> Pulled:
        wanted = list(dict.fromkeys(str(d) for d in deal_ids))
        deals = self._deals([d for d in wanted if d.isdigit()])
        contact_ids: dict[str, list[str]] = {}
        for deal_id in list(deals):
            try:
                contact_ids[deal_id] = self._associated(deals[deal_id])
            except NotFound:  # deleted between the two reads
                del deals[deal_id]
        deleted = [d for d in wanted if d not in deals]
        contacts = self._contacts({c for ids in contact_ids.values() for c in ids})
        activities = {kind: self.mirror.of_deals(kind, list(deals)) for kind in ACTIVITIES}
        observed = self.mirror.get(STAGE_ENTRIES, list(deals))
        stages, users, now = self.stages(), self.users(), self.clock()
        bundles = []
        for deal_id, record in deals.items():
            try:
                seen = observed_stage(observed.get(deal_id))
                deal = to_deal(record, stages=stages, observed_stage=seen)
            except MappingError as exc:
                log.error("tenant %s: Sell deal %s left out: %s", self.tenant.id, deal_id, exc)
                continue
            primary = str(record.get("contact_id") or "")
            people = [
                to_contact(contacts[c], roles=self._roles(contacts[c]), primary=c == primary)
                for c in contact_ids[deal_id] if c in contacts
            ]  # fmt: skip
            acts = self._activities(deal_id, activities, [c.id for c in people], now)
            user_ids = {deal.owner, *(a.user for a in acts)}
            bundles.append(Bundle(
                deal=deal, contacts=tuple(people), activities=tuple(acts),
                users=tuple(users[u] for u in sorted(i for i in user_ids if i and i in users)),
            ))  # fmt: skip
        return Pulled(bundles=bundles, deleted=deleted)

    def _deals(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), PER_PAGE):
            chunk = ids[start : start + PER_PAGE]
            answer = self.client.get("/v2/deals", ids=",".join(chunk), per_page=PER_PAGE)
            found.update((str(r["id"]), r) for r in records(answer))
        return {d: found[d] for d in ids if d in found}

    def _associated(self, deal: Mapping[str, Any]) -> list[str]:
        """The deal's contacts: its associated contacts, and its primary contact when that is a
        person (a deal's `contact_id` may name its organisation)."""
        deal_id = str(deal["id"])
        ids: list[str] = []
        for page in self.client.pages(
            f"/v2/deals/{deal_id}/associated_contacts",
            endpoint="/v2/deals/{id}/associated_contacts",
        ):
            ids += [str(link["contact_id"]) for link in page if link.get("contact_id")]
        primary = str(deal.get("contact_id") or "")
        if primary and primary not in ids:
            ids.append(primary)  # dropped later if it turns out to be an organisation
        self.mirror.link("contacts", deal_id, ids)
        return ids

    def _contacts(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """The contacts by id, from the mirror, the ones it lacks from Sell; organisations
        are left out (a company is no person to engage)."""
        found = self.mirror.get("contacts", sorted(ids))
        missing = sorted(ids - set(found), key=lambda i: (len(i), i))
        fetched = []
        for start in range(0, len(missing), PER_PAGE):
            chunk = missing[start : start + PER_PAGE]
            answer = self.client.get("/v2/contacts", ids=",".join(chunk), per_page=PER_PAGE)
            fetched += records(answer)
        if fetched:
            self.mirror.put("contacts", [Mirrored(str(r["id"]), r) for r in fetched], 0)
            found.update((str(r["id"]), r) for r in fetched)
        return {i: r for i, r in found.items() if not r.get("is_organization")}

    def _roles(self, contact: Mapping[str, Any]) -> tuple[str, ...]:
        return roles_of(
            contact, role_field=self.role_field, tag_prefix=self.tag_prefix, roles=self.roles,
            role_labels=self.role_labels,
        )  # fmt: skip

    def _activities(
        self,
        deal_id: str,
        activities: Mapping[str, Mapping[str, list[dict[str, Any]]]],
        contact_ids: Sequence[str],
        now: datetime,
    ) -> list[Activity]:
        out = []
        for kind in ACTIVITIES:
            for record in activities[kind].get(deal_id, ()):
                try:
                    activity = to_activity(kind, record, deal_contacts=contact_ids, now=now)
                except MappingError as exc:
                    log.warning("tenant %s: %s left out of deal %s", self.tenant.id, exc, deal_id)
                    continue
                if activity is not None:
                    out.append(activity)
        return out

    def stages(self) -> Stages:
        """The account's stages, read once per adapter (one job)."""
        if self._stages is None:
            self._stages = Stages.from_records(
                r for page in self.client.pages("/v2/stages") for r in page
            )
        return self._stages

    def account_zone(self) -> str:
        """The account's time zone as Sell writes it (`GET /v2/accounts/self`): an IANA name
        or an offset such as "UTC-06:00" (adapters/zones.py reads both); "" when unset."""
        answer = self.client.get("/v2/accounts/self", endpoint="GET /v2/accounts/self")
        return str((answer.get("data") or {}).get("timezone") or "")

    def users(self) -> dict[str, User]:
        """The account's users by id, read once per adapter (one job). No `status` filter:
        Sell's listing holds deactivated users too, and a deal they still own must carry them
        (inactive) so that its tasks go to the fallback owner."""
        if self._users is None:
            self._users = {
                str(r["id"]): to_user(r) for page in self.client.pages("/v2/users") for r in page
            }
        return self._users

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, User]:
        """Users among these ids (`adapters.base.UserDirectory`), from the one users listing,
        which holds inactive users too."""
        users = self.users()
        return {i: users[i] for i in user_ids if i in users}

    # -- custom fields, write-back -------------------------------------------------------------

    def check_fields(self) -> provision.FieldCheck:
        """Check the Deal Radar deal fields and the role field; notices updated."""
        self._fields = provision.check(
            self.client, self.notices, role_field=self.role_field, tag_prefix=self.tag_prefix,
            roles=self.roles,
        )  # fmt: skip
        return self._fields

    def _recheck(self) -> None:
        self.check_fields()

    def _usable(self) -> Mapping[str, frozenset[str] | None]:
        fields = self._fields or provision.check_deal_fields(self.client)
        self._fields = fields
        return fields.usable

    def write_back(self, values: Mapping[str, Mapping[str, Any]]) -> WriteResult:
        return writeback.write_back(
            self.client, values, self._usable, lambda: self.check_fields().usable
        )

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
            deal_id, owner_id=owner_id, subject=subject, body=body, due=due, key=key
        )

    def complete_task(self, task_id: str) -> None:
        self.actions.complete_task(task_id)

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        return self.actions.reassign_task(task_id, owner_id)

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        return self.actions.create_note(deal_id, body=body, at=at, key=key)
