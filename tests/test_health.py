"""Relationship health: the worked example of the README, grades, trend, and its properties."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate import evaluate
from engine.model import DIRECTIONS, Activity, Bundle, Deal
from engine.settings import FREQUENCY_DAYS, load_settings
from tests.builders import NOW, activity, ago, ahead, bundle, run


def test_readme_worked_example() -> None:
    # Weekly expected contact; last email 12 days ago, a call 20 days ago.
    doc = bundle(None, [], [activity("email", ago(12)), activity("call", ago(20))])
    h = run(doc).health
    # recency: 50 * 0.5 ** ((12 - 7) / 7) = 30.5
    # frequency: 50 * (0.5 ** (12 / 7) + 0.5 ** (20 / 7)) / 1.5 = 50 * 0.4428 / 1.5 = 14.8
    assert h.components["recency"]["points"] == 30.5
    assert h.components["frequency"]["points"] == 14.8
    assert h.components["frequency"]["weighted_activities"] == 0.44
    assert h.components["recency"]["days_since_last"] == 12.0
    assert (h.score, h.grade) == (45, "fair")
    # ... and one more call today: full recency, 14.8 + 33.3 frequency points.
    doc = bundle(None, [], [activity("email", ago(12)), activity("call", ago(20)),
                            activity("call", ago(0))])  # fmt: skip
    h = run(doc).health
    assert (h.components["recency"]["points"], h.components["frequency"]["points"]) == (50, 48.1)
    assert (h.score, h.grade) == (98, "good")


def test_steady_contact_at_the_expected_pace_is_good() -> None:
    weekly = [activity("email", ago(7 * k + 6)) for k in range(8)]
    assert run(bundle(None, [], weekly)).health.grade == "good"
    fortnightly = [activity("email", ago(14 * k + 13)) for k in range(4)]
    assert run(bundle(None, [], fortnightly)).health.grade == "fair"
    monthly = [activity("email", ago(30 * k + 29)) for k in range(3)]
    assert run(bundle(None, [], monthly)).health.grade == "poor"
    assert (
        run(
            bundle(None, [], fortnightly), {"health": {"expected_frequency": "every_two_weeks"}}
        ).health.grade
        == "good"
    )


def test_no_activity_at_all_is_zero_and_poor() -> None:
    h = run(
        bundle(
            None, [], [activity("note", ago(1)), activity("meeting", ago(-1), status="scheduled")]
        )
    ).health
    assert (h.score, h.grade) == (0, "poor")
    assert h.components["recency"]["days_since_last"] is None


def test_a_meeting_whose_start_passed_counts_and_work_dated_after_now_does_not_yet() -> None:
    """As for alerts: nobody marks meetings held, so a meeting still scheduled once its start
    has passed was held; a call or meeting dated after now (clock skew, `--now` in the past)
    has not happened yet, whatever its status."""
    held = run(bundle(None, [], [activity("meeting", ago(2), status="scheduled")])).health
    assert held == run(bundle(None, [], [activity("meeting", ago(2))])).health
    assert held.score > 0
    email = activity("email", ago(12))
    planned = [activity("call", ahead(1)), activity("meeting", ahead(2), status="scheduled")]
    assert run(bundle(None, [], [email, *planned])).health == run(bundle(None, [], [email])).health


def test_weights_change_the_score() -> None:
    doc = bundle(None, [], [activity("meeting", ago(9)), activity("email", ago(30))])
    default = run(doc).health.score
    heavy = run(doc, {"health": {"weights": {"meeting": 9}}}).health.score
    light = run(doc, {"health": {"weights": {"meeting": 3}}}).health.score
    assert light < default < heavy


def test_grades_follow_the_cut_points() -> None:
    doc = bundle(None, [], [activity("email", ago(12)), activity("call", ago(20))])  # 45
    assert run(doc).health.grade == "fair"
    assert run(doc, {"health": {"fair_from": 46}}).health.grade == "poor"
    assert run(doc, {"health": {"good_from": 45}}).health.grade == "good"


def test_trend_against_the_previous_score() -> None:
    doc = bundle(None, [], [activity("email", ago(12)), activity("call", ago(20))])  # 45
    assert run(doc).health.trend is None
    assert run(doc, previous_score=40).health.trend == "improving"
    assert run(doc, previous_score=41).health.trend == "steady"
    assert run(doc, previous_score=49).health.trend == "steady"
    assert run(doc, previous_score=50).health.trend == "declining"


def test_components_explain_the_score() -> None:
    doc = bundle(
        None, [], [activity("email", ago(1)), activity("task", ago(2)), activity("note", ago(1))]
    )
    c = run(doc).health.components
    assert c["activities"] == {"email": 1, "meeting": 0, "call": 0, "task": 1}
    assert c["recency"]["expected_every_days"] == 7.0
    assert c["weights"]["email"] == 6


# --- properties ------------------------------------------------------------------------------

KINDS = ("email", "call", "meeting", "task", "note")
_deal = Deal(
    id="d",
    name="d",
    pipeline="p",
    stage="s",
    stage_entered_at=NOW,
    created_at=NOW - timedelta(days=400),
)
# Days before NOW: negative is after it (clock skew, `--now` in the past), and a share fall on
# NOW's own day, where activities crowd.
ages = st.one_of(
    st.floats(min_value=-30, max_value=400, allow_nan=False),
    st.floats(min_value=-1, max_value=1, allow_nan=False),
)
directions = st.sampled_from(sorted(DIRECTIONS))
acts = st.lists(
    st.tuples(st.sampled_from(KINDS), ages, st.sampled_from(("done", "scheduled")), directions),
    max_size=30,
)
health_settings = st.fixed_dictionaries(
    {
        "weights": st.fixed_dictionaries(
            {k: st.integers(3, 9) for k in ("email", "meeting", "call", "task")}
        ),
        "expected_frequency": st.sampled_from(list(FREQUENCY_DAYS)),
    }
)


Item = tuple[str, float, str, str]
"""An activity as (kind, age in days, status, direction)."""


def _bundle(items: list[Item]) -> Bundle:
    return Bundle(
        deal=_deal,
        activities=tuple(
            Activity(id=str(i), kind=k, at=NOW - timedelta(days=age), direction=d, status=s)
            for i, (k, age, s, d) in enumerate(items)
        ),
    )


def _score(items: list[Item], health: dict) -> int:
    return evaluate(_bundle(items), load_settings({"health": health}), NOW).health.score


@settings(max_examples=300, deadline=None)
@given(acts, health_settings)
def test_score_is_within_0_and_100(items: list, health: dict) -> None:
    assert 0 <= _score(items, health) <= 100


@settings(max_examples=300, deadline=None)
@given(acts, health_settings, st.sampled_from(KINDS), ages, directions)
def test_more_activity_never_lowers_the_score(
    items: list, health: dict, kind: str, age: float, direction: str
) -> None:
    assert _score([*items, (kind, age, "done", direction)], health) >= _score(items, health)


@settings(max_examples=300, deadline=None)
@given(acts.filter(bool), health_settings, st.data())
def test_more_recent_activity_never_lowers_the_score(
    items: list, health: dict, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(items) - 1))
    kind, age, status, direction = items[i]
    # Towards NOW, never past it: what is dated after now has not happened yet.
    newer = data.draw(st.floats(min_value=0, max_value=age)) if age > 0 else age
    moved = [*items[:i], (kind, newer, status, direction), *items[i + 1 :]]
    assert _score(moved, health) >= _score(items, health)


@settings(max_examples=300, deadline=None)
@given(acts, health_settings, st.sampled_from(("email", "meeting", "call", "task")), st.data())
def test_better_weighted_activity_never_lowers_the_score(
    items: list, health: dict, kind: str, data: st.DataObject
) -> None:
    heavier = data.draw(st.integers(health["weights"][kind], 9))
    raised = {**health, "weights": {**health["weights"], kind: heavier}}
    assert _score(items, raised) >= _score(items, health)
