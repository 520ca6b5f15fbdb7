"""OAuth tokens and rate-limit windows of the emulated portal.

OAuth as HubSpot documents it: authorization codes (valid 10 minutes, single use, bound to
their redirect_uri), access tokens that expire after 30 minutes, refresh tokens that stay the
same across refreshes until revoked; unknown or revoked tokens get 401 INVALID_AUTHENTICATION,
expired ones 401 EXPIRED_AUTHENTICATION. Token information two ways: v1's
``GET /oauth/v1/access-tokens/{token}`` and v3's introspection (``introspect``: the client
credentials and the token in a form body; the answer's fields are the 2026-03 spec's
``PublicAccessTokenInfoResponse`` and ``PublicRefreshTokenInfoResponse``, the date-versioned
twin of ``POST /oauth/v3/token/introspect``). Sources:
https://developers.hubspot.com/docs/api/oauth-quickstart-guide ;
https://developers.hubspot.com/docs/api-reference/auth-oauth-v3/guide ;
https://developers.hubspot.com/docs/api-reference/latest/authentication/oauth-tokens/token-introspect
;
HubSpot-public-api-spec-collection ``PublicApiSpecs/Auth/Oauth/Rollouts/279897/2026-03/oauth.json``;
https://developers.hubspot.com/changelog/upcoming-expiration-of-oauth-access-tokens-is-changing ;
``hubspot/oauth`` models of hubspot-api-client 12.

Not documented by HubSpot, so the emulator's choice: what introspection answers for a token that
is unknown, expired or revoked (here RFC 7662's 200 ``{"active": false}``), the ``token_type``
values and the values inside ``signed_access_token``, and what revocation answers (here RFC
7009's empty 200, for an unknown token too).

Rate limits: a public app gets 110 requests per rolling 10 seconds per installing account
(policy TEN_SECONDLY_ROLLING), search 5 per second per account (policy name SECONDLY is this
emulator's choice). https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines

Error policy: refusals are ``HubSpotError`` with HubSpot's status and body; nothing here logs a
token.
"""

import secrets
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sandbox.hubspot_errors import HubSpotError, not_found, oauth_error

if TYPE_CHECKING:
    from sandbox.hubspot_state import HubSpotState

__all__ = [
    "ACCESS_TOKEN_TTL",
    "BURST_LIMIT",
    "BURST_WINDOW",
    "DEFAULT_SCOPES",
    "SEARCH_LIMIT_PER_SECOND",
    "OAuthTokens",
    "RateWindow",
    "Token",
]

ACCESS_TOKEN_TTL = timedelta(minutes=30)
"""Lifetime of an OAuth access token (HubSpot shortened it from 6 h to 30 min)."""

CODE_TTL = timedelta(minutes=10)
"""How long an authorization code can be exchanged."""

BURST_LIMIT = 110
"""Requests per rolling window per portal for a public OAuth app (usage guidelines)."""

BURST_WINDOW = timedelta(seconds=10)
"""The rolling window of ``BURST_LIMIT`` (policy ``TEN_SECONDLY_ROLLING``)."""

SEARCH_LIMIT_PER_SECOND = 5
"""Search requests per second per account (search guide; older docs said 4 per token)."""

DEFAULT_SCOPES = (
    "oauth",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.owners.read",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
)
"""Scopes granted when an authorize request names none."""

_NOT_AUTHENTICATED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass
class Token:
    """An OAuth token pair issued to the app for this portal."""

    access_token: str
    refresh_token: str
    scopes: tuple[str, ...]
    user: str
    user_id: int
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False


def not_authenticated() -> HubSpotError:
    """HubSpot's 401 for a missing, unknown or revoked token."""
    return HubSpotError(401, _NOT_AUTHENTICATED, "INVALID_AUTHENTICATION")


