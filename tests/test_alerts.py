"""The nine alerts at N-1 and N days, and the edges a rep would catch us out on."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from engine.alerts import Mute, MuteError, load_mutes, role_key
from engine.settings import ALERT_CODES
from tests.builders import NOW, activity, ago, ahead, alerts, bundle, contact, only, run

# --- no_activity ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "fires"), [(9, False), (10, True), (11, True)])
def test_no_activity_fires_at_threshold(days: int, fires: bool) -> None:
    doc = bundle(
        {"created_at": ago(60)},
        [contact("c1")],
        [activity("email", ago(days), contacts=("c1",))],
    )
    found = alerts(doc, only("no_activity"))
    assert ("no_activity" in found) is fires
    if fires:
        assert found["no_activity"]["facts"]["days"] == days
        assert found["no_activity"]["facts"]["threshold"] == 10
        assert found["no_activity"]["message"] == f"No activity for {days} days (threshold 10)"


def test_no_activity_counts_from_creation_when_there_was_never_an_interaction() -> None:
    doc = bundle({"created_at": ago(14)}, [contact("c1")], [])
    found = alerts(doc, only("no_activity"))["no_activity"]
    assert found["facts"] == {"days": 14, "threshold": 10, "last_interaction_at": None}
    assert found["message"] == ("No activity since the deal was created 14 days ago (threshold 10)")


def test_no_activity_ignores_tasks_notes_and_scheduled_work() -> None:
    doc = bundle(
        {"created_at": ago(40)},
        [contact("c1")],
        [
            activity("email", ago(20), contacts=("c1",)),
            activity("task", ago(1)),
            activity("note", ago(1)),
            activity("call", ago(1), status="scheduled", contacts=("c1",)),
        ],
    )
    assert alerts(doc, only("no_activity"))["no_activity"]["facts"]["days"] == 20


def test_a_meeting_read_before_it_began_counts_once_its_start_has_passed() -> None:
    """The snapshot was read while the meeting was still to come; nobody marked it held in the
    CRM and nothing read the deal again: the daily sweep must still count it."""
    doc = bundle(
        {"created_at": ago(40)},
        [contact("c1", roles=("Champion",))],
        [
            activity("email", ago(20), contacts=("c1",)),
            activity("meeting", ago(2), status="scheduled", contacts=("c1",)),
        ],
    )
    found = alerts(doc, only("no_activity"))
    assert "no_activity" not in found
    assert "key_role_silent:Champion" not in alerts(doc, only("key_role_silent"))
    assert run(doc).health.components["activities"]["meeting"] == 1


def test_no_activity_counts_inbound_emails_from_a_contact() -> None:
    doc = bundle(
        {"created_at": ago(40)},
        [contact("c1")],
        [
            activity("email", ago(20), contacts=("c1",)),
            activity("email", ago(2), contacts=("c1",), direction="inbound"),
        ],
    )
    assert "no_activity" not in alerts(doc, only("no_activity"))


def test_no_activity_ignores_done_activity_dated_after_now() -> None:
    doc = bundle(
        {"created_at": ago(40)},
        [contact("c1")],
        [
            activity("email", ago(12), contacts=("c1",)),
            activity("call", ahead(1), contacts=("c1",)),
        ],
    )
    assert alerts(doc, only("no_activity"))["no_activity"]["facts"]["days"] == 12


def test_no_activity_unless_next_step_holds_back_while_a_meeting_or_task_is_scheduled() -> None:
    past = [activity("email", ago(15))]
    with_task = bundle(
        {"created_at": ago(40)}, [], [*past, activity("task", ahead(2), status="scheduled")]
    )
    with_old_plan = bundle(
        {"created_at": ago(40)}, [], [*past, activity("task", ago(3), status="scheduled")]
    )
    option = only("no_activity", unless_next_step=True)
    assert "no_activity" not in alerts(with_task, option)
    assert "no_activity" in alerts(with_old_plan, option), "an overdue task is no next step"
    assert "no_activity" in alerts(with_task, only("no_activity")), "the option is off by default"


# --- timezone ------------------------------------------------------------------------------


def test_an_activity_at_2330_utc_is_the_next_day_in_paris() -> None:
    # 2026-11-14T23:30Z is 2026-11-15 00:30 in Paris: 10 days before the 25th there, 11 in UTC.
    doc = bundle(
        {"created_at": ago(60)},
        [contact("c1")],
        [activity("call", "2026-11-14T23:30:00Z", contacts=("c1",))],
    )
    settings = only("no_activity", days=11)
    assert alerts(doc, settings)["no_activity"]["facts"]["days"] == 11
    paris = {**settings, "timezone": "Europe/Paris"}
    assert "no_activity" not in alerts(doc, paris)
    paris["alerts"]["no_activity"]["days"] = 10
    assert alerts(doc, paris)["no_activity"]["facts"]["days"] == 10


def test_today_is_the_tenants_today() -> None:
    # 23:30 UTC on the 25th is already the 26th in Paris: the close date of the 25th has passed.
    late = datetime.fromisoformat("2026-11-25T23:30:00+00:00")
    doc = bundle({"close_date": "2026-11-25"})
    assert "close_date_passed" not in alerts(doc, only("close_date_passed"), now=late)
    paris = {**only("close_date_passed"), "timezone": "Europe/Paris"}
    found = alerts(doc, paris, now=late)["close_date_passed"]
    assert found["facts"] == {"close_date": "2026-11-25", "days": 1}


def test_facts_show_times_in_the_tenants_timezone() -> None:
    doc = bundle({"created_at": ago(60)}, [], [activity("call", "2026-11-10T23:30:00Z")])
    settings = {**only("no_activity"), "timezone": "America/New_York"}
    facts = alerts(doc, settings)["no_activity"]["facts"]
    assert facts["last_interaction_at"] == "2026-11-10T18:30:00-05:00"
    assert facts["days"] == 15


# --- no_meeting_scheduled --------------------------------------------------------------------


def test_no_meeting_scheduled() -> None:
    past_meeting = activity("meeting", ago(2))
    stale_plan = activity("meeting", ago(1), status="scheduled")
    task = activity("task", ahead(3), status="scheduled")
    doc = bundle(None, [], [past_meeting, stale_plan, task])
    assert alerts(doc, only("no_meeting_scheduled"))["no_meeting_scheduled"]["message"] == (
        "No meeting scheduled"
    )
    doc["activities"].append(activity("meeting", ahead(hours=2), status="scheduled"))
    assert "no_meeting_scheduled" not in alerts(doc, only("no_meeting_scheduled"))


# --- single_threaded -----------------------------------------------------------------------


def _threaded(streak_days: int) -> dict:
    return bundle(
        {"created_at": ago(90)},
        [contact("c1"), contact("c2")],
        [
            activity("meeting", ago(40), contacts=("c1", "c2")),
            activity("email", ago(streak_days), contacts=("c1",)),
            activity("call", ago(3), contacts=("c1",), direction="inbound"),
            activity("email", ago(1), contacts=("c1",), cc=("c2",)),
        ],
    )


@pytest.mark.parametrize(("days", "fires"), [(9, False), (10, True)])
def test_single_threaded_at_threshold(days: int, fires: bool) -> None:
    found = alerts(_threaded(days), only("single_threaded"))
    assert ("single_threaded" in found) is fires
    if fires:
        facts = found["single_threaded"]["facts"]
        assert facts["contact"] == {"id": "c1", "name": "Contact c1"}
        assert (facts["days"], facts["threshold"], facts["interactions"]) == (10, 10, 3)
        assert found["single_threaded"]["message"] == (
            "Only Contact c1 engaged for 10 days (threshold 10)"
        )


def test_single_threaded_breaks_when_someone_else_takes_part() -> None:
    doc = _threaded(20)
    doc["activities"].append(activity("call", ago(0, hours=1), contacts=("c2",)))
    assert "single_threaded" not in alerts(doc, only("single_threaded"))


def test_single_threaded_cc_only_contacts_do_not_count_as_engaged() -> None:
    # c2 is copied on everything but never a direct participant: the deal is single-threaded.
    doc = bundle(
        {"created_at": ago(90)},
        [contact("c1"), contact("c2")],
        [activity("email", ago(d), contacts=("c1",), cc=("c2",)) for d in (30, 20, 10, 1)],
    )
    facts = alerts(doc, only("single_threaded"))["single_threaded"]["facts"]
    assert facts["days"] == 30
    assert facts["interactions"] == 4


def test_single_threaded_ignores_interactions_naming_no_contact() -> None:
    doc = _threaded(15)
    doc["activities"].append(activity("call", ago(0, hours=2)))
    assert alerts(doc, only("single_threaded"))["single_threaded"]["facts"]["days"] == 15


def test_single_threaded_not_raised_without_interactions() -> None:
    assert "single_threaded" not in alerts(bundle({"created_at": ago(90)}), only("single_threaded"))


# --- key_role_silent -----------------------------------------------------------------------


@pytest.mark.parametrize(("days", "fires"), [(11, False), (12, True)])
def test_key_role_silent_at_threshold(days: int, fires: bool) -> None:
    doc = bundle(
        {"created_at": ago(90)},
        [contact("c1", roles=("Champion",)), contact("c2")],
        [
            activity("email", ago(days), contacts=("c1",)),
            activity("call", ago(1), contacts=("c2",)),
        ],
    )
    found = alerts(doc, only("key_role_silent"))
    assert ("key_role_silent:Champion" in found) is fires
    if fires:
        alert = found["key_role_silent:Champion"]
        assert alert["facts"]["role"] == "Champion"
        assert alert["facts"]["contacts"] == [{"id": "c1", "name": "Contact c1"}]
        assert (alert["facts"]["days"], alert["facts"]["threshold"]) == (days, 12)
        assert alert["message"] == (
            f"No interaction with the Champion (Contact c1) for {days} days (threshold 12)"
        )


def test_key_role_silent_one_alert_per_role_and_no_holder_no_alert() -> None:
    doc = bundle(
        {"created_at": ago(90)},
        [
            contact("c1", roles=("Champion",)),
            contact("c2", roles=("Economic Buyer",)),
            contact("c3", roles=("Economic Buyer",)),
        ],
        [
            activity("email", ago(30), contacts=("c1", "c2")),
            activity("call", ago(5), contacts=("c3",)),
        ],
    )
    found = alerts(doc, only("key_role_silent"))
    # Economic Buyer: c3 was reached 5 days ago, so not silent. Nobody holds Decision Maker.
    assert set(found) == {"key_role_silent:Champion"}


def test_key_role_silent_cc_is_not_an_interaction_and_never_heard_counts_from_creation() -> None:
    doc = bundle(
        {"created_at": ago(20)},
        [contact("c1"), contact("c2", roles=("Decision Maker",))],
        [activity("email", ago(1), contacts=("c1",), cc=("c2",))],
    )
    facts = alerts(doc, only("key_role_silent"))["key_role_silent:Decision Maker"]["facts"]
    assert facts["days"] == 20
    assert facts["last_interaction_at"] is None


@pytest.mark.parametrize(
    "spelling",
    ["decision maker", "DECISION_MAKER", "Décision-Maker", "decisionmaker", " Decision  Maker "],
)
def test_roles_match_ignoring_case_accents_spaces_and_underscores(spelling: str) -> None:
    doc = bundle({"created_at": ago(30)}, [contact("c1", roles=(spelling,))], [])
    assert "key_role_silent:Decision Maker" in alerts(doc, only("key_role_silent"))
    assert role_key(spelling) == role_key("Decision Maker")


def test_key_role_silent_configured_roles() -> None:
    doc = bundle({"created_at": ago(30)}, [contact("c1", roles=("Sponsor exécutif",))], [])
    settings = only("key_role_silent", roles=["sponsor executif"])
    assert set(alerts(doc, settings)) == {"key_role_silent:sponsor executif"}


def test_two_spellings_of_one_configured_role_are_one_alert() -> None:
    doc = bundle({"created_at": ago(30)}, [contact("c1", roles=("Champion",))], [])
    settings = only("key_role_silent", roles=["Champion", "champion", "CHAMPION "])
    assert set(alerts(doc, settings)) == {"key_role_silent:Champion"}


# --- powermap_gap --------------------------------------------------------------------------


def _powermap(close_in: int, title: str = "Procurement Manager", cc_title: str = "CEO") -> dict:
    return bundle(
        {
            "created_at": ago(60),
            "close_date": date.fromordinal(NOW.date().toordinal() + close_in).isoformat(),
        },
        [contact("c1", title), contact("c2", cc_title)],
        [activity("email", ago(2), contacts=("c1",), cc=("c2",))],
    )


@pytest.mark.parametrize(("close_in", "fires"), [(11, False), (10, True), (0, True), (-1, False)])
def test_powermap_gap_window(close_in: int, fires: bool) -> None:
    found = alerts(_powermap(close_in), only("powermap_gap"))
    assert ("powermap_gap" in found) is fires
    if fires:
        facts = found["powermap_gap"]["facts"]
        assert facts["level"] == "director"
        assert facts["days_to_close"] == close_in
        assert facts["threshold"] == 10
        assert facts["highest_level"] is None


def test_powermap_gap_met_by_an_active_senior_contact() -> None:
    assert "powermap_gap" not in alerts(
        _powermap(5, title="Head of Procurement"), only("powermap_gap")
    )
    found = alerts(_powermap(5, title="Head of Procurement"), only("powermap_gap", min_level="vp"))
    assert found["powermap_gap"]["facts"]["highest_level"] == "director"
    assert found["powermap_gap"]["message"] == (
        "Closes in 5 days with no VP or above engaged (threshold 10 days)"
    )


def test_powermap_gap_on_the_closing_day_says_today() -> None:
    found = alerts(_powermap(0), only("powermap_gap"))
    assert found["powermap_gap"]["message"] == (
        "Closes today with no director or above engaged (threshold 10 days)"
    )
    found = alerts(_powermap(0), {**only("powermap_gap"), "locale": "fr"})
    assert found["powermap_gap"]["message"] == (
        "Clôture aujourd'hui sans interlocuteur de niveau directeur ou plus (seuil 10 jours)"
    )


@pytest.mark.parametrize(
    "title",
    ["CEO's Chief of Staff", "Chief of Staff, CEO", "Chief of Staff - CEO Office",
     "CEO Office Manager", "Chargé de mission DG"],
)  # fmt: skip
def test_powermap_gap_not_hidden_by_someone_working_for_the_ceo(title: str) -> None:
    """The only active contact works for the CEO; the deal has nobody senior engaged."""
    found = alerts(_powermap(5, title=title), only("powermap_gap", min_level="c_level"))
    assert found["powermap_gap"]["facts"]["highest_level"] is None


def test_powermap_gap_reads_todays_job_not_a_past_one() -> None:
    """A head of sales who once was a CEO is a director today; a CEO who started as an intern
    is a CEO."""
    c_level = only("powermap_gap", min_level="c_level")
    found = alerts(_powermap(5, title="Head of Sales (former CEO)"), c_level)
    assert found["powermap_gap"]["facts"]["highest_level"] == "director"
    assert "powermap_gap" not in alerts(_powermap(5, title="CEO (ex-intern)"), c_level)


def test_powermap_gap_extra_titles() -> None:
    doc = _powermap(5, title="Gérant")
    assert "powermap_gap" in alerts(doc, only("powermap_gap"))
    settings = only("powermap_gap", min_level="c_level", titles={"c_level": ["gerant"]})
    assert "powermap_gap" not in alerts(doc, settings)


def test_powermap_gap_needs_a_close_date() -> None:
    doc = _powermap(5)
    doc["deal"]["close_date"] = None
    assert "powermap_gap" not in alerts(doc, only("powermap_gap"))


# --- stuck_in_stage, close_date_passed, amount_missing, deal_too_old -------------------------


@pytest.mark.parametrize(("days", "fires"), [(11, False), (12, True)])
def test_stuck_in_stage_at_threshold(days: int, fires: bool) -> None:
    doc = bundle({"stage_entered_at": ago(days), "created_at": ago(days + 5)})
    found = alerts(doc, only("stuck_in_stage"))
    assert ("stuck_in_stage" in found) is fires
    if fires:
        assert found["stuck_in_stage"]["message"] == (
            f"In stage proposal for {days} days (threshold 12)"
        )


def test_stuck_in_stage_names_the_stage_as_reps_read_it() -> None:
    """HubSpot and Sell name a stage by an internal id ("98765432"): the message, written into
    the CRM, gives its name; a per-stage threshold may be keyed by either."""
    doc = bundle({"stage": "98765432", "stage_name": "Négociation",
                  "stage_entered_at": ago(24), "created_at": ago(30)})  # fmt: skip
    found = alerts(doc, {**only("stuck_in_stage"), "locale": "fr"})["stuck_in_stage"]
    assert found["message"] == "Dans l'étape Négociation depuis 24 jours (seuil 12)"
    assert (found["facts"]["stage"], found["facts"]["stage_name"]) == ("98765432", "Négociation")
    by_name = only("stuck_in_stage")
    by_name["alerts"]["stuck_in_stage"]["stages"] = {"Négociation": 30}
    assert "stuck_in_stage" not in alerts(doc, by_name)


def test_stuck_in_stage_per_stage_and_per_pipeline_thresholds() -> None:
    doc = bundle({"stage_entered_at": ago(8), "created_at": ago(20), "pipeline": "enterprise"})
    settings = only("stuck_in_stage")
    assert "stuck_in_stage" not in alerts(doc, settings)
    settings["alerts"]["stuck_in_stage"]["stages"] = {"proposal": 8}
    assert alerts(doc, settings)["stuck_in_stage"]["facts"]["threshold"] == 8
    settings["pipelines"] = {
        "enterprise": {"alerts": {"stuck_in_stage": {"stages": {"proposal": 9}}}}
    }
    assert "stuck_in_stage" not in alerts(doc, settings)
    doc["deal"]["pipeline"] = "sales"
    assert "stuck_in_stage" in alerts(doc, settings), "the override is for enterprise only"


def _negotiation(days: int, org: dict[str, int], pipeline: dict[str, int]) -> dict:
    """The alert for a deal `days` into HubSpot stage 98765432 ("Negotiation") of the
    enterprise pipeline, with per-stage thresholds from the organisation and the pipeline."""
    doc = bundle({"pipeline": "enterprise", "stage": "98765432", "stage_name": "Negotiation",
                  "stage_entered_at": ago(days), "created_at": ago(days + 30)})  # fmt: skip
    settings = only("stuck_in_stage", stages=org)
    settings["pipelines"] = {"enterprise": {"alerts": {"stuck_in_stage": {"stages": pipeline}}}}
    return alerts(doc, settings).get("stuck_in_stage", {})


@pytest.mark.parametrize(
    ("org", "pipeline"),
    [
        ({"98765432": 20}, {"Negotiation": 45}),
        ({"Negotiation": 20}, {"98765432": 45}),
        ({"98765432": 20, "Negotiation": 20}, {"Negotiation": 45}),
    ],
)
def test_stuck_in_stage_pipeline_threshold_wins_however_either_keys_the_stage(
    org: dict[str, int], pipeline: dict[str, int]
) -> None:
    """The enterprise pipeline gives Negotiation 45 days over the organisation's 20: a deal 30
    days in is not stuck, whether the admin wrote the stage's id or its name at either level."""
    assert _negotiation(30, org, pipeline) == {}
    assert _negotiation(45, org, pipeline)["facts"]["threshold"] == 45


