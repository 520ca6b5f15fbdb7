"""What `dealradar sandbox` shows: the initial sync's progress, the deals by alert, and the
URLs and commands to try next. Everything is read from the product's own JSON API with the
tenant's API key, as any client would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from redis import Redis

from adapters.hubspot.properties import NAMES
from connector.commands.jobs_cmd import failed_jobs, reason
from connector.commands.tenants_cmd import render_table
from engine.alerts import ALERT_CODES

PAGE = 200
"""The API's largest page."""
TOP_DEALS = 10
NAME_WIDTH = 34
SHOWN_ALERTS = 3
"""Alert codes shown per deal in the table (the count of the others follows)."""
EXAMPLE_ALERT = "no_meeting_scheduled"
"""The alert the suggested next step (log a meeting in the emulator) makes disappear."""


def fetch_deals(app_url: str, key: str) -> list[dict[str, Any]]:
    """Every deal the tenant has, page after page of GET /api/v1/deals."""
    deals: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        answer = requests.get(
            f"{app_url}/api/v1/deals",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        answer.raise_for_status()
        page = answer.json()
        deals.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return deals


def sync_line(deals: Sequence[dict[str, Any]], total: int) -> str:
    evaluated = sum(1 for d in deals if d.get("evaluated_at"))
    pct = 100 * evaluated // total if total else 100
    return f"initial sync: {evaluated}/{total} deals synced and evaluated ({pct}%)"


def job_failures(redis_url: str, seen: set[str]) -> list[str]:
    """Jobs that failed and are not in `seen` (added to it), as lines saying why."""
    with Redis.from_url(redis_url) as redis:
        failed = failed_jobs(redis)
        out = []
        for queue, job in failed:
            if job.id not in seen:
                seen.add(job.id)
                out.append(f"a {queue} job failed: {job.func_name}: {reason(job)}")
    return out


def deal_table(deals: Sequence[dict[str, Any]]) -> str:
    """Open deals counted per alert, then the deals with the most alerts."""
    open_deals = [d for d in deals if d.get("status") == "open" and d.get("evaluated_at")]
    counts = Counter(code for d in open_deals for code in set(d.get("alerts") or ()))
    quiet = sum(1 for d in open_deals if not d.get("alerts"))
    rows = [(code, str(counts[code])) for code in ALERT_CODES]
    rows.append(("(none)", str(quiet)))
    closed = sum(1 for d in deals if d.get("status") != "open")
    waiting = len(deals) - len(open_deals) - closed
    out = [
        f"Open deals by alert ({len(open_deals)} open, {closed} closed"
        + (f", {waiting} not evaluated yet):" if waiting else "):"),
        render_table(("alert", "deals"), rows),
        f"Deals with the most alerts (of {len(open_deals)} open):",
    ]
    top = sorted(open_deals, key=_urgency)[:TOP_DEALS]
    out.append(
        render_table(
            ("id", "deal", "stage", "health", "alerts"),
            [
                (
                    d["id"],
                    _short(d.get("name") or ""),
                    d.get("stage_name") or d.get("stage") or "",
                    _health(d.get("health")),
                    _alerts(d.get("alerts") or ()),
                )
                for d in top
            ],
        )
    )
    return "\n".join(out)


def next_steps(
    app_url: str, emulator_url: str, key: str, deals: Sequence[dict[str, Any]], directory: Path
) -> str:
    """The URLs and commands to try, with a real deal that has the example alert."""
    example = next(
        (d for d in sorted(deals, key=_urgency) if EXAMPLE_ALERT in (d.get("alerts") or ())),
        deals[0] if deals else {"id": "DEAL_ID"},
    )
    deal = example["id"]
    auth = f'-H "Authorization: Bearer {key}"'
    fields = ",".join(("dealname", *NAMES))
    lines = [
        "Try:",
        f"  the API        curl {auth} '{app_url}/api/v1/deals?alert={EXAMPLE_ALERT}'",
        f"  one deal       curl {auth} {app_url}/api/v1/deals/{deal}",
        f"  OpenAPI        {app_url}/api/v1/openapi.json",
        f"  health         {app_url}/healthz",
        f"  metrics        {app_url}/metrics",
        f"  the emulator   {emulator_url} (HubSpot's API; a token: curl -X POST "
        f"{emulator_url}/_sandbox/tokens)",
        f"  Deal Radar's fields on deal {deal} in HubSpot:",
        f"    TOKEN=$(curl -s -X POST {emulator_url}/_sandbox/tokens | "
        "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        f'    curl -H "Authorization: Bearer $TOKEN" '
        f"'{emulator_url}/crm/v3/objects/deals/{deal}?properties={fields}'",
        f"  schedule a meeting on it as a rep would (HubSpot sends a webhook; within seconds "
        f"{EXAMPLE_ALERT} leaves its fields):",
        f"    curl -X POST {emulator_url}/_sandbox/ui/deals/{deal}/meetings "
        "-H 'Content-Type: application/json' -d "
        f'\'{{"properties": {{"hs_meeting_title": "Demo", '
        f'"hs_meeting_start_time": "{_next_week()}", "hs_meeting_outcome": "SCHEDULED"}}}}\'',
        f"  the pipeline   DATABASE_URL=sqlite:///{(directory / 'dealradar.db').resolve()} "
        ".venv/bin/dealradar tenants status",
        f"  the logs       {directory / 'logs'}/",
    ]
    return "\n".join(lines)


def _urgency(deal: dict[str, Any]) -> tuple[int, int, str]:
    health = deal.get("health") or {}
    return (-len(deal.get("alerts") or ()), health.get("score", 101), deal["id"])


def _alerts(codes: Sequence[str]) -> str:
    shown = ", ".join(codes[:SHOWN_ALERTS])
    more = len(codes) - SHOWN_ALERTS
    return (shown + (f" +{more} more" if more > 0 else "")) or "-"


def _health(health: dict[str, Any] | None) -> str:
    return f"{health['score']} {health['grade']}" if health else "-"


def _short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"


def _next_week() -> str:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=7)
    return start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
