"""Tasks and notes on Salesforce opportunities for the actions, each created at most once per
outbox key.

- `create_task`: one `POST /sobjects/Task` with WhatId the opportunity, OwnerId, ActivityDate
  (the due date as the caller's zone has it: ActivityDate is a date), Status "Not Started".
  An owner Salesforce answers INACTIVE_OWNER_OR_USER for (deactivated since the last pull)
  raises `OwnerInactive` naming that owner, so that the job gives the task to someone else.
- `complete_task`: reads the task and sets Status "Completed" only if it is still open; a task
  the rep closed or deleted is left alone.
- `create_note`: a ContentNote linked to the opportunity by a ContentDocumentLink, both in one
  Composite request (one API call). ContentNote is what Salesforce documents for notes ("Use
  ContentNote to create, query, retrieve, search, edit, and update notes", Object Reference):
  the Notes related list of Lightning Experience shows them. A completed Task would be an
  activity instead: it would enter the activity timeline and activity reports as work a rep
  did, and move the opportunity's LastActivityDate, for a note no rep wrote. A note's time is
  when Salesforce saves it (ContentNote has no date of its own to set), so `at` is only checked.

Idempotency. Salesforce has no idempotency header, so each record carries a marker made from
its outbox key (`dr` and 24 hex characters of its digest): a task at the end of its
Description (`Deal Radar ref: dr...`, which the pull also reads to leave our tasks out of the
deal's activities), a note at the end of its Title (ContentNote's text is a blob a query
cannot filter; Title can). A create first looks for its marker: the opportunity's tasks read
by one query (Description cannot be filtered, so the client compares), or one query of
ContentNote by Title; SOQL reads what is committed, with no index lag, so a retry after a
timeout finds what the first try made. A note found without its link (a Composite cut short
between its two subrequests cannot happen, but an admin may remove the link) gets its link
again.

Retries. The create is sent once per try (`SalesforceClient.call(attempts=1)`): a 5xx, a
timeout or a dropped connection may hide a record Salesforce did create, so the look-up runs
again before any new create; after the client's number of tries the error goes to the job,
whose retry looks up first too.

Errors: adapters.errors only, from the client (a deleted opportunity is NotFound and gets
nothing), and OwnerInactive for a task's deactivated owner; bad arguments raise ValueError
before any call.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.errors import InvalidRequest, NotFound, OwnerInactive, Transient
from adapters.marker import OWN_MARKER, ref_token
from adapters.salesforce.client import TIMEOUT, SalesforceClient, backoff, errors_of

log = logging.getLogger(__name__)

OPEN = "Not Started"
COMPLETED = "Completed"
PRIORITY = "Normal"
TITLE_MAX = 255
"""ContentNote.Title's length."""
GONE = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "NOT_FOUND"})
INACTIVE_OWNER = "INACTIVE_OWNER_OR_USER"
"""Salesforce's errorCode for a record assigned to a deactivated user."""


