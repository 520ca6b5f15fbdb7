"""HubSpot emulator for tests, benchmarks and ``make run``: an in-memory portal served over HTTP
with HubSpot's documented paths, JSON shapes, limits and errors, and signed webhooks out.

Emulated (each shape loads through hubspot-api-client 12's models):

- OAuth: ``GET /oauth/authorize`` (consent answered at once: 302 to ``redirect_uri`` with
  ``code`` and ``state``); v3 and the date-versioned 2026-03 (the same operations, which Deal
  Radar calls), every parameter in a form body: ``POST /oauth/v3/token``
  (authorization_code, refresh_token; 30-minute access tokens), ``POST
  /oauth/v3/token/introspect`` (access or refresh token: hub_id, scopes, expires_in, user...;
  ``{"active": false}`` for one unknown, expired or revoked), ``POST /oauth/v3/token/revoke``;
  v1, still served (HubSpot retires it on 2027-02-16): ``POST /oauth/v1/token``, ``GET
  /oauth/v1/access-tokens/{token}``, ``GET|DELETE /oauth/v1/refresh-tokens/{token}``. Refusals
  carry RFC 6749's ``error``/``error_description`` beside HubSpot's ``status``/``message``;
  401 ``EXPIRED_AUTHENTICATION`` / ``INVALID_AUTHENTICATION`` on the CRM routes.
- CRM objects v3 for deals, contacts, companies, calls, emails, meetings, notes and tasks
  (``/crm/v3/objects/{objectType}``, type names, singulars or ids like ``0-3``): list (``limit``
  <= 100, 50 with ``propertiesWithHistory``; ``after``, ``properties``, ``associations``,
  ``archived``), get, create (with ``associations``), PATCH, DELETE (archive), ``/search``
  (see ``sandbox.hubspot_search``), ``/batch/read`` (<= 100 inputs, <= 50 with history,
  ``idProperty``), ``/batch/update`` (<= 100, all-or-nothing validation, duplicate ids refused),
  ``/batch/create``, ``/batch/archive``. Property values are strings; datetimes come back as
  ISO-8601 UTC with milliseconds; unknown or read-only properties and invalid options get the
  400 ``Property values were not valid: [...]`` body (``PROPERTY_DOESNT_EXIST``,
  ``READ_ONLY_VALUE``, ``INVALID_OPTION``...). Deals carry calculated ``hs_is_closed``,
  ``hs_is_closed_won``, ``hs_deal_stage_probability``, ``hs_date_entered_<stage>``,
  ``hs_date_exited_<stage>`` (and ``hs_v2_`` twins) and property history with sourceType,
  sourceId and updatedByUserId.
- Properties v3 and groups (list, create with 409 on duplicates, get, PATCH); pipelines v3
  (``/crm/v3/pipelines/{objectType}[/{pipelineId}[/stages]]``, stage metadata ``probability``
  and ``isClosed``); owners v3 (``/crm/v3/owners/`` with ``limit``/``after``/``email``/
  ``archived``, ``/crm/v3/owners/{ownerId}`` with ``idProperty``/``archived``): ``archived``
  false (the default) gives active owners only, true only archived ones (deactivated users).
- Associations v4: ``POST /crm/v4/associations/{from}/{to}/batch/read`` (<= 1,000 inputs,
  500 per record with ``paging``; a record without associations of that type, or unknown, is
  a 207 ``OBJECT_NOT_FOUND`` / ``crm.associations.NO_ASSOCIATIONS_FOUND`` error of its own),
  ``GET|POST /crm/v4/associations/{from}/{to}/labels``,
  ``GET|PUT|DELETE /crm/v4/objects/{from}/{id}/associations/{to}[/{toId}]`` (PUT replaces the
  labels), ``PUT .../associations/default/{to}/{toId}``. Default type ids from HubSpot's table
  (deal→contact 3, task→deal 216, note→deal 214...); labels are USER_DEFINED per portal.
- Rate limits: 110 requests per rolling 10 s per portal (429 ``RATE_LIMIT`` with
  ``policyName: TEN_SECONDLY_ROLLING`` and the ``X-HubSpot-RateLimit-*`` headers), search apart
  at 5 per second (``policyName: SECONDLY``); both configurable, None switches them off.
- Webhooks out (``sandbox.hubspot_webhooks``): legacy deal/contact/company and generic
  ``object.*`` events, batched (<= 100), signed v1 and v3, retried; ``changeSource`` INTEGRATION
  for the app's writes (``sourceId``: the app id, UNCONFIRMED), CRM_UI with ``userId:<id>`` for
  changes made in the UI (the ``/_sandbox/ui/...`` routes and the Python methods' default).
- Account information: ``GET /account-info/v3/details`` (portalId, accountType, timeZone,
  companyCurrency, additionalCurrencies, utcOffset, utcOffsetMilliseconds, uiDomain,
  dataHostingLocation) from the state's ``time_zone`` and ``currency`` (``--time-zone``).
- Request counts by route (``state.counts()``, ``GET /_sandbox/counts``).

Modules: ``hubspot_state`` (the portal and its world-building API), ``hubspot_app`` (routes),
``hubspot_search``, ``hubspot_webhooks``, ``hubspot_auth`` (OAuth, rate windows),
``hubspot_errors`` (error bodies), ``hubspot_objects`` (object types, default properties and
association types).

Not emulated: daily limits; scopes (every token may call every route); merges, restores and
upserts; full-text ``query`` beyond substrings of a few properties; paging of the
``associations`` embedded in v3 reads; tickets, line items, products and custom objects;
PKCE's ``code_verifier``; the webhook settings API (``/webhooks/v3/{appId}``: use
``state.webhooks.configure`` or ``POST /_sandbox/webhooks``); concurrent webhook deliveries and
HubSpot's 24-hour retry schedule (a few quick retries instead).

Where the docs give a limit but no exact error text (paging past 10,000 search results, more
than 100 batch inputs, an unknown id in a batch update: 404 for the whole batch), the status and
category follow the docs and the message is the emulator's own.

Sandbox-only routes (no auth, not counted): ``GET /_sandbox/counts``, ``POST
/_sandbox/counts/reset``; ``POST|DELETE /_sandbox/webhooks`` (``{targetUrl, clientSecret?,
appId?, subscriptions?}``), ``POST /_sandbox/webhooks/flush``; ``POST /_sandbox/tokens``,
``POST /_sandbox/tokens/expire``; ``POST /_sandbox/owners/{ownerId}/archive|restore`` (a rep
leaves, or comes back: the admin deactivates or reactivates their user; no webhook); and a
user's clicks, each with the webhooks HubSpot would send:
``POST /_sandbox/ui/{objectType}``, ``PATCH|DELETE /_sandbox/ui/{objectType}/{id}``,
``POST /_sandbox/ui/deals/{dealId}/{calls|emails|meetings|notes|tasks}`` (``{properties,
contactIds?}``), ``PUT|DELETE /_sandbox/ui/associations/{from}/{fromId}/{to}/{toId}``
(``{labels?, replace?}``).

Sources (shapes and limits): https://developers.hubspot.com/docs/api-reference/search/guide.md ;
https://developers.hubspot.com/docs/api-reference/latest/crm/owners/guide.md and HubSpot's
owners spec (``archived``: "Whether to return only results that have been archived") ;
https://developers.hubspot.com/docs/guides/crm/using-object-apis ;
https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide ;
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines ;
https://developers.hubspot.com/docs/api-reference/latest/error-handling ;
https://developers.hubspot.com/changelog/upcoming-expiration-of-oauth-access-tokens-is-changing ;
https://developers.hubspot.com/docs/api/webhooks ;
https://developers.hubspot.com/docs/api-reference/legacy/account/account-information/guide.md ;
and the models of
github.com/HubSpot/hubspot-api-python 12.0.0 (``hubspot/crm/*/models``, ``hubspot/oauth``).

World-building API (stable, used by ``sandbox/seed.py``)::

    from sandbox.hubspot import HubSpotState, serve

    state = HubSpotState(portal_id=62515, clock=lambda: now)
    owner = state.add_owner("sarah@example.com", "Sarah", "Mitchell")
    state.add_pipeline("sales", "Sales", [("s1", "Discovery", 0.2, False),
                                          ("won", "Won", 1.0, True), ("lost", "Lost", 0.0, True)])
    state.define_association_label("deals", "contacts", "Champion")
    deal = state.create_object("deals", {"dealname": "Acme", "pipeline": "sales",
                                         "dealstage": "s1", "hubspot_owner_id": owner},
                               created_at=t0, history={"dealstage": [("s1", t0)]})
    contact = state.create_object("contacts", {"firstname": "Ann", "jobtitle": "CFO"})
    state.associate("deals", deal, "contacts", contact, labels=["Champion"])
    with serve(state) as server:
        token = state.issue_token().access_token
        HubSpot(access_token=token, host=server.url)

Run an empty portal with ``python -m sandbox.hubspot --port 8099``, or a generated sales org
of 300 deals with ``python -m sandbox.hubspot --seed-deals 300`` (``--help`` for the rest).
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.hubspot_app import create_app
from sandbox.hubspot_seed import load_into_hubspot
from sandbox.hubspot_state import Change, HubSpotError, HubSpotState, Source, Token
from sandbox.seed import generate
from sandbox.serving import (
    BackgroundServer,
    QuietHandler,
    cannot_listen,
    handler,
    interrupt_on_sigterm,
)

__all__ = [
    "Change",
    "HubSpotError",
    "HubSpotState",
    "ServerHandle",
    "Source",
    "Token",
    "create_app",
    "serve",
]


class ServerHandle(BackgroundServer):
    """A running emulator: ``url``, ``port``, ``state``, ``stop()``; a context manager (the
    state and its webhook dispatcher outlive it)."""

    def __init__(self, server: BaseWSGIServer, state: HubSpotState) -> None:
        super().__init__(server, "hubspot-emulator")
        self.state = state


def serve(
    state: HubSpotState, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> ServerHandle:
    """Serve ``state`` on a threaded werkzeug server in a background thread (port 0: any free
    port); ``quiet`` drops the per-request access log."""
    server = make_server(
        host, port, create_app(state), threaded=True, request_handler=handler(quiet)
    )
    return ServerHandle(server, state)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sandbox.hubspot``: serve a portal (empty, or seeded) until interrupted."""
    args = _parser().parse_args(argv)
    if args.seed_deals < 0:
        _parser().error("--seed-deals must be 0 or more")
    interrupt_on_sigterm()  # before anything else
    try:
        return _serve(args)
    except KeyboardInterrupt:
        return 0


