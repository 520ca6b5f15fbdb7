"""Tasks and notes on HubSpot deals for the actions, each created at most once per outbox key.

- `create_task` / `create_note`: one `POST /crm/v3/objects/tasks|notes` with the properties and
  the association to the deal (216 task -> deal, 214 note -> deal, HUBSPOT_DEFINED) in the same
  call (crm-apis.md 1.5), so a task never exists without its deal.
- `complete_task`: reads the task's status and sets COMPLETED only if it is still open; a task
  the rep completed or deleted is left alone.

Idempotency. HubSpot has no idempotency header, so each record carries its outbox key as a
marker at the end of its body (`Deal Radar ref: dr<24 hex>`, a digest of the key: one
alphanumeric token that survives HubSpot turning the body into HTML), and a create first looks
for a record of the deal bearing that marker. The look-up reads, it does not search: the deal's
associations (v4, 500 per page) then a batch read of those tasks' or notes' bodies (100 per
call). HubSpot's search shows a new record only "after a few moments" (crm-apis.md 1.2, traps 2),
exactly when a retry after a timeout comes, so a search would miss the task it must find; reads
by id have no index lag (traps 2 advises them after a change; that the v4 association list of a
record is as current as a read by id is our reading, not a documented promise). The association
is made by the create call itself, so it is there as soon as the record is.

Retries. The create is sent once per try (`HubSpotClient.call(attempts=1)`): a 429 or a 423
means HubSpot refused it, so it is sent again after the backoff (a wait HubSpot names beyond
what a worker sleeps, a DAILY 429 or a 477, goes to the job at once); a 5xx, a timeout or a
dropped connection may hide a record HubSpot did create, so the look-up runs again before any
new create. After the client's number of tries the error goes to the job (RateLimited or
Transient); the caller's outbox retries the same key later, and that retry looks up first too.
A worker killed between HubSpot's answer and the outbox's commit is the same case: the next
run finds the record.

What the marker does not cover: a rep who deletes the marker from the body, or removes the
task from the deal, between a lost answer and the retry (minutes) would get a second task. A
deal with thousands of tasks costs its look-up one call per 500 associations and per 100 tasks.

Errors: adapters.errors only, from the client (a deleted deal is NotFound, and gets nothing);
bad arguments raise ValueError before any call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.errors import NotFound, RateLimited, Transient
from adapters.hubspot.client import BUDGET_WAIT, HubSpotClient, backoff
from adapters.marker import marked, ref_token

log = logging.getLogger(__name__)

TASK_TO_DEAL = 216
NOTE_TO_DEAL = 214
"""HubSpot-defined association type ids (crm-apis.md 1.3)."""
ASSOCIATIONS_PAGE = 500
"""Associations per v4 list page (crm-apis.md 1.3)."""
READ_BATCH = 100
"""Records per batch read (crm-apis.md 1.2)."""
PRIORITIES = ("LOW", "MEDIUM", "HIGH")
OPEN = "NOT_STARTED"
COMPLETED = "COMPLETED"
"""What the pull recognises our tasks and notes by, and leaves out of a deal's activities."""

_RAW = {"_preload_content": False}


