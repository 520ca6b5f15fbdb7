"""The setup job an install enqueues: provision the CRM, then the initial sync.

`setup(tenant)` first provisions what the tenant's CRM needs (HubSpot: the Deal Radar property
group and properties, the scopes checked, the portal's deal-contact labels matched to the
tenant's roles; Salesforce: the custom fields, their permission set and grants, the org's
contact roles matched, and the steps left to an admin), then pages through every deal changed
since the tenant's cursor (all of them on a first install) with `jobs.schedule.follow_changes`,
the poll's own loop: each page's deals are requested for refresh and the cursor checkpointed,
so a setup cut short resumes where it stopped. Progress goes to the log and to the tenant's
`setup_runs` row, which `dealradar tenants status` shows.

Time zone: a HubSpot tenant takes its portal's (the account settings' `timeZone`) when nobody
chose one, i.e. while its row is still on the default UTC and its saved settings set no
`timezone` (tenants.adopt_timezone): a first install is, a reinstall after an admin set the
zone in the settings (or a tenant created with `tenants add --timezone`) keeps the admin's. A
zone name Python's tz database does not know is logged and left out; the setup goes on.

Safe to run twice: provisioning is idempotent, refresh requests coalesce, and the cursor only
moves forward. Error policy (jobs.policy): a grant without the scopes Deal Radar needs, or any
PermissionDenied, suspends the tenant with a reason saying what the admin must do; a transient
error or rate limit schedules the setup again after the policy's backoff; anything else marks
the setup failed with its reason and fails the job (listed by `dealradar jobs failed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Adapter
from adapters.errors import CrmError
from adapters.hubspot.provision import account_settings, provision, suggest_roles
from adapters.salesforce.provision import provision as salesforce_provision
from adapters.sell.fields import FIELDS as SELL_FIELDS
from adapters.zones import zone_name
from connector import queues
from connector.store import tenants
from connector.store.models import SetupRun
from jobs import policy, schedule
from jobs.adapters import adapter_for_tenant
from jobs.runtime import Runtime, current
from jobs.schedule import Progress, follow_changes

log = logging.getLogger(__name__)

SETUP_PAGES = 10_000
"""Pages the initial sync reads at most (two million HubSpot deals); the poll takes over after."""


class SetupFailed(Exception):
    """A setup that retrying cannot fix; the reason is on the tenant's setup row."""


@dataclass(frozen=True)
class Provisioned:
    """What a CRM's provisioning did, for the setup row and the tenant."""

    labels: dict[str, str]
    """The CRM's contact labels mapped to roles."""
    detail: str
    time_zone: str = ""
    """The CRM account's time zone as the CRM writes it ("" if none); the setup reads it."""
    account: str = "portal"
    """What the CRM calls an account, for the setup's detail ("the portal's zone")."""


def _hubspot(adapter: Any, roles: list[str]) -> Provisioned:
    done = provision(adapter.client)
    account = account_settings(adapter.client)
    detail = (
        f"properties: {len(done.created)} created, {len(done.updated)} updated, "
        f"{len(done.unchanged)} unchanged"
    )
    return Provisioned(suggest_roles(done.labels, roles), detail, account.time_zone or "")


def _sell(adapter: Any, roles: list[str]) -> Provisioned:
    """Sell's API cannot create custom fields: check them, and leave notices saying what an
    admin must create (adapters/sell/provision.py); the setup goes on either way."""
    fields = adapter.check_fields()
    detail = f"custom fields: {len(fields.usable)} of {len(SELL_FIELDS)} usable"
    if not fields.complete:
        detail += " (see the notice: what to create in Sell)"
    return Provisioned({}, detail, adapter.account_zone(), account="account")


def _salesforce(adapter: Any, roles: list[str]) -> Provisioned:
    done = salesforce_provision(adapter.client)
    if done.admin_steps:
        log.warning(
            "Salesforce org %s needs an admin: %s", adapter.client.org_id,
            " ".join(done.admin_steps),
        )  # fmt: skip
    return Provisioned(done.labels(roles), done.summary(), done.time_zone, account="org")


PROVISIONERS: Mapping[str, Callable[[Adapter, list[str]], Provisioned]] = {
    "hubspot": _hubspot,
    "sell": _sell,
    "salesforce": _salesforce,
}
"""What each CRM needs before the first sync."""


