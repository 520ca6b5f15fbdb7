"""Installing Deal Radar into a HubSpot portal or a Zendesk Sell account: OAuth's two legs,
then the setup job.

Zendesk Sell (`GET /install/sell`, `GET /install/sell/callback`) works the same way with Sell's
consent page and token endpoint; the account comes from `GET /v2/accounts/self`, and the
answer names it as `account_id`. (A Sell account may instead use a personal access token:
`dealradar tenants add --crm sell --token-stdin`.)

`GET /install/hubspot` sends the admin's browser to HubSpot's consent screen with a signed,
expiring, single-use `state`, bound to that browser by a cookie. `GET /install/hubspot/callback`
checks that state, swaps the code for tokens, asks HubSpot which portal they belong to, creates
the portal's tenant (or finds it again: a reinstall keeps the tenant, its data and its API keys,
and reactivates it), stores the tokens encrypted, and enqueues `jobs.install.setup`
(provisioning, then the initial sync).

The answer is JSON (`{"tenant_id", "portal_id", "status": "installed"|"reinstalled",
"api_key"}`) when the request asks for it, else a small HTML page with the same facts. The API
key is issued on the first install only and shown once.

Error policy: a missing, forged, expired or reused state (or one from another browser), a
consent HubSpot reports as refused, and a code HubSpot refuses are 400 with what to do (start
again at /install/hubspot); HubSpot unreachable or failing is 502; our own missing or refused
app credentials are 500 naming the setting; a database or Redis that cannot take the install is
503. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, redirect, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from adapters.errors import CrmError, InvalidRequest, RateLimited, Transient
from adapters.hubspot import oauth
from adapters.hubspot.client import API_HOST
from adapters.sell import client as sell_client
from adapters.sell import oauth as sell_oauth
from connector import queues
from connector.store import tenants
from connector.store.credentials import save_tokens

log = logging.getLogger(__name__)
bp = Blueprint("install", __name__)

START = "/install/hubspot"
CALLBACK = "/install/hubspot/callback"
STATE_MAX_AGE = 600
"""Seconds an install may take between our redirect and HubSpot's callback."""
COOKIE = "dealradar_install"
"""The browser's half of the state: the nonce, for the callback path only."""
_STATE_SALT = "dealradar.install.hubspot"
_NONCE_KEY = "dealradar:install:nonce:{nonce}"


class InstallError(Exception):
    """An install that cannot go on; `status` is the HTTP answer, the message what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Installed:
    tenant_id: str
    portal_id: str
    status: str
    """installed | reinstalled"""
    api_key: str | None


@bp.get(START)
def start() -> Response:
    services = current_app.extensions["dealradar"]
    try:
        client_id, _secret = _app_credentials(services.config)
    except InstallError as exc:
        return _error(exc)
    nonce = secrets.token_urlsafe(16)
    url = oauth.authorize_url(
        client_id=client_id,
        redirect_uri=services.config.public_url + CALLBACK,
        state=_signer(services).dumps({"nonce": nonce}),
        base=services.config.crm.get("HUBSPOT_AUTHORIZE_URL", oauth.AUTHORIZE_URL),
    )
    response = redirect(url, code=302)
    # The state also rides in a cookie of this browser (RFC 6749 10.12): a callback link made
    # by someone else's install, opened in the admin's browser, is refused. Lax: HubSpot's
    # redirect back is a top-level navigation, which carries it.
    response.set_cookie(
        COOKIE, nonce, max_age=STATE_MAX_AGE, path=CALLBACK, httponly=True, samesite="Lax",
        secure=services.config.public_url.startswith("https://"),
    )  # fmt: skip
    return response


@bp.get(CALLBACK)
def callback() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        _check_state(services, request.args.get("state", ""))
        if request.args.get("error"):
            why = request.args.get("error_description") or request.args["error"]
            raise InstallError(
                400, f"HubSpot did not grant access ({why}); start again at {START} and approve"
            )
        tokens, expires_at, info = _exchange(services, request.args.get("code", ""))
        done = install_portal(services, info, tokens, expires_at)
        g.tenant = done.tenant_id
        _enqueue_setup(services, done.tenant_id)
    except InstallError as exc:
        return _error(exc)
    log.info("HubSpot portal %s %s as tenant %s", done.portal_id, done.status, done.tenant_id)
    response = _answer(done)
    response.delete_cookie(COOKIE, path=CALLBACK)
    return response


def install_portal(
    services: Any, info: oauth.TokenInfo, tokens: dict[str, Any], expires_at: datetime
) -> Installed:
    """Create the portal's tenant, or find it again and reactivate it; store its tokens."""
    return install_account(
        services, "hubspot", info.portal_id, info.hub_domain or f"HubSpot portal {info.portal_id}",
        tokens, expires_at, start=START,
    )  # fmt: skip


