"""OAuth 2 tokens, personal access tokens and the hourly request allowance of an emulated Sell
account.

OAuth as crm-apis.md 3.1 reports it: authorization codes (single use, bound to their
redirect_uri; their 10-minute lifetime is the emulator's choice), access tokens answered with
``expires_in`` 3599 and a refresh token; a refresh returns a new access token and a new refresh
token, and the old refresh token stops working (UNCONFIRMED: Sell may keep it valid). Personal
access tokens are 64 characters (basecrm-python checks the length) and never expire; OAuth
tokens here are 64 hex characters too.

Rate limit: 36,000 requests per hour per token (https://developer.zendesk.com/api-reference/
sales-crm/rate-limits), a fixed window from the token's first request; past it every request is
429 until the window resets. Sell documents no rate-limit headers: the emulator sends
``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (epoch seconds) and, on a
429, ``Retry-After`` (seconds), all UNCONFIRMED, so a client may use them but must not rely on them.

Error policy: refusals are ``SellError`` (401 unknown or expired token, 400/401 RFC 6749 bodies
at the token endpoint, 429); nothing here logs a token.
"""

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.sell_errors import SellError, oauth_error, unauthorized

__all__ = [
    "ACCESS_TOKEN_TTL",
    "HOURLY_LIMIT",
    "HourlyAllowance",
    "OAuthTokens",
    "Token",
]

ACCESS_TOKEN_TTL = timedelta(seconds=3599)
"""Lifetime of an OAuth access token (Sell answers ``expires_in`` of about 3599)."""

CODE_TTL = timedelta(minutes=10)
"""How long an authorization code can be exchanged (the emulator's choice)."""

HOURLY_LIMIT = 36_000
"""Requests per hour per token."""

RATE_WINDOW = timedelta(hours=1)
"""The fixed window of ``HOURLY_LIMIT``."""

DEFAULT_SCOPE = "read write profile"
"""Granted when an authorize request names no scope (``sync`` must be asked for)."""


@dataclass
class Token:
    """An access token of the account: OAuth (with a refresh token) or personal."""

    access_token: str
    user_id: int
    refresh_token: str | None
    expires_at: datetime | None  # None: a personal access token, never expires
    scope: str

    def expires_in(self, now: datetime) -> int:
        if self.expires_at is None:
            return 0
        return max(0, int((self.expires_at - now).total_seconds()))


@dataclass
class _Code:
    user_id: int
    redirect_uri: str | None
    scope: str
    expires_at: datetime


class OAuthTokens:
    """Codes and tokens of one account; the caller holds the state's lock."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}

    def issue_code(self, user_id: int, redirect_uri: str | None, scope: str, now: datetime) -> str:
        code = secrets.token_hex(16)
        self._codes[code] = _Code(user_id, redirect_uri, scope, now + CODE_TTL)
        return code

    def issue(self, user_id: int, scope: str, now: datetime) -> Token:
        token = Token(
            secrets.token_hex(32), user_id, secrets.token_hex(32), now + ACCESS_TOKEN_TTL, scope
        )
        self._access[token.access_token] = token
        self._refresh[token.refresh_token or ""] = token
        return token

    def personal(self, user_id: int) -> Token:
        token = Token(secrets.token_hex(32), user_id, None, None, "read write profile sync")
        self._access[token.access_token] = token
        return token

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.client_id or not secrets.compare_digest(
            client_secret or "", self.client_secret
        ):
            raise oauth_error(401, "invalid_client", "Client authentication failed.")

    def exchange_code(self, code: str, redirect_uri: str | None, now: datetime) -> Token:
        grant = self._codes.pop(code, None)  # single use, even when refused below
        if grant is None or grant.expires_at <= now:
            raise oauth_error(400, "invalid_grant", "The authorization code is invalid or expired.")
        if grant.redirect_uri and grant.redirect_uri != redirect_uri:
            raise oauth_error(400, "invalid_grant", "The redirect_uri does not match.")
        return self.issue(grant.user_id, grant.scope, now)

    def refresh(self, refresh_token: str, now: datetime) -> Token:
        old = self._refresh.pop(refresh_token, None)
        if old is None:
            raise oauth_error(400, "invalid_grant", "The refresh token is invalid or revoked.")
        return self.issue(old.user_id, old.scope, now)

    def authenticate(self, bearer: str | None, now: datetime) -> Token:
        if not bearer:
            raise unauthorized("Missing access token: send Authorization: Bearer <token>.")
        token = self._access.get(bearer)
        if token is None:
            raise unauthorized("The access token is invalid or was revoked.", "invalid_token")
        if token.expires_at is not None and token.expires_at <= now:
            raise unauthorized("The access token expired: refresh it.", "token_expired")
        return token

    def revoke_user(self, user_id: int) -> None:
        """Drop every token of one user (a deactivated user's tokens stop working)."""
        self._access = {k: t for k, t in self._access.items() if t.user_id != user_id}
        self._refresh = {k: t for k, t in self._refresh.items() if t.user_id != user_id}

    def expire(self, access_token: str, now: datetime) -> None:
        """Make one access token expired (tests of the refresh path)."""
        self._access[access_token].expires_at = now


class HourlyAllowance:
    """Fixed one-hour windows of requests per token; ``limit`` None switches the 429s off."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._windows: dict[str, tuple[datetime, int]] = {}

    def hit(self, token: str, now: datetime) -> dict[str, str]:
        """Count one request; the rate headers to send, or a 429 ``SellError``."""
        if self.limit is None:
            return {}
        start, used = self._windows.get(token, (now, 0))
        if now >= start + RATE_WINDOW:
            start, used = now, 0
        reset = start + RATE_WINDOW
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Reset": str(math.ceil(reset.timestamp())),
        }
        if used >= self.limit:
            self._windows[token] = (start, used)
            retry = max(1, math.ceil((reset - now).total_seconds()))
            headers |= {"X-RateLimit-Remaining": "0", "Retry-After": str(retry)}
            raise SellError(
                429,
                "rate_limit_exceeded",
                f"Rate limit of {self.limit} requests per hour exceeded; retry in {retry} s.",
                headers=headers,
            )
        self._windows[token] = (start, used + 1)
        headers["X-RateLimit-Remaining"] = str(self.limit - used - 1)
        return headers