class SalesforceActions:
    """`CrmActions` for one Salesforce org (adapters/base.py)."""

    def __init__(self, client: SalesforceClient) -> None:
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
        token = ref_token(key)
        _aware(due, "due")
        values: dict[str, Any] = {
            "WhatId": deal_id,
            "Subject": subject[:255],
            "Description": f"{body}\n\n{OWN_MARKER}{token}",
            "ActivityDate": due.date().isoformat(),
            "Status": OPEN,
            "Priority": PRIORITY,
            "TaskSubtype": "Task",
        }
        if owner_id:
            values["OwnerId"] = owner_id
        try:
            return self._once(
                lambda: self._find_task(deal_id, token),
                "create Task",
                lambda sf: sf.restful(
                    "sobjects/Task", method="POST", json=values, timeout=TIMEOUT
                ),
                lambda answer: str(answer["id"]),
            )
        except InvalidRequest as error:
            code = getattr(error, "code", None)
            # Without an OwnerId the owner is our own API user: nobody else to blame.
            if owner_id and code == INACTIVE_OWNER:
                raise OwnerInactive(str(error), owner_id) from error
            if code in GONE - {"INVALID_CROSS_REFERENCE_KEY"}:
                # The opportunity was deleted: nothing to remind anyone of (the cross-reference
                # code may be the owner's, so it is not read as a deletion).
                raise NotFound(f"Salesforce opportunity {deal_id}: {error}") from error
            raise

    def complete_task(self, task_id: str) -> None:
        if not self._update_open_task(task_id, {"Status": COMPLETED}):
            log.info("Salesforce org %s: task %s was completed or deleted; nothing to complete",
                     self.client.org_id, task_id)  # fmt: skip

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        try:
            return self._update_open_task(task_id, {"OwnerId": owner_id})
        except InvalidRequest as error:
            if getattr(error, "code", None) == INACTIVE_OWNER:
                raise OwnerInactive(str(error), owner_id) from error
            raise

    def _update_open_task(self, task_id: str, values: dict[str, str]) -> bool:
        """Set `values` on the task unless it is closed or deleted (False) or has them already."""
        fields = ",".join(["Id", "IsClosed", *values])
        try:
            task = self.client.call(
                "read Task",
                lambda sf: sf.restful(
                    f"sobjects/Task/{task_id}", params={"fields": fields}, timeout=TIMEOUT
                ),
            )
            if (task or {}).get("IsClosed"):
                return False
            if any((task or {}).get(name) != value for name, value in values.items()):
                self.client.call(
                    "update Task",
                    lambda sf: sf.restful(
                        f"sobjects/Task/{task_id}", method="PATCH", json=values, timeout=TIMEOUT
                    ),
                )
            return True
        except NotFound:
            return False

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        token = ref_token(key)
        _aware(at, "at")
        suffix = f" ({OWN_MARKER}{token})"
        first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
        if not first_line.startswith("Deal Radar"):
            first_line = f"Deal Radar: {first_line}"  # the Notes list shows titles only
        title = first_line[: TITLE_MAX - len(suffix)] + suffix
        content = "".join(f"<p>{html.escape(line)}</p>" for line in body.splitlines()) or "<p></p>"
        request = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "POST", "url": self._path("sobjects/ContentNote"),
                    "referenceId": "note",
                    "body": {"Title": title,
                             "Content": base64.b64encode(content.encode()).decode()},
                },
                {
                    "method": "POST", "url": self._path("sobjects/ContentDocumentLink"),
                    "referenceId": "link",
                    "body": {"ContentDocumentId": "@{note.id}", "LinkedEntityId": deal_id,
                             "ShareType": "V"},
                },
            ],
        }  # fmt: skip
        return self._once(
            lambda: self._find_note(deal_id, token),
            "create ContentNote",
            lambda sf: sf.restful("composite", method="POST", json=request, timeout=TIMEOUT),
            lambda answer: self._created_note(answer, deal_id),
        )

    # -- once per key --------------------------------------------------------------------------

    def _once(
        self,
        find: Callable[[], str | None],
        what: str,
        create: Callable[[Any], Any],
        created_id: Callable[[Any], str],
    ) -> str:
        failures = 0
        while True:
            found = find()
            if found is not None:
                return found
            try:
                return created_id(self.client.call(what, create, attempts=1))
            except Transient as error:
                # A 5xx or a lost answer may hide a record Salesforce made: look again first.
                failures += 1
                if failures >= self.client.attempts:
                    raise
                self.client.sleep(backoff(failures))
                log.info("Salesforce org %s: %s failed (%s); looking again before a retry",
                         self.client.org_id, what, error)  # fmt: skip

    def _find_task(self, deal_id: str, token: str) -> str | None:
        """The opportunity's task whose Description bears `token` (newest first)."""
        rows = self.client.query(
            f"SELECT Id, Description FROM Task WHERE WhatId = '{_literal(deal_id)}' "
            "ORDER BY CreatedDate DESC",
            "query Task by marker",
        )
        return next((str(r["Id"]) for r in rows if token in (r.get("Description") or "")), None)

    def _find_note(self, deal_id: str, token: str) -> str | None:
        """Our note bearing `token`, linked to the opportunity again if its link is gone."""
        rows = self.client.query(
            f"SELECT Id FROM ContentNote WHERE Title LIKE '%{token}%'", "query ContentNote"
        )
        if not rows:
            return None
        note_id = str(rows[0]["Id"])
        links = self.client.query(
            f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{note_id}' "
            f"AND LinkedEntityId = '{_literal(deal_id)}'",
            "query ContentDocumentLink",
        )
        if not links:
            self.client.call(
                "create ContentDocumentLink",
                lambda sf: sf.restful(
                    "sobjects/ContentDocumentLink", method="POST", timeout=TIMEOUT,
                    json={"ContentDocumentId": note_id, "LinkedEntityId": deal_id,
                          "ShareType": "V"},
                ),
            )  # fmt: skip
        return note_id

    def _created_note(self, answer: Any, deal_id: str) -> str:
        note, link = (answer or {}).get("compositeResponse") or ({}, {})
        if int(note.get("httpStatusCode") or 500) >= 300:
            raise InvalidRequest(f"Salesforce refused the note: {errors_of(note.get('body'))}")
        note_id = str(note["body"]["id"])
        if int(link.get("httpStatusCode") or 500) >= 300:
            codes = {code for code, _ in errors_of(link.get("body"))}
            # Not left behind unlinked: nobody would see it, and the next try would find it.
            self.client.call(
                "delete ContentNote",
                lambda sf: sf.restful(f"sobjects/ContentNote/{note_id}", method="DELETE",
                                      timeout=TIMEOUT),
            )  # fmt: skip
            if codes & GONE:
                raise NotFound(f"Salesforce opportunity {deal_id} is gone; no note made")
            raise InvalidRequest(
                f"Salesforce refused the note's link to {deal_id}: {errors_of(link.get('body'))}"
            )
        return note_id

    def _path(self, path: str) -> str:
        return f"/services/data/v{self.client.version}/{path}"


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (a time zone), got {moment}")


def _literal(record_id: str) -> str:
    """A record id as a SOQL string literal's content: ids are letters and digits only."""
    if not record_id.isalnum():
        raise ValueError(f"not a Salesforce id: {record_id!r}")
    return record_id