def setup(tenant_id: str) -> dict[str, Any]:
    """Provision the tenant's CRM and request the refresh of its deals; returns the outcome."""
    rt = current()
    # From now on a reinstall schedules another setup (this one may be failing on old scopes).
    rt.redis.delete(queues.scheduled_key(tenant_id, "setup"))
    try:
        tenant = tenants.get_tenant(rt.store, tenant_id)
    except tenants.UnknownTenant:
        log.warning("setup for unknown tenant %s dropped", tenant_id)
        return {"status": "unknown"}
    if tenant.status != "active":
        log.info("tenant %s is %s; its setup waits for a reinstall", tenant_id, tenant.status)
        return {"status": tenant.status}
    adapter = adapter_for_tenant(rt, tenant)
    _record(rt, tenant_id, status="provisioning", requested=0, pages=0, detail=None, start=True)
    progress = Progress()
    try:
        provisioner = PROVISIONERS.get(tenant.crm)
        if provisioner is not None:
            settings = tenants.current_settings(rt.store, tenant_id)
            roles = list(settings.document["alerts"]["key_role_silent"]["roles"])
            done = provisioner(adapter, roles)
            detail = done.detail + _time_zone(rt, tenant_id, done.time_zone, done.account)
            log.info("tenant %s: provisioned %s (%s)", tenant_id, tenant.crm, detail)
            _record(rt, tenant_id, status="syncing", labels=done.labels, detail=detail)
        else:
            _record(rt, tenant_id, status="syncing")
        follow_changes(
            tenant_id, adapter, progress, pages=SETUP_PAGES,
            on_page=lambda p: _progress(rt, tenant_id, p),
        )  # fmt: skip
    except CrmError as exc:
        return _failed(rt, tenant_id, progress, exc)
    policy.forget_attempts(rt.redis, _attempts_key(tenant_id))
    _record(rt, tenant_id, status="done", finish=True)
    schedule.start_polling(rt, tenant)
    log.info(
        "tenant %s: setup done, %d deals requested for refresh in %d pages%s",
        tenant_id, progress.requested, progress.pages,
        " (more left for the next poll)" if progress.more else "",
    )  # fmt: skip
    return {"status": "done", "requested": progress.requested, "pages": progress.pages}


def _time_zone(rt: Runtime, tenant_id: str, given: str, account: str) -> str:
    """Put the tenant on its CRM account's zone (`given` as the CRM writes it, read through
    adapters/zones.py) unless someone chose one; says what it did. A zone Deal Radar cannot
    read is logged and left out: the setup goes on, on the tenant's zone as it was."""
    if not given:
        return ""
    zone = zone_name(given)
    if zone is None:
        log.warning("tenant %s: its CRM %s's time zone %r is not one Deal Radar can read; the "
                    "tenant keeps its zone (set settings `timezone`)", tenant_id, account,
                    given)  # fmt: skip
        return f"; {account} time zone {given!r} unknown, not taken"
    if tenants.adopt_timezone(rt.store, tenant_id, zone, rt.clock()):
        log.info("tenant %s: time zone %s, taken from its CRM account", tenant_id, zone)
        return f"; time zone {zone} (the {account}'s)"
    kept = tenants.current_settings(rt.store, tenant_id).timezone
    log.info("tenant %s keeps its time zone %s (the CRM account's is %s)", tenant_id, kept, zone)
    return f"; time zone {kept} kept (the {account}'s is {zone})"


def _progress(rt: Runtime, tenant_id: str, progress: Progress) -> None:
    log.info(
        "tenant %s: initial sync page %d, %d deals requested so far",
        tenant_id, progress.pages, progress.requested,
    )  # fmt: skip
    _record(rt, tenant_id, requested=progress.requested, pages=progress.pages)


def _failed(rt: Runtime, tenant_id: str, progress: Progress, error: CrmError) -> dict[str, Any]:
    r = rt.redis
    decision = policy.decide_attempt(r, _attempts_key(tenant_id), error)
    if decision.action == "retry":
        attempt, delay = decision.attempt, decision.delay
        log.warning(
            "tenant %s: setup stopped after %d deals: %s (attempt %d); again in %.0f s",
            tenant_id, progress.requested, decision.reason, attempt, delay,
        )  # fmt: skip
        _record(rt, tenant_id, detail=f"waiting to retry: {decision.reason}")
        queues.request_setup(r, tenant_id, delay=delay)
        return {"status": "retry", "requested": progress.requested, "delay": delay}
    _record(rt, tenant_id, status="failed", detail=decision.reason, finish=True)
    if decision.action == "suspend":
        log.error("tenant %s suspended during setup: %s", tenant_id, decision.reason)
        tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        return {"status": "suspended", "reason": decision.reason}
    log.error("tenant %s: setup failed: %s", tenant_id, decision.reason)
    raise SetupFailed(f"tenant {tenant_id}: {decision.reason}") from error


def _attempts_key(tenant_id: str) -> str:
    return f"dealradar:attempts:setup:{tenant_id}"


def _record(
    rt: Runtime, tenant_id: str, *, start: bool = False, finish: bool = False, **values: Any
) -> None:
    """Update the tenant's setup row (`start`: a new run replaces the last one)."""
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SetupRun, tenant_id)
        if row is None:
            row = SetupRun(tenant_id=tenant_id, labels={}, started_at=now)
            s.add(row)
        if start:
            row.started_at, row.finished_at, row.labels = now, None, {}
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        if finish:
            row.finished_at = now
