"""HubSpot's error answers, as the emulator raises them from Python and serves them over HTTP.

Shapes: the ``Error`` schema of the CRM v3 specs (status, message, correlationId, category,
subCategory, errors, context; https://developers.hubspot.com/docs/api-reference/latest/error-handling),
the property-validation 400 whose ``message`` embeds a JSON list of per-property problems, the
OAuth endpoints' ``{error, error_description, status: <reason code>, message}`` (v1 and v3 alike:
RFC 6749's two fields were added beside HubSpot's own,
https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses),
and the 429 body with ``errorType: RATE_LIMIT`` and ``policyName`` (usage guidelines).
"""

import json
import uuid
from datetime import timedelta

__all__ = [
    "OAUTH_ERROR_CODES",
    "HubSpotError",
    "not_found",
    "oauth_error",
    "prop_error",
    "property_errors",
    "rate_limited",
    "validation",
]


class HubSpotError(Exception):
    """A refusal with HubSpot's status code and error body (``Error`` in the v3 specs)."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str = "VALIDATION_ERROR",
        *,
        sub_category: str | None = None,
        errors: list[dict] | None = None,
        context: dict | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.errors = errors
        self.context = context
        self.headers = headers or {}
        self._body = body

    def body(self) -> dict:
        """The JSON body HubSpot answers with (a fresh correlationId each time)."""
        if self._body is not None:
            return dict(self._body)
        out: dict = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            out["subCategory"] = self.sub_category
        if self.errors is not None:
            out["errors"] = self.errors
        if self.context is not None:
            out["context"] = self.context
        return out


def not_found(message: str = "resource not found") -> HubSpotError:
    """HubSpot's 404 for a missing record or definition."""
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


def validation(message: str, **kw) -> HubSpotError:
    """HubSpot's generic 400."""
    return HubSpotError(400, message, "VALIDATION_ERROR", **kw)


def prop_error(name: str, code: str, message: str) -> dict:
    """One problem with one property value (PROPERTY_DOESNT_EXIST, INVALID_OPTION, ...)."""
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }


def property_errors(problems: list[dict]) -> HubSpotError:
    """HubSpot's 400 for invalid property values: the list is JSON inside ``message``."""
    message = "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))
    return HubSpotError(400, message, "VALIDATION_ERROR")


OAUTH_ERROR_CODES = {
    "BAD_AUTH_CODE": "invalid_grant",
    "BAD_REDIRECT_URI": "invalid_grant",
    "BAD_REFRESH_TOKEN": "invalid_grant",
    "BAD_CLIENT_ID": "invalid_client",
    "BAD_CLIENT_SECRET": "invalid_client",
    "BAD_GRANT_TYPE": "unsupported_grant_type",
}
"""RFC 6749's ``error`` for each of HubSpot's OAuth reason codes. HubSpot documents only
BAD_REFRESH_TOKEN's (``invalid_grant``, the changelog's example); the others follow RFC 6749
section 5.2 (the emulator's choice)."""


def oauth_error(status: str, message: str) -> HubSpotError:
    """An OAuth endpoint's 400: RFC 6749's ``error`` and ``error_description`` beside HubSpot's
    ``status`` (the reason code) and ``message``, as the changelog's example."""
    return HubSpotError(
        400,
        message,
        "VALIDATION_ERROR",
        body={
            "error": OAUTH_ERROR_CODES.get(status, "invalid_request"),
            "error_description": message,
            "status": status,
            "message": message,
            "correlationId": str(uuid.uuid4()),
        },
    )


def rate_limited(policy: str, message: str, limit: int, window: timedelta) -> HubSpotError:
    """The 429 of one rate-limit policy, with its ``X-HubSpot-RateLimit-*`` headers."""
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
    headers = {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window.total_seconds() * 1000)),
    }
    return HubSpotError(429, message, "RATE_LIMITS", headers=headers, body=body)
