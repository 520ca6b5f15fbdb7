"""What notifications and digests say, in the tenant's locale (en, fr): pure formatting.

Alerts are worded by engine.messages from their facts, so a digest in French says what the CRM
fields say in French. The digest lists deals most valuable first (amount, largest first; an
empty amount last), then most urgent (the earliest close date first, passed ones included;
none last), then by the number of alerts; amounts in different currencies are compared as
numbers. HTML goes with a plain-text alternative made from the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from engine.messages import LOCALE_FALLBACK, alert_message, date_text, grade_name

TEMPLATES = Path(__file__).parent / "templates"

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject_one": "Deal Radar: 1 deal needs attention today",
        "subject_many": "Deal Radar: {n} deals need attention today",
        "team_subject_one": "Deal Radar: 1 deal of your team with alerts today",
        "team_subject_many": "Deal Radar: your team's {n} deals with alerts today",
        "hello": "Hello {name},",
        "intro": "These deals of yours have alerts this morning, most valuable and most urgent "
        "first.",
        "team_intro": "Your team's deals with alerts this morning, by rep, most valuable and most "
        "urgent first.",
        "amount": "Amount",
        "close_date": "Close date",
        "not_set": "not set",
        "open": "Open in the CRM",
        "deals_of": "Deals of {name}",
        "more_one": "... and 1 more deal with alerts.",
        "more_many": "... and {n} more deals with alerts.",
        "footer": "Sent by Deal Radar every morning while your deals have alerts.",
        "started": "New alert on {deal}: {message}",
        "ended": "Alert resolved on {deal}: {message}",
        "grade": "Health of {deal} went from {before} to {after} (score {score})",
        "unnamed": "Deal {id}",
        "prefix": "Deal Radar: ",
    },
    "fr": {
        "subject_one": "Deal Radar : 1 affaire à traiter aujourd'hui",
        "subject_many": "Deal Radar : {n} affaires à traiter aujourd'hui",
        "team_subject_one": "Deal Radar : 1 affaire de votre équipe en alerte aujourd'hui",
        "team_subject_many": "Deal Radar : {n} affaires de votre équipe en alerte aujourd'hui",
        "hello": "Bonjour {name},",
        "intro": "Voici vos affaires en alerte ce matin, les plus importantes et les plus urgentes "
        "d'abord.",
        "team_intro": "Les affaires de votre équipe en alerte ce matin, par commercial, les plus "
        "importantes et les plus urgentes d'abord.",
        "amount": "Montant",
        "close_date": "Date de clôture",
        "not_set": "non renseigné",
        "open": "Ouvrir dans le CRM",
        "deals_of": "Affaires de {name}",
        "more_one": "... et 1 autre affaire en alerte.",
        "more_many": "... et {n} autres affaires en alerte.",
        "footer": "Envoyé par Deal Radar chaque matin tant que vos affaires sont en alerte.",
        "started": "Nouvelle alerte sur {deal} : {message}",
        "ended": "Alerte levée sur {deal} : {message}",
        "grade": "Santé de {deal} : de {before} à {after} (score {score})",
        "unnamed": "Affaire {id}",
        "prefix": "Deal Radar : ",
    },
}


def words(locale: str) -> dict[str, str]:
    return _WORDS.get(locale) or _WORDS[LOCALE_FALLBACK]


def counted(w: Mapping[str, str], name: str, n: int) -> str:
    """The `name_one` or `name_many` wording for `n` (1 deal, 2 deals; 1 affaire, 2 affaires)."""
    return w[f"{name}_one" if n == 1 else f"{name}_many"].format(n=n)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class DigestDeal:
    """One alerting deal as the digest shows it."""

    id: str
    name: str
    amount: float | None
    currency: str
    close_date: date | None
    url: str | None
    owner: str | None
    alerts: tuple[dict[str, Any], ...]
    """The evaluation's alerts: {"code", "message", "facts"}."""

    @classmethod
    def from_row(cls, deal: Mapping[str, Any], alerts: Sequence[dict[str, Any]]) -> DigestDeal:
        close = deal.get("close_date")
        return cls(
            id=str(deal["id"]),
            name=deal.get("name") or "",
            amount=deal.get("amount"),
            currency=deal.get("currency") or "",
            close_date=date.fromisoformat(close) if close else None,
            url=deal.get("url"),
            owner=deal.get("owner"),
            alerts=tuple(alerts),
        )


@dataclass(frozen=True)
class Section:
    """A rep's deals in a manager's digest (`title` None in a rep's own)."""

    title: str | None
    deals: list[DigestDeal] = field(default_factory=list)
    more: int = 0
    """Alerting deals left out of the email (beyond jobs.digest.MAX_DEALS)."""


