"""Who left: the CRM's users, read once a day when the tenant's sweep starts.

A rep deactivated in the CRM is otherwise seen only when one of their deals is pulled (a
change, a poll), and the deals that rot are the ones nobody changes: the sweep starts their
alerts and tasks. So the sweep's start queues `refresh`, which asks the adapter
(`adapters.base.UserDirectory`) about the owners of the open deals and records who is active
(`users.active`), ahead of the sweep's first chunk on the same queue. An adapter that cannot
list users (none yet) leaves it to the pulls. The open Deal Radar tasks a departed owner still
holds then go to `tasks.fallback_owner`, and a departed team member's team tasks to the team's
next member (jobs.crm_tasks.propose_for_departed). The users the settings name (the fallback
owner, the teams' members) are read too, whether or not they own an open deal, and so are the
holders of open team tasks, whether or not a team still lists them.

Error policy: adapters.errors through jobs.policy: a rate limit or an outage is tried again
after its backoff, a revoked grant suspends the tenant, a refused request is logged and waits
for tomorrow's sweep (the pulls and the CRM's refusal of a task still tell).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters.errors import CrmError, RateLimited, Transient
from connector import queues
from connector.store import tenants
from connector.store.models import DealRow
from connector.store.snapshots import save_users
from engine.settings import Settings
from jobs import crm_effects, crm_tasks, policy
from jobs.adapters import adapter_for_tenant
from jobs.runtime import current

log = logging.getLogger(__name__)


def queue(redis: Any, tenant_id: str, delay: float = 0.0) -> None:
    """Ask for `refresh(tenant)`, in `delay` seconds."""
    users = queues.queue(redis, queues.SWEEP)
    if delay:
        users.enqueue_in(timedelta(seconds=delay), "jobs.users.refresh", tenant_id)
    else:
        users.enqueue("jobs.users.refresh", tenant_id)


def refresh(tenant_id: str) -> dict[str, int]:
    """Record whether each owner of an open deal is still active in the CRM."""
    rt = current()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    if tenant.status != "active":
        return {"users": 0}
    adapter = adapter_for_tenant(rt, tenant)
    directory = getattr(adapter, "users_by_id", None)
    if directory is None:
        return {"users": 0}
    with rt.store.tenant(tenant_id) as s:
        owners = sorted(
            s.scalars(
                select(DealRow.owner)
                .where(DealRow.status == "open", DealRow.owner.is_not(None))
                .distinct()
            )
        )
        holders = crm_tasks.team_task_holders(s)
    settings = tenants.current_settings(rt.store, tenant_id)
    # The teams' holders of open tasks too, listed or not any more: taken off a team as they
    # left, their tasks would otherwise stay with a user nobody reads again.
    listed = {user: "an open team task's holder" for user in sorted(holders)}
    listed |= _listed_users(settings)
    if not owners and not listed:
        return {"users": 0}
    attempts = f"dealradar:users:attempts:{tenant_id}"
    try:
        found = directory(owners) if owners else {}
    except CrmError as exc:
        decision = policy.decide_attempt(rt.redis, attempts, exc)
        if decision.action == "retry":
            log.info("tenant %s: users read again in %.0f s (%s)",
                     tenant_id, decision.delay, decision.reason)  # fmt: skip
            queue(rt.redis, tenant_id, decision.delay)
        elif decision.action == "suspend":
            tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        else:
            log.warning("tenant %s: the CRM's users were not read today (%s)",
                        tenant_id, decision.reason)  # fmt: skip
        return {"users": 0}
    policy.forget_attempts(rt.redis, attempts)
    unread = {user: where for user, where in listed.items() if user not in found}
    if unread:
        found.update(_read_listed(directory, tenant_id, unread))
    hands_over = callable(getattr(adapter, "reassign_task", None))
    with rt.store.tenant(tenant_id) as s:
        save_users(s, tenant_id, found.values())
        handed = (
            crm_tasks.propose_for_departed(s, tenant_id, settings, rt.clock()) if hands_over else 0
        )
    if handed:
        queues.enqueue_once(
            rt.redis, queues.ACTIONS, crm_effects.RUN, tenant_id, what=crm_effects.WHAT
        )
    left = sorted(u.id for u in found.values() if not u.active)
    if left:
        log.info("tenant %s: %d owners of open deals are deactivated in the CRM: %s",
                 tenant_id, len(left), ", ".join(left))  # fmt: skip
    return {"users": len(found), "inactive": len(left)}


def _listed_users(settings: Settings) -> dict[str, str]:
    """The users the settings name, each with the setting that names them: who takes tasks
    whether or not they own an open deal."""
    listed = {
        member: f"tasks.teams.{team}"
        for team, members in sorted(settings.teams.items())
        for member in members
    }
    if settings.fallback_owner:
        listed[settings.fallback_owner] = "tasks.fallback_owner"
    return listed


def _read_listed(directory: Any, tenant_id: str, listed: Mapping[str, str]) -> dict[str, Any]:
    """The users the settings name, read apart from the owners: a manager who left gets no more
    tasks (and one the CRM once refused is seen active again), and an id the CRM cannot read
    costs the owners' reading nothing. Read together, or one by one when that fails, so that
    one mistyped id costs the others nothing. A CRM that is down or rate-limited is not asked
    again id by id (a large team would spend the job's time and the allowance on failures):
    they are read at the next reading."""
    try:
        return directory(sorted(listed))
    except (RateLimited, Transient) as exc:
        log.warning("tenant %s: the %d users the settings name were not read (%s); the next "
                    "reading of the users tries again", tenant_id, len(listed), exc)  # fmt: skip
        return {}
    except (CrmError, ValueError):
        if len(listed) == 1:
            ((user_id, where),) = listed.items()
            log.warning("tenant %s: %s %r could not be read from the CRM; check that it is a "
                        "user id of the CRM", tenant_id, where, user_id)  # fmt: skip
            return {}
    found: dict[str, Any] = {}
    for user_id, where in listed.items():
        found.update(_read_listed(directory, tenant_id, {user_id: where}))
    return found
