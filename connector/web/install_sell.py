"""Installing Deal Radar into a Zendesk Sell account: OAuth's two legs, then the setup job.

`GET /install/sell` and `GET /install/sell/callback` work as the HubSpot install does
(connector/web/install_flow.py) with Sell's consent page and token endpoint; the account comes
from `GET /v2/accounts/self`, and the answer names it as `account_id`. (A Sell account may
instead use a personal access token: `dealradar tenants add --crm sell --token-stdin`.)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g

from adapters.sell import client as sell_client
from adapters.sell import oauth
from connector.web.install_flow import Flow, InstallError

bp = Blueprint("install_sell", __name__)

FLOW = Flow(
    crm="Zendesk Sell", start="/install/sell", callback="/install/sell/callback",
    cookie="dealradar_install", salt="dealradar.install.sell",
)  # fmt: skip


@bp.get(FLOW.start)
def start() -> Response | tuple[Response, int]:
    services = current_app.extensions["dealradar"]
    try:
        client_id, _secret = _app_credentials(services.config)
    except InstallError as exc:
        return FLOW.refused(exc)
    base = services.config.crm.get("SELL_AUTHORIZE_URL", oauth.AUTHORIZE_URL)
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
        host = config.crm.get("SELL_API_URL", sell_client.API_HOST)
        with FLOW.crm_refusals(("SELL_CLIENT",), "SELL_CLIENT_ID and SELL_CLIENT_SECRET"):
            tokens, expires_at = oauth.exchange_code(
                code, client_id=client_id, client_secret=client_secret,
                redirect_uri=config.public_url + FLOW.callback, host=host, now=services.clock,
            )  # fmt: skip
            account = oauth.account(tokens["access_token"], host=host)
        name = account.name or f"Zendesk Sell account {account.id}"
        done = FLOW.install(services, "sell", account.id, name, tokens, expires_at)
        g.tenant = done.tenant_id
    except InstallError as exc:
        return FLOW.refused(exc)
    facts = {"tenant_id": done.tenant_id, "account_id": done.portal_id, "status": done.status,
             "api_key": done.api_key}  # fmt: skip
    return FLOW.answer(
        done, facts, where=f"Zendesk Sell account {done.portal_id}",
        doing="checking its custom fields and reading your deals",
    )  # fmt: skip


def _app_credentials(config: Any) -> tuple[str, str]:
    return FLOW.credentials(
        config, "SELL_CLIENT_ID", "SELL_CLIENT_SECRET",
        "Sell > Settings > Integrations > OAuth > Developer apps",
    )  # fmt: skip
