"""Salesforce sync cost: API calls by endpoint against the minimum Salesforce's documented
limits allow.

    flock /work/bench.lock .venv/bin/python bench/salesforce_sync.py [--deals 10000]
        [--contacts 40000] [--activities 200000] [--pull-batch 2000] [--seed 7]

What is measured, and how:

1. Setup (not measured): a world of --deals deals from sandbox.seed, loaded into an in-process
   Salesforce emulator (sandbox.salesforce, served over HTTPS with its own certificate, daily
   allowance off) with sandbox.salesforce_seed; the generator draws about 2.75 contacts and 17
   activities per deal, and the org is then topped up to --contacts contacts and --activities
   activities with the emulator's world-building API: each extra contact holds a role on one
   opportunity, each extra activity is logged on one opportunity with one of its contacts (as
   the generated mix has them: calls and tasks as Tasks, meetings as Events with their
   attendees, emails as EmailMessage records with their recipients and the Task Enhanced Email
   logs).
   Deal Radar's fields are then provisioned (Tooling API, permission set, FieldPermissions).
2. The sync, as the product does it: the initial sync's listing (`changed_since` until it says
   no more), then `pull` of the opportunity ids in batches of --pull-batch (what a refresh job
   takes, SalesforceAdapter.pull_batch), one adapter per batch as one job each; then the engine
   evaluates every bundle and `write_back` sends every opportunity's Deal Radar fields (the
   first write of a fresh install: every value is new). simple-salesforce over real HTTPS.
3. Figures: the emulator's API calls by route (`state.counts()`), the records each call
   carried (counted from the answers on the wire, child records included), and the minimum:

   A query batch holds at most 2,000 records, child records counted ("Child objects count
   toward the number of records for the batch size": QueryOptions / Sforce-Query-Options), and
   a Collections call at most 200 records. Every record a bundle needs must travel in some
   batch, so no client can read them in fewer than ceil(records / 2,000) query calls:
     - the listing: one record per opportunity (Id, SystemModstamp);
     - the opportunities with what their bundles read as children: contact roles (with the
       contact's name, email and title as parent fields: no Contact query), stage history rows,
       tasks other than email tasks (the EmailMessage they log stands for them), events, email
       messages (owners come as parent fields: no User query);
     - the events' attendees (EventRelation rows) and the emails' contact recipients
       (EmailMessageRelation rows of contacts): children of children, which a query under API
       58.0 cannot nest, read by two more queries; their rows are counted all the same.
   The minimum is the sum of ceil(rows / 2,000) over these four record sets (the reads cannot
   share a batch across sets without nesting); the write-back's is ceil(opportunities / 200).
   The listing is in the minimum because the product discovers deals that way (a watermark
   query), and its pulls take ids (events name ids); without it the minimum is shown too.

The exit status is 1 when the sync's ratio is above 1.2 or an opportunity went missing.
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
from typing import Any

# The script's folder holds bench/engine.py, which would shadow the `engine` package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from adapters.base import AdapterContext, TenantRef  # noqa: E402
from adapters.salesforce.adapter import SalesforceAdapter  # noqa: E402
from adapters.salesforce.client import SalesforceClient  # noqa: E402
from adapters.salesforce.provision import provision  # noqa: E402
from adapters.salesforce.writeback import COLLECTION_MAX  # noqa: E402
from bench.common import git_revision  # noqa: E402
from engine.evaluate import Evaluator  # noqa: E402
from engine.fields import field_values  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from sandbox.salesforce import SalesforceState, serve  # noqa: E402
from sandbox.salesforce_seed import load_into_salesforce  # noqa: E402
from sandbox.seed import generate  # noqa: E402
from sandbox.world import World  # noqa: E402

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TARGET = 1.2
BATCH = 2000
"""Records per query batch, child records counted (Salesforce's maximum)."""


class Tokens:
    """The emulator's session, issued for the run, and what the install stores with it."""

    def __init__(self, state: SalesforceState) -> None:
        self.session = state.issue_session()
        self.values = {"instance_url": state.instance_url, "id": state.id_url(self.session)}

    def current(self) -> str:
        return self.session.access_token

    def renew(self, rejected: str) -> str:
        raise RuntimeError("the bench's session expired: the run took over two hours")

    def detail(self, name: str) -> str | None:
        return self.values.get(name)


def top_up(state: SalesforceState, world: World, ids: dict[str, str], contacts: int,
           activities: int) -> tuple[int, int]:  # fmt: skip
    """Extra contacts and activities on the world's opportunities, up to the wanted totals."""
    deals = [d for d in world.deals if d.contacts]
    extra_contacts = max(0, contacts - len(world.people))
    extra_activities = max(0, activities - len(world.activities))
    kinds = [a.kind for a in world.activities] or ["task"]
    extra: dict[str, list[str]] = {}
    with state.lock:
        for i in range(extra_contacts):
            deal = deals[i % len(deals)]
            contact = state.insert(
                "Contact",
                {"FirstName": "Extra", "LastName": f"Contact {i}",
                 "Email": f"extra{i}@extra.example", "Title": "Analyst",
                 "AccountId": ids[deal.company_id]},
                at=deal.created_at,
            )  # fmt: skip
            role = {"OpportunityId": ids[deal.id], "ContactId": contact}
            state.insert("OpportunityContactRole", role, at=deal.created_at)
            extra.setdefault(deal.id, []).append(contact)
        for i in range(extra_activities):
            deal = deals[i % len(deals)]
            people = [ids[c.person_id] for c in deal.contacts] + extra.get(deal.id, [])
            person = people[i % len(people)]
            at = world.now - timedelta(days=1 + i % 60, minutes=i % 600)
            _activity(state, kinds[i % len(kinds)], ids[deal.id], ids[deal.owner_id],
                      people, person, at)  # fmt: skip
    return extra_contacts, extra_activities


def _activity(state: SalesforceState, kind: str, opp: str, owner: str, people: list[str],
              person: str, at: datetime) -> None:  # fmt: skip
    common = {"WhatId": opp, "OwnerId": owner}
    if kind in ("call", "task", "note"):
        state.insert("Task", {**common, "WhoId": person, "Subject": kind, "Status": "Completed",
                              "Priority": "Normal", "ActivityDate": at.date(),
                              "TaskSubtype": "Call" if kind == "call" else "Task",
                              "CallType": "Outbound" if kind == "call" else None},
                     by=owner, at=at)  # fmt: skip
    elif kind == "meeting":
        event = state.insert("Event", {**common, "WhoId": person, "Subject": "Meeting",
                                       "StartDateTime": at,
                                       "EndDateTime": at + timedelta(minutes=30)},
                             by=owner, at=at)  # fmt: skip
        for who in dict.fromkeys([person, *people[:2]]):
            state.insert("EventRelation", {"EventId": event, "RelationId": who,
                                           "IsParent": True, "IsInvitee": True},
                         by=owner, at=at)  # fmt: skip
    else:
        task = state.insert("Task", {**common, "WhoId": person, "Subject": "Email",
                                     "Status": "Completed", "Priority": "Normal",
                                     "ActivityDate": at.date(), "TaskSubtype": "Email"},
                            by=owner, at=at)  # fmt: skip
        message = state.insert("EmailMessage", {"RelatedToId": opp, "Subject": "Email",
                                                "FromAddress": "rep@vendor.example",
                                                "MessageDate": at, "Incoming": False,
                                                "Status": "3", "ActivityId": task},
                               by=owner, at=at)  # fmt: skip
        for who, kind_ in ((owner, "FromAddress"), (person, "ToAddress")):
            relation = {"EmailMessageId": message, "RelationId": who, "RelationType": kind_}
            state.insert("EmailMessageRelation", relation, by=owner, at=at)


def needed(state: SalesforceState, opp_ids: Sequence[str]) -> dict[str, int]:
    """The records the bundles of these opportunities need, by record set (module docstring)."""
    wanted = set(opp_ids)
    with state.lock:
        live = {t: list(state.live(t)) for t in (
            "OpportunityContactRole", "OpportunityHistory", "Task", "Event", "EmailMessage",
            "EventRelation", "EmailMessageRelation",
        )}  # fmt: skip
    events = {e["Id"] for e in live["Event"] if e["WhatId"] in wanted}
    emails = {m["Id"] for m in live["EmailMessage"] if m["RelatedToId"] in wanted}
    children = (
        sum(1 for r in live["OpportunityContactRole"] if r["OpportunityId"] in wanted)
        + sum(1 for r in live["OpportunityHistory"] if r["OpportunityId"] in wanted)
        + sum(1 for t in live["Task"] if t["WhatId"] in wanted and t["TaskSubtype"] != "Email")
        + len(events) + len(emails)
    )  # fmt: skip
    return {
        "listing": len(wanted),
        "opportunities and children": len(wanted) + children,
        "attendees (EventRelation)": sum(
            1 for r in live["EventRelation"] if r["EventId"] in events
        ),
        "contact recipients (EmailMessageRelation)": sum(
            1 for r in live["EmailMessageRelation"]
            if r["EmailMessageId"] in emails and r["RelationObjectType"] == "Contact"
        ),
    }  # fmt: skip


class Wire:
    """Records carried by each answer, by route, counted on the client's session."""

    def __init__(self, client: SalesforceClient) -> None:
        self.records: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        real = client.session.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            response = real(method, url, **kwargs)
            parts = url.split("/services/data/", 1)[-1].split("?")[0].strip("/").split("/")[1:]
            route = f"{method} " + "/".join(
                "{locator}" if p.startswith("01g") else p for p in parts
            )
            body = kwargs.get("json") or {}
            sent = len(body.get("records") or ()) if isinstance(body, dict) else 0
            try:
                answer = response.json()
            except ValueError:
                answer = None
            self.calls[route] += 1
            self.records[route] += sent or _count(answer)
            return response

        client.session.request = request  # type: ignore[method-assign]


def _count(answer: Any) -> int:
    """Records in a query answer, child records included (a Composite's first answer too)."""
    if isinstance(answer, dict) and "compositeResponse" in answer:
        return sum(_count(sub.get("body")) for sub in answer["compositeResponse"])
    if not isinstance(answer, dict) or "records" not in answer:
        return 0
    total = 0
    for record in answer["records"] or ():
        total += 1
        for value in record.values():
            if isinstance(value, dict) and "records" in value:
                total += len(value["records"] or ())
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/salesforce_sync.py",
        description="Sync a seeded Salesforce emulator (over HTTPS) through the adapter; API "
        "calls by endpoint and records per call against the minimum the documented limits "
        "allow (2,000 records a query batch, children counted; 200 a Collections call).",
    )
    parser.add_argument("--deals", type=int, default=10_000, help="opportunities (10000)")
    parser.add_argument("--contacts", type=int, default=40_000,
                        help="contacts, topped up to this (40000; 0: none added)")  # fmt: skip
    parser.add_argument("--activities", type=int, default=200_000,
                        help="activities, topped up to this (200000; 0: none added)")  # fmt: skip
    parser.add_argument("--pull-batch", type=int, default=SalesforceAdapter.pull_batch,
                        help=f"opportunities per pull, as one refresh job "
                        f"({SalesforceAdapter.pull_batch})")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="world seed (7)")
    args = parser.parse_args(argv)
    if args.deals < 1 or args.pull_batch < 1:
        parser.error("--deals and --pull-batch must be at least 1")

    started = time.monotonic()
    print(f"revision {git_revision(['adapters', 'jobs', 'sandbox', 'bench'])}, load "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)  # fmt: skip
    world = generate(args.deals, args.seed, NOW)
    print(f"generated {len(world.deals)} deals ({time.monotonic() - started:.0f} s); loading "
          "them into the emulated org...", flush=True)  # fmt: skip
    state = SalesforceState(clock=lambda: NOW, daily_api_limit=None)
    ids = load_into_salesforce(state, world)
    print(f"  loaded ({time.monotonic() - started:.0f} s); topping up...", flush=True)
    extra = top_up(state, world, ids, args.contacts, args.activities)
    with state.lock:
        counts = {t: sum(1 for _ in state.live(t)) for t in (
            "Opportunity", "Contact", "Task", "Event", "EmailMessage",
        )}  # fmt: skip
    print(f"org: {counts['Opportunity']} opportunities, {counts['Contact']} contacts "
          f"({extra[0]} added), {counts['Task']} tasks, {counts['Event']} events, "
          f"{counts['EmailMessage']} emails ({extra[1]} activities added); setup "
          f"{time.monotonic() - started:.0f} s", flush=True)  # fmt: skip

    with serve(state) as server:
        tokens = Tokens(state)
        tenant = TenantRef(id="bench", crm="salesforce", account_id=state.org_id)
        context = AdapterContext(tokens=tokens, redis=None, crm={}, clock=lambda: NOW)

        def client() -> SalesforceClient:
            return SalesforceClient(state.org_id, tokens, ca_bundle=server.cert_path)

        provision(client())
        state.reset_counts()
        wires: list[Wire] = []

        def adapter() -> SalesforceAdapter:
            made = client()
            wires.append(Wire(made))
            return SalesforceAdapter(tenant, context, client=made)

        t0 = time.monotonic()
        found: list[str] = []
        listing, cursor, more = adapter(), None, True
        while more:
            changes = listing.changed_since(cursor)
            found += changes.deal_ids
            cursor, more = changes.cursor, changes.more
        t_list = time.monotonic() - t0
        print(f"listed {len(found)} opportunities in {t_list:.1f} s", flush=True)
        bundles = []
        t1 = time.monotonic()
        for start in range(0, len(found), args.pull_batch):
            bundles += adapter().pull(found[start : start + args.pull_batch]).bundles
            print(f"  pulled {min(start + args.pull_batch, len(found))}/{len(found)} "
                  f"({time.monotonic() - t1:.0f} s)", flush=True)  # fmt: skip
        t_pull = time.monotonic() - t1
        sync_counts = state.counts()
        records: Counter[str] = sum((w.records for w in wires), Counter())
        calls: Counter[str] = sum((w.calls for w in wires), Counter())

        evaluate = Evaluator(load_settings({"timezone": "UTC"}), NOW)
        stamp = NOW.isoformat()
        values = {b.deal.id: field_values(evaluate(b), stamp) for b in bundles}
        state.reset_counts()
        t2 = time.monotonic()
        result = adapter().write_back(values)
        t_write = time.monotonic() - t2
        write_counts = state.counts()

    rows = needed(state, found)
    lowest = {name: math.ceil(n / BATCH) for name, n in rows.items()}
    print(f"\nsync of {len(found)} opportunities ({len(bundles)} bundles, "
          f"{sum(len(b.contacts) for b in bundles)} opportunity contacts, "
          f"{sum(len(b.activities) for b in bundles)} activities mapped), pull batch "
          f"{args.pull_batch}:")  # fmt: skip
    print(f"  {'endpoint (emulator route)':<34} {'calls':>7}")
    for route, n in sorted(sync_counts.items()):
        print(f"  {route:<34} {n:>7}")
    print(f"  {'endpoint (on the wire)':<34} {'calls':>7} {'records':>9} {'per call':>9}")
    for route in sorted(calls):
        print(f"  {route:<34} {calls[route]:>7} {records[route]:>9} "
              f"{records[route] / calls[route]:>9.0f}")  # fmt: skip
    print(f"  minimum, {BATCH:,} records a batch, child records counted:")
    for name, n in rows.items():
        print(f"    {name:<44} {n:>8} records -> {lowest[name]:>4} calls")
    made, least = sum(sync_counts.values()), sum(lowest.values())
    strict = least - lowest["listing"]
    ratio = made / least
    print(
        f"  total {made} calls for a minimum of {least}: ratio {ratio:.3f} (target <= "
        f"{TARGET}); {made / strict:.3f} against the minimum without the listing ({strict})"
    )
    print(f"  records per call: {sum(records.values()) / max(1, sum(calls.values())):.0f} on "
          f"average; wall time: listing {t_list:.1f} s, pull {t_pull:.1f} s "
          f"({len(found) / max(t_pull, 1e-9):.0f} opportunities/s)")  # fmt: skip
    writes, least_writes = sum(write_counts.values()), math.ceil(len(values) / COLLECTION_MAX)
    print(f"write-back of {len(values)} opportunities: {writes} calls "
          f"({', '.join(f'{k} {v}' for k, v in write_counts.items())}), minimum {least_writes} "
          f"({COLLECTION_MAX} a call), {len(result.failed)} refused, {t_write:.1f} s")  # fmt: skip
    print(f"load {os.getloadavg()[0]:.2f} at the end; total {time.monotonic() - started:.0f} s")
    missing = {ids[d.id] for d in world.deals} - set(found)
    duplicates = [d for d, c in Counter(found).items() if c > 1]
    if missing or duplicates or len(bundles) != len(found):
        print(f"LOST: {len(missing)} never listed, {len(duplicates)} listed twice, "
              f"{len(found) - len(bundles)} not pulled")  # fmt: skip
        return 1
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
