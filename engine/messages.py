"""Plain-words messages for alerts and health, in the tenant's locale (en, fr).

Every message names the numbers behind it, so a rep can check it against the CRM at a glance.
A template per alert and locale is filled from the alert's facts, after `_words` has turned the
facts into words (plural forms, names, dates and levels in the locale).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

LOCALE_FALLBACK = "en"

_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "no_activity": "No activity for {days} (threshold {threshold})",
        "no_activity.never": (
            "No activity since the deal was created {days} ago (threshold {threshold})"
        ),
        "no_meeting_scheduled": "No meeting scheduled",
        "single_threaded": "Only {contact} engaged for {days} (threshold {threshold})",
        "key_role_silent": (
            "No interaction with the {role} ({contacts}) for {days} (threshold {threshold})"
        ),
        "powermap_gap": (
            "Closes in {days_to_close} with no {level} or above engaged (threshold {threshold})"
        ),
        "powermap_gap.today": (
            "Closes today with no {level} or above engaged (threshold {threshold})"
        ),
        "stuck_in_stage": "In stage {stage_name} for {days} (threshold {threshold})",
        "close_date_passed": "Close date passed {days} ago ({close_date})",
        "amount_missing": "Amount is missing",
        "deal_too_old": "Deal created {days} ago (threshold {threshold})",
    },
    "fr": {
        "no_activity": "Aucune activité depuis {days} (seuil {threshold})",
        "no_activity.never": (
            "Aucune activité depuis la création de l'affaire il y a {days} (seuil {threshold})"
        ),
        "no_meeting_scheduled": "Aucune réunion planifiée",
        "single_threaded": "Un seul interlocuteur, {contact}, depuis {days} (seuil {threshold})",
        "key_role_silent": (
            "Aucune interaction avec le rôle {role} ({contacts}) depuis {days} (seuil {threshold})"
        ),
        "powermap_gap": (
            "Clôture dans {days_to_close} sans interlocuteur de niveau {level} ou plus "
            "(seuil {threshold})"
        ),
        "powermap_gap.today": (
            "Clôture aujourd'hui sans interlocuteur de niveau {level} ou plus (seuil {threshold})"
        ),
        "stuck_in_stage": "Dans l'étape {stage_name} depuis {days} (seuil {threshold})",
        "close_date_passed": "Date de clôture dépassée depuis {days} ({close_date})",
        "amount_missing": "Montant manquant",
        "deal_too_old": "Affaire créée il y a {days} (seuil {threshold})",
    },
}

_LEVEL_NAMES = {
    "en": {"director": "director", "vp": "VP", "c_level": "C-level"},
    "fr": {"director": "directeur", "vp": "VP", "c_level": "direction générale"},
}
_GRADE_NAMES = {
    "en": {"good": "good", "fair": "fair", "poor": "poor"},
    "fr": {"good": "bonne", "fair": "moyenne", "poor": "faible"},
}

_TREND_NAMES = {
    "en": {"improving": "improving", "steady": "steady", "declining": "declining"},
    "fr": {"improving": "en hausse", "steady": "stable", "declining": "en baisse"},
}
_STATUS_NAMES = {
    "en": {"open": "open", "won": "won", "lost": "lost"},
    "fr": {"open": "en cours", "won": "gagnée", "lost": "perdue"},  # une affaire
}
_THOUSANDS = {"en": ",", "fr": "\u202f"}
"""Digit group separators: French writes 12 500 with a narrow no-break space."""

_THRESHOLD_IS_DAYS = frozenset({"powermap_gap"})
"""Alerts whose threshold reads better with its unit ("threshold 10 days")."""


def days_text(n: int, locale: str = LOCALE_FALLBACK) -> str:
    if locale == "fr":
        return f"{n} jour" if abs(n) <= 1 else f"{n} jours"  # French: singular for 0 and 1
    return f"{n} day" if abs(n) == 1 else f"{n} days"


def date_text(value: str | date, locale: str = LOCALE_FALLBACK) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return d.strftime("%d/%m/%Y") if locale == "fr" else d.isoformat()


def _person(contact: Mapping[str, Any]) -> str:
    return contact.get("name") or contact["id"]


def _words(code: str, facts: Mapping[str, Any], locale: str) -> dict[str, Any]:
    words = dict(facts)
    for key in ("days", "days_to_close"):
        if key in facts:
            words[key] = days_text(facts[key], locale)
    if code in _THRESHOLD_IS_DAYS:
        words["threshold"] = days_text(facts["threshold"], locale)
    if "contact" in facts:
        words["contact"] = _person(facts["contact"])
    if "contacts" in facts:
        words["contacts"] = ", ".join(_person(c) for c in facts["contacts"])
    if "level" in facts:
        words["level"] = level_name(facts["level"], locale)
    if facts.get("close_date"):
        words["close_date"] = date_text(facts["close_date"], locale)
    if "stage" in facts:
        words.setdefault("stage_name", facts["stage"])  # facts stored before stage names
    return words


def alert_message(code: str, facts: Mapping[str, Any], locale: str = LOCALE_FALLBACK) -> str:
    """The one-line explanation of an alert, in the tenant's locale."""
    templates = _TEMPLATES.get(locale) or _TEMPLATES[LOCALE_FALLBACK]
    key = code
    if code == "no_activity" and facts.get("last_interaction_at") is None:
        key = "no_activity.never"
    elif code == "powermap_gap" and facts.get("days_to_close") == 0:
        key = "powermap_gap.today"
    return templates[key].format(**_words(code, facts, locale))


def grade_name(grade: str, locale: str = LOCALE_FALLBACK) -> str:
    return _GRADE_NAMES.get(locale, _GRADE_NAMES[LOCALE_FALLBACK])[grade]


def trend_name(trend: str, locale: str = LOCALE_FALLBACK) -> str:
    return _TREND_NAMES.get(locale, _TREND_NAMES[LOCALE_FALLBACK])[trend]


def status_name(status: str, locale: str = LOCALE_FALLBACK) -> str:
    """A deal's status (open, won, lost) in words."""
    return _STATUS_NAMES.get(locale, _STATUS_NAMES[LOCALE_FALLBACK])[status]


def amount_text(amount: float, currency: str | None, locale: str = LOCALE_FALLBACK) -> str:
    """An amount rounded to units, its digits grouped as the locale writes them."""
    grouped = f"{amount:,.0f}".replace(",", _THOUSANDS.get(locale, ","))
    return f"{grouped} {currency or ''}".strip()


def level_name(level: str, locale: str = LOCALE_FALLBACK) -> str:
    return _LEVEL_NAMES.get(locale, _LEVEL_NAMES[LOCALE_FALLBACK])[level]
