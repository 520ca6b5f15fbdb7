"""The `notifications` and `digest` parts of a tenant's settings: who hears of what, and how.

`notifications` sends the deal's owner a message when an event of `events` happens on one of
their deals, by the `channels` chosen for the tenant, or for that rep under `reps.<user id>`
(the CRM's owner id). `slack` names an incoming webhook stored for the tenant
(`PUT /api/v1/slack-webhooks/<name>`): the URL is a secret, so settings only name it.
`digest` sends each rep with alerting deals one email a day at `hour` (local), and each of
`managers` one with the deals of their `reps` (all reps when empty). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

NOTIFY_EVENTS = ("alert.started", "alert.ended", "health.grade_changed")
CHANNELS = ("email", "slack")
WEBHOOK_NAME = r"^[a-z0-9][a-z0-9_-]{0,33}$"
"""A stored Slack webhook's name: lowercase, digits, '-' and '_', 1 to 34 characters."""

DEFAULTS: dict[str, Any] = {
    "notifications": {"events": ["alert.started"], "channels": [], "slack": None, "reps": {}},
    "digest": {"enabled": True, "hour": 8, "managers": []},
}
"""Instant notifications are off until an admin picks a channel (the digest is the default
way reps hear of their alerts); the digest is on."""


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _name() -> fields.String:
    return fields.String(
        allow_none=True,
        validate=validate.Regexp(WEBHOOK_NAME, error="a webhook name: a-z, 0-9, '-', '_'"),
        metadata={"description": "The name of a Slack webhook stored for the tenant"},
    )


def _channels() -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(CHANNELS)))


class RepNotifications(_Strict):
    channels = _channels()
    slack = _name()
    email = fields.Email(metadata={"description": "Send here instead of the CRM's address"})
    digest = fields.Boolean(metadata={"description": "false: no morning digest for this rep"})


class NotificationsSchema(_Strict):
    events = fields.List(fields.String(validate=validate.OneOf(NOTIFY_EVENTS)))
    channels = _channels()
    slack = _name()
    reps = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.Nested(RepNotifications),
    )


class Manager(_Strict):
    email = fields.Email(required=True)
    name = fields.String(validate=validate.Length(max=200))
    reps = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        metadata={"description": "The CRM user ids of the team; empty: every rep"},
    )


class DigestSchema(_Strict):
    enabled = fields.Boolean()
    hour = fields.Integer(strict=True, validate=validate.Range(min=0, max=23))
    managers = fields.List(fields.Nested(Manager))


@dataclass(frozen=True)
class RepChoice:
    """What one rep gets, the tenant's defaults with the rep's own choices over them."""

    channels: tuple[str, ...]
    slack: str | None
    email: str | None
    digest: bool


def rep_choice(document: Mapping[str, Any], rep_id: str | None) -> RepChoice:
    """The resolved settings document's choices for `rep_id` (None: the tenant's defaults)."""
    tenant = document["notifications"]
    own = tenant["reps"].get(rep_id, {}) if rep_id else {}
    return RepChoice(
        channels=tuple(own.get("channels", tenant["channels"])),
        slack=own.get("slack", tenant["slack"]),
        email=own.get("email"),
        digest=bool(own.get("digest", True)),
    )