def test_stuck_in_stage_the_organisations_threshold_holds_where_the_pipeline_names_none() -> None:
    """Within one level the stage's id wins over its name; a pipeline that sets other stages
    leaves the organisation's threshold for this one in force."""
    found = _negotiation(25, {"98765432": 25, "Negotiation": 40}, {"Discovery": 5})
    assert found["facts"]["threshold"] == 25
    found = _negotiation(25, {"Negotiation": 40}, {"98765432": 25, "Negotiation": 60})
    assert found["facts"]["threshold"] == 25


@pytest.mark.parametrize(("overdue", "fires"), [(0, False), (1, True)])
def test_close_date_passed(overdue: int, fires: bool) -> None:
    close = date.fromordinal(NOW.date().toordinal() - overdue).isoformat()
    found = alerts(bundle({"close_date": close}), only("close_date_passed"))
    assert ("close_date_passed" in found) is fires
    if fires:
        assert found["close_date_passed"]["message"] == f"Close date passed 1 day ago ({close})"


def test_amount_missing() -> None:
    assert "amount_missing" in alerts(bundle({"amount": None}), only("amount_missing"))
    assert "amount_missing" not in alerts(bundle({"amount": 0}), only("amount_missing"))


@pytest.mark.parametrize(("days", "fires"), [(49, False), (50, True)])
def test_deal_too_old_at_threshold(days: int, fires: bool) -> None:
    doc = bundle({"created_at": ago(days), "stage_entered_at": ago(1)})
    found = alerts(doc, only("deal_too_old"))
    assert ("deal_too_old" in found) is fires


