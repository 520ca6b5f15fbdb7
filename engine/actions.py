"""What Deal Radar leaves in the CRM for reps: a task per alert episode, a note per grade change.

Pure planning and wording; the jobs (jobs/crm_tasks.py, jobs/crm_notes.py) make the CRM calls.
A task says what to do in its subject ("Get back in touch: Acme renewal"), why in its body (the
alert's one-line message) and links back to the deal; an admin may reword both per alert in
`tasks.alerts.<code>` with the placeholders of engine.settings.TASK_PLACEHOLDERS. A note on a
grade change names the old and new grades and the parts of the score that moved.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.business_days import due_at
from engine.messages import LOCALE_FALLBACK, grade_name
from engine.settings import Settings

_SUBJECTS: dict[str, dict[str, str]] = {
    "en": {
        "no_activity": "Get back in touch: {deal_name}",
        "no_meeting_scheduled": "Schedule the next meeting: {deal_name}",
        "single_threaded": "Bring in another contact: {deal_name}",
        "key_role_silent": "Reach the key contacts again: {deal_name}",
        "powermap_gap": "Engage a senior sponsor: {deal_name}",
        "stuck_in_stage": "Move the deal forward: {deal_name}",
        "close_date_passed": "Update the close date: {deal_name}",
        "amount_missing": "Fill in the amount: {deal_name}",
        "deal_too_old": "Decide on the deal: {deal_name}",
    },
    "fr": {
        "no_activity": "Reprendre contact : {deal_name}",
        "no_meeting_scheduled": "Planifier la prochaine réunion : {deal_name}",
        "single_threaded": "Impliquer un autre interlocuteur : {deal_name}",
        "key_role_silent": "Relancer les rôles clés : {deal_name}",
        "powermap_gap": "Impliquer un décideur : {deal_name}",
        "stuck_in_stage": "Faire avancer l'affaire : {deal_name}",
        "close_date_passed": "Mettre à jour la date de clôture : {deal_name}",
        "amount_missing": "Renseigner le montant : {deal_name}",
        "deal_too_old": "Statuer sur l'affaire : {deal_name}",
    },
}

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "why": "Deal Radar: {message}.",
        "link": "Open the deal: {deal_url}",
        "closes": "This task is completed for you when the alert ends.",
        "grade": "Deal Radar: relationship health went from {before} to {after} "
        "(score {score_before} → {score_after}).",
        "grade_short": "Deal Radar: relationship health went from {before} to {after}.",
        "moved": "What moved:",
        "recency": "- recency: {before} → {after} of {max} points{last}",
        "last": " (last activity {days} ago)",
        "never": " (no activity yet)",
        "frequency": "- frequency: {before} → {after} of {max} points",
        "count": "- {kind}: {before} → {after}",
        "email": "emails",
        "call": "calls",
        "meeting": "meetings",
        "task": "tasks done",
    },
    "fr": {
        "why": "Deal Radar : {message}.",
        "link": "Ouvrir l'affaire : {deal_url}",
        "closes": "Cette tâche sera terminée pour vous quand l'alerte cessera.",
        "grade": "Deal Radar : la santé de la relation est passée de {before} à {after} "
        "(score {score_before} → {score_after}).",
        "grade_short": "Deal Radar : la santé de la relation est passée de {before} à {after}.",
        "moved": "Ce qui a changé :",
        "recency": "- récence : {before} → {after} sur {max} points{last}",
        "last": " (dernière activité il y a {days})",
        "never": " (aucune activité)",
        "frequency": "- fréquence : {before} → {after} sur {max} points",
        "count": "- {kind} : {before} → {after}",
        "email": "e-mails",
        "call": "appels",
        "meeting": "réunions",
        "task": "tâches faites",
    },
}
COUNTED_KINDS = ("email", "call", "meeting", "task")


@dataclass(frozen=True, slots=True)
class TaskPlan:
    subject: str
    body: str
    due: datetime
    """Aware, in the tenant's timezone."""


def _text(locale: str) -> dict[str, str]:
    return _TEXT.get(locale) or _TEXT[LOCALE_FALLBACK]