def install_account(
    services: Any,
    crm: str,
    account_id: str,
    name: str,
    tokens: dict[str, Any],
    expires_at: datetime | None,
    *,
    start: str,
) -> Installed:
    """Create a CRM account's tenant, or find it again and reactivate it; store its tokens
    (encrypted). A database that cannot take it is a 503 saying to start again at `start`."""
    store, now = services.store, services.clock()
    try:
        tenant = tenants.find_tenant(store, crm, account_id)
        api_key = None
        if tenant is None:
            try:
                tenant, api_key = tenants.create_tenant(
                    store, crm=crm, account_id=account_id, name=name, now=now
                )
            except tenants.TenantExists:  # a concurrent callback for the same account won
                tenant = tenants.find_tenant(store, crm, account_id)
                assert tenant is not None
        elif tenant.status != "active":
            tenants.set_status(store, tenant.id, "active", "", now)
        save_tokens(store, services.box, tenant.id, tokens, expires_at, now)
    except SQLAlchemyError as exc:
        log.error("%s account %s: the install could not be saved: %s", crm, account_id, exc)
        raise InstallError(
            503, f"Deal Radar could not save the install; start again at {start} in a minute"
        ) from exc
    status = "installed" if api_key else "reinstalled"
    return Installed(tenant.id, account_id, status, api_key)


# --- steps ---------------------------------------------------------------------------------------


def _app_credentials(config: Any) -> tuple[str, str]:
    client_id = config.crm.get("HUBSPOT_CLIENT_ID")
    client_secret = config.crm.get("HUBSPOT_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise InstallError(
            500,
            "Deal Radar's HubSpot app is not configured: set HUBSPOT_CLIENT_ID and "
            "HUBSPOT_CLIENT_SECRET (the app's Auth page in HubSpot) and restart",
        )
    return client_id, client_secret


class _ClockedSigner(TimestampSigner):
    """itsdangerous on the app's injected clock, so tests move time instead of waiting."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


def _signer(services: Any, salt: str = _STATE_SALT) -> URLSafeTimedSerializer:
    # A key of its own, derived from each DEALRADAR_SECRET_KEYS key (newest first there,
    # newest last for itsdangerous): a leaked state never helps against the token encryption.
    keys = [
        hmac.new(key.encode(), b"dealradar install state", hashlib.sha256).digest()
        for key in reversed(services.config.secret_keys)
    ]
    return URLSafeTimedSerializer(
        keys, salt=salt, signer=_ClockedSigner, signer_kwargs={"clock": services.clock}
    )


def _check_state(
    services: Any, state: str, *, start: str = START, cookie: str = COOKIE, salt: str = _STATE_SALT
) -> dict[str, Any]:
    """The state's payload, once: signed by us, fresh, from this browser, never used before."""
    again = f"start the install again at {start}"
    try:
        payload = _signer(services, salt).loads(state, max_age=STATE_MAX_AGE)
    except SignatureExpired:
        raise InstallError(
            400, f"the install took longer than {STATE_MAX_AGE // 60} minutes; {again}"
        ) from None
    except BadSignature:
        raise InstallError(
            400, f"this callback does not come from an install started here; {again}"
        ) from None
    nonce = payload.get("nonce") if isinstance(payload, dict) else None
    if not isinstance(nonce, str):
        raise InstallError(400, f"this callback's state is malformed; {again}")
    if not hmac.compare_digest(request.cookies.get(cookie, ""), nonce):
        # Also what an install started at another address than PUBLIC_URL looks like.
        raise InstallError(
            400,
            "this install was started in another browser or at another address; open "
            f"{services.config.public_url}{start} in this browser",
        )
    try:
        first = services.redis.set(_NONCE_KEY.format(nonce=nonce), "1", nx=True, ex=STATE_MAX_AGE)
    except RedisError as exc:
        raise InstallError(503, f"Deal Radar cannot take installs right now; {again}") from exc
    if not first:
        raise InstallError(400, f"this install link was used already; {again}")
    return payload