class HubSpotActions:
    """`CrmActions` for one HubSpot portal (adapters/base.py)."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

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
        if priority not in PRIORITIES:
            raise ValueError(f"task priority {priority!r}: use one of {', '.join(PRIORITIES)}")
        properties = {
            "hs_task_subject": subject,
            "hs_task_body": marked(body, key),
            "hs_timestamp": _instant(due, "due"),
            "hs_task_status": OPEN,
            "hs_task_priority": priority,
            "hs_task_type": "TODO",
        }
        if owner_id:
            properties["hubspot_owner_id"] = str(owner_id)
        return self._create_once("tasks", "hs_task_body", str(deal_id), properties, key)

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        properties = {"hs_note_body": marked(body, key), "hs_timestamp": _instant(at, "at")}
        return self._create_once("notes", "hs_note_body", str(deal_id), properties, key)

    def complete_task(self, task_id: str) -> None:
        task_id = str(task_id)
        try:
            task = self._json(
                "tasks.get",
                lambda sdk: sdk.crm.objects.tasks.basic_api.get_by_id(
                    task_id, properties=["hs_task_status"], **_RAW
                ),
            )
            if (task.get("properties") or {}).get("hs_task_status") == COMPLETED:
                return
            self._json(
                "tasks.update",
                lambda sdk: sdk.crm.objects.tasks.basic_api.update(
                    task_id, {"properties": {"hs_task_status": COMPLETED}}, **_RAW
                ),
            )
        except NotFound:
            log.info("HubSpot portal %s: task %s was deleted; nothing to complete",
                     self.client.portal_id, task_id)  # fmt: skip

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        task_id = str(task_id)
        try:
            task = self._json(
                "tasks.get",
                lambda sdk: sdk.crm.objects.tasks.basic_api.get_by_id(
                    task_id, properties=["hs_task_status", "hubspot_owner_id"], **_RAW
                ),
            )
            properties = task.get("properties") or {}
            if properties.get("hs_task_status") == COMPLETED:
                return False
            if properties.get("hubspot_owner_id") != str(owner_id):
                self._json(
                    "tasks.update",
                    lambda sdk: sdk.crm.objects.tasks.basic_api.update(
                        task_id, {"properties": {"hubspot_owner_id": str(owner_id)}}, **_RAW
                    ),
                )
            return True
        except NotFound:
            log.info("HubSpot portal %s: task %s was deleted; nobody to hand it to",
                     self.client.portal_id, task_id)  # fmt: skip
            return False

    # -- once per key --------------------------------------------------------------------------

    def _create_once(
        self, kind: str, body_property: str, deal_id: str, properties: dict[str, str], key: str
    ) -> str:
        type_id = TASK_TO_DEAL if kind == "tasks" else NOTE_TO_DEAL
        request = {
            "properties": properties,
            "associations": [{
                "to": {"id": deal_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED",
                           "associationTypeId": type_id}],
            }],
        }  # fmt: skip
        token = ref_token(key)
        lookup = True
        failures = 0
        while True:
            if lookup:
                found = self._find(kind, body_property, deal_id, token)
                if found is not None:
                    return found
            try:
                created = self._json(
                    f"{kind}.create",
                    lambda sdk: getattr(sdk.crm.objects, kind).basic_api.create(request, **_RAW),
                    attempts=1,
                )
                return str(created["id"])
            except (RateLimited, Transient) as error:
                failures += 1
                if failures >= self.client.attempts or _waits_long(error):
                    raise
                # A 429 is a refusal; anything else may have created the record unseen.
                lookup = not isinstance(error, RateLimited)
                self.client.sleep(backoff(failures, error))

    def _find(self, kind: str, body_property: str, deal_id: str, token: str) -> str | None:
        """The deal's task or note whose body bears `token`, by reads (no search index)."""
        ids: list[str] = []
        after: str | None = None
        while True:
            page = self._json(
                f"associations.deals.{kind}.list",
                lambda sdk, after=after: sdk.crm.associations.v4.basic_api.get_page(
                    "deals", deal_id, kind, limit=ASSOCIATIONS_PAGE, after=after, **_RAW
                ),
            )
            ids += [str(link["toObjectId"]) for link in page.get("results", ())]
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        # Newest records last in HubSpot's order: read those first, a retry's record is new.
        ids.reverse()
        for start in range(0, len(ids), READ_BATCH):
            chunk = ids[start : start + READ_BATCH]
            page = self._json(
                f"{kind}.batch_read",
                lambda sdk, chunk=chunk: getattr(sdk.crm.objects, kind).batch_api.read(
                    {"inputs": [{"id": i} for i in chunk], "properties": [body_property]}, **_RAW
                ),
            )
            for record in page.get("results", ()):
                if token in ((record.get("properties") or {}).get(body_property) or ""):
                    return str(record["id"])
        return None

    def _json(self, what: str, fn: Callable[[Any], Any], *, attempts: int | None = None) -> Any:
        raw = self.client.call(what, lambda sdk: fn(sdk).data, attempts=attempts)
        return json.loads(raw) if raw else {}


def _waits_long(error: Exception) -> bool:
    """A wait HubSpot names beyond what a worker sleeps in a call (a DAILY 429, a 477): the
    job's retry waits it, as the client's own retries decide."""
    return isinstance(error, RateLimited) and (error.retry_after or 0) > BUDGET_WAIT


def _instant(moment: datetime, name: str) -> str:
    """HubSpot's hs_timestamp: an ISO 8601 instant in UTC (crm-apis.md 1.4)."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (a time zone), got {moment}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
