"""A tenant's alert and health settings: the schema, the defaults and their resolution.

A settings document may be partial; what it leaves out takes the default. Invalid documents give
one error per field, with a dotted path an admin can act on (`alerts.no_activity.days: ...`).
Pipeline overrides (`pipelines.<pipeline>.alerts.<code>`) are partial alert blocks laid over the
organisation's blocks; `stuck_in_stage` also takes per-stage thresholds, the pipeline's asked
before the organisation's.
"""

from __future__ import annotations

import copy
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine import notify_settings
from engine.business_days import DaysOff, UnknownCalendar, public_holidays
from engine.titles import LEVELS

ALERT_CODES: tuple[str, ...] = (
    "no_activity",
    "no_meeting_scheduled",
    "single_threaded",
    "key_role_silent",
    "powermap_gap",
    "stuck_in_stage",
    "close_date_passed",
    "amount_missing",
    "deal_too_old",
)
LOCALES = ("en", "fr")
HEALTH_KINDS = ("email", "meeting", "call", "task")
FREQUENCY_DAYS: dict[str, float] = {
    "daily": 1.0,
    "twice_a_week": 3.5,
    "weekly": 7.0,
    "every_two_weeks": 14.0,
    "monthly": 30.0,
}
"""The expected communication frequencies, as the interval in days between two interactions."""

KEY_SHOWN = 40
"""Characters of an invalid map key (a pipeline's, a role label's) quoted in its error."""
MAX_DAYS = 3650
"""Ten years: any larger threshold is a typo, not a policy."""
MAX_DUE_BUSINESS_DAYS = 60
"""A task due further out than three months is not a follow-up any more."""
MAX_HOLIDAYS = 400
"""Holidays a tenant may list: a few years of public holidays and closures."""
MAX_TEAM_MEMBERS = 200
"""Users in one task team: a whole sales floor, not a directory."""
TASK_PLACEHOLDERS = ("deal_name", "message", "deal_url")
"""What an admin's task wording may name: `{message}` is the alert's one-line explanation."""
TASKS_OFF_BY_DEFAULT = frozenset({"no_meeting_scheduled", "deal_too_old"})
"""Alerts that make no CRM task unless an admin asks: "no meeting scheduled" holds on most open
deals most of the time, and a deal's age is not something a rep can act on within a day; a
task for either would bury the tasks that matter."""

DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "locale": "en",
    "alerts": {
        "no_activity": {"enabled": True, "days": 10, "unless_next_step": False},
        "no_meeting_scheduled": {"enabled": True},
        "single_threaded": {"enabled": True, "days": 10},
        "key_role_silent": {
            "enabled": True,
            "days": 12,
            "roles": ["Champion", "Decision Maker", "Economic Buyer"],
        },
        "powermap_gap": {
            "enabled": True,
            "days_to_close": 10,
            "min_level": "director",
            "titles": {"director": [], "vp": [], "c_level": []},
        },
        "stuck_in_stage": {"enabled": True, "days": 12, "stages": {}},
        "close_date_passed": {"enabled": True},
        "amount_missing": {"enabled": True},
        "deal_too_old": {"enabled": True, "days": 50},
    },
    "pipelines": {},
    "tasks": {
        "due_in_business_days": 1,
        "due_hour": 17,
        "backlog": False,
        "holidays": [],
        "public_holidays": None,
        "fallback_owner": None,
        "teams": {},
        "alerts": {code: {"enabled": code not in TASKS_OFF_BY_DEFAULT} for code in ALERT_CODES},
    },
    "notes": {"grade_changed": False},
    "health": {
        "weights": {"email": 6, "meeting": 6, "call": 6, "task": 6},
        "expected_frequency": "weekly",
        "good_from": 60,
        "fair_from": 40,
    },
    "schedule": {"sweep_hour": 6, "poll_minutes": 5, "api_share": 80},
    "role_labels": {},
    "sell": {"poll_seconds": 15, "role_field": "Buying role", "role_tag_prefix": None},
    **notify_settings.DEFAULTS,
}