def _exchange(services: Any, code: str) -> tuple[dict[str, Any], datetime, oauth.TokenInfo]:
    if not code:
        raise InstallError(400, f"HubSpot sent no authorization code; start again at {START}")
    config = services.config
    client_id, client_secret = _app_credentials(config)
    host = config.crm.get("HUBSPOT_API_URL", API_HOST)
    try:
        tokens, expires_at = oauth.exchange_code(
            code, client_id=client_id, client_secret=client_secret,
            redirect_uri=config.public_url + CALLBACK, host=host, now=services.clock,
        )  # fmt: skip
        info = oauth.token_info(tokens["access_token"], host=host)
    except (Transient, RateLimited) as exc:
        log.warning("HubSpot install: HubSpot did not answer: %s", exc)
        raise InstallError(
            502, f"HubSpot did not answer ({exc}); try again in a few minutes from {START}"
        ) from exc
    except InvalidRequest as exc:
        if "BAD_CLIENT" in str(exc):
            log.error("HubSpot refused our app credentials: %s", exc)
            raise InstallError(
                500,
                "HubSpot refused Deal Radar's app credentials: check HUBSPOT_CLIENT_ID and "
                "HUBSPOT_CLIENT_SECRET",
            ) from exc
        raise InstallError(
            400,
            f"HubSpot refused the authorization code ({exc}): codes are single use and last "
            f"10 minutes; start again at {START}",
        ) from exc
    except CrmError as exc:
        raise InstallError(
            400, f"HubSpot refused the install ({exc}); start again at {START}"
        ) from exc
    return tokens, expires_at, info


def _enqueue_setup(services: Any, tenant_id: str, *, start: str = START) -> None:
    try:
        queues.request_setup(services.redis, tenant_id)
    except RedisError as exc:
        log.error("tenant %s: the setup job could not be enqueued: %s", tenant_id, exc)
        raise InstallError(
            503,
            "Deal Radar saved the install but could not start its first sync; install again "
            f"from {start} in a minute (nothing is lost)",
        ) from exc


# --- answers -------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    )


def _answer(done: Installed) -> Response:
    facts = {
        "tenant_id": done.tenant_id,
        "portal_id": done.portal_id,
        "status": done.status,
        "api_key": done.api_key,
    }
    return installed_answer(
        done, facts, where=f"HubSpot portal {done.portal_id}",
        doing="setting up its properties and reading your open deals",
    )  # fmt: skip


def installed_answer(done: Installed, facts: dict[str, Any], *, where: str, doing: str) -> Response:
    """The install's answer: `facts` as JSON when asked for, else a page with the API key."""
    if _wants_json():
        return jsonify(facts)
    key = (
        f"<p>Your API key (shown once, copy it now): <code>{html.escape(done.api_key)}</code></p>"
        if done.api_key
        else "<p>Your existing API keys still work.</p>"
    )
    body = (
        "<!doctype html><title>Deal Radar installed</title>"
        f"<h1>Deal Radar {html.escape(done.status)} in {html.escape(where)}</h1>"
        f"<p>Tenant <code>{html.escape(done.tenant_id)}</code>. Deal Radar is now {doing}; "
        f"follow it with <code>dealradar tenants status {html.escape(done.tenant_id)}</code>."
        f"</p>{key}"
    )
    return Response(body, 200, content_type="text/html; charset=utf-8")


def _error(exc: InstallError, crm: str = "HubSpot") -> tuple[Response, int]:
    log.info("%s install refused (%d): %s", crm, exc.status, exc)
    if _wants_json():
        return jsonify(error="install_failed", detail=str(exc)), exc.status
    body = (
        "<!doctype html><title>Deal Radar install failed</title>"
        f"<h1>The install did not complete</h1><p>{html.escape(str(exc))}</p>"
    )
    return Response(body, exc.status, content_type="text/html; charset=utf-8"), exc.status


# --- Zendesk Sell --------------------------------------------------------------------------------

SELL_START = "/install/sell"
SELL_CALLBACK = "/install/sell/callback"
_SELL_SALT = "dealradar.install.sell"


@bp.get(SELL_START)
def sell_start() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        client_id, _secret = _sell_credentials(services.config)
    except InstallError as exc:
        return _error(exc, "Zendesk Sell")
    nonce = secrets.token_urlsafe(16)
    url = sell_oauth.authorize_url(
        client_id=client_id,
        redirect_uri=services.config.public_url + SELL_CALLBACK,
        state=_signer(services, _SELL_SALT).dumps({"nonce": nonce}),
        base=services.config.crm.get("SELL_AUTHORIZE_URL", sell_oauth.AUTHORIZE_URL),
    )
    response = redirect(url, code=302)
    response.set_cookie(
        COOKIE, nonce, max_age=STATE_MAX_AGE, path=SELL_CALLBACK, httponly=True, samesite="Lax",
        secure=services.config.public_url.startswith("https://"),
    )  # fmt: skip
    return response


