"""HubSpot end to end over real HTTP: an admin installs Deal Radar into an emulated portal, the
initial sync writes every open deal's Deal Radar fields, then a rep schedules a meeting in the
HubSpot UI: HubSpot posts a signed webhook, and within seconds `no_meeting_scheduled` leaves
that deal's fields, while an unrelated deal is not written at all."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import requests

from adapters.hubspot.properties import NAMES
from tests.e2e.conftest import DEALS, Product, install

ALERTS = "dealradar_alerts"
EVALUATED = "dealradar_evaluated_at"
SYNC_SECONDS = 120
CHANGE_SECONDS = 15
"""The issue says "within seconds": the coalescing window is 0.5 s here, 2 s by default."""


def _alerts(product: Product, deal_id: str) -> set[str]:
    return set(filter(None, (product.deal(deal_id).get(ALERTS) or "").split(";")))


def _deal_updates(product: Product) -> int:
    """Batch updates of deals the emulator received (each request counted by its route)."""
    return sum(n for route, n in product.state.counts().items() if "deals/batch/update" in route)


def _open_deals(product: Product) -> list[str]:
    with product.state.lock:
        return [
            r.id for r in product.state.records("deals")
            if r.properties.get("hs_is_closed") != "true"
        ]  # fmt: skip


def test_install_sync_then_a_meeting_clears_no_meeting_scheduled(product: Product) -> None:
    installed = install(product.app_url)
    assert installed["status"] == "installed"
    assert str(installed["portal_id"]) == str(product.state.portal_id)
    auth = {"Authorization": f"Bearer {installed['api_key']}"}

    def listed() -> list[dict]:
        answer = requests.get(
            f"{product.app_url}/api/v1/deals", params={"limit": 200}, headers=auth, timeout=10
        )
        answer.raise_for_status()
        return answer.json()["items"]

    open_ids = _open_deals(product)
    assert open_ids
    product.wait(
        "the initial sync evaluates every deal",
        lambda: sum(1 for d in listed() if d["evaluated_at"]) == DEALS,
        SYNC_SECONDS,
    )
    product.wait(
        "every open deal's Deal Radar fields are written back",
        lambda: all(product.deal(d).get(EVALUATED) for d in open_ids),
        SYNC_SECONDS,
    )
    by_api = {d["id"]: set(d["alerts"]) for d in listed()}
    for deal_id in open_ids:
        assert _alerts(product, deal_id) == by_api[deal_id], "HubSpot shows what the API says"

    target = next(d for d in open_ids if "no_meeting_scheduled" in _alerts(product, d))
    bystander = next(d for d in open_ids if d != target and _alerts(product, d))
    product.state.webhooks.flush()
    bystander_before = product.deal(bystander)
    bystander_history = product.history_lengths(bystander)
    others_before = {d: product.history_lengths(d) for d in open_ids if d != target}
    updates_before = _deal_updates(product)
    assert updates_before > 0, "the initial sync wrote through batch updates"

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    logged = requests.post(
        f"{product.emulator.url}/_sandbox/ui/deals/{target}/meetings",
        json={
            "properties": {
                "hs_meeting_title": "Pricing review",
                "hs_meeting_start_time": start.isoformat().replace("+00:00", "Z"),
                "hs_meeting_end_time": (start + timedelta(hours=1))
                .isoformat()
                .replace("+00:00", "Z"),
                "hs_meeting_outcome": "SCHEDULED",
                "hs_timestamp": start.isoformat().replace("+00:00", "Z"),
            }
        },
        timeout=10,
    )
    assert logged.status_code == 201
    seconds = product.wait(
        "no_meeting_scheduled leaves the deal's fields in HubSpot",
        lambda: "no_meeting_scheduled" not in _alerts(product, target),
        CHANGE_SECONDS,
    )
    assert seconds < CHANGE_SECONDS
    accepted = [d for d in product.state.webhooks.deliveries if d.status == 202]
    assert any(e.get("objectTypeId") == "0-47" for d in accepted for e in d.events), (
        "the meeting reached us as a signed webhook HubSpot sent, verified and queued (202)"
    )
    assert "no_meeting_scheduled" not in {
        a for d in listed() if d["id"] == target for a in d["alerts"]
    }

    product.state.webhooks.flush()
    time.sleep(2)  # the echo of our write, and any second refresh, have had their chance
    assert _deal_updates(product) == updates_before + 1, "one batch update, for the one deal"
    assert product.deal(bystander) == bystander_before
    assert product.history_lengths(bystander) == bystander_history, "not rewritten"
    rewritten = [
        d for d, lengths in others_before.items()
        if any(product.history_lengths(d).get(n, 0) != lengths.get(n, 0) for n in NAMES)
    ]  # fmt: skip
    assert rewritten == [], "only the deal that changed had its Deal Radar fields written"
