"""A sales organisation described neutrally, for the CRM emulators to load into their own shapes.

`sandbox.seed.generate` draws a `World`; the HubSpot, Salesforce and Zendesk Sell emulators each
turn it into their records (owners or users, pipelines and stages, companies or accounts,
contacts, deals or opportunities with their contact roles, calls, emails, meetings, tasks and
notes). Nothing here knows a CRM's field names, and nothing imports the product: the world is
the customer's data, an independent witness of what Deal Radar must read.

Every record is a frozen dataclass; times are aware UTC datetimes, close dates are dates. Ids are
the world's own (`r1`, `co1`, `p1`, `d1`, `a1`): a loader maps them to the CRM's ids.
`World.to_json()` / `World.from_json()` give a lossless JSON form (version 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TextIO

FORMAT_VERSION = 1
"""The version written by `World.to_dict`; `World.from_dict` refuses any other."""

KINDS = ("email", "call", "meeting", "task", "note")
DIRECTIONS = ("inbound", "outbound", "internal")
STATUSES = ("done", "scheduled")
DEAL_STATUSES = ("open", "won", "lost")
GRADES = ("good", "fair", "poor")


@dataclass(frozen=True, slots=True)
class Rep:
    """A salesperson: the CRM's owner (HubSpot), user (Salesforce, Sell)."""

    id: str
    first_name: str
    last_name: str
    email: str
    team: str | None = None
    manager_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str
    order: int
    probability: float
    """0.0 to 1.0, the win likelihood the CRM shows for deals in the stage."""
    closed: bool = False
    won: bool = False


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]
    """In funnel order; the closed stages (won, then lost) last."""

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"pipeline {self.id!r} has no stage {stage_id!r}")

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if not s.closed)


@dataclass(frozen=True, slots=True)
class Company:
    id: str
    name: str
    domain: str
    language: str
    """`en` or `fr`: what its people mostly speak and write."""
    country: str
    """ISO 3166-1 alpha-2."""
    industry: str


@dataclass(frozen=True, slots=True)
class Person:
    """A contact at a customer; one person may be on several deals of their company."""

    id: str
    first_name: str
    last_name: str
    email: str
    job_title: str
    """Free text, English or French, as people type it; empty when the CRM has none."""
    company_id: str
    language: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class DealContact:
    """A person on a deal, with the buying roles they hold there (possibly none)."""

    person_id: str
    roles: tuple[str, ...] = ()
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Deal:
    id: str
    name: str
    pipeline_id: str
    stage_id: str
    stage_history: tuple[tuple[str, datetime], ...]
    """(stage id, entered at), oldest first; the last entry is the current stage."""
    amount: int | float | None
    """None when the CRM field is empty (zero is an amount)."""
    currency: str
    close_date: date | None
    created_at: datetime
    owner_id: str
    status: str
    """`open`, `won` or `lost`."""
    company_id: str
    contacts: tuple[DealContact, ...] = ()

    @property
    def stage_entered_at(self) -> datetime:
        return self.stage_history[-1][1]


@dataclass(frozen=True, slots=True)
class Activity:
    """An email, call, meeting, task or note, logged by a rep against one or more deals.

    `participants` are the direct ones: an email's sender and To recipients, a call's other
    party, a meeting's attendees; `cc` are people only copied on an email. A meeting's `at` is
    its start and `end` its end; a task's `at` is its due time. Scheduled activities in the past
    are ones nobody updated (an overdue task, a meeting whose outcome was never logged).
    """

    id: str
    kind: str
    at: datetime
    direction: str
    status: str
    rep_id: str
    deal_ids: tuple[str, ...]
    participants: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    end: datetime | None = None
    subject: str = ""
    body: str = ""


