"""Sell's Core API v2 resources as the emulator stores them: each record's fields with their
defaults, the keys the API accepts on create and update, and the list filters.

Fields follow the Core API v2 reference as crm-apis.md 3.2-3.4 and basecrm-python's
``services.py`` (``OPTS_KEYS_TO_PERSIST``, the writable keys) give them, plus the tap-zendesk-sell
schemas for deals. Datetimes are ISO-8601 UTC with a ``Z`` and no fraction
(``2017-09-25T13:52:40Z``); ``estimated_close_date`` and a task's ``due_date`` are as written.

UNCONFIRMED: a deal's ``value`` comes back as a JSON number (basecrm coerces either a number or
a string to Decimal; a string is accepted on write); unknown keys on a write are ignored rather
than refused (basecrm strips them before sending, so the server's answer is unknown); a stage's
``category`` values (``incoming``, ``in_progress``, ``won``, ``lost`` here).
"""

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = [
    "ACTIVITY_RESOURCES",
    "DEFAULTS",
    "FILTERS",
    "ITEM_TYPE",
    "RESOURCE_TYPES",
    "SORTABLE_EXCLUDED",
    "STREAMED",
    "WRITABLE",
    "format_datetime",
]


def format_datetime(value: datetime) -> str:
    """``2017-09-25T13:52:40Z``: Sell's datetime form."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deal() -> dict:
    return {
        "creator_id": None,
        "owner_id": None,
        "name": None,
        "value": 0,
        "currency": "USD",
        "hot": False,
        "stage_id": None,
        "last_stage_change_at": None,
        "last_stage_change_by_id": None,
        "last_activity_at": None,
        "source_id": None,
        "loss_reason_id": None,
        "unqualified_reason_id": None,
        "dropbox_email": None,
        "contact_id": None,
        "organization_id": None,
        "estimated_close_date": None,
        "customized_win_likelihood": None,
        "tags": [],
        "custom_fields": {},
        "added_at": None,
    }


def _contact() -> dict:
    return {
        "creator_id": None,
        "owner_id": None,
        "is_organization": False,
        "contact_id": None,
        "parent_organization_id": None,
        "name": None,
        "first_name": None,
        "last_name": None,
        "customer_status": "none",
        "prospect_status": "none",
        "title": None,
        "description": None,
        "industry": None,
        "website": None,
        "email": None,
        "phone": None,
        "mobile": None,
        "fax": None,
        "twitter": None,
        "facebook": None,
        "linkedin": None,
        "skype": None,
        "address": None,
        "billing_address": None,
        "shipping_address": None,
        "tags": [],
        "custom_fields": {},
    }


def _call() -> dict:
    return {
        "user_id": None,
        "summary": None,
        "recording_url": None,
        "outcome_id": None,
        "duration": None,
        "phone_number": None,
        "incoming": False,
        "missed": False,
        "resource_type": None,
        "resource_id": None,
        "associated_deal_ids": [],
        "made_at": None,
    }


def _visit() -> dict:
    return {
        "creator_id": None,
        "outcome_id": None,
        "resource_type": None,
        "resource_id": None,
        "visited_at": None,
        "resource_address": None,
        "rep_location_verification_status": None,
        "summary": None,
    }


def _note() -> dict:
    return {
        "creator_id": None,
        "resource_type": None,
        "resource_id": None,
        "content": None,
        "is_important": False,
        "tags": [],
        "type": "regular",
    }


def _task() -> dict:
    return {
        "creator_id": None,
        "owner_id": None,
        "resource_type": None,
        "resource_id": None,
        "completed": False,
        "completed_at": None,
        "due_date": None,
        "overdue": False,
        "remind_at": None,
        "content": None,
    }


def _user() -> dict:
    return {
        "name": None,
        "email": None,
        "status": "active",
        "invited": False,
        "confirmed": True,
        "phone_number": None,
        "role": "user",
        "roles": [],
        "team_name": None,
        "group": None,
        "reports_to": None,
        "timezone": "UTC",
        "deleted_at": None,
    }


def _pipeline() -> dict:
    return {"name": None, "disabled": False}


def _stage() -> dict:
    return {
        "name": None,
        "category": None,
        "active": True,
        "position": None,
        "likelihood": None,
        "pipeline_id": None,
    }


DEFAULTS: dict[str, Callable[[], dict]] = {
    "users": _user,
    "pipelines": _pipeline,
    "stages": _stage,
    "contacts": _contact,
    "deals": _deal,
    "calls": _call,
    "visits": _visit,
    "notes": _note,
    "tasks": _task,
}
"""Every stored resource with its fields' defaults (not ``id``, ``created_at``, ``updated_at``)."""

ITEM_TYPE: dict[str, str] = {
    "users": "user",
    "pipelines": "pipeline",
    "stages": "stage",
    "contacts": "contact",
    "deals": "deal",
    "calls": "call",
    "visits": "visit",
    "notes": "note",
    "tasks": "task",
    "custom_fields": "custom_field",
}
"""``meta.type`` of each resource's items, in lists, single answers and Firehose events."""