class SettingsError(ValueError):
    """Invalid settings; `errors` maps a dotted field path to what is wrong with it."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(sorted(errors.items()))
        super().__init__(
            "invalid settings: "
            + "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in self.errors.items())
        )


# --- schema (validation of a possibly partial document; defaults are applied afterwards) -----


def _days(minimum: int = 1) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=MAX_DAYS))


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _Toggle(_Strict):
    enabled = fields.Boolean()


class _NoActivity(_Toggle):
    days = _days()
    unless_next_step = fields.Boolean()


class _Days(_Toggle):
    days = _days()


class _KeyRoleSilent(_Days):
    roles = fields.List(fields.String(validate=validate.Length(min=1)))


class _Titles(_Strict):
    director = fields.List(fields.String(validate=validate.Length(min=1)))
    vp = fields.List(fields.String(validate=validate.Length(min=1)))
    c_level = fields.List(fields.String(validate=validate.Length(min=1)))


class _PowermapGap(_Toggle):
    days_to_close = _days(minimum=0)
    min_level = fields.String(validate=validate.OneOf(LEVELS))
    titles = fields.Nested(_Titles)


class _StuckInStage(_Days):
    stages = fields.Dict(keys=fields.String(validate=validate.Length(min=1)), values=_days())


_ALERT_SCHEMAS: dict[str, type[Schema]] = {
    "no_activity": _NoActivity,
    "no_meeting_scheduled": _Toggle,
    "single_threaded": _Days,
    "key_role_silent": _KeyRoleSilent,
    "powermap_gap": _PowermapGap,
    "stuck_in_stage": _StuckInStage,
    "close_date_passed": _Toggle,
    "amount_missing": _Toggle,
    "deal_too_old": _Days,
}
_Alerts = type(
    "_Alerts", (_Strict,), {code: fields.Nested(schema) for code, schema in _ALERT_SCHEMAS.items()}
)


class _Pipeline(_Strict):
    alerts = fields.Nested(_Alerts)


class _Weights(_Strict):
    email = fields.Integer(strict=True, validate=validate.Range(min=3, max=9))
    meeting = fields.Integer(strict=True, validate=validate.Range(min=3, max=9))
    call = fields.Integer(strict=True, validate=validate.Range(min=3, max=9))
    task = fields.Integer(strict=True, validate=validate.Range(min=3, max=9))


CUT_POINTS = (0, 100)
"""The lowest and the highest a grade cut point (`good_from`, `fair_from`) may be."""


class _Health(_Strict):
    weights = fields.Nested(_Weights)
    expected_frequency = fields.String(validate=validate.OneOf(list(FREQUENCY_DAYS)))
    good_from = fields.Integer(strict=True, validate=validate.Range(*CUT_POINTS))
    fair_from = fields.Integer(strict=True, validate=validate.Range(*CUT_POINTS))

    @validates_schema
    def _cut_points_ordered(self, data: dict[str, Any], **_: Any) -> None:
        good, fair = data.get("good_from"), data.get("fair_from")
        if good is not None and fair is not None and fair > good:
            raise ValidationError(
                f"the fair cut point ({fair}) is above the good cut point ({good}); "
                "set fair_from at or below good_from",
                "fair_from",
            )


def _valid_template(text: str) -> None:
    """An admin's task wording: only the known placeholders, named plainly (no attribute, index,
    conversion or format: the wording is filled by str.format, which would otherwise reach into
    objects)."""
    try:
        fields_used = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(text)]
    except ValueError as exc:
        raise ValidationError(f"{exc}; write a literal brace as {{{{ or }}}}") from None
    allowed = ", ".join(f"{{{p}}}" for p in TASK_PLACEHOLDERS)
    for name, spec, conv in fields_used:
        if name is None:
            continue
        if name not in TASK_PLACEHOLDERS:
            raise ValidationError(f"unknown placeholder {{{name}}}; use {allowed}")
        if spec or conv:
            raise ValidationError(f"write {{{name}}} plainly, without a format or conversion")


def _due_days() -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_DUE_BUSINESS_DAYS))


class _TaskAlert(_Strict):
    enabled = fields.Boolean()
    subject = fields.String(validate=[validate.Length(min=1, max=200), _valid_template])
    body = fields.String(validate=[validate.Length(min=1, max=5000), _valid_template])
    due_in_business_days = _due_days()
    # A name in `tasks.teams`: the alert's tasks go round robin to that team, not the owner.
    team = fields.String(allow_none=True, validate=validate.Length(min=1, max=50))


_TaskAlerts = type(
    "_TaskAlerts", (_Strict,), {code: fields.Nested(_TaskAlert) for code in ALERT_CODES}
)


def _valid_day(text: str) -> None:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a date; write it as 2026-12-25") from None


def _valid_calendar(name: str) -> None:
    try:
        public_holidays(name)
    except UnknownCalendar as exc:
        raise ValidationError(str(exc)) from None


def _each_once(members: list[str]) -> None:
    repeated = sorted({m for m in members if members.count(m) > 1})
    if repeated:
        raise ValidationError(f"{', '.join(map(repr, repeated))} listed twice; list each user once")


class _Tasks(_Strict):
    due_in_business_days = _due_days()
    due_hour = fields.Integer(strict=True, validate=validate.Range(min=0, max=23))
    backlog = fields.Boolean()
    # Strings, as the admin wrote them (the document is JSON); read as dates by `holidays`.
    holidays = fields.List(
        fields.String(validate=_valid_day), validate=validate.Length(max=MAX_HOLIDAYS)
    )
    # The CRM's id of the user who takes the tasks of deals whose owner was deactivated.
    fallback_owner = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    public_holidays = fields.String(allow_none=True, validate=_valid_calendar)
    # Team name -> CRM user ids, in the order their turns come round.
    teams = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.List(
            fields.String(validate=validate.Length(min=1, max=64)),
            validate=[
                validate.Length(min=1, max=MAX_TEAM_MEMBERS, error="a team lists 1 to {max} users"),
                _each_once,
            ],
        ),
    )
    alerts = fields.Nested(_TaskAlerts)


class _Notes(_Strict):
    grade_changed = fields.Boolean()


class _Schedule(_Strict):
    sweep_hour = fields.Integer(strict=True, validate=validate.Range(min=0, max=23))
    poll_minutes = fields.Integer(strict=True, validate=validate.Range(min=1, max=60))
    api_share = fields.Integer(strict=True, validate=validate.Range(min=10, max=100))


class _Sell(_Strict):
    poll_seconds = fields.Integer(strict=True, validate=validate.Range(min=5, max=3600))
    role_field = fields.String(validate=validate.Length(max=200))
    role_tag_prefix = fields.String(allow_none=True, validate=validate.Length(max=50))


def _valid_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of zones
        raise ValidationError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris or America/New_York"
        ) from None


class SettingsSchema(_Strict):
    """A settings document as an admin writes it: every field optional."""

    timezone = fields.String(validate=_valid_timezone)
    locale = fields.String(validate=validate.OneOf(LOCALES))
    alerts = fields.Nested(_Alerts)
    pipelines = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)), values=fields.Nested(_Pipeline)
    )
    tasks = fields.Nested(_Tasks)
    notes = fields.Nested(_Notes)
    health = fields.Nested(_Health)
    schedule = fields.Nested(_Schedule)
    role_labels = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=200)),
        values=fields.String(validate=validate.Length(max=200)),
        metadata={
            "description": "The CRM's contact labels (HubSpot association labels) mapped to "
            "roles, over those matched at install; an empty role ignores the label"
        },
    )
    sell = fields.Nested(
        _Sell,
        metadata={
            "description": "Zendesk Sell: how often its change feed is polled, and where contacts "
            "keep their buying roles (a contact custom field, and/or tags)"
        },
    )
    notifications = fields.Nested(notify_settings.NotificationsSchema)
    digest = fields.Nested(notify_settings.DigestSchema)


def _flatten(errors: Any, path: str = "") -> dict[str, list[str]]:
    if isinstance(errors, list):
        return {path or "settings": [str(e) for e in errors]}
    out: dict[str, list[str]] = {}
    for key, value in errors.items():
        if isinstance(value, Mapping) and isinstance(value.get("key"), list):
            # A Dict entry whose key is invalid (marshmallow files that under "key"): the key
            # may be empty or huge, so the map names the error and the message quotes the key
            # (its value's errors, if any, follow once the key is fixed).
            messages = out.setdefault(path or "settings", [])
            messages.extend(f"invalid key {_quoted(key)}: {m}" for m in value["key"])
            continue
        # marshmallow files a Dict entry's errors under "value"; the admin thinks of the key.
        sub = path if key == "value" else (f"{path}.{key}" if path else str(key))
        out.update(_flatten(value, sub))
    return out


def _quoted(key: Any) -> str:
    text = str(key)
    return repr(text) if len(text) <= KEY_SHOWN else repr(text[:KEY_SHOWN]) + "..."


def _explain(path: str, messages: list[str]) -> list[str]:
    """Turn marshmallow's terse 'Unknown field.' into something an admin can act on."""
    if messages != ["Unknown field."]:
        return messages
    head, _, name = path.rpartition(".")
    if head.endswith("alerts"):
        return [f"unknown alert {name!r}; the alerts are {', '.join(ALERT_CODES)}"]
    return [f"unknown setting {name!r}; check its spelling against the README"]


