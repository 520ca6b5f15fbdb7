"""Deal Radar's fields into Sell deals: one `PUT /v2/deals/{id}` per deal (Sell has no batch
update), with only the values that changed, as custom field values.

The jobs pass only the values that changed since the last write (jobs/writeback.py); each
becomes its custom field of adapters/sell/fields.py, if the account has it (`usable`: the
provisioning check; provisioning's notice tells the admin what is missing). The Firehose shows
each write as a deal update: adapters/sell/firehose.py recognises it and requests no refresh.

The result (adapters.base.WriteResult) names what was not written, so that the jobs do not
record it as written: the fields the account lacks or whose dropdown lacks the value (sent again
once the admin adds them), and the deals deleted since their evaluation.

Error policy: a deal deleted since its evaluation (404) is skipped and logged: the refresh that
follows its deletion event forgets it. A refusal naming a custom field (422: an admin deleted
or retyped a field since the check) checks the fields again (`recheck`) and sends the deal once
more with what is usable; other errors propagate (adapters.errors, from the client).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import WriteResult
from adapters.errors import InvalidRequest, NotFound
from adapters.sell.client import SellClient
from adapters.sell.fields import encode

log = logging.getLogger(__name__)

Usable = Mapping[str, frozenset[str] | None]


def write_back(
    client: SellClient,
    values: Mapping[str, Mapping[str, Any]],
    usable: Callable[[], Usable],
    recheck: Callable[[], Usable],
) -> WriteResult:
    """Write {deal id: {field: value}}; what was left unwritten."""
    failed: dict[str, str] = {}
    skipped_fields: dict[str, list[str]] = {}
    fields = usable()
    for deal_id, changed in values.items():
        for attempt in (1, 2):
            custom, skipped = encode(changed, fields)
            if not custom:
                break
            try:
                _put(client, str(deal_id), custom)
            except NotFound:
                log.info("Sell deal %s was deleted before its write-back; skipped", deal_id)
                failed[deal_id] = "deleted in Sell"
                skipped = []
            except InvalidRequest as exc:
                if attempt == 2 or not _names_a_custom_field(exc):
                    raise
                log.warning("Sell refused deal %s's custom fields (%s); checking them again",
                            deal_id, exc)  # fmt: skip
                fields = recheck()
                continue
            break
        if skipped:
            skipped_fields[deal_id] = skipped
    return WriteResult(failed=failed, skipped_fields=skipped_fields, deleted=tuple(failed))


def _names_a_custom_field(exc: InvalidRequest) -> bool:
    """Sell refused a custom field: its error names the field (`field`: a pointer into
    `custom_fields`), or its message speaks of one."""
    text = str(exc).lower()
    return "custom_fields" in text or "custom field" in text


def _put(client: SellClient, deal_id: str, custom: Mapping[str, Any]) -> None:
    client.call(
        "PUT", f"/v2/deals/{deal_id}", endpoint="/v2/deals/{id}",
        data={"custom_fields": dict(custom)},
    )  # fmt: skip
