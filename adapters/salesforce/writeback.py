"""Deal Radar's fields into Salesforce opportunities: sObject Collections, 200 records a call.

The jobs pass only the values that changed (jobs/writeback.py, against the values last
written, which the store keeps); each becomes its custom field of adapters/salesforce/fields.py.
`PATCH /composite/sobjects` with `allOrNone: false` saves each record on its own and answers
one SaveResult per record, in order, HTTP 200 even when some fail (crm-apis.md 2.5), so:

- a record refused because the opportunity is gone (ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY,
  NOT_FOUND, INVALID_ID_FIELD) is left out: the refresh that follows the deletion forgets it;
- records refused because one of our fields is not visible or not editable to Deal Radar's
  user (INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE: field-level security not granted yet,
  crm-apis.md traps 10) are sent again without every field describe says the user cannot
  edit (one describe per write-back, and the later batches leave those fields out at once);
  those fields are reported skipped, with what an admin must do logged, and are written by a
  later flush once visible (the store never recorded them as written);
- any other refusal (a value a validation rule refuses) is reported failed with its reason.

Errors: adapters.errors only, from the client (a whole call refused raises, unless it was
refused for one of our fields: then it is the case above, for every record of the call).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import WriteResult
from adapters.errors import InvalidRequest
from adapters.salesforce import fields
from adapters.salesforce.client import TIMEOUT, SalesforceClient

log = logging.getLogger(__name__)

COLLECTION_MAX = 200
"""Records per sObject Collections call (crm-apis.md 2.5)."""
GONE = frozenset(
    {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND", "INVALID_ID_FIELD"}
)
HIDDEN = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})


def write_back(client: SalesforceClient, values: Mapping[str, Mapping[str, Any]]) -> WriteResult:
    """Write {deal id: {field: value}}; what was not written is in the result."""
    records = {
        str(deal_id): fields.encode(changed) for deal_id, changed in values.items() if changed
    }
    failed: dict[str, str] = {}
    skipped: dict[str, list[str]] = {}
    editable: set[str] | None = None  # our fields the user may edit, once a refusal asked
    ids = list(records)
    for start in range(0, len(ids), COLLECTION_MAX):
        chunk = {i: records[i] for i in ids[start : start + COLLECTION_MAX]}
        if editable is not None:
            chunk = _without_hidden(chunk, editable, skipped)
        retry: dict[str, dict[str, Any]] = {}
        for deal_id, errors in _update_or_hidden(client, chunk).items():
            if _hidden_fields(errors):
                retry[deal_id] = chunk[deal_id]
            else:
                failed[deal_id] = _reason(errors)
        if retry:
            # Salesforce names one unknown field per record: describe says them all at once.
            editable = editable if editable is not None else editable_fields(client)
            retry = _without_hidden(retry, editable, skipped)
            for deal_id, errors in (_update(client, retry) if retry else {}).items():
                failed[deal_id] = _reason(errors)
    if skipped:
        names = sorted({n for hidden in skipped.values() for n in hidden})
        log.warning(
            "Salesforce org %s: %d opportunities written without %s: %s", client.org_id,
            len(skipped), ", ".join(names), admin_message(names),
        )  # fmt: skip
    gone = [d for d, reason in failed.items() if reason.split(":")[0] in GONE]
    if gone:
        log.info("Salesforce org %s: %d opportunities deleted before their write-back",
                 client.org_id, len(gone))  # fmt: skip
    return WriteResult(
        failed=failed,
        skipped_fields={d: [fields.BY_API_NAME[n].field for n in names]
                        for d, names in skipped.items()},
        deleted=tuple(gone),
    )  # fmt: skip


def admin_message(api_names: Sequence[str]) -> str:
    """What an admin does when Deal Radar's user cannot see or edit these fields."""
    labels = ", ".join(fields.BY_API_NAME[n].label for n in api_names if n in fields.BY_API_NAME)
    return (
        f"Deal Radar's user cannot edit {labels} yet. In Setup > Permission Sets > "
        f"{fields.PERMISSION_SET_LABEL} > Object Settings > Opportunities > Edit, tick Read "
        "Access and Edit Access for these fields and Save; check that the permission set is "
        "assigned to the user who installed Deal Radar (Manage Assignments). New values are "
        "written at the next change or daily sweep once they are visible."
    )


def editable_fields(client: SalesforceClient) -> set[str]:
    """Our fields Deal Radar's user can see and edit now (describe Opportunity, one call)."""
    answer = client.call(
        "describe Opportunity",
        lambda sf: sf.restful(f"sobjects/{fields.OBJECT}/describe", timeout=TIMEOUT),
    )
    return {
        str(f["name"])
        for f in (answer or {}).get("fields") or ()
        if f.get("name") in fields.BY_API_NAME and f.get("updateable")
    }


def _without_hidden(
    chunk: Mapping[str, Mapping[str, Any]], editable: set[str], skipped: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for deal_id, values in chunk.items():
        hidden = sorted(k for k in values if k not in editable)
        if hidden:
            skipped.setdefault(deal_id, []).extend(hidden)
        kept = {k: v for k, v in values.items() if k in editable}
        if kept:
            out[deal_id] = kept
    return out


def _update(
    client: SalesforceClient, chunk: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """One Collections update; the errors of each record that was refused."""
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": fields.OBJECT}, "id": deal_id, **values}
            for deal_id, values in chunk.items()
        ],
    }
    results = client.call(
        "composite/sobjects update",
        lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body, timeout=TIMEOUT),
    )
    refused: dict[str, list[dict[str, Any]]] = {}
    for deal_id, result in zip(chunk, results or (), strict=False):
        if not result.get("success"):
            refused[deal_id] = list(result.get("errors") or ())
    return refused


def _update_or_hidden(
    client: SalesforceClient, chunk: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """`_update`, with a whole call refused for one of our fields (INVALID_FIELD, "No such
    column": an org may reject the request before saving any record) read as every record
    refused for it, so that the chunk goes again without the fields the user cannot edit."""
    try:
        return _update(client, chunk)
    except InvalidRequest as exc:
        error = {"statusCode": getattr(exc, "code", None), "message": str(exc)}
        if not _hidden_fields([error]):
            raise
        log.info("Salesforce org %s refused the whole update for a field: %s", client.org_id, exc)
        return {deal_id: [error] for deal_id in chunk}


def _hidden_fields(errors: Sequence[Mapping[str, Any]]) -> bool:
    """True when the errors say only that the user cannot see or edit one of our fields
    (named in `fields`, or in the message when Salesforce names none)."""
    if not errors:
        return False
    for error in errors:
        if error.get("statusCode") not in HIDDEN:
            return False  # something else is wrong too: not a visibility problem alone
        named = [str(f) for f in error.get("fields") or ()]
        named += [n for n in fields.API_NAMES if n in str(error.get("message") or "")]
        if not any(n in fields.BY_API_NAME for n in named):
            return False
    return True


def _reason(errors: Sequence[Mapping[str, Any]]) -> str:
    if not errors:
        return "UNKNOWN: Salesforce refused the record without saying why"
    first = errors[0]
    return f"{first.get('statusCode') or 'UNKNOWN'}: {first.get('message') or ''}".strip()
