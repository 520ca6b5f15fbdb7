"""Settings: partial documents take the defaults; invalid ones say which field and why."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.settings import ALERT_CODES, DEFAULTS, SettingsError, load_settings, rename_users


def test_empty_document_is_the_defaults() -> None:
    s = load_settings({})
    assert s.document == DEFAULTS
    assert s.timezone == "UTC" and s.locale == "en"
    alerts = s.alerts_for("any")
    assert all(alerts[c]["enabled"] for c in ALERT_CODES)
    assert alerts["no_activity"]["days"] == 10
    assert alerts["single_threaded"]["days"] == 10
    assert alerts["key_role_silent"]["days"] == 12
    assert alerts["key_role_silent"]["roles"] == ["Champion", "Decision Maker", "Economic Buyer"]
    assert alerts["powermap_gap"]["days_to_close"] == 10
    assert alerts["powermap_gap"]["min_level"] == "director"
    assert alerts["stuck_in_stage"]["days"] == 12
    assert alerts["deal_too_old"]["days"] == 50
    assert s.health["good_from"] == 60 and s.health["fair_from"] == 40
    assert s.health["weights"] == {"email": 6, "meeting": 6, "call": 6, "task": 6}


def test_partial_document_keeps_the_other_defaults() -> None:
    s = load_settings(
        {
            "timezone": "Europe/Paris",
            "alerts": {
                "no_activity": {"days": 14},
                "powermap_gap": {"titles": {"c_level": ["Gérant"]}},
            },
            "health": {"weights": {"meeting": 9}},
        }
    )
    alerts = s.alerts_for("sales")
    assert alerts["no_activity"] == {"enabled": True, "days": 14, "unless_next_step": False}
    assert alerts["powermap_gap"]["titles"] == {"director": [], "vp": [], "c_level": ["Gérant"]}
    assert alerts["powermap_gap"]["days_to_close"] == 10
    assert s.health["weights"] == {"email": 6, "meeting": 9, "call": 6, "task": 6}
    assert s.timezone == "Europe/Paris"
    assert DEFAULTS["alerts"]["no_activity"]["days"] == 10, "defaults are never mutated"


def test_pipeline_overrides_lay_over_the_organisation() -> None:
    s = load_settings(
        {
            "alerts": {"stuck_in_stage": {"days": 20, "stages": {"proposal": 5, "demo": 7}}},
            "pipelines": {
                "enterprise": {
                    "alerts": {
                        "stuck_in_stage": {"stages": {"demo": 30}},
                        "amount_missing": {"enabled": False},
                    }
                }
            },
        }
    )
    enterprise = s.alerts_for("enterprise")
    assert enterprise["stuck_in_stage"] == {
        "enabled": True,
        "days": 20,
        "stages": {"proposal": 5, "demo": 30},
    }
    assert enterprise["amount_missing"]["enabled"] is False
    assert s.alerts_for("sales")["stuck_in_stage"]["stages"] == {"proposal": 5, "demo": 7}
    assert s.alerts_for("sales")["amount_missing"]["enabled"] is True


def _errors(document: dict) -> dict[str, list[str]]:
    with pytest.raises(SettingsError) as exc:
        load_settings(document)
    return exc.value.errors


def test_negative_threshold() -> None:
    errors = _errors({"alerts": {"no_activity": {"days": -3}}})
    assert list(errors) == ["alerts.no_activity.days"]
    assert "greater than or equal to 1" in errors["alerts.no_activity.days"][0]


def test_unknown_alert_lists_the_known_ones() -> None:
    errors = _errors({"alerts": {"no_activty": {"days": 3}}})
    assert errors["alerts.no_activty"] == [
        "unknown alert 'no_activty'; the alerts are " + ", ".join(ALERT_CODES)
    ]
    errors = _errors({"pipelines": {"sales": {"alerts": {"bogus": {}}}}})
    assert list(errors) == ["pipelines.sales.alerts.bogus"]


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        ({"pipelines": {"": {}}}, "pipelines", "invalid key '': "),
        ({"alerts": {"stuck_in_stage": {"stages": {"": 3}}}}, "alerts.stuck_in_stage.stages",
         "invalid key '': "),
        ({"role_labels": {"L" * 201: "Champion"}}, "role_labels", "invalid key '" + "L" * 40),
    ],
)  # fmt: skip
def test_an_invalid_map_key_is_named_by_its_map_and_quoted(
    document: dict, path: str, message: str
) -> None:
    """An empty pipeline name was reported at "pipelines..key": an empty segment and
    marshmallow's own label, which no admin wrote."""
    errors = _errors(document)
    assert list(errors) == [path]
    assert errors[path][0].startswith(message)