class OAuthTokens:
    """Codes and tokens of the portal's one installed app. Uses the portal's clock, lock,
    client credentials and ids, so a test that changes them changes OAuth too."""

    def __init__(self, state: "HubSpotState") -> None:
        self._state = state
        self._codes: dict[str, tuple[str, tuple[str, ...], datetime]] = {}
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}

    def issue_code(self, redirect_uri: str, scopes: tuple[str, ...] = ()) -> str:
        """An authorization code, as the consent screen would redirect with."""
        with self._state.lock:
            code = secrets.token_urlsafe(24)
            self._codes[code] = (redirect_uri, tuple(scopes) or DEFAULT_SCOPES, self._state.now())
            return code

    def exchange_code(
        self, code: str, redirect_uri: str, client_id: str, client_secret: str
    ) -> Token:
        """``grant_type=authorization_code``; 400 BAD_AUTH_CODE, BAD_REDIRECT_URI, BAD_CLIENT_ID
        or BAD_CLIENT_SECRET."""
        with self._state.lock:
            self._check_client(client_id, client_secret)
            found = self._codes.pop(code, None)  # single use, even when the rest is wrong
            if found is None or self._state.now() - found[2] > CODE_TTL:
                raise oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
            if found[0] != redirect_uri:
                raise oauth_error("BAD_REDIRECT_URI", "redirect_uri does not match")
            return self.issue(found[1])

    def refresh(self, refresh_token: str, client_id: str, client_secret: str) -> Token:
        """``grant_type=refresh_token``: a new access token; the refresh token stays the same."""
        with self._state.lock:
            self._check_client(client_id, client_secret)
            old = self._refresh.get(refresh_token)
            if old is None or old.revoked:
                raise oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            return self.issue(old.scopes, refresh_token=refresh_token)

    def issue(self, scopes: tuple[str, ...] = (), refresh_token: str | None = None) -> Token:
        """A new access token (and a new refresh token unless one is given)."""
        with self._state.lock:
            now = self._state.now()
            owners = self._state.owners()
            token = Token(
                access_token="CO" + secrets.token_urlsafe(96),  # HubSpot's are ~300 chars max
                refresh_token=refresh_token or f"na1-{uuid.uuid4()}",
                scopes=tuple(scopes) or DEFAULT_SCOPES,
                user=owners[0]["email"] if owners else "admin@sandbox.example",
                user_id=self._state.ui_user_id,
                issued_at=now,
                expires_at=now + ACCESS_TOKEN_TTL,
            )
            self._access[token.access_token] = token
            self._refresh[token.refresh_token] = token
            return token

    def _check_client(self, client_id: str, client_secret: str) -> None:
        if client_id != self._state.client_id:
            raise oauth_error("BAD_CLIENT_ID", "missing or invalid client_id")
        if not secrets.compare_digest(client_secret or "", self._state.client_secret):
            raise oauth_error("BAD_CLIENT_SECRET", "missing or invalid client_secret")

    def authenticate(self, access_token: str) -> Token:
        """The token behind a Bearer header, or HubSpot's 401 (expired / invalid)."""
        with self._state.lock:
            token = self._access.get(access_token)
            if token is None or token.revoked:
                raise not_authenticated()
            late = self._state.now() - token.expires_at
            if late >= timedelta(0):
                raise HubSpotError(
                    401,
                    "The OAuth token used to make this call expired "
                    f"{int(late.total_seconds() * 1000)} millisecond(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                )
            return token

    def access_token_info(self, access_token: str) -> dict:
        """``GET /oauth/v1/access-tokens/{token}`` (``AccessTokenInfoResponse``); 404 when the
        token is unknown, revoked or expired."""
        with self._state.lock:
            try:
                token = self.authenticate(access_token)
            except HubSpotError:
                raise not_found("Access token not found or expired") from None
            state = self._state
            return {
                "token": token.access_token,
                "user": token.user,
                "hub_domain": f"portal-{state.portal_id}.sandbox.example",
                "scopes": list(token.scopes),
                "signed_access_token": None,
                "hub_id": state.portal_id,
                "app_id": state.app_id,
                "expires_in": max(0, int((token.expires_at - state.now()).total_seconds())),
                "user_id": token.user_id,
                "token_type": "access",
            }

    def refresh_token_info(self, refresh_token: str) -> dict:
        """``GET /oauth/v1/refresh-tokens/{token}`` (``RefreshTokenInfoResponse``)."""
        with self._state.lock:
            token = self._refresh.get(refresh_token)
            if token is None or token.revoked:
                raise not_found("refresh token not found")
            return {
                "token": refresh_token,
                "user": token.user,
                "hub_domain": f"portal-{self._state.portal_id}.sandbox.example",
                "scopes": list(token.scopes),
                "hub_id": self._state.portal_id,
                "client_id": self._state.client_id,
                "user_id": token.user_id,
                "token_type": "refresh",
            }

    def introspect(
        self, token: str, client_id: str, client_secret: str, hint: str = ""
    ) -> dict:
        """``POST /oauth/v3/token/introspect``: what HubSpot knows of an access or a refresh
        token (``hint`` says which to look for first, as RFC 7662's ``token_type_hint``), or
        ``{"active": false}``; 400 ``invalid_client`` for the wrong client credentials."""
        with self._state.lock:
            self._check_client(client_id, client_secret)
            kinds = [self._access_answer, self._refresh_answer]
            if hint == "refresh_token":
                kinds.reverse()
            for answer in kinds:
                found = answer(token)
                if found is not None:
                    return found
            return {"active": False}

    def _access_answer(self, access_token: str) -> dict | None:
        try:
            token = self.authenticate(access_token)
        except HubSpotError:
            return None
        state = self._state
        expires_in = max(0, int((token.expires_at - state.now()).total_seconds()))
        return {
            "token_use": "access_token",
            "active": True,
            "token": token.access_token,
            "hub_id": state.portal_id,
            "user_id": token.user_id,
            "client_id": state.client_id,
            "app_id": state.app_id,
            "scopes": list(token.scopes),
            "signed_access_token": {  # the spec's keys; the values are the emulator's
                "appId": state.app_id,
                "appInstallId": f"sandbox-{state.app_id}-{state.portal_id}",
                "audience": "sandbox",
                "expiresAt": int(token.expires_at.timestamp() * 1000),
                "hubId": state.portal_id,
                "hublet": "na1",
                "installingUserId": token.user_id,
                "isPrivateDistribution": False,
                "isServiceAccount": False,
                "isUserLevel": False,
                "newSignature": "sandbox",
                "scopeToScopeGroupPks": "",
                "scopes": " ".join(token.scopes),
                "signature": "sandbox",
                "trialScopeToScopeGroupPks": "",
                "trialScopes": "",
                "userId": token.user_id,
            },
            "expires_in": expires_in,
            "is_private_distribution": False,
            "token_type": "bearer",
            "user": token.user,
            "hub_domain": f"portal-{state.portal_id}.sandbox.example",
        }

    def _refresh_answer(self, refresh_token: str) -> dict | None:
        token = self._refresh.get(refresh_token)
        if token is None or token.revoked:
            return None
        state = self._state
        return {
            "token_use": "refresh_token",
            "active": True,
            "token": refresh_token,
            "hub_id": state.portal_id,
            "user_id": token.user_id,
            "client_id": state.client_id,
            "app_id": state.app_id,
            "scopes": list(token.scopes),
            "token_type": "refresh",
            "user": token.user,
            "hub_domain": f"portal-{state.portal_id}.sandbox.example",
        }

    def revoke_by_client(self, token: str, client_id: str, client_secret: str) -> None:
        """``POST /oauth/v3/token/revoke``: revoke a refresh token (and the access tokens it
        gave); an unknown one is no error (RFC 7009). 400 ``invalid_client`` for the wrong
        client credentials."""
        with self._state.lock:
            self._check_client(client_id, client_secret)
            self.revoke(token)

    def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token and every access token issued from it; False if unknown."""
        with self._state.lock:
            if refresh_token not in self._refresh:
                return False
            for token in self._access.values():
                if token.refresh_token == refresh_token:
                    token.revoked = True
            self._refresh[refresh_token].revoked = True
            return True

    def expire_all(self) -> int:
        """Make every access token expired now; returns how many were live."""
        with self._state.lock:
            now = self._state.now()
            live = [t for t in self._access.values() if t.expires_at > now]
            for token in live:
                token.expires_at = now
            return len(live)


class RateWindow:
    """Timestamps of the requests inside one rolling window."""

    def __init__(self) -> None:
        self._hits: deque[datetime] = deque()

    def hit(self, now: datetime, window: timedelta, limit: int) -> int:
        """Count one request; the allowance left after it, or -1 when it is refused."""
        while self._hits and now - self._hits[0] >= window:
            self._hits.popleft()
        if len(self._hits) >= limit:
            return -1
        self._hits.append(now)
        return limit - len(self._hits)
