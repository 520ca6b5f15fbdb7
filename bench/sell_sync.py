"""Zendesk Sell sync cost: API calls by endpoint against the minimum Sell's page size allows.

    flock /work/bench.lock .venv/bin/python bench/sell_sync.py [--deals 5000]
        [--activities 100000] [--pull-batch 500] [--seed 7]

What is measured, and how:

1. Setup (not measured): a world of --deals deals from sandbox.seed, loaded into an in-process
   Sell emulator (sandbox.sell, hourly allowance off) with sandbox.sell_seed, then topped up to
   --activities calls, visits, tasks and notes (Sell has no emails: the generated mix without
   them), each logged on one deal (a call on the deal through `associated_deal_ids`, with one
   of its contacts); the Deal Radar custom fields created as an admin would. The tenant's record
   mirror is a SQLite store in a temporary folder.
2. The sync, as the product does it: the adapter's `changed_since` from no cursor until it says
   no more (a first sync lists every stream in full through the Core API, 100 per page, each
   stream's Firehose position taken first, then reads each stream once from that position),
   then `pull` of the deal ids in batches of --pull-batch, a new adapter per batch as one refresh
   job each (stages and users read once per job; deals by id, 100 per call; each deal's
   associated contacts; contacts and activities from the mirror). Then every bundle is evaluated
   and `write_back` sends each deal's Deal Radar fields (one PUT per deal: Sell has no batch
   update), counted apart.
3. Figures: the emulator's request counts by route, the minimum the page size (100, Core API
   `per_page` and Firehose `limit`) allows for the same data, their ratio (target: at most 1.2),
   wall times, and the machine's load (other processes share the cores). The minimum:
   - every record of the six resources listed once: ceil(records / 100) pages each; no stream
     is avoidable (the Firehose keeps 72 hours, so a first sync lists; calls cannot be listed
     by deal, so every call is read);
   - each deal's associated contacts: ceil(max(1, contacts) / 100) calls per deal (no stream
     and no list across deals carries them: Sell's only way to a deal's contacts);
   - users and stages: ceil(n / 100) each; the deal and contact custom field definitions: one
     call each (where to write, where roles are);
   - a Firehose position per stream (`position=top`, 7 streams): what makes the sync continue
     from the feed without missing a change made while it listed.
   Not in the minimum, so counted as overhead: re-reading the deals by id in the pulls (a
   refresh reads the CRM's current record), the first read of each stream from its position,
   the per-job stages and users, a second field check.

The exit status is 1 when the ratio is above 1.2 or a deal went missing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/engine.py shadows `engine`

from adapters.base import AdapterContext, TenantRef  # noqa: E402
from adapters.sell.adapter import SellAdapter  # noqa: E402
from adapters.sell.client import PER_PAGE  # noqa: E402
from adapters.sell.fields import FIELDS  # noqa: E402
from adapters.sell.firehose import STREAMS  # noqa: E402
from bench.common import git_revision  # noqa: E402
from connector.store.db import Store  # noqa: E402
from connector.store.mirror import StoreMirror, StoreNotices  # noqa: E402
from connector.store.models import Base  # noqa: E402
from connector.store.tenants import create_tenant  # noqa: E402
from engine.evaluate import Evaluator  # noqa: E402
from engine.fields import field_values  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from sandbox.seed import generate  # noqa: E402
from sandbox.sell import SellState, serve  # noqa: E402
from sandbox.sell_resources import format_datetime  # noqa: E402
from sandbox.sell_seed import load_into_sell  # noqa: E402
from sandbox.world import World  # noqa: E402

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TARGET = 1.2
RESOURCES = ("deals", "contacts", "calls", "visits", "tasks", "notes")
ACTIVITIES = ("calls", "visits", "tasks", "notes")
KIND = {"call": "calls", "meeting": "visits", "task": "tasks", "note": "notes"}


class Token:
    """A personal access token: no expiry, nothing to renew."""

    def __init__(self, token: str) -> None:
        self.token = token

    def current(self) -> str:
        return self.token

    def renew(self, rejected: str) -> str:
        raise RuntimeError("the emulator refused the bench's personal token")


def top_up(state: SellState, world: World, ids: dict[str, int], activities: int) -> int:
    """Extra activities on the world's deals up to `activities` in all; how many were added."""
    have = sum(len(state.records(r)) for r in ACTIVITIES)
    extra = max(0, activities - have)
    deals = [d for d in world.deals if d.contacts]
    kinds = [KIND[a.kind] for a in world.activities if a.kind in KIND] or ["notes"]
    with state.lock:
        for i in range(extra):
            deal = deals[i % len(deals)]
            sell_deal, rep = ids[deal.id], ids[deal.owner_id]
            person = ids[deal.contacts[i % len(deal.contacts)].person_id]
            at = world.now - timedelta(days=1 + i % 60, minutes=i % 600)
            kind = kinds[i % len(kinds)]
            on_deal = {"resource_type": "deal", "resource_id": sell_deal}
            if kind == "calls":
                data: dict = {
                    "associated_deal_ids": [sell_deal],
                    "resource_type": "contact",
                    "resource_id": person,
                    "made_at": format_datetime(at),
                    "incoming": i % 3 == 0,
                    "duration": 300,
                    "summary": f"Call {i}",
                }
            elif kind == "visits":
                data = {**on_deal, "visited_at": format_datetime(at), "summary": f"Visit {i}"}
            elif kind == "tasks":
                data = {
                    **on_deal,
                    "content": f"Task {i}",
                    "due_date": format_datetime(at),
                    "completed": True,
                    "owner_id": rep,
                }
            else:
                data = {**on_deal, "content": f"Note {i}"}
            state.create(kind, data, user_id=rep, at=at)
    return extra


