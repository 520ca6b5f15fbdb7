"""Tests for the seeded deal-bundle generator used by benchmarks and demos."""

import json
import random
import statistics
import unicodedata
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sandbox.bundles import CONTACT_TITLES, PIPELINES, REPS, ROLES, generate, make_bundle

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
REP_IDS = {rep["id"] for rep in REPS}


@pytest.fixture(scope="module")
def bundles() -> list[dict]:
    # Shared by most tests: generating is the expensive part, checking is cheap.
    return list(generate(2_000, seed=11, now=NOW))


def _interactions(bundle: dict) -> list[tuple[datetime, dict]]:
    return [
        (datetime.fromisoformat(a["at"]), a)
        for a in bundle["activities"]
        if a["status"] == "done" and a["direction"] != "internal" and a["contacts"]
    ]


def _normalise_role(role: str) -> str:
    plain = unicodedata.normalize("NFKD", role).encode("ascii", "ignore").decode()
    return " ".join(plain.replace("_", " ").replace("-", " ").split()).casefold()


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_output() -> None:
    first = json.dumps(list(generate(200, seed=3, now=NOW)))
    random.seed(999)  # the global generator must not leak into the output
    second = json.dumps(list(generate(200, seed=3, now=NOW)))
    assert first == second


def test_different_seed_gives_different_output() -> None:
    assert list(generate(50, seed=3, now=NOW)) != list(generate(50, seed=4, now=NOW))


def test_naive_now_is_read_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    expected = list(generate(20, seed=5, now=NOW))
    assert list(generate(20, seed=5, now=naive)) == expected
    assert list(generate(20, seed=5, now=paris)) == expected


def test_make_bundle_depends_only_on_rng_state() -> None:
    a = make_bundle(random.Random(1), NOW, 42)
    b = make_bundle(random.Random(1), NOW, 42)
    assert a == b
    assert a["deal"]["id"] == "d42"


def test_generate_is_lazy_and_validates_count() -> None:
    it = generate(10**9, seed=1, now=NOW)
    assert next(it)["deal"]["id"] == "d0"
    assert list(generate(0, now=NOW)) == []
    with pytest.raises(ValueError):
        list(generate(-1, now=NOW))


# --- shape and referential integrity -----------------------------------------------------------


def test_json_round_trip(bundles: list[dict]) -> None:
    for bundle in bundles[:300]:
        assert json.loads(json.dumps(bundle)) == bundle


def test_shape(bundles: list[dict]) -> None:
    for bundle in bundles:
        assert bundle["version"] == 1
        assert set(bundle) == {"version", "deal", "contacts", "activities", "users"}
        assert set(bundle["deal"]) == {
            "id",
            "name",
            "pipeline",
            "stage",
            "stage_entered_at",
            "amount",
            "currency",
            "close_date",
            "created_at",
            "owner",
            "status",
        }
        for c in bundle["contacts"]:
            assert set(c) == {"id", "name", "email", "title", "roles", "primary"}
            assert isinstance(c["roles"], list)
        for a in bundle["activities"]:
            assert set(a) == {"id", "kind", "at", "direction", "status", "contacts", "cc", "user"}
        for u in bundle["users"]:
            assert set(u) == {"id", "name", "email"}


def test_referential_integrity(bundles: list[dict]) -> None:
    deal_ids = [b["deal"]["id"] for b in bundles]
    assert len(set(deal_ids)) == len(deal_ids)
    for bundle in bundles:
        contact_ids = {c["id"] for c in bundle["contacts"]}
        user_ids = {u["id"] for u in bundle["users"]}
        all_ids = (
            [bundle["deal"]["id"]]
            + [c["id"] for c in bundle["contacts"]]
            + [a["id"] for a in bundle["activities"]]
            + [u["id"] for u in bundle["users"]]
        )
        assert all(isinstance(i, str) for i in all_ids)
        assert len(set(all_ids)) == len(all_ids)
        assert user_ids <= REP_IDS
        assert bundle["deal"]["owner"] in user_ids
        used = {bundle["deal"]["owner"]} | {a["user"] for a in bundle["activities"]}
        assert used == user_ids  # every listed rep appears, every appearing rep is listed
        for a in bundle["activities"]:
            assert set(a["contacts"]) <= contact_ids
            assert set(a["cc"]) <= contact_ids
            assert not set(a["contacts"]) & set(a["cc"])
            assert len(set(a["contacts"])) == len(a["contacts"])
        if bundle["contacts"]:
            assert sum(c["primary"] for c in bundle["contacts"]) == 1
        emails = [c["email"] for c in bundle["contacts"]]
        assert len(set(emails)) == len(emails)
        assert len({e.split("@")[1] for e in emails}) <= 1  # one company domain per deal


