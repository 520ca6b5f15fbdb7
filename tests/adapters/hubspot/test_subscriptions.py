"""The webhook subscriptions the HubSpot app needs (adapters/hubspot/subscriptions.py) and the
command that prints them. That they carry every change that matters is shown end to end: the
HubSpot journeys in tests/e2e run with exactly these subscriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.hubspot.adapter import ACTIVITY_PROPERTIES, CONTACT_PROPERTIES, DEAL_PROPERTIES
from adapters.hubspot.events import HANDLERS, OBJECT_TYPE_KINDS
from adapters.hubspot.subscriptions import ACTIVITY_TYPE_IDS, NOT_SUBSCRIBED, wanted
from connector.cli import main


def _watched(subscription_type: str, type_id: str | None = None) -> set[str]:
    return {
        s["propertyName"] for s in wanted()
        if s["subscriptionType"] == subscription_type and s.get("objectTypeId") == type_id
    }  # fmt: skip


def test_every_property_read_is_watched_or_says_why_not() -> None:
    assert _watched("deal.propertyChange") == set(DEAL_PROPERTIES) - set(NOT_SUBSCRIBED)
    assert "hubspot_owner_id" in _watched("deal.propertyChange"), "a deal handed over"
    assert _watched("contact.propertyChange") == set(CONTACT_PROPERTIES) - set(NOT_SUBSCRIBED)
    for kind, type_id in ACTIVITY_TYPE_IDS.items():
        assert _watched("object.propertyChange", type_id) == (
            set(ACTIVITY_PROPERTIES[kind]) - set(NOT_SUBSCRIBED)
        ), kind
    read = {*DEAL_PROPERTIES, *CONTACT_PROPERTIES}.union(*ACTIVITY_PROPERTIES.values())
    assert set(NOT_SUBSCRIBED) <= read, "no reason kept for a property no longer read"


def test_only_events_the_receiver_handles_and_hubspot_accepts() -> None:
    subs = wanted()
    assert {s["subscriptionType"] for s in subs} <= set(HANDLERS)
    generic = {s["objectTypeId"] for s in subs if "objectTypeId" in s}
    assert generic == set(ACTIVITY_TYPE_IDS.values())
    assert set(ACTIVITY_TYPE_IDS.values()) <= set(OBJECT_TYPE_KINDS)
    named = [s["propertyName"] for s in subs if "propertyName" in s]
    assert "hs_lastmodifieddate" not in named, "HubSpot refuses it"
    assert not [n for n in named if n.startswith("dealradar_")], "our own writes: echoes only"
    assert len(subs) == len({json.dumps(s, sort_keys=True) for s in subs}) <= 1000


def test_the_command_prints_them_for_a_person_and_for_a_script(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://radar.example.com/")
    assert main(["hubspot", "subscriptions"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("target URL: https://radar.example.com/webhooks/hubspot\n")
    assert "deal.propertyChange" in out and "0-48 calls" in out
    assert f"{len(wanted())} subscriptions" in out
    assert main(["hubspot", "subscriptions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == wanted()


def test_the_readmes_count_of_subscriptions_is_the_lists() -> None:
    """The install steps tell an admin how many subscriptions to set: a property read or
    dropped changes the list, and the README must follow."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert f"notes ({len(wanted())} in all, of HubSpot's 1,000 per app)" in readme
