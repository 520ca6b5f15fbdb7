"""Tasks and notes on Sell deals: linked, owned, due; once per key; completed only if open; and
left out of the deal's activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import OwnerInactive
from tests.adapters.sell.conftest import Account

DUE = datetime(2026, 12, 3, 9, tzinfo=UTC)


def _tasks(account: Account, deal_id: str) -> list[dict]:
    return account.state.select("tasks", where={"resource_type": "deal",
                                                "resource_id": int(deal_id)})  # fmt: skip


def test_a_task_is_linked_owned_due_and_made_once_per_key(account: Account) -> None:
    deal = account.state.records("deals")[0]
    deal_id, owner = str(deal["id"]), str(deal["owner_id"])
    before = len(_tasks(account, deal_id))
    adapter = account.adapter()
    first = adapter.create_task(deal_id, owner_id=owner, subject="Call Ann", body="No activity",
                                due=DUE, key="alert.started:1")  # fmt: skip
    again = account.adapter().create_task(deal_id, owner_id=owner, subject="Call Ann",
                                          body="No activity", due=DUE, key="alert.started:1")
    assert first == again and len(_tasks(account, deal_id)) == before + 1
    task = account.state.get("tasks", int(first))
    assert (task["owner_id"], task["due_date"], task["completed"]) == (
        int(owner), "2026-12-03T09:00:00Z", False)
    assert task["content"].startswith("Call Ann\n\nNo activity")
    other = adapter.create_task(deal_id, owner_id=None, subject="x", body="y", due=DUE, key="k2")
    assert other != first


def test_an_owner_that_is_no_sell_id_is_refused_as_no_user(account: Account) -> None:
    """`tasks.fallback_owner` set to a name: the job gives the task to the next candidate."""
    deal_id = str(account.state.records("deals")[0]["id"])
    with pytest.raises(OwnerInactive) as refused:
        account.adapter().create_task(deal_id, owner_id="claire.manager", subject="x", body="y",
                                      due=DUE, key="k3")  # fmt: skip
    assert refused.value.owner_id == "claire.manager"


def test_complete_task_only_if_open_and_deleted_is_fine(account: Account) -> None:
    deal_id = str(account.state.records("deals")[0]["id"])
    adapter = account.adapter()
    task = adapter.create_task(deal_id, owner_id=None, subject="s", body="b", due=DUE, key="k")
    adapter.complete_task(task)
    assert account.state.get("tasks", int(task))["completed"] is True
    account.state.reset_counts()
    adapter.complete_task(task)
    assert "PUT /v2/{resource}/{record_id}" not in account.state.counts(), "already done"
    account.state.delete("tasks", int(task))
    adapter.complete_task(task)


def test_a_note_once_per_key_and_our_records_are_no_activity(account: Account) -> None:
    deal_id = str(account.state.records("deals")[0]["id"])
    adapter = account.adapter()
    note = adapter.create_note(deal_id, body="Alert: no activity", at=DUE, key="n1")
    assert adapter.create_note(deal_id, body="Alert: no activity", at=DUE, key="n1") == note
    task = adapter.create_task(deal_id, owner_id=None, subject="s", body="b",
                               due=DUE + timedelta(days=30), key="t1")  # fmt: skip
    account.sync()
    (bundle,) = account.adapter().pull([deal_id]).bundles
    assert {note, task}.isdisjoint(a.id for a in bundle.activities)
    with pytest.raises(ValueError, match="aware"):
        adapter.create_note(deal_id, body="b", at=datetime(2026, 12, 1), key="n2")


def test_a_task_handed_to_another_owner_only_while_open(account: Account) -> None:
    deal = account.state.records("deals")[0]
    deal_id, owner = str(deal["id"]), str(deal["owner_id"])
    other = next(str(u["id"]) for u in account.state.records("users") if str(u["id"]) != owner)
    adapter = account.adapter()
    task = adapter.create_task(deal_id, owner_id=owner, subject="s", body="b", due=DUE, key="k")
    done = adapter.create_task(deal_id, owner_id=owner, subject="s", body="b", due=DUE, key="d")
    adapter.complete_task(done)

    assert adapter.reassign_task(task, other) is True
    assert account.state.get("tasks", int(task))["owner_id"] == int(other)
    assert adapter.reassign_task(done, other) is False
    assert account.state.get("tasks", int(done))["owner_id"] == int(owner)
    with pytest.raises(OwnerInactive):
        adapter.reassign_task(task, "claire.manager")
    account.state.delete("tasks", int(task))
    assert adapter.reassign_task(task, other) is False