def minimum(state: SellState) -> dict[str, int]:
    """The fewest calls the page size allows for this account (see the module docstring)."""
    pages = lambda n: max(1, math.ceil(n / PER_PAGE))  # noqa: E731
    out = {f"GET /v2/{r}": pages(len(state.records(r))) for r in RESOURCES}
    with state.lock:
        out["GET /v2/deals/{deal_id}/associated_contacts"] = sum(
            pages(len(state.associated_contacts(d["id"]))) for d in state.records("deals")
        )
    out["GET /v2/users"] = pages(len(state.records("users")))
    out["GET /v2/stages"] = pages(len(state.records("stages")))
    out["GET /v2/deal/custom_fields"] = out["GET /v2/contact/custom_fields"] = 1
    for stream in STREAMS:
        out[f"GET /v3/{stream}/stream"] = 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/sell_sync.py",
        description="Sync a seeded Zendesk Sell emulator through the Sell adapter; API calls by "
        "endpoint against the minimum Sell's page size (100) allows.",
    )
    parser.add_argument("--deals", type=int, default=5_000, help="deals (5000)")
    parser.add_argument(
        "--activities",
        type=int,
        default=100_000,
        help="calls, visits, tasks and notes, topped up to this (100000)",
    )
    parser.add_argument(
        "--pull-batch",
        type=int,
        default=SellAdapter.pull_batch,
        help=f"deals per pull, as one refresh job ({SellAdapter.pull_batch})",
    )
    parser.add_argument("--seed", type=int, default=7, help="world seed (7)")
    args = parser.parse_args(argv)
    if args.deals < 1 or args.pull_batch < 1:
        parser.error("--deals and --pull-batch must be at least 1")

    started = time.monotonic()
    print(
        f"revision {git_revision(['adapters', 'jobs', 'sandbox', 'bench', 'connector'])}, "
        f"load {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    world = generate(args.deals, args.seed, NOW)
    state = SellState(clock=lambda: NOW, hourly_limit=None)
    ids = load_into_sell(state, world)
    added = top_up(state, world, ids, args.activities)
    for spec in FIELDS:
        state.define_custom_field("deal", spec.name, spec.type, spec.choices)
    counts = {r: len(state.records(r)) for r in RESOURCES}
    print(
        f"account: {counts['deals']} deals, {counts['contacts']} contacts, "
        f"{sum(counts[r] for r in ACTIVITIES)} activities ({added} added: "
        f"{', '.join(f'{counts[r]} {r}' for r in ACTIVITIES)}); setup "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as folder, serve(state) as server:
        store = Store(f"sqlite:///{Path(folder) / 'mirror.db'}")
        Base.metadata.create_all(store.engine)
        tenant, _ = create_tenant(store, crm="sell", account_id=str(state.account["id"]), now=NOW)
        token = Token(state.personal_access_token().access_token)
        context = AdapterContext(
            tokens=token,
            redis=None,
            crm={"SELL_API_URL": server.url},
            clock=lambda: NOW,
            mirror=StoreMirror(store, tenant.id, lambda: NOW),
            notices=StoreNotices(store, tenant.id, lambda: NOW),
        )
        ref = TenantRef(tenant.id, "sell", str(state.account["id"]))
        state.reset_counts()

        t0 = time.monotonic()
        syncing, cursor, more, found, pages = SellAdapter(ref, context), None, True, [], 0
        while more:
            changes = syncing.changed_since(cursor)
            found += changes.deal_ids
            cursor, more, pages = changes.cursor, changes.more, pages + 1
            if pages % 200 == 0:
                print(
                    f"  feed and listings: {pages} pages ({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
        t_feed = time.monotonic() - t0
        wanted = list(dict.fromkeys(found))
        print(f"  listed in {pages} pages, {t_feed:.1f} s; {len(wanted)} deals to pull", flush=True)

        t1 = time.monotonic()
        bundles = []
        for start in range(0, len(wanted), args.pull_batch):
            bundles += (
                SellAdapter(ref, context).pull(wanted[start : start + args.pull_batch]).bundles
            )
            done = min(start + args.pull_batch, len(wanted))
            if done % (args.pull_batch * 2) == 0 or done == len(wanted):
                print(
                    f"  pulled {done}/{len(wanted)} deals ({time.monotonic() - t1:.0f} s)",
                    flush=True,
                )
        t_pull = time.monotonic() - t1
        sync_counts = state.counts()

        evaluate = Evaluator(load_settings({"timezone": "UTC"}), NOW)
        values = {b.deal.id: field_values(evaluate(b), NOW.isoformat()) for b in bundles}
        state.reset_counts()
        t2 = time.monotonic()
        SellAdapter(ref, context).write_back(values)
        t_write = time.monotonic() - t2
        write_counts = state.counts()
        store.dispose()

    lowest = minimum(state)
    print(
        f"\nsync of {len(wanted)} deals ({len(bundles)} bundles, "
        f"{sum(len(b.contacts) for b in bundles)} deal contacts, "
        f"{sum(len(b.activities) for b in bundles)} activities mapped), pull batch "
        f"{args.pull_batch}:"
    )
    print(f"  {'endpoint':<50} {'calls':>7} {'minimum':>8}")
    for route in sorted(set(sync_counts) | set(lowest)):
        print(f"  {route:<50} {sync_counts.get(route, 0):>7} {lowest.get(route, 0):>8}")
    made, least = sum(sync_counts.values()), sum(lowest.values())
    ratio = made / least
    print(f"  {'total':<50} {made:>7} {least:>8}   ratio {ratio:.3f} (target <= {TARGET})")
    print(
        f"  minimum: each resource's records / 100 per page, one associated-contacts call per "
        f"deal ({counts['deals']}), users, stages, two field definitions, a position per "
        f"stream ({len(STREAMS)})"
    )
    print(
        f"  wall time, allowance off: listings and feed {t_feed:.1f} s, pulls {t_pull:.1f} s "
        f"({len(wanted) / max(t_pull, 1e-9):.0f} deals/s)"
    )
    writes = sum(write_counts.values())
    print(
        f"write-back of {len(values)} deals: {writes} calls "
        f"({', '.join(f'{k} {v}' for k, v in write_counts.items())}), minimum {len(values)} "
        f"(one PUT per deal: Sell has no batch update), {t_write:.1f} s"
    )
    print(f"load {os.getloadavg()[0]:.2f} at the end; total {time.monotonic() - started:.0f} s")
    missing = {str(ids[d.id]) for d in world.deals} - set(wanted)
    duplicates = [d for d, c in Counter(b.deal.id for b in bundles).items() if c > 1]
    if missing or duplicates:
        print(f"LOST: {len(missing)} deals never found, {len(duplicates)} pulled twice")
        return 1
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
