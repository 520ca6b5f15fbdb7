"""HubSpot sync cost: API calls by endpoint against the minimum HubSpot's batch limits allow.

    flock /work/bench.lock .venv/bin/python bench/hubspot_sync.py [--deals 10000]
        [--contacts 40000] [--activities 200000] [--pull-batch 200] [--seed 7]

What is measured, and how:

1. Setup (not measured): a world of --deals deals from sandbox.seed, loaded into an in-process
   emulator (sandbox.hubspot, rate limits off) with sandbox.hubspot_seed. The generator draws
   about 2.75 contacts and 17 activities per deal; the portal is then topped up to --contacts
   contacts and --activities activities (0: no top-up) with the emulator's world-building API:
   each extra contact is associated with one deal (unlabeled), each extra activity is logged
   on one deal with one of its contacts, its kind following the generated mix, so that the
   sync reads every contact and activity of the portal.
2. The sync, as the product does it: the initial sync's search pages (`changed_since` until
   it says no more), then `pull` of the deal ids in batches of --pull-batch (by default what a
   refresh job takes, HubSpotAdapter.pull_batch), one adapter per batch as one job each; then
   the engine evaluates every bundle, and `write_back` sends every deal's Deal Radar fields
   (the first write of a fresh install: every value is new), into the properties created
   first over the properties API. The adapter talks to the emulator over HTTP through the
   official SDK, with the client's rate budget off.
3. Figures: the emulator's request counts by route (`state.counts()`), the minimum the
   documented batch limits allow for the same data (search 200 per page; deals batch read 50
   with history; associations v4 batch read 1,000 inputs; contacts and each activity type
   batch read 100; owners 500 per page, active and archived; pipelines 1; batch update 100),
   computed from the portal's own associations, their ratio (target: at most 1.2), the wall time
   of each phase, and the machine's load (`os.getloadavg`), since other processes share the cores.

The exit status is 1 when the sync's ratio is above 1.2 or a deal went missing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The script's folder holds bench/engine.py, which would shadow the `engine` package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from hubspot import HubSpot  # noqa: E402

from adapters.base import AdapterContext, TenantRef  # noqa: E402
from adapters.hubspot import adapter as hubspot_adapter  # noqa: E402
from adapters.hubspot import properties  # noqa: E402
from adapters.hubspot.adapter import ACTIVITY_TYPES, HubSpotAdapter  # noqa: E402
from adapters.hubspot.client import HubSpotClient  # noqa: E402
from bench.common import git_revision  # noqa: E402
from engine.evaluate import Evaluator  # noqa: E402
from engine.fields import field_values  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from sandbox.hubspot import HubSpotState, serve  # noqa: E402
from sandbox.hubspot_seed import OBJECT_TYPE, load_into_hubspot  # noqa: E402
from sandbox.seed import generate  # noqa: E402
from sandbox.world import World  # noqa: E402

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PORTAL = 62515
TARGET = 1.2


class Tokens:
    """The emulator's token, issued for the run (a sync takes less than its 30 minutes)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def current(self) -> str:
        return self.token

    def renew(self, rejected: str) -> str:
        raise RuntimeError("the bench's token expired: the run took over 30 minutes")


def top_up(state: HubSpotState, world: World, ids: dict[str, str], contacts: int,
           activities: int) -> tuple[int, int]:  # fmt: skip
    """Extra contacts and activities on the world's deals, up to the wanted totals."""
    deals = [d for d in world.deals if d.contacts]
    extra_contacts = max(0, contacts - len(world.people))
    extra_activities = max(0, activities - len(world.activities))
    kinds = [a.kind for a in world.activities] or ["note"]
    added: dict[str, list[str]] = {}
    with state.lock:
        for i in range(extra_contacts):
            deal = deals[i % len(deals)]
            contact = state.create_object(
                "contacts", {"firstname": "Extra", "lastname": f"Contact {i}",
                             "email": f"extra{i}@extra.example", "jobtitle": "Analyst"},
                created_at=deal.created_at,
            )  # fmt: skip
            state.associate("deals", ids[deal.id], "contacts", contact)
            added.setdefault(deal.id, []).append(contact)
        for i in range(extra_activities):
            deal = deals[i % len(deals)]
            kind = OBJECT_TYPE[kinds[i % len(kinds)]]
            person = ids[deal.contacts[i % len(deal.contacts)].person_id]
            at = world.now - timedelta(days=1 + i % 60, minutes=i % 600)
            state.log_activity(
                kind, _properties(kind, at, ids[deal.owner_id]),
                deal_ids=[ids[deal.id]], contact_ids=[person], at=at,
            )  # fmt: skip
    return extra_contacts, extra_activities


