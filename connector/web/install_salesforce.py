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

What every CRM's install shares, and the error policy, is in connector/web/install_flow.py.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from redis.exceptions import RedisError

from adapters.salesforce import oauth
from adapters.salesforce.client import salesforce_session
from connector.web.install_flow import STATE_MAX_AGE, Flow, InstallError

bp = Blueprint("install_salesforce", __name__)

CRM = "salesforce"
FLOW = Flow(
    crm="Salesforce", start="/install/salesforce", callback="/install/salesforce/callback",
    cookie="dealradar_install_sf", salt="dealradar.install.salesforce",
)  # fmt: skip
_VERIFIER_KEY = "dealradar:install:pkce:{nonce}"


@bp.get(FLOW.start)
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
            raise InstallError(503, f"Deal Radar cannot take installs right now; try "
                                    f"{FLOW.start} again in a minute") from exc  # fmt: skip
    except InstallError as exc:
        return FLOW.refused(exc)
    return FLOW.to_consent(
        services,
        lambda redirect_uri, state: oauth.authorize_url(
            login_url=_login_url(config.crm, sandbox),
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            verifier=verifier,
        ),
        nonce=nonce,
        state={"sandbox": sandbox},
    )


@bp.get(FLOW.callback)
def callback() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    config = services.config
    try:
        state = FLOW.check_state(services)
        verifier = _verifier(services, str(state["nonce"]))
        sandbox = bool(state.get("sandbox"))
        code = FLOW.code()
        client_id, client_secret = _app_credentials(config)
        refused_client = ("invalid_client", "consumer secret")
        with FLOW.crm_refusals(refused_client, "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET"):
            grant = oauth.exchange_code(
                code, login_url=_login_url(config.crm, sandbox), client_id=client_id,
                client_secret=client_secret, redirect_uri=config.public_url + FLOW.callback,
                verifier=verifier, session=salesforce_session(config.crm),
            )  # fmt: skip
        done = FLOW.install(services, CRM, grant.org_id, f"Salesforce org {grant.org_id}",
                            grant.tokens, None)  # fmt: skip
        g.tenant = done.tenant_id
    except InstallError as exc:
        return FLOW.refused(exc)
    facts = {"tenant_id": done.tenant_id, "org_id": done.portal_id, "status": done.status,
             "api_key": done.api_key, "sandbox": sandbox}  # fmt: skip
    return FLOW.answer(
        done, facts, where=f"Salesforce org {done.portal_id}",
        doing="creating its fields and reading your opportunities (any step left to an admin "
        "is shown there)",
    )  # fmt: skip


def _app_credentials(config: Any) -> tuple[str, str]:
    return FLOW.credentials(
        config, "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
        "the connected app's consumer key and secret",
    )  # fmt: skip


def _login_url(crm: Any, sandbox: bool) -> str:
    if sandbox:
        return crm.get("SALESFORCE_SANDBOX_LOGIN_URL") or oauth.SANDBOX_LOGIN_URL
    return crm.get("SALESFORCE_LOGIN_URL") or oauth.LOGIN_URL


def _verifier(services: Any, nonce: str) -> str:
    try:
        verifier = services.redis.getdel(_VERIFIER_KEY.format(nonce=nonce))
    except RedisError as exc:
        raise InstallError(503, f"Deal Radar cannot take installs right now; start again at "
                                f"{FLOW.start}") from exc  # fmt: skip
    if not verifier:
        raise InstallError(
            400, f"this install's PKCE verifier expired; start again at {FLOW.start}"
        )
    return verifier.decode() if isinstance(verifier, bytes) else str(verifier)