def test_status_consistent_with_stage(bundles: list[dict]) -> None:
    for bundle in bundles:
        deal = bundle["deal"]
        stages = PIPELINES[deal["pipeline"]]
        assert deal["stage"] in stages
        expected = {"closedwon": "won", "closedlost": "lost"}.get(deal["stage"], "open")
        assert deal["status"] == expected


# --- timestamps -------------------------------------------------------------------------------


def test_timestamps_parse_with_offsets(bundles: list[dict]) -> None:
    suffixes: Counter[str] = Counter()
    for bundle in bundles:
        deal = bundle["deal"]
        stamps = [deal["created_at"], deal["stage_entered_at"]]
        stamps += [a["at"] for a in bundle["activities"]]
        for s in stamps:
            parsed = datetime.fromisoformat(s)
            assert parsed.utcoffset() is not None, s
            suffixes[s[19:]] += 1
        if deal["close_date"] is not None:
            date.fromisoformat(deal["close_date"])
    assert set(suffixes) == {"Z", "+01:00", "+02:00"}
    assert min(suffixes.values()) > 0.1 * sum(suffixes.values())


def test_timeline_is_consistent(bundles: list[dict]) -> None:
    for bundle in bundles:
        deal = bundle["deal"]
        created = datetime.fromisoformat(deal["created_at"])
        entered = datetime.fromisoformat(deal["stage_entered_at"])
        assert NOW - timedelta(days=1_001) <= created <= NOW - timedelta(days=5)
        assert created <= entered <= NOW
        times = [datetime.fromisoformat(a["at"]) for a in bundle["activities"]]
        assert times == sorted(times)
        for t, a in zip(times, bundle["activities"], strict=True):
            assert t >= created
            if a["status"] == "done":
                assert t <= NOW
            if t > NOW:
                assert a["status"] == "scheduled"
                assert a["kind"] in ("meeting", "task")
        if deal["status"] != "open":
            assert date.fromisoformat(deal["close_date"]) <= NOW.date()
            assert all(t <= entered for t in times)


# --- distributions ----------------------------------------------------------------------------


def _assert_mean_close(values: list[int], expected: float) -> None:
    # Four standard errors: a real bias fails, sampling noise (deterministic anyway) does not.
    mean = statistics.mean(values)
    tolerance = 4 * statistics.pstdev(values) / len(values) ** 0.5
    assert abs(mean - expected) <= max(tolerance, 0.01), (mean, expected, tolerance)
    assert mean == pytest.approx(expected, rel=0.08)


def test_means_close_to_requested(bundles: list[dict]) -> None:
    _assert_mean_close([len(b["activities"]) for b in bundles], 40)
    _assert_mean_close([len(b["contacts"]) for b in bundles], 5)
    assert all(1 <= len(b["contacts"]) <= 10 for b in bundles)
    # Drawn around the mean, not pinned to it.
    assert len({len(b["activities"]) for b in bundles}) > 40
    assert len({len(b["contacts"]) for b in bundles}) == 10


@pytest.mark.parametrize(("activities", "contacts"), [(8, 2), (100, 12), (1, 1)])
def test_other_means(activities: int, contacts: int) -> None:
    sample = list(generate(2_000, seed=2, now=NOW, activities=activities, contacts=contacts))
    _assert_mean_close([len(b["activities"]) for b in sample], activities)
    _assert_mean_close([len(b["contacts"]) for b in sample], contacts)
    assert all(1 <= len(b["contacts"]) <= 2 * contacts for b in sample)


