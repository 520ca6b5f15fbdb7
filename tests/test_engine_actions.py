"""The tasks and notes Deal Radar leaves in the CRM: settings, wording, due dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.actions import assignees, grade_note, plan_task, team_turn
from engine.settings import ALERT_CODES, SettingsError, load_settings

FRIDAY_EVENING = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # 18:30 in Paris
URL = "https://app.hubspot.com/contacts/62515/record/0-3/1001"


def _plan(document: dict | None = None, code: str = "no_activity", url: str | None = URL):
    settings = load_settings({"timezone": "Europe/Paris", **(document or {})})
    return plan_task(
        settings, code, message="No activity for 12 days (threshold 10)",
        deal_name="Acme renewal", deal_url=url, started_at=FRIDAY_EVENING,
    )  # fmt: skip


def test_defaults_make_tasks_for_most_alerts_and_no_notes() -> None:
    settings = load_settings({})
    enabled = {code for code in ALERT_CODES if settings.task_for(code)["enabled"]}
    assert enabled == set(ALERT_CODES) - {"no_meeting_scheduled", "deal_too_old"}
    assert settings.task_for("no_activity") == {
        "enabled": True, "due_in_business_days": 1, "due_hour": 17,
    }  # fmt: skip
    assert settings.notes == {"grade_changed": False}


def test_default_task_in_plain_words_with_a_link_due_next_business_day() -> None:
    plan = _plan()
    assert plan is not None
    assert plan.subject == "Get back in touch: Acme renewal"
    assert plan.body.splitlines()[0] == "Deal Radar: No activity for 12 days (threshold 10)."
    assert f"Open the deal: {URL}" in plan.body
    paris = ZoneInfo("Europe/Paris")
    assert plan.due == datetime(2026, 11, 30, 17, 0, tzinfo=paris)  # Friday evening -> Monday


def test_the_tenant_holidays_push_the_due_day() -> None:
    # The alert starts on Friday 27 November evening; Monday 30 is the team's day off.
    plan = _plan({"tasks": {"holidays": ["2026-11-30"]}})
    assert plan is not None
    assert plan.due == datetime(2026, 12, 1, 17, 0, tzinfo=ZoneInfo("Europe/Paris"))


def test_holidays_are_dates() -> None:
    days_off = load_settings({"tasks": {"holidays": ["2026-12-25"]}}).holidays
    assert date(2026, 12, 25) in days_off and date(2026, 12, 24) not in days_off
    with pytest.raises(SettingsError) as caught:
        load_settings({"tasks": {"holidays": ["2026-12-25", "25/12/2026"]}})
    [(path, why)] = caught.value.errors.items()
    assert path.startswith("tasks.holidays") and "write it as 2026-12-25" in " ".join(why)


def _due(document: dict, zone: str, started_at: datetime) -> datetime:
    settings = load_settings({"timezone": zone, **document})
    plan = plan_task(
        settings, "no_activity", message="m", deal_name="Acme", deal_url=None,
        started_at=started_at,
    )  # fmt: skip
    assert plan is not None
    return plan.due


def test_a_countrys_public_holidays_push_the_due_day() -> None:
    # Monday 13 July 2026, evening in Paris: Tuesday 14 is Bastille Day.
    monday = datetime(2026, 7, 13, 19, 0, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert _due({}, "Europe/Paris", monday) == datetime(2026, 7, 14, 17, tzinfo=paris)
    french = {"tasks": {"public_holidays": "FR"}}
    assert _due(french, "Europe/Paris", monday) == datetime(2026, 7, 15, 17, tzinfo=paris)
    # Wednesday 25 November 2026 in New York: Thursday 26 is Thanksgiving.
    wednesday = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    american = {"tasks": {"public_holidays": "US"}}
    assert _due(american, "America/New_York", wednesday) == datetime(
        2026, 11, 27, 17, tzinfo=new_york
    )


def test_a_subdivision_has_its_own_holidays_and_listed_days_add_to_them() -> None:
    # Monday 30 March 2026: Tuesday 31 is Cesar Chavez Day in California, not in all the US.
    monday = datetime(2026, 3, 30, 22, 0, tzinfo=UTC)
    la = ZoneInfo("America/Los_Angeles")
    country = {"tasks": {"public_holidays": "US"}}
    state = {"tasks": {"public_holidays": "US-CA"}}
    assert _due(country, "America/Los_Angeles", monday) == datetime(2026, 3, 31, 17, tzinfo=la)
    assert _due(state, "America/Los_Angeles", monday) == datetime(2026, 4, 1, 17, tzinfo=la)
    closed = {"tasks": {"public_holidays": "US-CA", "holidays": ["2026-04-01"]}}
    assert _due(closed, "America/Los_Angeles", monday) == datetime(2026, 4, 2, 17, tzinfo=la)


@pytest.mark.parametrize(
    ("calendar", "says"),
    [
        ("XX", "no public holidays known for country 'XX'"),
        ("fr", "write an ISO 3166 country code such as FR"),
        ("US-ZZ", "US has no subdivision 'ZZ' with its own holidays (some it has: US-AK"),
    ],
)
def test_an_unknown_calendar_is_refused_with_how_to_write_one(calendar: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"tasks": {"public_holidays": calendar}})
    assert says in " ".join(caught.value.errors["tasks.public_holidays"])


def test_no_link_line_without_a_url() -> None:
    plan = _plan(url=None)
    assert plan is not None and "Open the deal" not in plan.body and "http" not in plan.body


def test_french_wording() -> None:
    plan = _plan({"locale": "fr"})
    assert plan is not None
    assert plan.subject == "Reprendre contact : Acme renewal"
    assert f"Ouvrir l'affaire : {URL}" in plan.body


def test_switched_off_per_alert() -> None:
    assert _plan({"tasks": {"alerts": {"no_activity": {"enabled": False}}}}) is None
    assert _plan(code="no_meeting_scheduled") is None
    turned_on = {"tasks": {"alerts": {"deal_too_old": {"enabled": True}}}}
    assert _plan(turned_on, code="deal_too_old") is not None


def test_worded_and_timed_per_alert() -> None:
    document = {
        "tasks": {
            "due_in_business_days": 3,
            "due_hour": 9,
            "alerts": {
                "no_activity": {
                    "subject": "Call {deal_name} today",
                    "body": "{message} -- {deal_url} {{literal}}",
                    "due_in_business_days": 2,
                },
            },
        }
    }
    plan = _plan(document)
    assert plan is not None
    assert plan.subject == "Call Acme renewal today"
    assert plan.body == f"No activity for 12 days (threshold 10) -- {URL} {{literal}}"
    assert plan.due == datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    other = _plan(document, code="amount_missing")
    assert other is not None
    assert other.due == datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("block", "path", "words"),
    [
        ({"subject": "Hi {owner}"}, "tasks.alerts.no_activity.subject", "unknown placeholder"),
        ({"body": "{message.__class__}"}, "tasks.alerts.no_activity.body", "unknown placeholder"),
        ({"body": "{message!r}"}, "tasks.alerts.no_activity.body", "plainly"),
        ({"body": "{message:>{deal_url}}"}, "tasks.alerts.no_activity.body", "plainly"),
        ({"subject": "a { b"}, "tasks.alerts.no_activity.subject", "literal brace"),
        ({"subject": ""}, "tasks.alerts.no_activity.subject", "Length"),
        ({"due_in_business_days": -1}, "tasks.alerts.no_activity.due_in_business_days", ""),
        ({"enabled": "maybe"}, "tasks.alerts.no_activity.enabled", ""),
        ({"color": "red"}, "tasks.alerts.no_activity.color", "unknown setting"),
    ],
)
def test_invalid_task_settings_name_the_field(block: dict, path: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"tasks": {"alerts": {"no_activity": block}}})
    assert list(caught.value.errors) == [path]
    assert words.lower() in " ".join(caught.value.errors[path]).lower()


def test_invalid_task_and_note_settings() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "tasks": {"due_hour": 24, "due_in_business_days": 61, "alerts": {"nope": {}}},
                "notes": {"grade_changed": "sometimes"},
            }
        )
    assert set(caught.value.errors) == {
        "tasks.due_hour", "tasks.due_in_business_days", "tasks.alerts.nope", "notes.grade_changed",
    }  # fmt: skip
    assert "unknown alert 'nope'" in caught.value.errors["tasks.alerts.nope"][0]


HEALTH_BEFORE = {
    "score": 64,
    "grade": "good",
    "components": {
        "recency": {"points": 40.0, "max": 50, "days_since_last": 5.0},
        "frequency": {"points": 24.0, "max": 50},
        "activities": {"email": 3, "call": 2},
    },
}
HEALTH_AFTER = {
    "score": 52,
    "grade": "fair",
    "components": {
        "recency": {"points": 28.0, "max": 50, "days_since_last": 9.5},
        "frequency": {"points": 24.0, "max": 50},
        "activities": {"email": 3, "call": 1},
    },
}


def test_grade_note_names_grades_scores_and_what_moved() -> None:
    note = grade_note("good", "fair", HEALTH_BEFORE, HEALTH_AFTER)
    assert note.splitlines() == [
        "Deal Radar: relationship health went from good to fair (score 64 → 52).",
        "",
        "What moved:",
        "- recency: 40.0 → 28.0 of 50 points (last activity 9.5 days ago)",
        "- calls: 2 → 1",
    ]


def test_grade_note_in_french_and_without_the_previous_health() -> None:
    note = grade_note("fair", "poor", HEALTH_BEFORE, HEALTH_AFTER, "fr")
    assert note.startswith("Deal Radar : la santé de la relation est passée de moyenne à faible")
    assert "- récence : 40,0 → 28,0 sur 50 points (dernière activité il y a 9,5 jours)" in note
    assert "- appels : 2 → 1" in note
    assert grade_note("good", "fair", None, HEALTH_AFTER) == (
        "Deal Radar: relationship health went from good to fair."
    )


def test_grade_note_names_the_last_activity_of_any_kind_as_health_counts_it() -> None:
    """Health's recency counts done tasks, which are not interactions (the no_activity alert's
    word): the note must not contradict the alert's day count."""
    recent_task = {**HEALTH_AFTER["components"]["recency"], "days_since_last": 1.5}
    after = {**HEALTH_AFTER, "components": {**HEALTH_AFTER["components"], "recency": recent_task}}
    assert "(last activity 1.5 days ago)" in grade_note("good", "fair", HEALTH_BEFORE, after)
    assert "(dernière activité il y a 1,5 jour)" in grade_note(
        "good", "fair", HEALTH_BEFORE, after, "fr"
    )
    never = {**recent_task, "days_since_last": None}
    after = {**HEALTH_AFTER, "components": {**HEALTH_AFTER["components"], "recency": never}}
    assert "(no activity yet)" in grade_note("good", "fair", HEALTH_BEFORE, after)
    assert "interaction" not in grade_note("good", "fair", HEALTH_BEFORE, after, "fr")