# --- across alerts ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["won", "lost"])
def test_closed_deals_get_no_alerts(status: str) -> None:
    rotten = bundle(
        {
            "status": status,
            "amount": None,
            "close_date": "2026-01-01",
            "created_at": ago(300),
            "stage_entered_at": ago(300),
        },
        [contact("c1", roles=("Champion",))],
        [],
    )
    result = run(rotten)
    assert result.alerts == []
    assert result.health.grade == "poor", "closed deals still get a health score"
    rotten["deal"]["status"] = "open"
    assert len(run(rotten).alerts) >= 6


def test_disabled_alert_is_never_raised() -> None:
    doc = bundle({"amount": None})
    assert "amount_missing" in alerts(doc)
    assert "amount_missing" not in alerts(doc, {"alerts": {"amount_missing": {"enabled": False}}})


def test_pipeline_override_disables_and_changes_thresholds() -> None:
    doc = bundle({"created_at": ago(30), "pipeline": "renewals", "amount": None})
    settings = {
        "alerts": {"no_activity": {"days": 40}},
        "pipelines": {
            "renewals": {
                "alerts": {"amount_missing": {"enabled": False}, "no_activity": {"days": 30}}
            }
        },
    }
    found = alerts(doc, settings)
    assert "amount_missing" not in found
    assert found["no_activity"]["facts"]["threshold"] == 30
    doc["deal"]["pipeline"] = "sales"
    found = alerts(doc, settings)
    assert "amount_missing" in found and "no_activity" not in found