def _properties(kind: str, at: datetime, owner: str) -> dict[str, object]:
    props: dict[str, object] = {"hs_timestamp": at, "hubspot_owner_id": owner}
    if kind == "calls":
        props |= {"hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED"}
    elif kind == "emails":
        props |= {"hs_email_direction": "EMAIL", "hs_email_status": "SENT"}
    elif kind == "meetings":
        props |= {"hs_meeting_start_time": at, "hs_meeting_outcome": "COMPLETED"}
    elif kind == "tasks":
        props |= {"hs_task_status": "COMPLETED"}
    return props


def provision(sdk: HubSpot) -> None:
    """The Deal Radar properties over the properties API, as the install creates them."""
    sdk.crm.properties.groups_api.create("deals", dict(properties.GROUP))
    for definition in properties.definitions():
        sdk.crm.properties.core_api.create("deals", definition)


def minimum(state: HubSpotState, deal_ids: Sequence[str]) -> dict[str, int]:
    """The fewest calls HubSpot's documented batch limits allow to read these deals and
    everything the bundles need, from the portal's own associations."""
    n = len(deal_ids)
    out = {
        "POST /crm/v3/objects/deals/search": math.ceil(n / hubspot_adapter.SEARCH_PAGE),
        "POST /crm/v3/objects/deals/batch/read": math.ceil(n / hubspot_adapter.HISTORY_BATCH),
        "GET /crm/v3/pipelines/deals": 1,
        # The active owners, then the archived ones (deactivated users), each list paged.
        "GET /crm/v3/owners/": sum(
            max(1, math.ceil(len(state.owners(archived=a)) / 500)) for a in (False, True)
        ),
    }
    with state.lock:
        contacts = {c for d in deal_ids for c in state.linked_ids("deals", d, "contacts")}
        assoc = math.ceil(n / hubspot_adapter.ASSOCIATION_BATCH)
        out["POST /crm/v4/associations/deals/contacts/batch/read"] = assoc
        out["POST /crm/v3/objects/contacts/batch/read"] = math.ceil(len(contacts) / 100)
        for kind in ACTIVITY_TYPES:
            linked = {a for d in deal_ids for a in state.linked_ids("deals", d, kind)}
            out[f"POST /crm/v4/associations/deals/{kind}/batch/read"] = assoc
            out[f"POST /crm/v3/objects/{kind}/batch/read"] = math.ceil(len(linked) / 100)
            out[f"POST /crm/v4/associations/{kind}/contacts/batch/read"] = math.ceil(
                len(linked) / hubspot_adapter.ASSOCIATION_BATCH
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/hubspot_sync.py",
        description="Sync a seeded HubSpot emulator through the adapter; API calls by endpoint "
        "against the minimum the documented batch limits allow.",
    )
    parser.add_argument("--deals", type=int, default=10_000, help="deals (10000)")
    parser.add_argument(
        "--contacts",
        type=int,
        default=40_000,
        help="contacts in the portal, topped up to this (40000; 0: none added)",
    )
    parser.add_argument(
        "--activities",
        type=int,
        default=200_000,
        help="activities, topped up to this (200000; 0: none added)",
    )
    parser.add_argument(
        "--pull-batch",
        type=int,
        default=HubSpotAdapter.pull_batch,
        help=f"deals per pull, as one refresh job ({HubSpotAdapter.pull_batch})",
    )
    parser.add_argument("--seed", type=int, default=7, help="world seed (7)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.deals < 1 or args.pull_batch < 1:
        parser.error("--deals and --pull-batch must be at least 1")

    started = time.monotonic()
    print(f"revision {git_revision(['adapters', 'jobs', 'sandbox', 'bench'])}, load "
          f"{os.getloadavg()[0]:.2f} at start")  # fmt: skip
    world = generate(args.deals, args.seed, NOW)
    state = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    ids = load_into_hubspot(state, world)
    extra = top_up(state, world, ids, args.contacts, args.activities)
    deal_count = len(state.records("deals"))
    contact_count = len(state.records("contacts"))
    activity_count = sum(len(state.records(k)) for k in ACTIVITY_TYPES)
    print(f"portal: {deal_count} deals, {contact_count} contacts ({extra[0]} added), "
          f"{activity_count} activities ({extra[1]} added); setup "
          f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip

    with serve(state) as server:
        token = state.issue_token().access_token
        tenant = TenantRef(id="bench", crm="hubspot", account_id=str(PORTAL))
        context = AdapterContext(tokens=None, redis=None, crm={}, clock=lambda: NOW)

        def adapter() -> HubSpotAdapter:
            client = HubSpotClient(str(PORTAL), Tokens(token), None, host=server.url,
                                   burst=None, search_burst=None)  # fmt: skip
            return HubSpotAdapter(tenant, context, client=client)

        provision(HubSpot(access_token=token, host=server.url))
        state.reset_counts()
        t0 = time.monotonic()
        found: list[str] = []
        searching, cursor, more = adapter(), None, True
        while more:
            changes = searching.changed_since(cursor)
            found += changes.deal_ids
            cursor, more = changes.cursor, changes.more
        t_search = time.monotonic() - t0
        bundles = []
        t1 = time.monotonic()
        for start in range(0, len(found), args.pull_batch):
            bundles += adapter().pull(found[start : start + args.pull_batch]).bundles
            done = start + args.pull_batch
            if done % (args.pull_batch * 10) == 0:
                print(f"  pulled {min(done, len(found))}/{len(found)} deals "
                      f"({time.monotonic() - t1:.0f} s)", flush=True)  # fmt: skip
        t_pull = time.monotonic() - t1
        sync_counts = state.counts()

        evaluate = Evaluator(load_settings({"timezone": "UTC"}), NOW)
        stamp = NOW.isoformat()
        values = {b.deal.id: field_values(evaluate(b), stamp) for b in bundles}
        state.reset_counts()
        t2 = time.monotonic()
        adapter().write_back(values)
        t_write = time.monotonic() - t2
        write_counts = state.counts()
    state.webhooks.stop()

    lowest = minimum(state, found)
    print(f"\nsync of {len(found)} deals ({len(bundles)} bundles, "
          f"{sum(len(b.contacts) for b in bundles)} deal contacts, "
          f"{sum(len(b.activities) for b in bundles)} activities mapped), pull batch "
          f"{args.pull_batch}:")  # fmt: skip
    print(f"  {'endpoint':<58} {'calls':>7} {'minimum':>8}")
    for route in sorted(set(sync_counts) | set(lowest)):
        print(f"  {route:<58} {sync_counts.get(route, 0):>7} {lowest.get(route, 0):>8}")
    made, least = sum(sync_counts.values()), sum(lowest.values())
    ratio = made / least
    print(f"  {'total':<58} {made:>7} {least:>8}   ratio {ratio:.3f} (target <= {TARGET})")
    print(f"  wall time, rate limits off: search {t_search:.1f} s, pull {t_pull:.1f} s "
          f"({len(found) / max(t_pull, 1e-9):.0f} deals/s)")  # fmt: skip
    writes, least_writes = sum(write_counts.values()), math.ceil(len(values) / 100)
    print(f"write-back of {len(values)} deals: {writes} calls "
          f"({', '.join(f'{k} {v}' for k, v in write_counts.items())}), minimum {least_writes}, "
          f"{t_write:.1f} s")  # fmt: skip
    print(f"load {os.getloadavg()[0]:.2f} at the end; total {time.monotonic() - started:.0f} s")
    missing = set(ids[d.id] for d in world.deals) - set(found)
    duplicates = [d for d, c in Counter(found).items() if c > 1]
    if missing or duplicates:
        print(f"LOST: {len(missing)} deals never found, {len(duplicates)} found twice")
        return 1
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