def plan_task(
    settings: Settings,
    code: str,
    *,
    message: str,
    deal_name: str,
    deal_url: str | None,
    started_at: datetime,
) -> TaskPlan | None:
    """The task for an alert episode that started at `started_at`, or None when the tenant
    wants no task for this alert."""
    task = settings.task_for(code)
    if not task["enabled"]:
        return None
    values = {"deal_name": deal_name, "message": message, "deal_url": deal_url or ""}
    subjects = _SUBJECTS.get(settings.locale) or _SUBJECTS[LOCALE_FALLBACK]
    subject = task.get("subject") or subjects[code]
    if "body" in task:
        body = task["body"].format_map(values)
    else:
        text = _text(settings.locale)
        lines = [text["why"].format_map(values)]
        if deal_url:
            lines.append(text["link"].format_map(values))
        lines.append(text["closes"])
        body = "\n\n".join(lines)
    due = due_at(
        started_at, settings.zone, task["due_in_business_days"], task["due_hour"],
        settings.holidays,
    )  # fmt: skip
    return TaskPlan(subject=subject.format_map(values).strip(), body=body.strip(), due=due)


def assignees(
    owner: str | None, settings: Settings, inactive: Container[str]
) -> list[str | None]:
    """Who stands for a deal's owner, in the order to try (the next when the CRM refuses one
    as deactivated): the owner, then `tasks.fallback_owner`, each unless deactivated; then
    nobody (None). The first is who gets the deal's tasks, notifications and digest."""
    wanted = dict.fromkeys(u for u in (owner, settings.fallback_owner) if u)
    return [u for u in wanted if u not in inactive] + [None]


def team_turn(members: Sequence[str], turn: int, inactive: Container[str]) -> list[str]:
    """Who takes the task that drew `turn` (1, 2, 3, ...) of a team's round robin, in the order
    to try: the active member whose turn it is, then the others after them, round the team.
    Empty when every member is deactivated."""
    active = [m for m in members if m not in inactive]
    if not active:
        return []
    start = (turn - 1) % len(active)
    return active[start:] + active[:start]


def grade_note(
    before: str,
    after: str,
    health_before: Mapping[str, Any] | None,
    health_after: Mapping[str, Any],
    locale: str = LOCALE_FALLBACK,
) -> str:
    """The note for a grade change: the grades, the scores, and each part of the score that
    moved (recency, frequency, the count of each kind of done activity)."""
    text = _text(locale)
    names = {"before": grade_name(before, locale), "after": grade_name(after, locale)}
    if not health_before:
        return text["grade_short"].format(**names)
    lines = [
        text["grade"].format(
            **names, score_before=health_before["score"], score_after=health_after["score"]
        )
    ]
    moved = _moved(
        health_before.get("components") or {}, health_after["components"], text, locale
    )
    if moved:
        lines += ["", text["moved"], *moved]
    return "\n".join(lines)


def _moved(
    old: Mapping[str, Any], new: Mapping[str, Any], text: Mapping[str, str], locale: str
) -> list[str]:
    out = []
    n = _number_in(locale)
    recency_old, recency_new = old.get("recency") or {}, new["recency"]
    if recency_old.get("points") != recency_new["points"]:
        days = recency_new.get("days_since_last")
        last = text["never"] if days is None else text["last"].format(days=_days(days, locale))
        before, after = recency_old.get("points", 0), recency_new["points"]
        out.append(text["recency"].format(before=n(before), after=n(after),
                                          max=recency_new["max"], last=last))  # fmt: skip
    frequency_old, frequency_new = old.get("frequency") or {}, new["frequency"]
    if frequency_old.get("points") != frequency_new["points"]:
        before, after = frequency_old.get("points", 0), frequency_new["points"]
        out.append(text["frequency"].format(before=n(before), after=n(after),
                                            max=frequency_new["max"]))  # fmt: skip
    counts_old, counts_new = old.get("activities") or {}, new.get("activities") or {}
    for kind in COUNTED_KINDS:
        a, b = counts_old.get(kind, 0), counts_new.get(kind, 0)
        if a != b:
            out.append(text["count"].format(kind=text[kind], before=a, after=b))
    return out


def _number_in(locale: str) -> Callable[[float], str]:
    """Points and ages as the note's reader writes decimals (40,5 in French)."""
    if locale == "fr":
        return lambda x: str(x).replace(".", ",")
    return str


def _days(age: float, locale: str) -> str:
    """A health age in days (to a tenth): French keeps the singular below 2 (1,5 jour)."""
    number = _number_in(locale)(age)
    if locale == "fr":
        return f"{number} jour" if abs(age) < 2 else f"{number} jours"
    return f"{number} day" if age == 1 else f"{number} days"
