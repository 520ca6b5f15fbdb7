"""Loading and dumping the canonical bundle: round trips, and errors naming record and field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.model import BundleError, dump_bundle, load_bundle
from tests.builders import activity, bundle, contact

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "bundles").glob("*.json"))


def _valid() -> dict:
    return bundle(
        {"close_date": "2026-12-01", "amount": 1250.5},
        [contact("c1", "CFO", ("Economic Buyer",), primary=True), contact("c2")],
        [
            activity("email", "2026-11-20T23:30:00Z", contacts=("c1",), cc=("c2",)),
            activity(
                "meeting", "2026-12-02T10:00:00+01:00", status="scheduled", contacts=("c1", "c2")
            ),
        ],
    )


def test_loads_every_field() -> None:
    b = load_bundle(_valid())
    assert b.deal.amount == 1250.5
    assert b.deal.close_date == date(2026, 12, 1)
    assert b.deal.status == "open"
    assert b.contacts[0].roles == ("Economic Buyer",)
    assert b.contacts[0].primary is True
    a = b.activities[0]
    assert a.at == datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    assert a.contacts == ("c1",) and a.cc == ("c2",)
    assert a.is_interaction
    assert not b.activities[1].is_interaction, "a scheduled meeting is not an interaction yet"
    assert b.activities[1].at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path: Path) -> None:
    original = json.loads(path.read_text())
    loaded = load_bundle(original)
    again = load_bundle(json.loads(json.dumps(dump_bundle(loaded))))
    assert again == loaded
    assert dump_bundle(again)["version"] == 1


def test_version_is_optional_but_checked() -> None:
    doc = _valid()
    doc.pop("version", None)
    load_bundle(doc)
    doc["version"] = 2
    with pytest.raises(BundleError, match="'version' is 2"):
        load_bundle(doc)


def test_dump_keeps_offsets_and_writes_utc_as_z() -> None:
    dumped = dump_bundle(load_bundle(_valid()))
    assert dumped["activities"][0]["at"] == "2026-11-20T23:30:00Z"
    assert dumped["activities"][1]["at"] == "2026-12-02T10:00:00+01:00"
    assert dumped["deal"]["close_date"] == "2026-12-01"


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(_valid())
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["deal"].pop("id"), "deal: field 'id' is missing"),
        (lambda d: d["contacts"][1].pop("id"), r"contacts\[1\]: field 'id' is missing"),
        (lambda d: d["activities"][0].pop("id"), r"activities\[0\]: field 'id' is missing"),
        (
            lambda d: d["activities"][1].update(kind="sms"),
            r"activities\[1\] \(id 'a\d+'\): field 'kind' is 'sms', expected one of call, email",
        ),
        (
            lambda d: d["activities"][0].update(at="last tuesday"),
            r"activities\[0\] \(id 'a\d+'\): field 'at' is not an ISO 8601 timestamp",
        ),
        (
            lambda d: d["activities"][0].update(at="2026-11-20T10:00:00"),
            r"field 'at' needs a UTC offset or Z",
        ),
        (
            lambda d: d["deal"].update(created_at="2026-13-01T00:00:00Z"),
            r"deal \(id 'd1'\): field 'created_at' is not an ISO 8601 timestamp",
        ),
        (
            lambda d: d["deal"].update(close_date="01/12/2026"),
            r"deal \(id 'd1'\): field 'close_date' is not a YYYY-MM-DD date",
        ),
        (
            lambda d: d["activities"][0].update(contacts=["c9"]),
            r"activities\[0\] \(id 'a\d+'\): field 'contacts' names contact 'c9', which is not",
        ),
        (
            lambda d: d["activities"][0].update(cc=["ghost"]),
            r"field 'cc' names contact 'ghost'",
        ),
        (
            lambda d: d["deal"].update(status="pending"),
            r"deal \(id 'd1'\): field 'status' is 'pending', expected one of lost, open, won",
        ),
        (lambda d: d["deal"].update(amount="1000"), r"field 'amount' must be a number or null"),
        (lambda d: d["activities"][0].pop("status"), r"field 'status' is missing"),
        (lambda d: d["activities"][0].update(direction="sideways"), r"field 'direction'"),
        (lambda d: d["contacts"].append({"id": "c1"}), r"contacts\[2\] \(id 'c1'\): .*repeats"),
        (lambda d: d.pop("deal"), "bundle: field 'deal' is missing"),
        (lambda d: d.update(contacts={"c1": {}}), "bundle: field 'contacts' must be a list"),
        (lambda d: d["contacts"][0].update(roles="Champion"), r"field 'roles' must be a list"),
        (
            lambda d: d["activities"][0].update(contacts=[{"id": "c1"}]),
            r"activities\[0\] \(id 'a\d+'\): field 'contacts' must be a list of ids \(strings\), "
            r"got \{'id': 'c1'\}",
        ),
        (lambda d: d["activities"][0].update(cc=[["c1"]]), r"field 'cc' must be a list of ids"),
        (lambda d: d["activities"][0].update(deals=[True]), r"field 'deals' must be a list of ids"),
    ],
)
def test_bad_input_names_the_record_and_field(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BundleError, match=message):
        load_bundle(_broken(change))


def test_integer_ids_are_accepted_as_strings() -> None:
    doc = _valid()
    doc["deal"]["id"] = 12345
    assert load_bundle(doc).deal.id == "12345"


def test_activity_timestamp_is_kept_as_epoch_for_the_engine() -> None:
    b = load_bundle(_valid())
    paris = timezone(timedelta(hours=1))
    assert b.activities[1].ts == datetime(2026, 12, 2, 10, tzinfo=paris).timestamp()