def test_who_stands_for_a_deals_owner() -> None:
    plain, covered = load_settings({}), load_settings({"tasks": {"fallback_owner": "u-boss"}})
    assert assignees("u-tom", plain, set()) == ["u-tom", None]
    assert assignees("u-tom", covered, set()) == ["u-tom", "u-boss", None]
    assert assignees("u-tom", covered, {"u-tom"}) == ["u-boss", None], "Tom left"
    assert assignees("u-tom", covered, {"u-tom", "u-boss"}) == [None], "both left"
    assert assignees(None, covered, set()) == ["u-boss", None]
    assert assignees("u-boss", covered, set()) == ["u-boss", None], "each once"


def test_a_teams_turns_go_round_its_members_in_order_skipping_those_who_left() -> None:
    team = ["u-ana", "u-ben", "u-cy"]
    assert [team_turn(team, turn, set())[0] for turn in range(1, 8)] == [
        "u-ana", "u-ben", "u-cy", "u-ana", "u-ben", "u-cy", "u-ana"
    ]  # fmt: skip
    assert team_turn(team, 2, set()) == ["u-ben", "u-cy", "u-ana"], "then the others, in turn"
    assert [team_turn(team, turn, {"u-ben"})[0] for turn in range(1, 5)] == [
        "u-ana", "u-cy", "u-ana", "u-cy"
    ], "Ben left: the team's tasks go to Ana and Cy in turn"  # fmt: skip
    assert team_turn(team, 5, {"u-ana", "u-ben", "u-cy"}) == []