def _serve(args: argparse.Namespace) -> int:
    state = HubSpotState(
        args.portal_id,
        app_id=args.app_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        rate_limit=None if args.no_rate_limit else 110,
        search_rate_limit=None if args.no_rate_limit else 5,
        search_lag_seconds=args.search_lag,
        time_zone=args.time_zone,
        currency=args.currency,
    )
    seeded = _seed(state, args.seed_deals, args.seed) if args.seed_deals else None
    # Webhooks only from now on: loading the world is the portal's past, not news to send.
    if args.webhook_url:
        state.webhooks.configure(args.webhook_url)
    try:
        server = make_server(
            args.host, args.port, create_app(state), threaded=True, request_handler=QuietHandler
        )
    except OSError as exc:
        return cannot_listen(args.host, args.port, exc)
    token = state.issue_token()
    # The first line names the URL (a launcher using --port 0 reads it); the rest are for people.
    print(
        f"HubSpot emulator for portal {args.portal_id} on http://{args.host}:{server.server_port}"
    )
    if seeded:
        print(seeded)
    if args.webhook_url:
        print(f"webhooks to {args.webhook_url}, signed with the client secret")
    print(f"access token (30 min): {token.access_token}")
    print(f"refresh token: {token.refresh_token}")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.webhooks.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.hubspot",
        description="Serve an emulated HubSpot portal: empty (the default deal pipeline only), "
        "or seeded with a generated sales org (--seed-deals). The OAuth client id and secret "
        "default to HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET from the environment, as the "
        "product reads them, so a secret need not be given on the command line.",
    )
    env = os.environ
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8099, help="port to listen on (8099; 0: any free port, printed)"
    )
    parser.add_argument("--portal-id", type=int, default=62515, help="hub id (62515)")
    parser.add_argument(
        "--app-id",
        type=int,
        default=env.get("HUBSPOT_APP_ID") or "54321",  # argparse applies type= to it
        help="the app's id (HUBSPOT_APP_ID, else 54321)",
    )
    parser.add_argument(
        "--client-id",
        default=env.get("HUBSPOT_CLIENT_ID") or "sandbox-client-id",
        help="OAuth client id (HUBSPOT_CLIENT_ID, else sandbox-client-id)",
    )
    parser.add_argument(
        "--client-secret",
        default=env.get("HUBSPOT_CLIENT_SECRET") or "sandbox-client-secret",
        help="OAuth client secret, also the webhook signing key (HUBSPOT_CLIENT_SECRET, else "
        "sandbox-client-secret)",
    )
    parser.add_argument("--webhook-url", help="send webhooks to this target URL")
    parser.add_argument(
        "--seed-deals",
        type=int,
        default=0,
        metavar="N",
        help="load a generated sales org of N deals, with their contacts and "
        "activities, before serving (0: an empty portal)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="random seed of the generated org (1): same seed, same org",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="switch off the 429s")
    parser.add_argument(
        "--search-lag",
        type=float,
        default=0.0,
        help="seconds before a change is visible to search (0)",
    )
    parser.add_argument(
        "--time-zone",
        default="US/Eastern",
        help="the portal's time zone, as GET /account-info/v3/details gives it (US/Eastern)",
    )
    parser.add_argument("--currency", default="USD", help="the portal's company currency (USD)")
    return parser


def _seed(state: HubSpotState, deals: int, seed: int) -> str:
    """Generate a world of `deals` deals as of now, load it; a line saying what was loaded."""
    started = time.monotonic()
    world = generate(deals, seed, datetime.now(UTC))
    load_into_hubspot(state, world)
    return (
        f"seeded {len(world.deals)} deals, {len(world.people)} contacts, "
        f"{len(world.activities)} activities (seed {seed}) in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
