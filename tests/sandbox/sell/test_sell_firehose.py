"""The Firehose stream over real HTTP: positions, event types, `previous`, `top`, paging with
`limit`, and 410 once a position is older than the 72-hour retention."""

from __future__ import annotations

import pytest
import requests

from sandbox.sell import SellState, ServerHandle
from tests.sandbox.sell.support import Clock, Sell, error_code


@pytest.fixture
def feed(server: ServerHandle, state: SellState) -> Sell:
    """A client on a personal access token: it outlives the days these tests move the clock."""
    return Sell(server.url, state.personal_access_token().access_token)


def _page(sell: Sell, resource: str, position: str, limit: int | None = None) -> dict:
    params: dict[str, object] = {"position": position}
    if limit is not None:
        params["limit"] = limit
    response = sell.get(f"/v3/{resource}/stream", **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_logged_call_appears_at_the_next_position(
    sell: Sell, state: SellState, pipeline: dict[str, int]
) -> None:
    deal = state.create("deals", {"name": "Acme"})
    ann = state.create("contacts", {"first_name": "Ann", "last_name": "Lee"})
    top = _page(sell, "calls", "top")
    assert top["items"] == []
    assert top["meta"]["top"] is True
    call = sell.post(
        "/v2/calls",
        {
            "summary": "Discovery call",
            "incoming": True,
            "duration": 300,
            "resource_type": "contact",
            "resource_id": ann["id"],
            "associated_deal_ids": [deal["id"]],
            "made_at": "2026-12-01T08:55:00Z",
        },
    ).json()["data"]
    page = _page(sell, "calls", top["meta"]["position"])
    assert [
        (i["data"]["id"], i["meta"]["event_type"], i["meta"]["type"]) for i in page["items"]
    ] == [(call["id"], "created", "call")]
    data = page["items"][0]["data"]
    assert (data["incoming"], data["associated_deal_ids"]) == (True, [deal["id"]])
    assert "updated_at" not in data  # the Firehose's call attributes have none
    assert page["items"][0]["meta"]["event_time"] == "2026-12-01T09:00:00Z"
    assert page["meta"]["top"] is True
    assert page["meta"]["links"]["next"].endswith(page["meta"]["position"])
    after = sell.session.get(page["meta"]["links"]["next"], timeout=10).json()
    assert after["items"] == [] and after["meta"]["top"] is True


def test_updates_carry_the_previous_values_and_deletes_are_streamed(
    sell: Sell, state: SellState, clock: Clock, pipeline: dict[str, int]
) -> None:
    deal = sell.post("/v2/deals", {"name": "Acme", "value": 100}).json()["data"]
    position = _page(sell, "deals", "top")["meta"]["position"]
    clock.advance(minutes=5)
    sell.put(f"/v2/deals/{deal['id']}", {"stage_id": pipeline["Proposal"], "value": 250})
    sell.delete(f"/v2/deals/{deal['id']}")
    items = _page(sell, "deals", position)["items"]
    assert [i["meta"]["event_type"] for i in items] == ["updated", "deleted"]
    updated = items[0]
    assert updated["data"]["stage_id"] == pipeline["Proposal"]
    assert updated["data"]["last_stage_change_at"] == "2026-12-01T09:05:00Z"
    assert updated["data"]["value"] == "250.00"  # a decimal string in the Firehose
    previous = updated["meta"]["previous"]
    assert previous["stage_id"] == pipeline["Qualified"]
    assert previous["value"] == "100.00"
    assert previous["last_stage_change_at"] == "2026-12-01T09:00:00Z"
    assert "name" not in previous  # only the keys that changed
    assert "previous" not in items[1]["meta"]


def test_limit_pages_the_stream_and_top_says_when_caught_up(sell: Sell, state: SellState) -> None:
    for i in range(5):
        state.create("contacts", {"last_name": f"P{i}"})
    position, names, tops = "tail", [], []
    while True:
        page = _page(sell, "contacts", position, limit=2)
        names += [i["data"]["last_name"] for i in page["items"]]
        tops.append(page["meta"]["top"])
        position = page["meta"]["position"]
        if page["meta"]["top"]:
            break
    assert names == ["P0", "P1", "P2", "P3", "P4"]
    assert tops == [False, False, True]
    state.create("contacts", {"last_name": "P5"})
    page = _page(sell, "contacts", position)
    assert [i["data"]["last_name"] for i in page["items"]] == ["P5"]


def test_a_position_older_than_72_hours_is_gone(feed: Sell, state: SellState, clock: Clock) -> None:
    state.create("contacts", {"last_name": "Old"})
    position = _page(feed, "contacts", "tail")["meta"]["position"]
    clock.advance(hours=71)
    state.create("contacts", {"last_name": "Recent"})
    still = _page(feed, "contacts", position)
    assert [i["data"]["last_name"] for i in still["items"]] == ["Recent"]
    clock.advance(hours=2)  # the first position was issued 73 hours ago
    expired = feed.get("/v3/contacts/stream", position=position)
    assert expired.status_code == 410
    assert error_code(expired) == "gone"
    fresh = _page(feed, "contacts", still["meta"]["position"])  # issued 2 h ago: fine
    assert fresh["items"] == [] and fresh["meta"]["top"] is True
    from_tail = _page(feed, "contacts", "tail")
    assert [i["data"]["last_name"] for i in from_tail["items"]] == ["Recent"]


def test_a_recent_position_whose_next_events_expired_is_gone(
    feed: Sell, state: SellState, clock: Clock
) -> None:
    for name in ("A", "B", "C"):
        state.create("contacts", {"last_name": name})
    clock.advance(hours=71, minutes=30)
    page = _page(feed, "contacts", "tail", limit=1)  # a slow reader, one event behind
    assert [i["data"]["last_name"] for i in page["items"]] == ["A"]
    clock.advance(hours=1)  # B and C expire; the position itself is an hour old
    gone = feed.get("/v3/contacts/stream", position=page["meta"]["position"])
    assert gone.status_code == 410
    assert _page(feed, "contacts", "tail")["items"] == []


def test_stream_parameters_are_checked(sell: Sell, server) -> None:
    assert error_code(sell.get("/v3/deals/stream")) == "missing_param"
    assert sell.get("/v3/deals/stream", position="top", limit=101).status_code == 400
    assert sell.get("/v3/deals/stream", position="top", limit=100).status_code == 200
    assert sell.get("/v3/deals/stream", position="bm9wZQ==").status_code == 400
    contacts = _page(sell, "contacts", "top")["meta"]["position"]
    assert sell.get("/v3/deals/stream", position=contacts).status_code == 400
    assert requests.get(server.url + "/v3/deals/stream?position=top", timeout=10).status_code == 401


def test_custom_fields_travel_as_custom_field_values_and_definitions_have_a_stream(
    sell: Sell, state: SellState
) -> None:
    field = state.define_custom_field("contact", "Buying role", "list", ["Champion", "Other"])
    definitions = _page(sell, "custom_fields", "tail")["items"]
    assert [(i["data"], i["meta"]["type"]) for i in definitions] == [
        ({"id": field["id"], "name": "Buying role", "resource_type": "contact", "type": "list"},
         "custom_field")
    ]  # fmt: skip
    ann = state.create("contacts", {"last_name": "Lee"})
    position = _page(sell, "contacts", "top")["meta"]["position"]
    sell.put(f"/v2/contacts/{ann['id']}", {"custom_fields": {"Buying role": "Champion"}})
    event = _page(sell, "contacts", position)["items"][0]
    champion = field["choices"][0]
    assert event["data"]["custom_field_values"] == [
        {"id": field["id"], "name": "Buying role", "value": champion}
    ]
    assert event["meta"]["previous"] == {"custom_field_values": []}
    mapping = sell.get("/v3/contacts/custom_fields").json()["items"][0]["data"]
    assert mapping["id"] == str(field["id"])
    assert mapping["search_api_id"] == f"custom_fields.{field['id']}"