WRITABLE: dict[str, frozenset[str]] = {
    "deals": frozenset(
        [
            "contact_id",
            "currency",
            "custom_fields",
            "estimated_close_date",
            "hot",
            "loss_reason_id",
            "name",
            "owner_id",
            "source_id",
            "stage_id",
            "tags",
            "value",
            "last_stage_change_at",
            "customized_win_likelihood",
        ]
    ),
    "contacts": frozenset(
        [
            "address",
            "contact_id",
            "custom_fields",
            "customer_status",
            "description",
            "email",
            "facebook",
            "fax",
            "first_name",
            "industry",
            "is_organization",
            "last_name",
            "linkedin",
            "mobile",
            "name",
            "owner_id",
            "phone",
            "prospect_status",
            "skype",
            "tags",
            "title",
            "twitter",
            "website",
        ]
    ),
    "calls": frozenset(
        [
            "user_id",
            "summary",
            "recording_url",
            "outcome_id",
            "duration",
            "phone_number",
            "incoming",
            "missed",
            "resource_type",
            "resource_id",
            "associated_deal_ids",
            "made_at",
        ]
    ),
    # basecrm-python only reads visits; the emulator lets them be written like the others.
    "visits": frozenset(["outcome_id", "resource_type", "resource_id", "visited_at", "summary"]),
    "notes": frozenset(["content", "resource_type", "resource_id", "is_important", "tags", "type"]),
    "tasks": frozenset(
        [
            "content",
            "due_date",
            "remind_at",
            "completed",
            "owner_id",
            "resource_type",
            "resource_id",
        ]
    ),
}
"""Keys a POST or PUT may set (basecrm ``OPTS_KEYS_TO_PERSIST``; deals also
``last_stage_change_at``, writable since client 1.2.6); others are ignored."""

_ON_RECORDS: dict[str, str | None] = {"lead": None, "contact": "contacts", "deal": "deals"}

RESOURCE_TYPES: dict[str, dict[str, str | None]] = {
    # The Firehose calls reference: lead, contact or prospect_and_customer; deals go in
    # associated_deal_ids.
    "calls": {"lead": None, "contact": "contacts", "prospect_and_customer": "contacts"},
    "notes": _ON_RECORDS,
    "tasks": _ON_RECORDS,
    "visits": _ON_RECORDS,  # UNCONFIRMED
}
"""The ``resource_type`` values each activity accepts, and where its ``resource_id`` points
(leads are not emulated: any id is accepted)."""

ACTIVITY_RESOURCES = frozenset({"calls", "visits", "notes", "tasks"})

STREAMED = tuple(DEFAULTS)
"""Resources with a Firehose stream (``/v3/<resource>/stream``). Deals, contacts, calls,
tasks and users are in Sell's Firehose list; visits, notes, stages and pipelines streams are
UNCONFIRMED. Associated-contact changes have no stream here (UNCONFIRMED)."""

FILTERS: dict[str, dict[str, str]] = {
    "deals": {
        "creator_id": "int",
        "owner_id": "int",
        "stage_id": "int",
        "contact_id": "int",
        "organization_id": "int",
        "source_id": "int",
        "hot": "bool",
        "name": "str",
        "estimated_close_date": "str",
    },
    "contacts": {
        "creator_id": "int",
        "owner_id": "int",
        "contact_id": "int",
        "is_organization": "bool",
        "name": "str",
        "first_name": "str",
        "last_name": "str",
        "email": "str",
        "phone": "str",
        "customer_status": "str",
        "prospect_status": "str",
    },
    "calls": {"resource_type": "str", "resource_id": "int", "user_id": "int", "outcome_id": "int"},
    "visits": {
        "resource_type": "str",
        "resource_id": "int",
        "creator_id": "int",
        "outcome_id": "int",
    },
    "notes": {"resource_type": "str", "resource_id": "int", "creator_id": "int"},
    "tasks": {
        "resource_type": "str",
        "resource_id": "int",
        "creator_id": "int",
        "owner_id": "int",
        "completed": "bool",
        "overdue": "bool",
    },
    "users": {"name": "str", "email": "str", "role": "str", "status": "str"},
    "pipelines": {"name": "str"},
    "stages": {"pipeline_id": "int", "name": "str", "active": "bool"},
}
"""Query filters of each list (plus ``ids``, ``page``, ``per_page``, ``sort_by`` everywhere):
exact matches on the record's field, typed as given. No ``updated_since`` filter is documented
(crm-apis.md 3.2): use ``sort_by=updated_at:desc`` or the Firehose."""

SORTABLE_EXCLUDED = frozenset({"last_activity_at", "custom_fields", "tags", "address"})
"""Fields ``sort_by`` refuses (sorting deals by ``last_activity_at`` is a community feature
request, so Sell does not support it)."""