# --- resolution --------------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: dicts merge key by key, anything else in `over` replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _lay_over(alerts: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A pipeline's partial alert blocks laid over the organisation's, field by field.

    `stuck_in_stage.stages` stays two layers, the pipeline's over the organisation's (a
    ChainMap, which reads as the merged thresholds): only the deal knows that a stage id and a
    stage name are one stage, so a flat merge would let the organisation's "98765432" beat the
    pipeline's "Negotiation"; the rule asks each layer in turn instead.
    """
    resolved = _merge(alerts, override)
    stages = override.get("stuck_in_stage", {}).get("stages")
    if stages:
        resolved["stuck_in_stage"]["stages"] = ChainMap(
            copy.deepcopy(stages), alerts["stuck_in_stage"]["stages"]
        )
    return resolved


def _move_neighbour(health: dict[str, Any]) -> dict[str, Any]:
    """Moving one cut point past the default of the other moves that one too (as in Dynamics)."""
    health = dict(health)
    defaults = DEFAULTS["health"]
    if "good_from" in health and "fair_from" not in health:
        health["fair_from"] = min(defaults["fair_from"], health["good_from"])
    elif "fair_from" in health and "good_from" not in health:
        health["good_from"] = max(defaults["good_from"], health["fair_from"])
    return health


def follow_cut_point(document: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A patched settings document in which the cut point the patch moved past the other
    (saved) one takes that one along, as in Dynamics: `fair_from` raised above the saved
    `good_from` raises `good_from` to it, `good_from` lowered below the saved `fair_from` lowers
    `fair_from`. A patch naming both is the admin's own pair, checked as given."""
    out = dict(document)
    moved = patch.get("health")
    health = out.get("health")
    if not isinstance(moved, Mapping) or not isinstance(health, Mapping):
        return out
    good, fair = health.get("good_from"), health.get("fair_from")
    if type(good) is not int or type(fair) is not int or fair <= good:
        return out
    if not all(CUT_POINTS[0] <= value <= CUT_POINTS[1] for value in (good, fair)):
        return out  # refused as given: the other one, taken along, would be refused with it
    moved_good = moved.get("good_from") is not None
    if moved_good == (moved.get("fair_from") is not None):
        return out
    out["health"] = {**health, **({"fair_from": good} if moved_good else {"good_from": fair})}
    return out


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings: the full document plus what the engine looks up per deal."""

    document: dict[str, Any]
    zone: ZoneInfo
    _by_pipeline: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _days_off: list[DaysOff] = field(default_factory=list, repr=False, compare=False)
    """`holidays`, made once (a calendar computes its years as they are looked up)."""

    @property
    def timezone(self) -> str:
        return self.document["timezone"]

    @property
    def locale(self) -> str:
        return self.document["locale"]

    @property
    def health(self) -> dict[str, Any]:
        return self.document["health"]

    @property
    def schedule(self) -> dict[str, Any]:
        return self.document["schedule"]

    @property
    def role_labels(self) -> dict[str, str]:
        """The admin's CRM label -> role mapping ("" ignores a label)."""
        return self.document["role_labels"]

    @property
    def sell(self) -> dict[str, Any]:
        """Zendesk Sell: `poll_seconds`, `role_field` ("" reads no field), `role_tag_prefix`
        (None reads no tags)."""
        return self.document["sell"]

    def task_for(self, code: str) -> dict[str, Any]:
        """The CRM task settings of one alert: `enabled`, `due_in_business_days` (the alert's
        own, else the organisation's), `due_hour`, and the admin's `subject` and `body` if
        given (else the engine's wording in the tenant's locale)."""
        tasks = self.document["tasks"]
        block = tasks["alerts"].get(code, {})
        return {
            "due_in_business_days": tasks["due_in_business_days"],
            "due_hour": tasks["due_hour"],
            **block,
        }

    @property
    def teams(self) -> dict[str, list[str]]:
        """`tasks.teams`: each team's members (CRM user ids) in turn order, by team name."""
        return self.document["tasks"]["teams"]

    def team_for(self, code: str) -> tuple[str, list[str]] | None:
        """The team that takes an alert's tasks in turn (`tasks.alerts.<code>.team`), with its
        members in turn order; None: the deal's owner takes them."""
        name = self.document["tasks"]["alerts"].get(code, {}).get("team")
        return None if name is None else (name, self.teams[name])

    @property
    def fallback_owner(self) -> str | None:
        """Who gets the task of a deal whose owner the CRM deactivated (`tasks.fallback_owner`,
        a CRM user id); None: such tasks are made unassigned."""
        return self.document["tasks"]["fallback_owner"]

    @property
    def holidays(self) -> DaysOff:
        """The local days that are not business days besides weekends: the public holidays of
        `tasks.public_holidays` (a calendar such as "FR" or "US-CA") and `tasks.holidays`."""
        if not self._days_off:
            tasks = self.document["tasks"]
            listed = (date.fromisoformat(d) for d in tasks["holidays"])
            self._days_off.append(DaysOff(listed, tasks["public_holidays"]))
        return self._days_off[0]

    @property
    def notes(self) -> dict[str, Any]:
        return self.document["notes"]

    def alerts_for(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """The alert blocks in force for a pipeline: its overrides laid over the organisation's."""
        resolved = self._by_pipeline.get(pipeline)
        if resolved is None:
            override = self.document["pipelines"].get(pipeline, {}).get("alerts", {})
            resolved = (
                _lay_over(self.document["alerts"], override)
                if override
                else self.document["alerts"]
            )
            self._by_pipeline[pipeline] = resolved
        return resolved


def load_settings(document: Mapping[str, Any] | None = None) -> Settings:
    """Validate a (partial) settings document and fill in the defaults; raise SettingsError."""
    document = {} if document is None else document
    if not isinstance(document, Mapping):
        raise SettingsError({"settings": ["must be a JSON object"]})
    try:
        given = SettingsSchema().load(document)
    except ValidationError as exc:
        flat = _flatten(exc.messages)
        raise SettingsError({path: _explain(path, msgs) for path, msgs in flat.items()}) from None
    if "health" in given:
        given["health"] = _move_neighbour(given["health"])
    merged = _merge(DEFAULTS, given)
    unknown = _unknown_teams(merged["tasks"])
    if unknown:
        raise SettingsError(unknown)
    return Settings(document=merged, zone=ZoneInfo(merged["timezone"]))


def _unknown_teams(tasks: Mapping[str, Any]) -> dict[str, list[str]]:
    """Alerts whose tasks name a team that `tasks.teams` does not define (checked on the whole
    document: a team removed by one change must not leave an alert pointing at nothing)."""
    teams = tasks["teams"]
    known = ", ".join(map(repr, sorted(teams))) or "none yet"
    return {
        f"tasks.alerts.{code}.team": [f"no team {name!r} in tasks.teams (teams: {known})"]
        for code, block in tasks["alerts"].items()
        if (name := block.get("team")) is not None and name not in teams
    }


# --- CRM user ids -------------------------------------------------------------------------------


def rename_users(
    document: Mapping[str, Any], rename: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A settings document (partial, as saved) with every CRM user id it names replaced by
    `rename(id)`, and what was wrong, by dotted path as SettingsError takes it. `document` is
    not changed: the answer is new where it names users and shares the rest with it.

    The settings that name users: `tasks.fallback_owner`, the members of `tasks.teams.<team>`,
    the keys of `notifications.reps` and each of `digest.managers`' `reps`. A new setting that
    names users belongs here, or a CRM whose ids come in several forms (Salesforce's 15 and 18
    characters) would compare it with the form its API sends only by chance.

    `rename` raises ValueError, with a message quoting the id, for text that is no user id:
    that id is kept as written, and the message is an error. Ids that become one are kept
    once, which is an error too: in a list the first stays (its place in a team's turns);
    among `notifications.reps`, the entry already keyed by `rename`'s answer. Parts of another
    shape are left alone (load_settings refuses them)."""
    out = dict(document)
    errors: dict[str, list[str]] = {}

    def renamed(path: str, user_id: Any, before: str = "") -> Any:
        if not isinstance(user_id, str):
            return user_id
        try:
            return rename(user_id)
        except ValueError as exc:
            errors.setdefault(path, []).append(f"{before}{exc}")
            return user_id

    def each_once(path: str, written: list[Any], ids: list[Any]) -> list[Any]:
        kept = list(dict.fromkeys(ids))
        if len(kept) < len(ids):
            twice = [u for u in kept if ids.count(u) > 1]
            forms = "; ".join(
                " and ".join(repr(w) for w, u in zip(written, ids, strict=True) if u == user)
                for user in twice
            )
            errors.setdefault(path, []).append(f"one user listed twice ({forms}); list each once")
        return kept

    def listed(path: str, ids: Any) -> Any:
        if not isinstance(ids, list):
            return ids
        return each_once(path, ids, [renamed(f"{path}.{i}", u) for i, u in enumerate(ids)])

    # Each container on the way to a user id is copied before it is written to (the document
    # is read again at every settings read); the rest is the caller's, shared, never written.
    tasks = out.get("tasks")
    if isinstance(tasks, dict):
        tasks = out["tasks"] = dict(tasks)
        if "fallback_owner" in tasks:
            tasks["fallback_owner"] = renamed("tasks.fallback_owner", tasks["fallback_owner"])
        teams = tasks.get("teams")
        if isinstance(teams, dict):
            tasks["teams"] = {
                team: listed(f"tasks.teams.{team}", ids) for team, ids in teams.items()
            }
    notifications = out.get("notifications")
    if isinstance(notifications, dict) and isinstance(notifications.get("reps"), dict):
        reps = notifications["reps"]
        keys = {key: renamed("notifications.reps", key, "invalid key: ") for key in reps}
        each_once("notifications.reps", list(keys), list(keys.values()))
        # The entry keyed as `rename` answers (the one in force so far) wins a collision.
        ordered = sorted(reps, key=lambda key: key != keys[key])
        kept: dict[str, Any] = {}
        for key in ordered:
            kept.setdefault(keys[key], reps[key])
        out["notifications"] = {**notifications, "reps": kept}
    digest = out.get("digest")
    if isinstance(digest, dict) and isinstance(digest.get("managers"), list):
        out["digest"] = {
            **digest,
            "managers": [
                {**manager, "reps": listed(f"digest.managers.{i}.reps", manager["reps"])}
                if isinstance(manager, dict) and "reps" in manager
                else manager
                for i, manager in enumerate(digest["managers"])
            ],
        }
    return out, errors
