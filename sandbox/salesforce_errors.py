"""Salesforce's error answers, raised from Python and served over HTTP.

REST errors are a JSON list of ``{message, errorCode, fields?}`` (REST API developer guide,
"Status Codes and Error Responses"); sObject Collections report per-record ``errors`` entries
shaped ``{statusCode, message, fields}``; the OAuth token endpoint answers
``{error, error_description}``.
"""

from __future__ import annotations

__all__ = ["SalesforceError", "invalid_field", "malformed_query", "not_found"]


class SalesforceError(Exception):
    """A refusal with its HTTP status, Salesforce error code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict]:
        """The REST body: a list with one error."""
        out: dict = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            out["fields"] = self.fields
        return [out]

    def save_error(self) -> dict:
        """The entry of a SaveResult's ``errors`` (sObject Collections)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}


def malformed_query(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", message)


def invalid_field(field: str, sobject: str, *, in_query: bool = True) -> SalesforceError:
    """Salesforce's words for a field that does not exist or that the user cannot see."""
    if in_query:
        message = (
            f"No such column '{field}' on entity '{sobject}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names."
        )
    else:
        message = f"No such column '{field}' on sobject of type {sobject}"
    return SalesforceError(400, "INVALID_FIELD", message, [field] if not in_query else None)


def not_found(what: str = "The requested resource does not exist") -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", what)