@bp.get(SELL_CALLBACK)
def sell_callback() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        _check_state(
            services, request.args.get("state", ""), start=SELL_START, salt=_SELL_SALT
        )
        if request.args.get("error"):
            why = request.args.get("error_description") or request.args["error"]
            raise InstallError(
                400, f"Zendesk Sell did not grant access ({why}); start again at {SELL_START}"
            )
        tokens, expires_at, account = _sell_exchange(services, request.args.get("code", ""))
        done = install_account(
            services, "sell", account.id, account.name or f"Zendesk Sell account {account.id}",
            tokens, expires_at, start=SELL_START,
        )  # fmt: skip
        g.tenant = done.tenant_id
        _enqueue_setup(services, done.tenant_id, start=SELL_START)
    except InstallError as exc:
        return _error(exc, "Zendesk Sell")
    log.info("Sell account %s %s as tenant %s", done.portal_id, done.status, done.tenant_id)
    facts = {"tenant_id": done.tenant_id, "account_id": done.portal_id, "status": done.status,
             "api_key": done.api_key}  # fmt: skip
    if _wants_json():
        response = jsonify(facts)
    else:
        key = (
            f"<p>Your API key (shown once, copy it now): <code>{html.escape(done.api_key)}</code>"
            "</p>" if done.api_key else "<p>Your existing API keys still work.</p>"
        )  # fmt: skip
        response = Response(
            "<!doctype html><title>Deal Radar installed</title>"
            f"<h1>Deal Radar {html.escape(done.status)} in Zendesk Sell account "
            f"{html.escape(done.portal_id)}</h1><p>Tenant <code>{html.escape(done.tenant_id)}"
            "</code>. Deal Radar is now checking its custom fields and reading your deals; follow "
            f"it with <code>dealradar tenants status {html.escape(done.tenant_id)}</code>.</p>"
            f"{key}",
            200, content_type="text/html; charset=utf-8",
        )  # fmt: skip
    response.delete_cookie(COOKIE, path=SELL_CALLBACK)
    return response


def _sell_credentials(config: Any) -> tuple[str, str]:
    client_id = config.crm.get("SELL_CLIENT_ID")
    client_secret = config.crm.get("SELL_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise InstallError(
            500,
            "Deal Radar's Zendesk Sell app is not configured: set SELL_CLIENT_ID and "
            "SELL_CLIENT_SECRET (Sell > Settings > Integrations > OAuth > Developer apps) and "
            "restart",
        )
    return client_id, client_secret


def _sell_exchange(services: Any, code: str) -> tuple[dict[str, Any], datetime, sell_oauth.Account]:
    if not code:
        raise InstallError(
            400, f"Zendesk Sell sent no authorization code; start again at {SELL_START}"
        )
    config = services.config
    client_id, client_secret = _sell_credentials(config)
    host = config.crm.get("SELL_API_URL", sell_client.API_HOST)
    try:
        tokens, expires_at = sell_oauth.exchange_code(
            code, client_id=client_id, client_secret=client_secret,
            redirect_uri=config.public_url + SELL_CALLBACK, host=host, now=services.clock,
        )  # fmt: skip
        account = sell_oauth.account(tokens["access_token"], host=host)
    except (Transient, RateLimited) as exc:
        log.warning("Sell install: Sell did not answer: %s", exc)
        raise InstallError(
            502, f"Zendesk Sell did not answer ({exc}); try again from {SELL_START} in a while"
        ) from exc
    except InvalidRequest as exc:
        if "SELL_CLIENT" in str(exc):
            log.error("Sell refused our app credentials: %s", exc)
            raise InstallError(
                500, "Zendesk Sell refused Deal Radar's app credentials: check SELL_CLIENT_ID "
                "and SELL_CLIENT_SECRET",
            ) from exc  # fmt: skip
        raise InstallError(
            400, f"Zendesk Sell refused the authorization code ({exc}): codes are single use; "
            f"start again at {SELL_START}",
        ) from exc  # fmt: skip
    except CrmError as exc:
        raise InstallError(
            400, f"Zendesk Sell refused the install ({exc}); start again at {SELL_START}"
        ) from exc
    return tokens, expires_at, account
