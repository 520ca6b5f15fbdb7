"""Tasks and notes on Sell deals for the actions, each created at most once per outbox key.

- `create_task`: `POST /v2/tasks` on the deal (`resource_type` deal), owned by the rep, due
  at the due date, not completed (crm-apis.md 3.4, 3.5).
- `complete_task`: reads the task and sets `completed` only if it is still open; a task the rep
  completed or deleted is left alone.
- `create_note`: `POST /v2/notes` on the deal. Sell dates a note at its creation: `at` is
  checked, not sent.

Idempotency. Sell has no idempotency header, so each record carries its outbox key as a marker
at the end of its content (`Deal Radar ref: dr<24 hex>`, a digest of the key), and a create
first looks for a task or note of the deal bearing that marker: the deal's tasks or notes
listed by `resource_type=deal&resource_id=` (100 per page), a read, with no search index to lag.
The pull leaves records with the marker out of the deal's activities (mapping.OWN_MARKER).

Retries. The create is sent once per try (`SellClient.call(attempts=1)`): a 429 is raised to the
job (Sell's allowance is hourly), and the outbox retries the same key later; a 5xx, a timeout or
a dropped connection may hide a record Sell did create, so the look-up runs again before the
next create. What the marker does not cover: a rep editing the marker out between a lost
answer and the retry.

Errors: adapters.errors only, from the client (a deleted deal is a refusal of the create: 422
InvalidRequest or 404 NotFound); bad arguments raise ValueError before any call.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from adapters.errors import NotFound, OwnerInactive, Transient
from adapters.marker import marked, ref_token
from adapters.retry import backoff
from adapters.sell.client import SellClient

log = logging.getLogger(__name__)



class SellActions:
    """`CrmActions` for one Sell account (adapters/base.py)."""

    def __init__(self, client: SellClient) -> None:
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
    ) -> str:
        content = "\n\n".join(part for part in (subject, body) if part)
        data: dict[str, Any] = {
            "content": marked(content, key),
            "due_date": _instant(due, "due"),
            "completed": False,
            "resource_type": "deal",
            "resource_id": _sell_id(deal_id),
        }
        if owner_id:
            data["owner_id"] = _user_id(owner_id)
        return self._create_once("tasks", str(deal_id), data, ref_token(key))

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        _instant(at, "at")
        data = {"content": marked(body, key), "resource_type": "deal",
                "resource_id": _sell_id(deal_id)}  # fmt: skip
        return self._create_once("notes", str(deal_id), data, ref_token(key))

    def complete_task(self, task_id: str) -> None:
        path = f"/v2/tasks/{_sell_id(task_id)}"
        try:
            task = self.client.get(path, endpoint="/v2/tasks/{id}").get("data") or {}
            if task.get("completed") is True:
                return
            self.client.call("PUT", path, endpoint="/v2/tasks/{id}", data={"completed": True})
        except NotFound:
            log.info("Sell task %s was deleted; nothing to complete", task_id)

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        user_id = _user_id(owner_id)
        path = f"/v2/tasks/{_sell_id(task_id)}"
        try:
            task = self.client.get(path, endpoint="/v2/tasks/{id}").get("data") or {}
            if task.get("completed") is True:
                return False
            if task.get("owner_id") != user_id:
                self.client.call("PUT", path, endpoint="/v2/tasks/{id}", data={"owner_id": user_id})
            return True
        except NotFound:
            log.info("Sell task %s was deleted; nobody to hand it to", task_id)
            return False

    def _create_once(self, kind: str, deal_id: str, data: dict[str, Any], token: str) -> str:
        failures = 0
        while True:
            found = self._find(kind, deal_id, token)
            if found is not None:
                return found
            try:
                created = self.client.call("POST", f"/v2/{kind}", data=data, attempts=1)
                return str((created.get("data") or {})["id"])
            except Transient as error:  # it may have been created: look again first
                failures += 1
                if failures >= self.client.attempts:
                    raise
                self.client.sleep(backoff(failures, error))

    def _find(self, kind: str, deal_id: str, token: str) -> str | None:
        """The deal's task or note whose content bears `token`, newest first."""
        for page in self.client.pages(
            f"/v2/{kind}", resource_type="deal", resource_id=_sell_id(deal_id),
            sort_by="created_at:desc",
        ):  # fmt: skip
            for record in page:
                if token in (record.get("content") or ""):
                    return str(record["id"])
        return None


def _instant(moment: datetime, name: str) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (a time zone), got {moment}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user_id(owner_id: str) -> int:
    if not str(owner_id).strip().isdigit():
        # A fallback owner set to a name or an email: no Sell user can hold the task, so it
        # goes to the next candidate, as for a deactivated owner.
        raise OwnerInactive(f"{owner_id!r} is not a Sell user id (an integer)", owner_id)
    return _sell_id(owner_id)


def _sell_id(value: str) -> int:
    """Sell's ids are integers; anything else is a caller's mistake."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a Sell id (Sell's ids are integers)")
    return int(text)