def ordered(deals: Sequence[DigestDeal]) -> list[DigestDeal]:
    """Most valuable first, then most urgent (see the module's docstring)."""

    def key(d: DigestDeal) -> tuple[Any, ...]:
        return (
            d.amount is None,
            -(d.amount or 0),
            d.close_date is None,
            d.close_date or date.max,
            -len(d.alerts),
            d.name.casefold(),
            d.id,
        )

    return sorted(deals, key=key)


def amount_text(amount: float | None, currency: str, locale: str) -> str:
    if amount is None:
        return words(locale)["not_set"]
    whole = float(amount).is_integer()
    if locale == "fr":
        number = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
        number = number.replace(",", "\u202f").replace(".", ",")
        return f"{number} {currency}".strip()
    number = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    return f"{currency} {number}".strip()


def alert_text(alert: Mapping[str, Any], locale: str) -> str:
    """The alert in plain words in `locale`, from its facts; the stored message if the facts
    cannot be worded (an evaluation from an older version)."""
    try:
        return alert_message(alert["code"], alert.get("facts") or {}, locale)
    except (KeyError, ValueError, TypeError):
        return alert.get("message") or alert["code"]


def deal_title(deal: Mapping[str, Any] | DigestDeal, locale: str) -> str:
    name = deal.name if isinstance(deal, DigestDeal) else deal.get("name")
    ident = deal.id if isinstance(deal, DigestDeal) else deal.get("id")
    return name or words(locale)["unnamed"].format(id=ident)


def link(url: str | None) -> str | None:
    """A CRM link fit to show: http(s) only (a `javascript:` URL in a CRM field is not one)."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


@cache
def _env(autoescape: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]) if autoescape else False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def digest(
    recipient: str, sections: Sequence[Section], locale: str, *, team: bool = False
) -> Rendered:
    """A rep's digest (one section, no title) or a manager's (a section per rep)."""
    w = words(locale)
    shown = [Section(s.title, ordered(s.deals), s.more) for s in sections if s.deals]
    count = sum(len(s.deals) + s.more for s in shown)
    subject = counted(w, "team_subject" if team else "subject", count)
    context = {
        "w": w,
        "hello": w["hello"].format(name=recipient),
        "intro": w["team_intro"] if team else w["intro"],
        "sections": [
            {
                "title": w["deals_of"].format(name=s.title) if s.title else None,
                "deals": [_deal_context(d, locale) for d in s.deals],
                "more": counted(w, "more", s.more) if s.more else None,
            }
            for s in shown
        ],
    }
    text = _env(False).get_template("digest.txt").render(**context)
    html = _env(True).get_template("digest.html").render(subject=subject, lang=locale, **context)
    return Rendered(subject=subject, text=text, html=html)


def _deal_context(deal: DigestDeal, locale: str) -> dict[str, Any]:
    w = words(locale)
    return {
        "title": deal_title(deal, locale),
        "amount": amount_text(deal.amount, deal.currency, locale),
        "close_date": date_text(deal.close_date, locale) if deal.close_date else w["not_set"],
        "url": link(deal.url),
        "alerts": [alert_text(a, locale) for a in deal.alerts],
    }


def event(evt: Mapping[str, Any], deal: Mapping[str, Any], locale: str) -> Rendered:
    """A rep's instant notification of one outbox event on one of their deals."""
    w = words(locale)
    title = deal_title(deal, locale)
    if evt["type"] == "health.grade_changed":
        line = w["grade"].format(
            deal=title,
            before=grade_name(evt["from"], locale),
            after=grade_name(evt["to"], locale),
            score=(evt.get("health") or {}).get("score", "?"),
        )
    else:
        message = (
            alert_text({"code": evt["code"], "facts": evt["facts"], "message": evt.get("message")},
                       locale)
            if evt.get("facts") else (evt.get("message") or evt["code"])
        )  # fmt: skip
        line = w["started" if evt["type"] == "alert.started" else "ended"].format(
            deal=title, message=message
        )
    url = link(deal.get("url"))
    text = f"{line}\n\n{w['open']}: {url}\n" if url else f"{line}\n"
    html = _env(True).get_template("event.html").render(line=line, url=url, w=w, lang=locale)
    return Rendered(subject=w["prefix"] + line, text=text, html=html)


def slack_message(rendered: Rendered, url: str | None, locale: str) -> dict[str, Any]:
    """An incoming-webhook payload: the line, with a link into the CRM when there is one."""
    line = rendered.subject.removeprefix(words(locale)["prefix"])
    text = f"{_slack_escape(line)} <{url}|{words(locale)['open']}>" if url else _slack_escape(line)
    return {"text": text}


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, as Slack documents them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
