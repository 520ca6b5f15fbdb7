"""What every CRM's install has in common: OAuth's signed state, the tenant, the answers.

A CRM's install (connector/web/install.py for HubSpot, install_sell.py, install_salesforce.py)
is a `Flow`: its start page sends the admin's browser to the CRM's consent page with a signed,
expiring, single-use `state` bound to that browser by a cookie (RFC 6749 10.12); its callback
checks that state, swaps the code for tokens (the CRM's own part), creates the account's tenant
or finds it again (a reinstall keeps the tenant, its data and its API keys, and reactivates it),
stores the tokens encrypted and enqueues `jobs.install.setup`.

Error policy, the same for every CRM: a missing, forged, expired or reused state (or one from
another browser), a consent the CRM reports as refused, and a code the CRM refuses are 400 with
what to do (start again at the start page); the CRM unreachable or failing is 502; our own
missing or refused app credentials are 500 naming the settings; a database or Redis that cannot
take the install is 503. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, jsonify, redirect, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from adapters.errors import CrmError, InvalidRequest, RateLimited, Transient
from connector import queues
from connector.store import tenants
from connector.store.credentials import save_tokens

log = logging.getLogger(__name__)

STATE_MAX_AGE = 600
"""Seconds an install may take between our redirect and the CRM's callback."""
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
    """The CRM's account id: a HubSpot portal, a Salesforce org, a Sell account."""
    status: str
    """installed | reinstalled"""
    api_key: str | None