def test_fair_cut_point_above_good() -> None:
    errors = _errors({"health": {"good_from": 50, "fair_from": 70}})
    assert errors == {
        "health.fair_from": [
            "the fair cut point (70) is above the good cut point (50); "
            "set fair_from at or below good_from"
        ]
    }


def test_moving_one_cut_point_moves_its_neighbour() -> None:
    assert load_settings({"health": {"good_from": 30}}).health["fair_from"] == 30
    assert load_settings({"health": {"good_from": 80}}).health["fair_from"] == 40
    assert load_settings({"health": {"fair_from": 75}}).health["good_from"] == 75
    assert load_settings({"health": {"fair_from": 20}}).health["good_from"] == 60


@pytest.mark.parametrize("weight", [2, 10, 6.5])
def test_weight_outside_3_to_9(weight: float) -> None:
    errors = _errors({"health": {"weights": {"call": weight}}})
    assert list(errors) == ["health.weights.call"]


@pytest.mark.parametrize("name", ["Europe", "America", "x" * 300, "../etc/passwd"])
def test_timezone_names_that_are_not_zones(name: str) -> None:
    assert list(_errors({"timezone": name})) == ["timezone"]


def test_unknown_timezone() -> None:
    errors = _errors({"timezone": "Europe/Pariss"})
    assert errors["timezone"] == [
        "unknown time zone 'Europe/Pariss'; "
        "use an IANA name such as Europe/Paris or America/New_York"
    ]


def test_many_errors_are_reported_together() -> None:
    errors = _errors(
        {
            "locale": "de",
            "alerts": {"deal_too_old": {"days": 0}, "powermap_gap": {"min_level": "manager"}},
            "health": {"expected_frequency": "hourly"},
            "colour": "blue",
        }
    )
    assert set(errors) == {
        "locale",
        "alerts.deal_too_old.days",
        "alerts.powermap_gap.min_level",
        "health.expected_frequency",
        "colour",
    }
    assert errors["colour"] == ["unknown setting 'colour'; check its spelling against the README"]


def test_settings_error_message_names_every_field() -> None:
    with pytest.raises(SettingsError, match=r"alerts\.no_activity\.days: .*; timezone: unknown"):
        load_settings({"alerts": {"no_activity": {"days": "ten"}}, "timezone": "Mars/Base"})


def test_not_an_object() -> None:
    assert _errors([1, 2]) == {"settings": ["must be a JSON object"]}  # type: ignore[arg-type]


def test_role_labels_map_crm_labels_to_roles_and_default_to_none() -> None:
    assert load_settings({}).role_labels == {}
    settings = load_settings({"role_labels": {"Sponsor": "Champion", "Billing": ""}})
    assert settings.role_labels == {"Sponsor": "Champion", "Billing": ""}


@pytest.mark.parametrize(
    ("labels", "path"),
    [
        ({"Sponsor": 3}, "role_labels.Sponsor"),
        ({"": "Champion"}, "role_labels"),
        ([], "role_labels"),
    ],
)
def test_role_labels_refuse_what_is_not_label_to_role_text(labels: object, path: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"role_labels": labels})
    assert any(key.startswith(path) for key in caught.value.errors), caught.value.errors


def test_an_alerts_tasks_may_go_to_a_team_named_in_tasks_teams() -> None:
    settings = load_settings(
        {"tasks": {"teams": {"revops": ["u-ana", "u-ben"]},
                   "alerts": {"amount_missing": {"team": "revops"}}}}
    )  # fmt: skip
    assert settings.team_for("amount_missing") == ("revops", ["u-ana", "u-ben"])
    assert settings.team_for("no_activity") is None, "the deal's owner by default"
    assert load_settings({}).document["tasks"]["teams"] == {}


