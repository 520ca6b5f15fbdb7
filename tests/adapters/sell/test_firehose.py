"""Following Sell's Firehose through the adapter: the first sync lists everything, each page is
a checkpoint, 410 lists a stream again without missing a deal, our own writes are no change."""

from __future__ import annotations

import json
from datetime import timedelta

from adapters.sell.firehose import SHIFT_CHECKED, STREAMS, position_ages
from tests.adapters.sell.conftest import Account


def _deals(account: Account) -> set[str]:
    return {str(d["id"]) for d in account.state.records("deals")}


def _calls_by_route(account: Account, prefix: str) -> int:
    return sum(n for route, n in account.state.counts().items() if route.startswith(prefix))


def test_the_first_sync_lists_every_record_then_follows_the_feed(account: Account) -> None:
    found, cursor = account.sync()
    assert set(found) == _deals(account)
    ages = position_ages(cursor, account.clock())
    assert set(ages) == set(STREAMS) and all(a == 0 for a in ages.values())
    assert json.loads(cursor or "")["listings"] == {}
    # A quiet poll reads each stream once and finds nothing.
    account.state.reset_counts()
    again, _ = account.sync(cursor=cursor)
    assert again == []
    assert account.state.counts() == {f"GET /v3/{s}/stream": 1 for s in STREAMS}


def test_a_call_logged_reaches_its_deal_through_the_feed_and_the_mirror(account: Account) -> None:
    _, cursor = account.sync()
    deal = next(iter(account.state.records("deals")))
    account.clock.advance(minutes=5)
    call = account.state.create("calls", {
        "associated_deal_ids": [deal["id"]], "incoming": False, "made_at": "2026-12-01T09:04:00Z",
        "summary": "Pricing", "duration": 300,
    })  # fmt: skip
    found, cursor = account.sync(cursor=cursor)
    assert found == [str(deal["id"])]
    (bundle,) = account.adapter().pull([str(deal["id"])]).bundles
    logged = next(a for a in bundle.activities if a.id == str(call["id"]))
    assert (logged.kind, logged.direction, logged.status) == ("call", "outbound", "done")
    account.state.delete("calls", call["id"])
    found, _ = account.sync(cursor=cursor)
    assert found == [str(deal["id"])], "a deleted call concerns its deal"
    (bundle,) = account.adapter().pull([str(deal["id"])]).bundles
    assert str(call["id"]) not in {a.id for a in bundle.activities}