@dataclass(frozen=True)
class Flow:
    """One CRM's install: its name in messages, its two paths, its cookie, its state's salt."""

    crm: str
    """As the admin reads it: "HubSpot", "Zendesk Sell", "Salesforce"."""
    start: str
    callback: str
    cookie: str
    salt: str

    def to_consent(
        self,
        services: Any,
        authorize: Callable[[str, str], str],
        *,
        nonce: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Response:
        """The redirect to the CRM's consent page: `authorize(redirect_uri, state)` makes its
        URL. The signed state carries a fresh nonce (or `nonce`) and `state`; the nonce also
        rides in this browser's cookie (Lax: the CRM's redirect back is a top-level
        navigation, which carries it)."""
        nonce = nonce or secrets.token_urlsafe(16)
        signed = _signer(services, self.salt).dumps({**(state or {}), "nonce": nonce})
        response = redirect(authorize(services.config.public_url + self.callback, signed), 302)
        response.set_cookie(
            self.cookie, nonce, max_age=STATE_MAX_AGE, path=self._cookie_path(services),
            httponly=True, samesite="Lax", secure=services.config.public_url.startswith("https://"),
        )  # fmt: skip
        return response

    def _cookie_path(self, services: Any) -> str:
        """The callback's path as the browser sees it: PUBLIC_URL's own path first, when a proxy
        serves the app under a prefix (https://host/radar), else the cookie would never come
        back with the callback and every install would be refused."""
        return urlsplit(services.config.public_url).path.rstrip("/") + self.callback

    def check_state(self, services: Any) -> dict[str, Any]:
        """The callback's state payload, once: signed by us, fresh, from this browser, never
        used before; then the CRM's refusal of consent, if it says so."""
        payload = _check_state(services, request.args.get("state", ""), self)
        if request.args.get("error"):
            why = request.args.get("error_description") or request.args["error"]
            raise InstallError(
                400, f"{self.crm} did not grant access ({why}); start again at {self.start}"
                " and approve",
            )  # fmt: skip
        return payload

    def code(self) -> str:
        code = request.args.get("code", "")
        if not code:
            raise InstallError(
                400, f"{self.crm} sent no authorization code; start again at {self.start}"
            )
        return code

    def credentials(
        self, config: Any, client_id: str, client_secret: str, where: str
    ) -> tuple[str, str]:
        """Our app's id and secret for this CRM from the settings named; a 500 naming them and
        `where` they are found when either is missing."""
        values = config.crm.get(client_id), config.crm.get(client_secret)
        if not all(values):
            raise InstallError(
                500, f"Deal Radar's {self.crm} app is not configured: set {client_id} and "
                f"{client_secret} ({where}) and restart",
            )  # fmt: skip
        return values

    @contextmanager
    def crm_refusals(self, bad_client: tuple[str, ...], settings: str) -> Iterator[None]:
        """The CRM's errors during the code exchange as the install's answers: unreachable
        502, our credentials refused (a message holding one of `bad_client`) 500 naming the
        `settings`, the code or the install refused 400."""
        try:
            yield
        except (Transient, RateLimited) as exc:
            log.warning("%s install: %s did not answer: %s", self.crm, self.crm, exc)
            raise InstallError(
                502, f"{self.crm} did not answer ({exc}); try again in a few minutes from "
                f"{self.start}",
            ) from exc  # fmt: skip
        except InvalidRequest as exc:
            if any(word in str(exc) for word in bad_client):
                log.error("%s refused our app credentials: %s", self.crm, exc)
                raise InstallError(
                    500, f"{self.crm} refused Deal Radar's app credentials: check {settings}"
                ) from exc
            raise InstallError(
                400, f"{self.crm} refused the authorization code ({exc}): codes are single use "
                f"and short-lived; start again at {self.start}",
            ) from exc  # fmt: skip
        except CrmError as exc:
            raise InstallError(
                400, f"{self.crm} refused the install ({exc}); start again at {self.start}"
            ) from exc

    def install(
        self, services: Any, crm: str, account_id: str, name: str, tokens: dict[str, Any],
        expires_at: datetime | None,
    ) -> Installed:  # fmt: skip
        """The account's tenant made or found again, its tokens stored, its setup enqueued."""
        done = install_account(
            services, crm, account_id, name, tokens, expires_at, start=self.start
        )
        _enqueue_setup(services, done.tenant_id, start=self.start)
        log.info("%s account %s %s as tenant %s", self.crm, account_id, done.status,
                 done.tenant_id)  # fmt: skip
        return done

    def answer(self, done: Installed, facts: dict[str, Any], *, where: str, doing: str) -> Response:
        """`facts` as JSON when asked for, else a page with the API key; the cookie dropped.
        No cache keeps it: the key is shown once (RFC 6749 5.1 asks the same of tokens)."""
        response = _installed_answer(done, facts, where=where, doing=doing)
        response.headers["Cache-Control"] = "no-store"
        services = current_app.extensions["dealradar"]
        response.delete_cookie(self.cookie, path=self._cookie_path(services))
        return response

    def refused(self, exc: InstallError) -> tuple[Response, int]:
        log.info("%s install refused (%d): %s", self.crm, exc.status, exc)
        if _wants_json():
            return jsonify(error="install_failed", detail=str(exc)), exc.status
        body = (
            "<!doctype html><title>Deal Radar install failed</title>"
            f"<h1>The install did not complete</h1><p>{html.escape(str(exc))}</p>"
        )
        return Response(body, exc.status, content_type="text/html; charset=utf-8"), exc.status


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
    except tenants.InvalidTenant as exc:
        # The CRM named its account in a form its webhooks and a reinstall would not repeat.
        log.error("%s install: the account %r cannot be a tenant: %s", crm, account_id, exc)
        raise InstallError(
            502, f"the CRM named an account Deal Radar cannot use ({exc}); nothing was "
            f"installed: start again at {start}, and report it if it happens again",
        ) from exc  # fmt: skip
    except SQLAlchemyError as exc:
        log.error("%s account %s: the install could not be saved: %s", crm, account_id, exc)
        raise InstallError(
            503, f"Deal Radar could not save the install; start again at {start} in a minute"
        ) from exc
    status = "installed" if api_key else "reinstalled"
    return Installed(tenant.id, account_id, status, api_key)


def _enqueue_setup(services: Any, tenant_id: str, *, start: str) -> None:
    """The tenant's work starts again on its new grant: the failures counted against the old
    one forgotten (a reinstall must not be suspended by its first expired token), the setup
    enqueued."""
    try:
        queues.forget_tenant_failures(services.redis, tenant_id)
        queues.request_setup(services.redis, tenant_id)
    except RedisError as exc:
        log.error("tenant %s: the setup job could not be enqueued: %s", tenant_id, exc)
        raise InstallError(
            503,
            "Deal Radar saved the install but could not start its first sync; install again "
            f"from {start} in a minute (nothing is lost but a first install's API key, which "
            f"`dealradar tenants api-key issue {tenant_id}` replaces)",
        ) from exc


# --- the state -----------------------------------------------------------------------------------


class _ClockedSigner(TimestampSigner):
    """itsdangerous on the app's injected clock, so tests move time instead of waiting."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


def _signer(services: Any, salt: str) -> URLSafeTimedSerializer:
    # A key of its own, derived from each DEALRADAR_SECRET_KEYS key (newest first there,
    # newest last for itsdangerous): a leaked state never helps against the token encryption.
    keys = [
        hmac.new(key.encode(), b"dealradar install state", hashlib.sha256).digest()
        for key in reversed(services.config.secret_keys)
    ]
    return URLSafeTimedSerializer(
        keys, salt=salt, signer=_ClockedSigner, signer_kwargs={"clock": services.clock}
    )


def _check_state(services: Any, state: str, flow: Flow) -> dict[str, Any]:
    again = f"start the install again at {flow.start}"
    try:
        payload = _signer(services, flow.salt).loads(state, max_age=STATE_MAX_AGE)
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
    if not hmac.compare_digest(request.cookies.get(flow.cookie, ""), nonce):
        # Also what an install started at another address than PUBLIC_URL looks like.
        raise InstallError(
            400,
            "this install was started in another browser or at another address; open "
            f"{services.config.public_url}{flow.start} in this browser",
        )
    try:
        first = services.redis.set(_NONCE_KEY.format(nonce=nonce), "1", nx=True, ex=STATE_MAX_AGE)
    except RedisError as exc:
        raise InstallError(503, f"Deal Radar cannot take installs right now; {again}") from exc
    if not first:
        raise InstallError(400, f"this install link was used already; {again}")
    return payload


# --- answers -------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    )


def _installed_answer(
    done: Installed, facts: dict[str, Any], *, where: str, doing: str
) -> Response:
    if _wants_json():
        return jsonify(facts)
    key = (
        f"<p>Your API key (shown once, copy it now): <code>{html.escape(done.api_key)}</code></p>"
        if done.api_key
        else "<p>Your existing API keys still work; to replace a lost one, run "
        f"<code>dealradar tenants api-key issue {html.escape(done.tenant_id)}</code>.</p>"
    )
    body = (
        "<!doctype html><title>Deal Radar installed</title>"
        f"<h1>Deal Radar {html.escape(done.status)} in {html.escape(where)}</h1>"
        f"<p>Tenant <code>{html.escape(done.tenant_id)}</code>. Deal Radar is now {doing}; "
        f"follow it with <code>dealradar tenants status {html.escape(done.tenant_id)}</code>."
        f"</p>{key}"
    )
    return Response(body, 200, content_type="text/html; charset=utf-8")
