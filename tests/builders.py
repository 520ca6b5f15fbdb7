"""Builders for bundles in their JSON form, so each test states only what matters to it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.evaluate import Evaluation, evaluate
from engine.model import load_bundle
from engine.settings import ALERT_CODES, load_settings

NOW = datetime.fromisoformat("2026-11-25T12:00:00+00:00")


def ago(days: float = 0, *, hours: float = 0, now: datetime = NOW) -> str:
    return (now - timedelta(days=days, hours=hours)).isoformat()


def ahead(days: float = 0, *, hours: float = 0, now: datetime = NOW) -> str:
    return (now + timedelta(days=days, hours=hours)).isoformat()


def deal(**fields: Any) -> dict[str, Any]:
    d = {
        "id": "d1",
        "name": "Acme",
        "pipeline": "sales",
        "stage": "proposal",
        "stage_entered_at": ago(1),
        "amount": 1000,
        "currency": "EUR",
        "close_date": None,
        "created_at": ago(2),
        "owner": "u1",
        "status": "open",
    }
    d.update(fields)
    return d


def contact(
    cid: str, title: str = "", roles: tuple[str, ...] = (), **fields: Any
) -> dict[str, Any]:
    c = {
        "id": cid,
        "name": f"Contact {cid}",
        "email": f"{cid}@acme.example",
        "title": title,
        "roles": list(roles),
    }
    c.update(fields)
    return c


_counter = iter(range(1, 10**9))


def activity(
    kind: str = "email",
    at: str | None = None,
    *,
    contacts: tuple[str, ...] = (),
    cc: tuple[str, ...] = (),
    status: str = "done",
    direction: str = "outbound",
    **fields: Any,
) -> dict[str, Any]:
    a = {
        "id": f"a{next(_counter)}",
        "kind": kind,
        "at": at or ago(0),
        "direction": direction,
        "status": status,
        "contacts": list(contacts),
        "cc": list(cc),
        "user": "u1",
    }
    a.update(fields)
    return a


def bundle(
    deal_fields: dict[str, Any] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    activities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "deal": deal(**(deal_fields or {})),
        "contacts": contacts or [],
        "activities": activities or [],
        "users": [{"id": "u1", "name": "Rep One", "email": "rep@vendor.example"}],
    }


def run(
    doc: dict[str, Any],
    settings: dict[str, Any] | None = None,
    now: datetime = NOW,
    **kwargs: Any,
) -> Evaluation:
    return evaluate(load_bundle(doc), load_settings(settings or {}), now, **kwargs)


def alerts(doc: dict[str, Any], settings: dict[str, Any] | None = None, **kwargs: Any) -> dict:
    """The alerts raised, by code (key_role_silent by `code:role`), each as its dict form."""
    return {a.key: a.to_dict() for a in run(doc, settings, **kwargs).alerts}


def only(code: str, **extra: Any) -> dict[str, Any]:
    """Settings with every alert off but `code` (with `extra` in its block)."""
    blocks: dict[str, Any] = {c: {"enabled": c == code} for c in ALERT_CODES}
    blocks[code].update(extra)
    return {"alerts": blocks}
