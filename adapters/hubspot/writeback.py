"""Deal Radar's fields into HubSpot deals: batch update, 100 deals per call, string values.

The jobs pass only the values that changed (jobs/writeback.py); each becomes its property of
adapters/hubspot/properties.py. One deleted deal makes HubSpot refuse the whole batch (404), so
the batch is then checked with one batch read and sent again without the deleted deals: the
refresh that follows the deletion's webhook forgets them. One refused value makes it refuse
the whole batch too (400): the Deal Radar properties are put back as provisioning made them
(an admin may have removed an option) and the batch sent again, then, if still refused, sent
in halves until the refused deals are found, so that one deal's value never holds back the
other 99.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import WriteResult
from adapters.errors import InvalidRequest, NotFound
from adapters.hubspot import properties
from adapters.hubspot.client import HubSpotClient
from adapters.hubspot.provision import repair_properties

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
    batch = _Batch(client)
    for start in range(0, len(inputs), UPDATE_BATCH):
        batch.send(inputs[start : start + UPDATE_BATCH])
    failed = {**dict.fromkeys(batch.deleted, "deleted in HubSpot"), **batch.refused}
    return WriteResult(failed=failed, deleted=tuple(batch.deleted))


class _Batch:
    """One write-back's batch updates, and what HubSpot would not take."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self.deleted: list[str] = []
        self.refused: dict[str, str] = {}
        self.repaired = False

    def send(self, chunk: Sequence[dict[str, Any]]) -> None:
        try:
            _update(self.client, chunk)
        except NotFound:
            alive = _existing(self.client, [i["id"] for i in chunk])
            kept = [i for i in chunk if i["id"] in alive]
            self.deleted += [i["id"] for i in chunk if i["id"] not in alive]
            log.info(
                "HubSpot portal %s: %d deals deleted before their write-back",
                self.client.portal_id, len(chunk) - len(kept),
            )  # fmt: skip
            if kept:
                self.send(kept)
        except InvalidRequest as refused:
            self._refused(chunk, refused)

    def _refused(self, chunk: Sequence[dict[str, Any]], refused: InvalidRequest) -> None:
        if not self.repaired:
            self.repaired = True
            repaired = repair_properties(self.client)
            if repaired.changed:
                log.warning("HubSpot portal %s: Deal Radar properties put back (%s) after a "
                            "refused write-back", self.client.portal_id,
                            ", ".join(repaired.created + repaired.updated))  # fmt: skip
                self.send(chunk)
                return
        if len(chunk) == 1:
            deal_id = chunk[0]["id"]
            log.error("HubSpot portal %s: deal %s refused its Deal Radar fields: %s",
                      self.client.portal_id, deal_id, refused)  # fmt: skip
            self.refused[deal_id] = str(refused)[:300]
            return
        middle = len(chunk) // 2
        self.send(chunk[:middle])
        self.send(chunk[middle:])


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