@pytest.mark.parametrize(
    ("tasks", "path", "words"),
    [
        ({"alerts": {"amount_missing": {"team": "ops"}}},
         "tasks.alerts.amount_missing.team", "no team 'ops' in tasks.teams (teams: none yet)"),
        ({"teams": {"revops": ["u-ana"]}, "alerts": {"close_date_passed": {"team": "Revops"}}},
         "tasks.alerts.close_date_passed.team", "(teams: 'revops')"),
        ({"teams": {"revops": []}}, "tasks.teams.revops", "a team lists 1 to 200 users"),
        ({"teams": {"revops": ["u-ana", "u-ben", "u-ana"]}}, "tasks.teams.revops",
         "'u-ana' listed twice"),
        ({"teams": {"": ["u-ana"]}}, "tasks.teams", "invalid key"),
    ],
)  # fmt: skip
def test_a_team_that_cannot_take_tasks_is_refused_naming_the_setting(
    tasks: dict, path: str, words: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"tasks": tasks})
    assert path in refused.value.errors
    assert words in " ".join(refused.value.errors[path])


def _upper(user_id: str) -> str:
    """A CRM whose ids are written in any case and sent in capitals; "bad..." is no id."""
    if user_id.startswith("bad"):
        raise ValueError(f"{user_id!r} is no user id")
    return user_id.upper()


def test_rename_users_reaches_every_setting_that_names_users() -> None:
    document = {
        "locale": "fr",
        "tasks": {"fallback_owner": "ana", "teams": {"desk": ["ben", "ana"]}, "backlog": True},
        "notifications": {"channels": ["email"], "reps": {"ben": {"digest": False}}},
        "digest": {"hour": 9, "managers": [{"email": "sam@vendor.example", "reps": ["cy"]},
                                           {"email": "max@vendor.example"}]},
    }  # fmt: skip
    renamed, errors = rename_users(document, _upper)
    assert errors == {}
    assert renamed == {
        "locale": "fr",
        "tasks": {"fallback_owner": "ANA", "teams": {"desk": ["BEN", "ANA"]}, "backlog": True},
        "notifications": {"channels": ["email"], "reps": {"BEN": {"digest": False}}},
        "digest": {"hour": 9, "managers": [{"email": "sam@vendor.example", "reps": ["CY"]},
                                           {"email": "max@vendor.example"}]},
    }  # fmt: skip
    assert document["tasks"]["teams"]["desk"] == ["ben", "ana"], "the document is not changed"
    load_settings(renamed)


def test_rename_users_keeps_what_is_no_id_and_each_user_once_and_says_so() -> None:
    document = {
        "tasks": {"fallback_owner": "bad one", "teams": {"desk": ["ana", "ben", "ANA"]}},
        "notifications": {"reps": {"ben": {"digest": False}, "BEN": {}, "bad": {}}},
        "digest": {"managers": [{"email": "sam@vendor.example", "reps": ["cy", "bad2"]}]},
    }
    renamed, errors = rename_users(document, _upper)
    assert renamed["tasks"] == {"fallback_owner": "bad one", "teams": {"desk": ["ANA", "BEN"]}}
    assert renamed["notifications"]["reps"] == {"BEN": {}, "bad": {}}, "the sent form's wins"
    assert renamed["digest"]["managers"][0]["reps"] == ["CY", "bad2"]
    assert errors == {
        "tasks.fallback_owner": ["'bad one' is no user id"],
        "tasks.teams.desk": ["one user listed twice ('ana' and 'ANA'); list each once"],
        "notifications.reps": ["invalid key: 'bad' is no user id",
                               "one user listed twice ('ben' and 'BEN'); list each once"],
        "digest.managers.0.reps.1": ["'bad2' is no user id"],
    }  # fmt: skip


