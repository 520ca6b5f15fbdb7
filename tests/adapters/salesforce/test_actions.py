"""Tasks and notes in the emulated org over real HTTPS: one per outbox key however often the
action runs (a retry after a lost answer included), tasks completed only while open, notes as
ContentNote linked to the opportunity."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.errors import NotFound, OwnerInactive, Transient
from adapters.salesforce.adapter import SalesforceAdapter
from adapters.salesforce.client import SalesforceClient
from sandbox.salesforce import SalesforceState


def _deal(org: SalesforceState) -> str:
    return org.insert(
        "Opportunity", {"Name": "Acme", "StageName": "Prospecting", "CloseDate": "2030-01-01"}
    )


def _tasks(org: SalesforceState, opp: str) -> list[dict]:
    with org.lock:
        return [dict(t) for t in org.live("Task") if t["WhatId"] == opp]


def test_a_task_once_per_key(org: SalesforceState, adapter: SalesforceAdapter) -> None:
    opp = _deal(org)
    due = datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo("Europe/Paris"))
    args = {"owner_id": org.api_user_id, "subject": "Re-engage Acme",
            "body": "No activity for 14 days", "due": due, "key": "alert.started:41"}  # fmt: skip
    first = adapter.create_task(opp, **args)
    again = adapter.create_task(opp, **args)
    other = adapter.create_task(opp, **{**args, "key": "alert.started:42"})
    assert first == again != other
    (task, _) = sorted(_tasks(org, opp), key=lambda t: t["Id"] != first)
    assert task["Id"] == first
    assert (task["Subject"], task["Status"], task["OwnerId"]) == (
        "Re-engage Acme", "Not Started", org.api_user_id,
    )  # fmt: skip
    assert task["ActivityDate"].isoformat() == "2026-12-01", "the due day where it is due"
    assert task["Description"].startswith("No activity for 14 days\n\nDeal Radar ref: dr")


def test_a_lost_answer_is_looked_up_before_any_second_create(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org)
    real = client.call
    lost = []

    def answer_lost(what, fn, **kwargs):  # type: ignore[no-untyped-def]
        result = real(what, fn, **kwargs)
        if what == "create Task" and not lost:
            lost.append(result)
            raise Transient("the connection dropped after Salesforce created the task")
        return result

    client.call = answer_lost  # type: ignore[method-assign]
    created = adapter.create_task(
        opp, owner_id=None, subject="S", body="B", due=datetime.now(UTC), key="k-lost"
    )
    assert lost and created == lost[0]["id"]
    assert len(_tasks(org, opp)) == 1


def test_a_task_for_an_owner_who_left_is_refused_naming_that_owner(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org)
    rep = org.insert("User", {"Username": "olga@vendor.example", "LastName": "Rep",
                              "Email": "olga@vendor.example"})  # fmt: skip
    other = org.insert("User", {"Username": "cal@vendor.example", "LastName": "Rep",
                                "Email": "cal@vendor.example"})  # fmt: skip
    client.call("deactivate", lambda sf: sf.User.update(rep, {"IsActive": False}))
    args = {"subject": "Re-engage Acme", "body": "No activity for 14 days",
            "due": datetime.now(UTC), "key": "alert.started:7"}  # fmt: skip
    with pytest.raises(OwnerInactive) as refused:
        adapter.create_task(opp, owner_id=rep, **args)
    assert refused.value.owner_id == rep
    assert "INACTIVE_OWNER_OR_USER" in str(refused.value)
    assert client.calls["create Task"] == 1, "a refusal is not sent again"
    assert _tasks(org, opp) == []
    # The same task (same key) without an owner: Salesforce gives it to the API user.
    unassigned = adapter.create_task(opp, owner_id=None, **args)
    assigned = adapter.create_task(opp, owner_id=other, **{**args, "key": "alert.started:8"})
    owners = {t["Id"]: t["OwnerId"] for t in _tasks(org, opp)}
    assert owners == {unassigned: org.api_user_id, assigned: other}


def test_complete_only_an_open_task(org: SalesforceState, adapter: SalesforceAdapter) -> None:
    opp = _deal(org)
    task = adapter.create_task(
        opp, owner_id=None, subject="S", body="B", due=datetime.now(UTC), key="k1"
    )
    adapter.complete_task(task)
    record = org.records["Task"][task]
    assert (record["Status"], record["IsClosed"]) == ("Completed", True)
    stamp = record["SystemModstamp"]
    org.update("Task", task, {"Status": "Completed"}, at=stamp + timedelta(hours=1))
    stamp = org.records["Task"][task]["SystemModstamp"]
    org.reset_counts()
    adapter.complete_task(task)
    assert org.records["Task"][task]["SystemModstamp"] == stamp, "a closed task is left alone"
    assert org.counts() == {"GET sobject/{id}": 1}
    org.delete("Task", task)
    adapter.complete_task(task)  # deleted: nothing to do, no error


def test_a_note_is_a_content_note_on_the_opportunity_once_per_key(
    org: SalesforceState, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org)
    body = "Health fell to poor (37)\nNo meeting in the last 30 days & no reply"
    at = datetime.now(UTC)
    note = adapter.create_note(opp, body=body, at=at, key="health:7")
    assert adapter.create_note(opp, body=body, at=at, key="health:7") == note
    with org.lock:
        record = dict(org.records["ContentNote"][note])
        links = [dict(r) for r in org.live("ContentDocumentLink") if r["ContentDocumentId"] == note]
        notes = list(org.live("ContentNote"))
    assert len(notes) == 1
    assert [link["LinkedEntityId"] for link in links] == [opp]
    assert record["Title"].startswith("Deal Radar: Health fell to poor (37) (Deal Radar ref: dr")
    assert record["FileType"] == "SNOTE"
    content = base64.b64decode(record["Content"]).decode()
    assert "<p>No meeting in the last 30 days &amp; no reply</p>" in content
    assert "No meeting in the last 30 days & no reply" in record["TextPreview"]
    # The link removed by an admin: the next run with the key links the same note again.
    org.delete("ContentDocumentLink", links[0]["Id"])
    assert adapter.create_note(opp, body=body, at=at, key="health:7") == note
    with org.lock:
        assert [r["LinkedEntityId"] for r in org.live("ContentDocumentLink")] == [opp]


def test_no_note_on_a_deleted_opportunity(org: SalesforceState, adapter: SalesforceAdapter) -> None:
    opp = _deal(org)
    org.delete("Opportunity", opp)
    with pytest.raises(NotFound):
        adapter.create_note(opp, body="x", at=datetime.now(UTC), key="k")
    with org.lock:
        assert list(org.live("ContentNote")) == [], "no note left behind unlinked"


def test_no_task_on_a_deleted_opportunity(
    org: SalesforceState, adapter: SalesforceAdapter
) -> None:
    """Deleted before its task was made: the effect is skipped as the README says, not failed."""
    opp = _deal(org)
    org.delete("Opportunity", opp)
    with pytest.raises(NotFound):
        adapter.create_task(opp, owner_id=None, subject="S", body="B",
                            due=datetime.now(UTC), key="k")  # fmt: skip


def test_a_grade_note_titled_deal_radar_is_not_prefixed_twice(
    org: SalesforceState, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org)
    body = "Deal Radar: relationship health went from fair to good.\nRecency 30 -> 40"
    note = adapter.create_note(opp, body=body, at=datetime.now(UTC), key="health:8")
    with org.lock:
        title = org.records["ContentNote"][note]["Title"]
    assert title.startswith("Deal Radar: relationship health went from fair to good. (Deal")


def test_bad_arguments_before_any_call(org: SalesforceState, adapter: SalesforceAdapter) -> None:
    with pytest.raises(ValueError, match="aware"):
        adapter.create_task(_deal(org), owner_id=None, subject="S", body="B",
                            due=datetime(2026, 1, 1), key="k")  # fmt: skip
    with pytest.raises(ValueError, match="outbox key"):
        adapter.create_note(_deal(org), body="B", at=datetime.now(UTC), key="")


def test_a_task_handed_to_another_owner_only_while_open_and_never_to_one_who_left(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter
) -> None:
    opp = _deal(org)
    ann, olga = (
        org.insert("User", {"Username": n, "LastName": "Rep", "Email": n})
        for n in ("ann@vendor.example", "olga@vendor.example")
    )
    client.call("deactivate", lambda sf: sf.User.update(olga, {"IsActive": False}))
    args = {"subject": "S", "body": "B", "due": datetime.now(UTC)}
    task = adapter.create_task(opp, owner_id=None, key="k1", **args)
    done = adapter.create_task(opp, owner_id=None, key="k2", **args)
    adapter.complete_task(done)

    assert adapter.reassign_task(task, ann) is True
    assert org.records["Task"][task]["OwnerId"] == ann
    with pytest.raises(OwnerInactive) as refused:
        adapter.reassign_task(task, olga)
    assert refused.value.owner_id == olga
    assert adapter.reassign_task(done, ann) is False
    assert org.records["Task"][done]["OwnerId"] == org.api_user_id
    org.delete("Task", task)
    assert adapter.reassign_task(task, ann) is False