def test_zero_counts() -> None:
    for bundle in generate(100, seed=1, now=NOW, activities=0, contacts=0):
        assert bundle["activities"] == []
        assert bundle["contacts"] == []
        assert bundle["users"] == [next(u for u in REPS if u["id"] == bundle["deal"]["owner"])]
    for bundle in generate(100, seed=1, now=NOW, contacts=0):
        assert all(not a["contacts"] and not a["cc"] for a in bundle["activities"])


def test_every_value_appears(bundles: list[dict]) -> None:
    acts = [a for b in bundles for a in b["activities"]]
    assert {b["deal"]["status"] for b in bundles} == {"open", "won", "lost"}
    assert {b["deal"]["pipeline"] for b in bundles} == set(PIPELINES)
    assert {b["deal"]["stage"] for b in bundles} == {s for ss in PIPELINES.values() for s in ss}
    assert {a["kind"] for a in acts} == {"email", "call", "meeting", "task", "note"}
    assert {a["direction"] for a in acts} == {"inbound", "outbound", "internal"}
    assert {a["status"] for a in acts} == {"done", "scheduled"}
    assert {u["id"] for b in bundles for u in b["users"]} == REP_IDS
    kinds = Counter(a["kind"] for a in acts).most_common()
    assert [k for k, _ in kinds] == ["email", "call", "task", "meeting", "note"]
    statuses = Counter(b["deal"]["status"] for b in bundles)
    assert 0.75 < statuses["open"] / len(bundles) < 0.85


def test_contacts_look_real(bundles: list[dict]) -> None:
    assert len(CONTACT_TITLES) >= 60
    for title in (
        "CEO",
        "PDG",
        "Directrice Générale",
        "VP Sales",
        "Vice-Président Achats",
        "Head of Procurement",
        "Executive Assistant to the CEO",
        "Chef de projet",
    ):
        assert title in CONTACT_TITLES
    contacts = [c for b in bundles for c in b["contacts"]]
    titles = Counter(c["title"] for c in contacts)
    assert 0.03 < titles[""] / len(contacts) < 0.15
    assert len(titles) > 60
    canonical = {_normalise_role(r): r for r in ROLES}
    raw_roles = Counter(r for c in contacts for r in c["roles"])
    assert all(_normalise_role(r) in canonical for r in raw_roles)
    assert set(raw_roles) - set(ROLES)  # some spellings vary...
    assert set(ROLES) <= set(raw_roles)  # ...but every canonical role is there too
    role_counts = Counter(len(c["roles"]) for c in contacts)
    assert role_counts[0] + role_counts[1] > 0.8 * len(contacts)
    names = " ".join(c["name"] for c in contacts)
    assert any(ch in names for ch in "éèï")  # French names keep their accents...
    assert all(c["email"].isascii() for c in contacts)  # ...emails do not


def test_notable_situations_in_realistic_proportions(bundles: list[dict]) -> None:
    open_deals = [b for b in bundles if b["deal"]["status"] == "open"]
    rotting = single = stuck = passed = 0
    for bundle in open_deals:
        interactions = _interactions(bundle)
        last = max((t for t, _ in interactions), default=None)
        rotting += last is None or NOW - last >= timedelta(days=10)
        recent = [a for t, a in interactions if NOW - t < timedelta(days=30)]
        people = {c for a in recent for c in a["contacts"] + a["cc"]}
        single += len(people) == 1
        entered = datetime.fromisoformat(bundle["deal"]["stage_entered_at"])
        stuck += NOW - entered >= timedelta(days=45)
        close = bundle["deal"]["close_date"]
        passed += close is not None and date.fromisoformat(close) < NOW.date()
    n = len(open_deals)
    assert 0.2 < rotting / n < 0.4
    assert 0.12 < single / n < 0.3
    assert 0.05 < stuck / n < 0.25
    assert 0.1 < passed / n < 0.25
    null_amounts = sum(b["deal"]["amount"] is None for b in bundles) / len(bundles)
    assert 0.07 < null_amounts < 0.13
    very_old = sum(
        NOW - datetime.fromisoformat(b["deal"]["created_at"]) > timedelta(days=365) for b in bundles
    )
    assert 0 < very_old < 0.06 * len(bundles)