def _sent_form_settings(user: str = "") -> dict:
    """Settings naming users in the form the CRM sends them, or in `user` case ("lower")."""
    ids = {u: getattr(u, user)() if user else u for u in ("ANA", "BEN", "CY")}
    return {
        "alerts": {"stuck_in_stage": {"days": 20, "stages": {"proposal": 5}}},
        "pipelines": {"enterprise": {"alerts": {"no_activity": {"days": 9}}}},
        "tasks": {"fallback_owner": ids["ANA"], "teams": {"desk": [ids["BEN"], ids["ANA"]]},
                  "alerts": {"no_activity": {"team": "desk"}}},
        "notifications": {"reps": {ids["BEN"]: {"digest": False}}},
        "digest": {"managers": [{"email": "sam@vendor.example", "reps": [ids["CY"]]}]},
    }  # fmt: skip


@pytest.mark.parametrize("written", ["", "lower"], ids=["as sent", "to rename"])
def test_rename_users_leaves_the_callers_document_as_it_was(written: str) -> None:
    """What an admin saved is read again at every settings read: renaming it for one read
    must not change it for the next, nor a document that names every user as sent."""
    document = _sent_form_settings(written)
    before = copy.deepcopy(document)
    assert rename_users(document, _upper) == (_sent_form_settings(), {})
    assert document == before


@pytest.mark.parametrize(
    "document",
    [
        {"tasks": "x"}, {"tasks": {"teams": ["a"]}}, {"tasks": {"teams": {"t": "a"}}},
        {"tasks": {"fallback_owner": None}}, {"notifications": {"reps": ["a"]}},
        {"digest": {"managers": "x"}}, {"digest": {"managers": ["x", {"reps": None}]}},
    ],
)  # fmt: skip
def test_rename_users_leaves_other_shapes_to_validation(document: dict) -> None:
    assert rename_users(document, _upper) == (document, {})


# --- the README's Settings section, held to the code -------------------------------------------

README = Path(__file__).parents[1] / "README.md"


def _readme_settings() -> str:
    text = README.read_text()
    return text[text.index("\n## Settings\n") : text.index("\n## Relationship health\n")]


def test_the_readme_s_settings_document_is_the_defaults() -> None:
    block = _readme_settings().split("```json\n", 1)[1].split("```", 1)[0]
    shown = json.loads(block)
    assert shown == {key: DEFAULTS[key] for key in shown}


def test_every_top_level_setting_is_in_the_readme() -> None:
    section = _readme_settings()
    assert [key for key in DEFAULTS if f"`{key}" not in section and f'"{key}"' not in section] == []


def _at(path: str, value: object) -> dict:
    """A settings document that sets `path` (dotted) to `value`."""
    head, _, rest = path.partition(".")
    return {head: _at(rest, value) if rest else value}


@pytest.mark.parametrize(
    ("said", "path", "low", "high", "default"),
    [
        ("`schedule.sweep_hour` (0..23, default 6)", "schedule.sweep_hour", 0, 23, 6),
        ("`schedule.poll_minutes` (1..60, default 5)", "schedule.poll_minutes", 1, 60, 5),
        ("`schedule.api_share` (10..100, default 80)", "schedule.api_share", 10, 100, 80),
        ("`poll_seconds` (5..3600, default 15)", "sell.poll_seconds", 5, 3600, 15),
        ("`due_in_business_days` (0..60, default 1;", "tasks.due_in_business_days", 0, 60, 1),
        ("`due_hour` (0..23, default 17)", "tasks.due_hour", 0, 23, 17),
        ("whole days from 1 to 3650", "alerts.no_activity.days", 1, 3650, 10),
        ("(`days_to_close` from 0)", "alerts.powermap_gap.days_to_close", 0, 3650, 10),
        ("`health.weights`: 3 to 9 per kind", "health.weights.call", 3, 9, 6),
    ],
)  # fmt: skip
def test_the_readme_s_ranges_and_defaults_are_the_code_s(
    said: str, path: str, low: int, high: int, default: int
) -> None:
    assert said in " ".join(_readme_settings().split())
    value = load_settings({}).document
    for part in path.split("."):
        value = value[part]
    assert value == default
    for ok in (low, high):
        load_settings(_at(path, ok))
    for wrong in (low - 1, high + 1):
        with pytest.raises(SettingsError):
            load_settings(_at(path, wrong))
