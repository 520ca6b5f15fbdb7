"""Installing Deal Radar into a Salesforce org: OAuth's web-server flow with PKCE, then setup.

`GET /install/salesforce` (`?sandbox=1` for a sandbox org, which logs in at
test.salesforce.com) sends the admin's browser to the org's login host with a signed,
expiring, single-use `state` bound to that browser by a cookie, and a PKCE code challenge whose
verifier stays on our side (in Redis under the state's nonce, never in the browser).
`GET /install/salesforce/callback` checks the state, swaps the code and the verifier for
tokens, reads the org and user from the identity URL Salesforce answers with, creates the
org's tenant (or finds it again: a reinstall keeps the tenant, its data and its API keys, and
reactivates it), stores the tokens encrypted with the org's `instance_url` and login host, and
enqueues `jobs.install.setup` (provisioning, then the initial sync).

The answer is JSON (`{"tenant_id", "org_id", "status": "installed"|"reinstalled", "api_key",
"sandbox"}`) when the request asks for it, else a small HTML page with the same facts.

Error policy: as the HubSpot install (connector/web/install.py): a bad state, a refused consent
or code is 400 saying to start again; Salesforce unreachable 502; our app credentials missing
or refused 500 naming the settings; the store or Redis unavailable 503. Nothing logs a token.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, request
from redis.exceptions import RedisError

from adapters.errors import CrmError, InvalidRequest, RateLimited, Transient
from adapters.salesforce import oauth
from adapters.salesforce.client import salesforce_session
from connector.web.install import (
    STATE_MAX_AGE,
    Installed,
    InstallError,
    _check_state,
    _enqueue_setup,
    _error,
    _signer,
    install_account,
    installed_answer,
)

log = logging.getLogger(__name__)
bp = Blueprint("install_salesforce", __name__)

CRM = "salesforce"
START = "/install/salesforce"
CALLBACK = "/install/salesforce/callback"
COOKIE = "dealradar_install_sf"
_STATE_SALT = "dealradar.install.salesforce"
_VERIFIER_KEY = "dealradar:install:pkce:{nonce}"


@bp.get(START)
def start() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    config = services.config
    sandbox = request.args.get("sandbox", "") in ("1", "true", "yes")
    try:
        client_id, _secret = _app_credentials(config)
        nonce, verifier = secrets.token_urlsafe(16), oauth.new_verifier()
        try:
            services.redis.set(_VERIFIER_KEY.format(nonce=nonce), verifier, ex=STATE_MAX_AGE)
        except RedisError as exc:
            raise InstallError(503, f"Deal Radar cannot take installs right now; try {START} "
                                    "again in a minute") from exc  # fmt: skip
    except InstallError as exc:
        return _error(exc, "Salesforce")
    url = oauth.authorize_url(
        login_url=_login_url(config.crm, sandbox),
        client_id=client_id,
        redirect_uri=config.public_url + CALLBACK,
        state=_signer(services, _STATE_SALT).dumps({"nonce": nonce, "sandbox": sandbox}),
        verifier=verifier,
    )
    response = redirect(url, code=302)
    response.set_cookie(
        COOKIE, nonce, max_age=STATE_MAX_AGE, path=CALLBACK, httponly=True, samesite="Lax",
        secure=config.public_url.startswith("https://"),
    )  # fmt: skip
    return response


@bp.get(CALLBACK)
def callback() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        state = _check_state(
            services, request.args.get("state", ""), start=START, cookie=COOKIE, salt=_STATE_SALT
        )
        if request.args.get("error"):
            why = request.args.get("error_description") or request.args["error"]
            raise InstallError(
                400, f"Salesforce did not grant access ({why}); start again at {START} and allow"
            )
        verifier = _verifier(services, str(state["nonce"]))
        sandbox = bool(state.get("sandbox"))
        grant = _exchange(services, request.args.get("code", ""), verifier, sandbox)
        done = install_account(
            services, CRM, grant.org_id, f"Salesforce org {grant.org_id}", grant.tokens, None,
            start=START,
        )  # fmt: skip
        g.tenant = done.tenant_id
        _enqueue_setup(services, done.tenant_id, start=START)
    except InstallError as exc:
        return _error(exc, "Salesforce")
    log.info("Salesforce org %s %s as tenant %s", done.portal_id, done.status, done.tenant_id)
    response = _answer(done, sandbox)
    response.delete_cookie(COOKIE, path=CALLBACK)
    return response


# --- steps ---------------------------------------------------------------------------------------


def _app_credentials(config: Any) -> tuple[str, str]:
    client_id = config.crm.get("SALESFORCE_CLIENT_ID")
    client_secret = config.crm.get("SALESFORCE_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise InstallError(
            500,
            "Deal Radar's Salesforce connected app is not configured: set SALESFORCE_CLIENT_ID "
            "and SALESFORCE_CLIENT_SECRET (the app's consumer key and secret) and restart",
        )
    return client_id, client_secret


def _login_url(crm: Any, sandbox: bool) -> str:
    if sandbox:
        return crm.get("SALESFORCE_SANDBOX_LOGIN_URL") or oauth.SANDBOX_LOGIN_URL
    return crm.get("SALESFORCE_LOGIN_URL") or oauth.LOGIN_URL


def _verifier(services: Any, nonce: str) -> str:
    try:
        verifier = services.redis.getdel(_VERIFIER_KEY.format(nonce=nonce))
    except RedisError as exc:
        raise InstallError(503, f"Deal Radar cannot take installs right now; start again at "
                                f"{START}") from exc  # fmt: skip
    if not verifier:
        raise InstallError(400, f"this install's PKCE verifier expired; start again at {START}")
    return verifier.decode() if isinstance(verifier, bytes) else str(verifier)


def _exchange(services: Any, code: str, verifier: str, sandbox: bool) -> oauth.Grant:
    if not code:
        raise InstallError(400, f"Salesforce sent no authorization code; start again at {START}")
    config = services.config
    client_id, client_secret = _app_credentials(config)
    try:
        return oauth.exchange_code(
            code, login_url=_login_url(config.crm, sandbox), client_id=client_id,
            client_secret=client_secret, redirect_uri=config.public_url + CALLBACK,
            verifier=verifier, session=salesforce_session(config.crm),
        )  # fmt: skip
    except (Transient, RateLimited) as exc:
        log.warning("Salesforce install: Salesforce did not answer: %s", exc)
        raise InstallError(
            502, f"Salesforce did not answer ({exc}); try again in a few minutes from {START}"
        ) from exc
    except InvalidRequest as exc:
        if any(word in str(exc) for word in ("invalid_client", "consumer secret")):
            log.error("Salesforce refused our connected app's credentials: %s", exc)
            raise InstallError(
                500,
                "Salesforce refused Deal Radar's connected app credentials: check "
                "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET",
            ) from exc
        raise InstallError(
            400,
            f"Salesforce refused the authorization code ({exc}): codes are single use and "
            f"short-lived; start again at {START}",
        ) from exc
    except CrmError as exc:
        raise InstallError(
            400, f"Salesforce refused the install ({exc}); start again at {START}"
        ) from exc


# --- answers -------------------------------------------------------------------------------------


def _answer(done: Installed, sandbox: bool) -> Response:
    facts = {
        "tenant_id": done.tenant_id,
        "org_id": done.portal_id,
        "status": done.status,
        "api_key": done.api_key,
        "sandbox": sandbox,
    }
    return installed_answer(
        done, facts, where=f"Salesforce org {done.portal_id}",
        doing="creating its fields and reading your opportunities (any step left to an admin "
        "is shown there)",
    )  # fmt: skip
