"""The webhook subscriptions the HubSpot app needs, derived from what the adapter reads.

HubSpot sends a public app only the events its developer subscribed to in the app's settings
(crm-apis.md, Webhooks), and Deal Radar does not poll HubSpot: a change nobody subscribed to
reaches a deal's fields only when some other event names the deal. So the list follows the
properties `adapter.py` reads, each change to one of them naming the record, plus the records'
creation, deletion, restoring, merging and association changes; `dealradar hubspot
subscriptions` prints it for the app's developer. Subscriptions are in the webhook payload's
words: `subscriptionType`, with `propertyName` for a property change and `objectTypeId` for the
generic `object.*` format, the only one that covers calls, emails, meetings, tasks and notes.
"""

from __future__ import annotations

from adapters.hubspot.adapter import ACTIVITY_PROPERTIES, CONTACT_PROPERTIES, DEAL_PROPERTIES

NOT_SUBSCRIBED: dict[str, str] = {
    "createdate": "set once, when the deal is created (deal.creation)",
    "hs_is_closed": "calculated from dealstage",
    "hs_is_closed_won": "calculated from dealstage",
    "hs_lastmodifieddate": "HubSpot refuses subscriptions to it",
    "hs_task_body": "its text decides nothing",
    "hs_note_body": "its text decides nothing",
    "hs_email_headers": "set once, when the email is logged",
}
"""Properties the adapter reads whose changes need no event of their own, with the reason."""

ACTIVITY_TYPE_IDS = {
    "calls": "0-48",
    "emails": "0-49",
    "meetings": "0-47",
    "tasks": "0-27",
    "notes": "0-46",
}
"""HubSpot's objectTypeId of each activity type the adapter reads."""

_RECORD_EVENTS = ("creation", "deletion", "restore", "merge", "associationChange")
_CONTACT_EVENTS = ("deletion", "privacyDeletion", "restore", "merge", "associationChange")
# A new contact matters once associated with a deal (contact.associationChange).
_ACTIVITY_EVENTS = ("creation", "deletion", "restore", "associationChange")


def wanted() -> list[dict[str, str]]:
    """Every subscription the app needs, in a stable order."""
    subs: list[dict[str, str]] = [{"subscriptionType": f"deal.{e}"} for e in _RECORD_EVENTS]
    subs += _changes("deal.propertyChange", DEAL_PROPERTIES)
    subs += [{"subscriptionType": f"contact.{e}"} for e in _CONTACT_EVENTS]
    subs += _changes("contact.propertyChange", CONTACT_PROPERTIES)
    for kind, type_id in ACTIVITY_TYPE_IDS.items():
        generic = {"objectTypeId": type_id}
        subs += [{"subscriptionType": f"object.{e}", **generic} for e in _ACTIVITY_EVENTS]
        subs += [
            {**sub, **generic}
            for sub in _changes("object.propertyChange", ACTIVITY_PROPERTIES[kind])
        ]
    return subs


def _changes(subscription_type: str, properties: list[str]) -> list[dict[str, str]]:
    return [
        {"subscriptionType": subscription_type, "propertyName": name}
        for name in properties
        if name not in NOT_SUBSCRIBED
    ]
