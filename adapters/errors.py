"""The one error vocabulary of every CRM adapter.

Each adapter's `client.py` translates its SDK's and HTTP's errors into these, with
`raise ... from`; `jobs.policy` decides from them whether to retry, refresh, fail or ignore.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base of every error an adapter raises."""


class AuthExpired(CrmError):
    """The access token expired or was rejected: refresh it and try again."""


class RateLimited(CrmError):
    """The CRM said slow down; `retry_after` is its hint in seconds, if it gave one."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(CrmError):
    """A timeout, a 5xx, a dropped connection: worth retrying with backoff."""


class NotFound(CrmError):
    """The record is gone (deleted in the CRM)."""


class PermissionDenied(CrmError):
    """The token lost a scope or the app was uninstalled: an admin must act."""


class InvalidRequest(CrmError):
    """The CRM refused what we sent: a bug or a configuration problem, not worth a retry."""


class OwnerInactive(InvalidRequest):
    """The CRM refused a record assigned to a deactivated user (Salesforce's
    INACTIVE_OWNER_OR_USER); `owner_id` is that user. Assigned to someone else, or to nobody,
    the same record goes through."""

    def __init__(self, message: str, owner_id: str) -> None:
        super().__init__(message)
        self.owner_id = owner_id
