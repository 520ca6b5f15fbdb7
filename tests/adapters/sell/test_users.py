"""Deactivated Sell users through the adapter, over real HTTP to the emulator: a rep who left
still owns their deals, and the deals' bundles say the owner is inactive."""

from __future__ import annotations

import requests

from engine.model import Bundle
from tests.adapters.sell.conftest import Account


def _owner(bundle: Bundle) -> tuple[str, bool]:
    (owner,) = [u for u in bundle.users if u.id == bundle.deal.owner]
    return owner.id, owner.active


def _two_reps_deals(account: Account) -> tuple[dict, dict]:
    """Two deals owned by two different reps (not the account owner)."""
    by_owner: dict[int, dict] = {}
    for deal in account.state.records("deals"):
        if deal["owner_id"] != account.state.admin_id:
            by_owner.setdefault(deal["owner_id"], deal)
    first, second, *_ = by_owner.values()
    return first, second


def test_a_deal_whose_owner_left_pulls_with_that_owner_inactive(account: Account) -> None:
    leaving, staying = _two_reps_deals(account)
    ids = [str(leaving["id"]), str(staying["id"])]
    before = {b.deal.id: _owner(b) for b in account.adapter().pull(ids).bundles}
    assert before == {
        str(leaving["id"]): (str(leaving["owner_id"]), True),
        str(staying["id"]): (str(staying["owner_id"]), True),
    }

    # An admin deactivates the rep (the sandbox route `make run` users have too).
    answer = requests.post(
        f"{account.server.url}/_sandbox/users/{leaving['owner_id']}/deactivate", timeout=10
    )
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "inactive"

    after = {b.deal.id: _owner(b) for b in account.adapter().pull(ids).bundles}
    assert after == {
        str(leaving["id"]): (str(leaving["owner_id"]), False),
        str(staying["id"]): (str(staying["owner_id"]), True),
    }


def test_the_adapter_reads_every_user_inactive_ones_included(account: Account) -> None:
    leaving, _ = _two_reps_deals(account)
    account.state.deactivate_user(leaving["owner_id"])
    users = account.adapter().users()
    assert {u.id for u in users.values()} == {str(u["id"]) for u in account.state.records("users")}
    assert [u.id for u in users.values() if not u.active] == [str(leaving["owner_id"])]
    leaving_id = str(leaving["owner_id"])
    found = account.adapter().users_by_id([leaving_id, str(account.state.admin_id), "404"])
    assert {i: u.active for i, u in found.items()} == {
        leaving_id: False,
        str(account.state.admin_id): True,
    }, "the daily read of who left, unknown left out"
