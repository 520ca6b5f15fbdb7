"""Zendesk Sell's error answers, as the emulator raises them from Python and serves them over HTTP.

Shape (basecrm-python ``basecrm/errors.py`` reads exactly these keys; crm-apis.md 3.7)::

    {"errors": [{"error": {"code", "message", "details"?, "resource"?, "field"?},
                 "meta": {"type": "error"}}],
     "meta": {"type": "errors", "http_status": "422 Unprocessable Entity", "logref": "..."}}

The per-error ``meta`` and the top-level ``type`` and ``http_status`` text are UNCONFIRMED (the
client reads only ``errors[].error`` and ``meta.logref``); the ``code`` values are the
emulator's own except ``invalid_user_agent`` (crm-apis.md 3.1, secondary). The OAuth token
endpoint answers RFC 6749's ``{"error", "error_description"}`` instead.
"""

import uuid
from http import HTTPStatus

__all__ = [
    "SellError",
    "bad_request",
    "gone",
    "invalid",
    "not_found",
    "oauth_error",
    "unauthorized",
]


class SellError(Exception):
    """A refusal with Sell's status code and error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: str | None = None,
        field: str | None = None,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.field = field
        self.resource = resource
        self.headers = headers or {}
        self._body = body

    def body(self) -> dict:
        """The JSON body Sell answers with (a fresh ``logref`` each time)."""
        if self._body is not None:
            return dict(self._body)
        error: dict = {"code": self.code, "message": self.message}
        for key in ("details", "resource", "field"):
            if getattr(self, key) is not None:
                error[key] = getattr(self, key)
        return {
            "errors": [{"error": error, "meta": {"type": "error"}}],
            "meta": {
                "type": "errors",
                "http_status": f"{self.status} {HTTPStatus(self.status).phrase}",
                "logref": uuid.uuid4().hex,
            },
        }


def not_found(resource: str, record_id: object) -> SellError:
    """404 for a record that does not exist (or was deleted)."""
    return SellError(
        404, "not_found", f"{resource} {record_id} not found", resource=resource.rstrip("s")
    )


def invalid(
    field: str, message: str, code: str = "invalid", resource: str | None = None
) -> SellError:
    """422 for a value Sell refuses; ``field`` is a JSON pointer into the request body."""
    return SellError(422, code, message, field=field, resource=resource)


def bad_request(code: str, message: str, details: str | None = None) -> SellError:
    """400 for a malformed request (envelope, query parameter, header)."""
    return SellError(400, code, message, details=details)


def unauthorized(message: str, code: str = "unauthorized") -> SellError:
    """401 for a missing, unknown or expired token."""
    return SellError(401, code, message)


def gone(message: str) -> SellError:
    """410 for a Firehose position older than the retention."""
    return SellError(410, "gone", message)


def oauth_error(status: int, error: str, description: str) -> SellError:
    """The token endpoint's RFC 6749 error body."""
    return SellError(
        status, error, description, body={"error": error, "error_description": description}
    )
