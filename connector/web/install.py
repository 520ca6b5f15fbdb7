"""Installing Deal Radar into a HubSpot portal: OAuth's two legs, then the setup job.

`GET /install/hubspot` sends the admin's browser to HubSpot's consent screen with a signed,
expiring, single-use `state`, bound to that browser by a cookie. `GET /install/hubspot/callback`
checks that state, swaps the code for tokens (`POST /oauth/2026-03/token`), asks HubSpot which
portal they belong to (`POST /oauth/2026-03/token/introspect`: adapters/hubspot/oauth.py),
creates the portal's tenant (or finds it again), stores the tokens encrypted, and enqueues
`jobs.install.setup` (provisioning, then the initial sync). What every CRM's install shares,
and the error policy, is in connector/web/install_flow.py.

The answer is JSON (`{"tenant_id", "portal_id", "status": "installed"|"reinstalled",
"api_key"}`) when the request asks for it, else a small HTML page with the same facts. The API
key is issued on the first install only and shown once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g

from adapters.hubspot import oauth
from adapters.hubspot.client import API_HOST
from connector.web.install_flow import Flow, InstallError

bp = Blueprint("install", __name__)

FLOW = Flow(
    crm="HubSpot", start="/install/hubspot", callback="/install/hubspot/callback",
    cookie="dealradar_install", salt="dealradar.install.hubspot",
)  # fmt: skip


@bp.get(FLOW.start)
def start() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        client_id, _secret = _app_credentials(services.config)
    except InstallError as exc:
        return FLOW.refused(exc)
    base = services.config.crm.get("HUBSPOT_AUTHORIZE_URL", oauth.AUTHORIZE_URL)
    return FLOW.to_consent(
        services,
        lambda redirect_uri, state: oauth.authorize_url(
            client_id=client_id, redirect_uri=redirect_uri, state=state, base=base
        ),
    )


@bp.get(FLOW.callback)
def callback() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    config = services.config
    try:
        FLOW.check_state(services)
        code = FLOW.code()
        client_id, client_secret = _app_credentials(config)
        host = config.crm.get("HUBSPOT_API_URL", API_HOST)
        with FLOW.crm_refusals(
            ("BAD_CLIENT", "invalid_client", "HUBSPOT_CLIENT_ID"),
            "HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET",
        ):
            tokens, expires_at = oauth.exchange_code(
                code, client_id=client_id, client_secret=client_secret,
                redirect_uri=config.public_url + FLOW.callback, host=host, now=services.clock,
            )  # fmt: skip
            info = oauth.token_info(
                tokens["access_token"], client_id=client_id, client_secret=client_secret,
                host=host,
            )  # fmt: skip
        name = info.hub_domain or f"HubSpot portal {info.portal_id}"
        done = FLOW.install(services, "hubspot", info.portal_id, name, tokens, expires_at)
        g.tenant = done.tenant_id
    except InstallError as exc:
        return FLOW.refused(exc)
    facts = {"tenant_id": done.tenant_id, "portal_id": done.portal_id, "status": done.status,
             "api_key": done.api_key}  # fmt: skip
    return FLOW.answer(
        done, facts, where=f"HubSpot portal {done.portal_id}",
        doing="setting up its properties and reading your open deals",
    )  # fmt: skip


def _app_credentials(config: Any) -> tuple[str, str]:
    return FLOW.credentials(
        config, "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "the app's Auth page in HubSpot"
    )
