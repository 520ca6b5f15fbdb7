"""Deal Radar's fields into HubSpot deals: batch update, 100 deals per call, string values.

The jobs pass only the values that changed (jobs/writeback.py); each becomes its property of
adapters/hubspot/properties.py. One deleted deal makes HubSpot refuse the whole batch (404), so
the batch is then checked with one batch read and sent again without the deleted deals: the
refresh that follows the deletion's webhook forgets them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import WriteResult
from adapters.errors import NotFound
from adapters.hubspot import properties
from adapters.hubspot.client import HubSpotClient

log = logging.getLogger(__name__)

UPDATE_BATCH = 100
"""Deals per batch update (crm-apis.md 1.5)."""


def write_back(client: HubSpotClient, values: Mapping[str, Mapping[str, Any]]) -> WriteResult:
    """Write {deal id: {field: value}}; the deals found deleted meanwhile are in the result."""
    inputs = [
        {"id": str(deal_id), "properties": properties.encode(fields)}
        for deal_id, fields in values.items()
        if fields
    ]
    deleted: list[str] = []
    for start in range(0, len(inputs), UPDATE_BATCH):
        chunk = inputs[start : start + UPDATE_BATCH]
        try:
            _update(client, chunk)
        except NotFound:
            alive = _existing(client, [i["id"] for i in chunk])
            kept = [i for i in chunk if i["id"] in alive]
            deleted += [i["id"] for i in chunk if i["id"] not in alive]
            log.info(
                "HubSpot portal %s: %d deals deleted before their write-back",
                client.portal_id, len(chunk) - len(kept),
            )  # fmt: skip
            if kept:
                _update(client, kept)
    return WriteResult(failed=dict.fromkeys(deleted, "deleted in HubSpot"), deleted=tuple(deleted))


def _update(client: HubSpotClient, inputs: Sequence[dict[str, Any]]) -> None:
    client.call(
        "deals.batch_update",
        lambda sdk: (
            sdk.crm.deals.batch_api.update({"inputs": list(inputs)}, _preload_content=False).data
        ),
    )


def _existing(client: HubSpotClient, ids: Sequence[str]) -> set[str]:
    raw = client.call(
        "deals.batch_read",
        lambda sdk: (
            sdk.crm.deals.batch_api.read(
                {"inputs": [{"id": i} for i in ids], "properties": []}, _preload_content=False
            ).data
        ),
    )
    return {str(obj["id"]) for obj in json.loads(raw or "{}").get("results", ())}