def test_each_page_is_a_checkpoint_and_a_crash_resumes_from_the_last_one(
    make_account,
) -> None:
    account = make_account(deals=60)
    first = account.adapter()
    found, cursor = account.sync(first, pages=6)  # then the worker dies
    listing = json.loads(cursor or "")["listings"]
    assert any(r["page"] > 1 for r in listing.values()), "the sync stopped inside a listing"
    rest, cursor = account.sync(cursor=cursor)  # a new job, from the stored cursor
    assert set(found) | set(rest) == _deals(account)
    after = account.state.counts()
    # Every page of every listing read exactly once (and each page boundary of deals and
    # activities checked once, a one-record request): none again after the crash, none skipped.
    total_pages = {route: n for route, n in after.items() if route.startswith("GET /v2/")}
    records = {r: len(account.state.records(r)) for r in ("deals", "contacts", "calls", "visits")}
    for resource, n in records.items():
        pages = max(1, -(-n // 100))
        checks = pages - 1 if resource in SHIFT_CHECKED else 0
        assert total_pages[f"GET /v2/{resource}"] == pages + checks, resource


def test_an_expired_position_lists_again_and_misses_no_deal(account: Account) -> None:
    _, cursor = account.sync()
    state = account.state
    deals = sorted(state.records("deals"), key=lambda d: d["id"])
    # While nobody polls for four days: a deal renamed, one deleted, a call logged on a third.
    account.clock.advance(hours=1)
    state.update("deals", deals[0]["id"], {"name": "Renamed while away"})
    state.delete("deals", deals[1]["id"])
    state.create(
        "calls", {"associated_deal_ids": [deals[2]["id"]], "made_at": "2026-12-01T10:00:00Z"}
    )
    account.clock.advance(hours=75)
    found, cursor = account.sync(cursor=cursor)
    assert state.counts().get("GET /v3/deals/stream", 0) >= 2, "410, then the feed again"
    assert {str(d["id"]) for d in deals} <= set(found), "every deal, the deleted one included"
    assert json.loads(cursor or "")["listings"] == {}
    pulled = account.adapter().pull([str(deals[1]["id"]), str(deals[0]["id"])])
    assert pulled.deleted == [str(deals[1]["id"])]
    assert pulled.bundles[0].deal.name == "Renamed while away"
    again, _ = account.sync(cursor=cursor)
    assert again == [], "the listing's position was taken before it began and still serves"


def test_our_own_write_back_is_no_change_but_a_rep_edit_is(account: Account) -> None:
    _, cursor = account.sync()
    deal_id = str(account.state.records("deals")[0]["id"])
    adapter = account.adapter()
    adapter.write_back({deal_id: {"alerts": ["no_activity"], "alert_count": 1,
                                  "health_score": 40, "summary": "No activity"}})  # fmt: skip
    found, cursor = account.sync(cursor=cursor)
    assert found == [], "the echo of our write requests no refresh"
    account.state.update("deals", int(deal_id), {"name": "Bigger deal", "custom_fields": {
        "Deal Radar alert count": "0"}})  # fmt: skip
    found, _ = account.sync(cursor=cursor)
    assert found == [deal_id], "a rep's change with ours is still a change"


def test_a_stage_change_the_feed_saw_dates_the_stage(account: Account) -> None:
    _, cursor = account.sync()
    state = account.state
    deal = next(d for d in state.records("deals") if state.get("stages", d["stage_id"])[
        "category"] not in ("won", "lost"))  # fmt: skip
    stages = [s for s in state.records("stages") if s["pipeline_id"] == state.get(
        "stages", deal["stage_id"])["pipeline_id"] and s["id"] != deal["stage_id"]]  # fmt: skip
    account.clock.advance(days=1)
    # A client importing history writes last_stage_change_at in the past with the move.
    state.update("deals", deal["id"], {"stage_id": stages[0]["id"],
                                       "last_stage_change_at": "2026-10-01T00:00:00Z"})
    moved_at = account.clock()
    account.clock.advance(minutes=1)
    # and the rep edits the deal again before the next poll: the move is in the page still.
    state.update("deals", deal["id"], {"value": 4321})
    found, _ = account.sync(cursor=cursor)
    assert found == [str(deal["id"])]
    (bundle,) = account.adapter().pull([str(deal["id"])]).bundles
    assert bundle.deal.stage == str(stages[0]["id"])
    assert bundle.deal.stage_entered_at == moved_at, (
        "the feed saw the move today: a stage is not entered before the change that moved it"
    )


def test_position_ages_say_how_old_each_stream_is(account: Account) -> None:
    _, cursor = account.sync()
    account.clock.advance(hours=50)
    ages = position_ages(cursor, account.clock())
    assert all(a == timedelta(hours=50).total_seconds() for a in ages.values())
    assert position_ages("12345", account.clock()) == {}, "not a feed cursor"


def test_a_record_deleted_during_a_listing_moves_no_other_out_of_sight(make_account) -> None:
    """Sell lists by page number: a call deleted from a page already read moves the next page's
    first call onto that page. The listing must still see it, or its deal would lack it until
    someone edits the call."""
    account = make_account(deals=80)
    calls = sorted(account.state.records("calls"), key=lambda c: c["id"])
    assert len(calls) > 100
    adapter, cursor = account.adapter(), None
    while json.loads(cursor or "{}").get("listings", {}).get("calls", {}).get("page") != 2:
        _, cursor = account.sync(adapter, cursor=cursor, pages=1)
    account.state.delete("calls", calls[4]["id"])  # on the page just read
    account.sync(adapter, cursor=cursor)

    moved = calls[100]  # first on the second page until the deletion
    (deal_id, *_) = [str(d) for d in moved["associated_deal_ids"]]
    (bundle,) = account.adapter().pull([deal_id]).bundles
    assert str(moved["id"]) in {a.id for a in bundle.activities}