def test_mutes_hide_an_alert_until_their_date() -> None:
    doc = bundle({"amount": None})
    tomorrow = date(2026, 11, 26)
    assert "amount_missing" not in alerts(doc, mutes=[Mute("amount_missing", tomorrow)])
    assert "amount_missing" in alerts(doc, mutes=[Mute("amount_missing", date(2026, 11, 25))])
    assert "amount_missing" in alerts(doc, mutes=[Mute("no_activity", tomorrow)])


def test_load_mutes_names_the_bad_field() -> None:
    assert load_mutes([{"code": "no_activity", "until": "2026-12-01"}]) == (
        Mute("no_activity", date(2026, 12, 1)),
    )
    with pytest.raises(MuteError, match=r"mutes\[0\]: field 'code'"):
        load_mutes([{"code": "nope", "until": "2026-12-01"}])
    with pytest.raises(MuteError, match=r"mutes\[0\]: field 'until'"):
        load_mutes([{"code": "no_activity", "until": "soon"}])


def test_alerts_come_in_catalogue_order() -> None:
    doc = bundle(
        {
            "amount": None,
            "close_date": "2026-01-01",
            "created_at": ago(300),
            "stage_entered_at": ago(300),
        },
    )
    codes = [a.code for a in run(doc).alerts]
    assert codes == sorted(codes, key=ALERT_CODES.index)


def test_french_messages() -> None:
    doc = bundle(
        {"created_at": ago(60)}, [contact("c1")], [activity("email", ago(14), contacts=("c1",))]
    )
    found = alerts(doc, {**only("no_activity"), "locale": "fr"})
    assert found["no_activity"]["message"] == "Aucune activité depuis 14 jours (seuil 10)"
    found = alerts(bundle({"amount": None}), {"locale": "fr"})
    assert found["amount_missing"]["message"] == "Montant manquant"