@dataclass(frozen=True)
class World:
    """Everything a CRM holds for one sales org, as of `now`, with what each deal was drawn for.

    `scenarios[deal_id]` is the set of alert codes the deal raises with Deal Radar's default
    settings as of `now` (empty for healthy and for closed deals), in the engine's display
    order; `grades[deal_id]` is its relationship health grade (`good`, `fair` or `poor`).
    """

    now: datetime
    reps: tuple[Rep, ...]
    pipelines: tuple[Pipeline, ...]
    companies: tuple[Company, ...]
    people: tuple[Person, ...]
    deals: tuple[Deal, ...]
    activities: tuple[Activity, ...]
    scenarios: dict[str, tuple[str, ...]] = field(default_factory=dict)
    grades: dict[str, str] = field(default_factory=dict)

    # --- look-ups (computed on each call: a world is read, not queried in loops) ---------------

    def activities_by_deal(self) -> dict[str, list[Activity]]:
        """Each deal's activities in time order."""
        out: dict[str, list[Activity]] = {d.id: [] for d in self.deals}
        for a in self.activities:
            for deal_id in a.deal_ids:
                out[deal_id].append(a)
        return out

    def people_by_id(self) -> dict[str, Person]:
        return {p.id: p for p in self.people}

    # --- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "now": _iso(self.now),
            "reps": [_rep_out(r) for r in self.reps],
            "pipelines": [_pipeline_out(p) for p in self.pipelines],
            "companies": [_company_out(c) for c in self.companies],
            "people": [_person_out(p) for p in self.people],
            "deals": [_deal_out(d) for d in self.deals],
            "activities": [_activity_out(a) for a in self.activities],
            "scenarios": {k: list(v) for k, v in self.scenarios.items()},
            "grades": dict(self.grades),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> World:
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise ValueError(f"world format version {version!r}, expected {FORMAT_VERSION}")
        return cls(
            now=_dt(data["now"]),
            reps=tuple(Rep(**r) for r in data["reps"]),
            pipelines=tuple(_pipeline_in(p) for p in data["pipelines"]),
            companies=tuple(Company(**c) for c in data["companies"]),
            people=tuple(Person(**p) for p in data["people"]),
            deals=tuple(_deal_in(d) for d in data["deals"]),
            activities=tuple(_activity_in(a) for a in data["activities"]),
            scenarios={k: tuple(v) for k, v in data["scenarios"].items()},
            grades=dict(data["grades"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def write_json(self, fp: TextIO) -> None:
        """Write `to_json()`'s very text to a file, one record at a time.

        A 100,000-deal world is some 600 MB of JSON: this never holds it all in memory.
        """
        dumps = json.dumps
        fp.write(f'{{"version": {FORMAT_VERSION}, "now": {dumps(_iso(self.now))}')
        sections: tuple[tuple[str, Sequence[Any], Callable[[Any], dict[str, Any]]], ...] = (
            ("reps", self.reps, _rep_out),
            ("pipelines", self.pipelines, _pipeline_out),
            ("companies", self.companies, _company_out),
            ("people", self.people, _person_out),
            ("deals", self.deals, _deal_out),
            ("activities", self.activities, _activity_out),
        )
        for name, records, out in sections:
            fp.write(f', "{name}": [')
            for i, record in enumerate(records):
                if i:
                    fp.write(", ")
                fp.write(dumps(out(record), ensure_ascii=False))
            fp.write("]")
        scenarios = {k: list(v) for k, v in self.scenarios.items()}
        fp.write(f', "scenarios": {dumps(scenarios, ensure_ascii=False)}')
        fp.write(f', "grades": {dumps(self.grades, ensure_ascii=False)}}}')

    @classmethod
    def from_json(cls, text: str | bytes) -> World:
        return cls.from_dict(json.loads(text))


# --- JSON helpers ------------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _rep_out(r: Rep) -> dict[str, Any]:
    return {
        "id": r.id,
        "first_name": r.first_name,
        "last_name": r.last_name,
        "email": r.email,
        "team": r.team,
        "manager_id": r.manager_id,
    }


def _pipeline_out(p: Pipeline) -> dict[str, Any]:
    return {
        "id": p.id,
        "label": p.label,
        "stages": [
            {
                "id": s.id,
                "label": s.label,
                "order": s.order,
                "probability": s.probability,
                "closed": s.closed,
                "won": s.won,
            }
            for s in p.stages
        ],
    }


def _pipeline_in(d: dict[str, Any]) -> Pipeline:
    return Pipeline(id=d["id"], label=d["label"], stages=tuple(Stage(**s) for s in d["stages"]))


def _company_out(c: Company) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "domain": c.domain,
        "language": c.language,
        "country": c.country,
        "industry": c.industry,
    }


def _person_out(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "job_title": p.job_title,
        "company_id": p.company_id,
        "language": p.language,
    }


def _deal_out(d: Deal) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "pipeline_id": d.pipeline_id,
        "stage_id": d.stage_id,
        "stage_history": [[stage, _iso(at)] for stage, at in d.stage_history],
        "amount": d.amount,
        "currency": d.currency,
        "close_date": None if d.close_date is None else d.close_date.isoformat(),
        "created_at": _iso(d.created_at),
        "owner_id": d.owner_id,
        "status": d.status,
        "company_id": d.company_id,
        "contacts": [
            {"person_id": c.person_id, "roles": list(c.roles), "primary": c.primary}
            for c in d.contacts
        ],
    }


def _deal_in(d: dict[str, Any]) -> Deal:
    return Deal(
        id=d["id"],
        name=d["name"],
        pipeline_id=d["pipeline_id"],
        stage_id=d["stage_id"],
        stage_history=tuple((stage, _dt(at)) for stage, at in d["stage_history"]),
        amount=d["amount"],
        currency=d["currency"],
        close_date=None if d["close_date"] is None else date.fromisoformat(d["close_date"]),
        created_at=_dt(d["created_at"]),
        owner_id=d["owner_id"],
        status=d["status"],
        company_id=d["company_id"],
        contacts=tuple(
            DealContact(c["person_id"], tuple(c["roles"]), c["primary"]) for c in d["contacts"]
        ),
    )


def _activity_out(a: Activity) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "at": _iso(a.at),
        "end": None if a.end is None else _iso(a.end),
        "direction": a.direction,
        "status": a.status,
        "rep_id": a.rep_id,
        "deal_ids": list(a.deal_ids),
        "participants": list(a.participants),
        "cc": list(a.cc),
        "subject": a.subject,
        "body": a.body,
    }


def _activity_in(d: dict[str, Any]) -> Activity:
    return Activity(
        id=d["id"],
        kind=d["kind"],
        at=_dt(d["at"]),
        direction=d["direction"],
        status=d["status"],
        rep_id=d["rep_id"],
        deal_ids=tuple(d["deal_ids"]),
        participants=tuple(d["participants"]),
        cc=tuple(d["cc"]),
        end=None if d["end"] is None else _dt(d["end"]),
        subject=d["subject"],
        body=d["body"],
    )
