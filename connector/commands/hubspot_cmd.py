"""`dealradar hubspot subscriptions`: the webhook subscriptions to set in the HubSpot app.

HubSpot sends the app only the events its developer subscribed to, and Deal Radar does not poll
HubSpot: without these, a deal's fields follow its changes only once the daily sweep or another
event comes by. Set the app's target URL to PUBLIC_URL + /webhooks/hubspot, create each
subscription listed (the generic `object.*` ones cover calls, emails, meetings, tasks and
notes), and activate them; `--json` prints them for a script.
"""

from __future__ import annotations

import argparse
import json

from adapters.hubspot import subscriptions
from connector.config import Config

TARGET_PATH = "/webhooks/hubspot"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hubspot", help="set up the HubSpot app", description=__doc__)
    hubspot_sub = p.add_subparsers(dest="hubspot_command", metavar="ACTION", required=True)
    subs = hubspot_sub.add_parser(
        "subscriptions",
        help="list the webhook subscriptions the HubSpot app needs",
        description=__doc__,
    )
    subs.add_argument("--json", action="store_true", help="one JSON array, for a script")
    subs.set_defaults(run=run_subscriptions)


def run_subscriptions(args: argparse.Namespace) -> int:
    wanted = subscriptions.wanted()
    if args.json:
        print(json.dumps(wanted, indent=2))
        return 0
    public_url = Config.from_env(require_keys=False).public_url
    target = f"{public_url.rstrip('/')}{TARGET_PATH}" if public_url else f"PUBLIC_URL{TARGET_PATH}"
    print(f"target URL: {target}")
    print(f"{'subscription type':<24} {'object type':<14} property")
    names = {type_id: kind for kind, type_id in subscriptions.ACTIVITY_TYPE_IDS.items()}
    for sub in wanted:
        type_id = sub.get("objectTypeId", "")
        object_type = f"{type_id} {names[type_id]}" if type_id else ""
        print(f"{sub['subscriptionType']:<24} {object_type:<14} {sub.get('propertyName', '')}")
    print(f"{len(wanted)} subscriptions; create them in the app's Webhooks settings and "
          "activate them (HubSpot starts new ones paused)")  # fmt: skip
    return 0
