"""Zendesk Sell emulator for tests, benchmarks and local runs: an in-memory account served over
HTTP with Sell's documented paths, JSON envelopes, limits and errors, and its Firehose.

Emulated (shapes from the Core API v2 and Firehose references and basecrm-python; see
../shared/crm-apis.md section 3):

- OAuth 2: ``GET /oauth2/authorize`` (consent answered at once: 302 to ``redirect_uri`` with
  ``code`` and ``state``; scopes joined by ``+`` or spaces), ``POST /oauth2/token``
  (``authorization_code`` and ``refresh_token``; client id and secret by HTTP Basic or form;
  answers ``{access_token, token_type: "bearer", expires_in: 3599, refresh_token, scope}``;
  RFC 6749 error bodies). Personal access tokens (64 characters, no expiry) from
  ``state.personal_access_token()`` or ``POST /_sandbox/tokens {"personal": true}``.
- Every ``/v2`` and ``/v3`` request needs a ``User-Agent`` (else 400 ``invalid_user_agent``) and
  a Bearer token (401 ``unauthorized``, ``invalid_token``, ``token_expired``), and counts against
  the token's hourly allowance: 36,000 by default (configurable, None switches it off), then
  429 until the hour's window resets, with ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` and
  ``Retry-After`` headers (UNCONFIRMED: Sell documents none).
- Core API v2 (``sandbox.sell_app``): ``GET /v2/accounts/self`` (the account's id, name,
  currency, time format, time zone); ``GET /v2/users/self``; ``GET /v2/{users,pipelines,
  stages}[/{id}]``; ``GET|POST /v2/{deals,contacts,calls,visits,notes,tasks}``, ``GET|PUT|DELETE
  .../{id}``; ``GET|POST /v2/deals/{id}/associated_contacts``, ``DELETE
  .../associated_contacts/{contact_id}`` (role ``involved`` only); ``GET
  /v2/{deal,contact,lead}/custom_fields`` and ``GET /v2/custom_fields?resource_type=`` (the
  second form is UNCONFIRMED); the Search API's custom fields mapping ``GET
  /v3/{deals,contacts,leads}/custom_fields`` (string ids, ``search_api_id``). Writes are wrapped
  as ``{"data": {...}}`` (400 ``invalid_envelope`` otherwise); answers are ``{"data", "meta":
  {"type"}}``; lists are ``{"items": [{"data", "meta"}], "meta": {"type": "collection", "count",
  "links": {self, first_page, prev_page?, next_page?}}}`` with ``page`` (from 1), ``per_page``
  (25, at most 100: 400 past it), ``sort_by=<field>:<asc|desc>`` (not ``last_activity_at``),
  ``ids=1,2`` and the exact-match filters of ``sandbox.sell_resources.FILTERS`` (``stage_id``,
  ``contact_id``, ``owner_id``, ``is_organization``, ``resource_type``/``resource_id``,
  ``completed``...). No ``updated_since`` filter: the docs give none (UNCONFIRMED). Custom field
  values go in ``custom_fields`` keyed by name; an unknown field or a wrong value is a 422
  (``sandbox.sell_custom_fields``). Deals carry ``last_stage_change_at`` (set when the stage
  changes, or as written), ``organization_id`` (derived from ``contact_id``) and
  ``last_activity_at`` (from the calls, visits, notes and tasks logged on them). A call's
  ``resource_type`` is lead, contact or prospect_and_customer (never deal: its deals are
  ``associated_deal_ids``); notes and tasks take lead, contact or deal.
- Firehose (``sandbox.sell_firehose``): ``GET /v3/<resource>/stream?position=tail|top|<pos>&
  limit=1..100`` for deals, contacts, calls, notes, tasks, users, custom_fields (and visits,
  stages, pipelines: UNCONFIRMED); ``meta.event_type`` created/updated/deleted,
  ``meta.previous`` on updates, ``meta.position``, ``meta.top``, ``meta.links.next``; the
  Firehose's own record shape (deal ``value`` a decimal string, ``custom_field_values`` array,
  no ``updated_at``); 72-hour retention and 410 for an older position.
- Errors: Sell's envelope ``{"errors": [{"error": {code, message, details?, resource?,
  field?}}], "meta": {logref, http_status}}`` (``sandbox.sell_errors``).
- Request counts by route (``state.counts()``, ``GET /_sandbox/counts``).
- Users carry ``status`` ``active`` or ``inactive`` (Sell's Users reference). The listing holds
  both (the reference describes it as the list of all the account's users; a ``status=``
  filter narrows it); a deactivated user keeps their deals and tasks, and their tokens stop
  working (Sell's help centre: deactivation changes the user's API token). Nothing refuses work
  given to an inactive user through the API: the help centre says data and tasks can no longer
  be assigned to them, but no API reference names the error Sell would answer.

Not emulated: leads, products, orders, sources, loss reasons, outcomes, text messages, the
search API and the Sync API (``/v2/sync/*``); scopes (every token may call every route, the
Firehose included, though Sell wants the root user); ``includes=associated_contacts``;
unknown query parameters are ignored, not refused (UNCONFIRMED); Firehose events for
associated-contact changes (no such stream was found: UNCONFIRMED); emails (the Core API has no
email object: UNCONFIRMED, see ``sandbox.sell_seed``).

Sandbox-only routes (no auth, not counted): ``GET /_sandbox/counts``, ``POST
/_sandbox/counts/reset``, ``POST /_sandbox/tokens``, ``POST /_sandbox/users/{id}/deactivate``
and ``.../reactivate`` (a rep leaves or comes back: ``state.deactivate_user(id)``; 400 for the
account owner).

World-building API (stable; the Python methods act as the account owner, like a user in Sell's
UI, and their changes reach the Firehose too; ``rename_custom_field`` and ``delete_custom_field``
are an admin's edits of a field, values following it)::

    from sandbox.sell import SellState, serve

    state = SellState(clock=lambda: now, hourly_limit=None)
    rep = state.add_user("Sarah Mitchell", "sarah@example.com")
    sales = state.add_pipeline("Sales")
    s1 = state.add_stage(sales, "Qualified", category="in_progress", likelihood=20, position=1)
    state.define_custom_field("contact", "Buying role", "list", ["Champion", "Decision maker"])
    org = state.create("contacts", {"is_organization": True, "name": "Acme"})
    ann = state.create("contacts", {"last_name": "Lee", "contact_id": org["id"],
                                    "custom_fields": {"Buying role": "Champion"}})
    deal = state.create("deals", {"name": "Acme", "contact_id": org["id"], "stage_id": s1,
                                  "owner_id": rep, "value": 12000}, at=t0)
    state.associate(deal["id"], ann["id"])
    with serve(state) as server:
        token = state.issue_token().access_token  # requests to server.url + "/v2/deals"

Run an empty account with ``python -m sandbox.sell --port 8098``, or a generated sales org of
300 deals with ``python -m sandbox.sell --seed-deals 300`` (``--help`` for the rest).
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.seed import generate
from sandbox.sell_app import create_app
from sandbox.sell_auth import HOURLY_LIMIT
from sandbox.sell_errors import SellError
from sandbox.sell_seed import load_into_sell
from sandbox.sell_state import SellState, Token
from sandbox.serving import (
    BackgroundServer,
    QuietHandler,
    cannot_listen,
    handler,
    interrupt_on_sigterm,
)

__all__ = ["SellError", "SellState", "ServerHandle", "Token", "create_app", "serve"]


class ServerHandle(BackgroundServer):
    """A running emulator: ``url``, ``port``, ``state``, ``stop()``; a context manager."""

    def __init__(self, server: BaseWSGIServer, state: SellState) -> None:
        super().__init__(server, "sell-emulator")
        self.state = state


def serve(
    state: SellState, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> ServerHandle:
    """Serve ``state`` on a threaded werkzeug server in a background thread (port 0: any free
    port); ``quiet`` drops the per-request access log."""
    server = make_server(
        host, port, create_app(state), threaded=True, request_handler=handler(quiet)
    )
    return ServerHandle(server, state)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sandbox.sell``: serve an account (empty, or seeded) until interrupted."""
    args = _parser().parse_args(argv)
    if args.seed_deals < 0:
        _parser().error("--seed-deals must be 0 or more")
    interrupt_on_sigterm()  # before anything else
    try:
        return _serve(args)
    except KeyboardInterrupt:
        return 0


def _serve(args: argparse.Namespace) -> int:
    state = SellState(
        client_id=args.client_id,
        client_secret=args.client_secret,
        hourly_limit=None if args.no_rate_limit else args.hourly_limit,
    )
    seeded = _seed(state, args.seed_deals, args.seed) if args.seed_deals else None
    try:
        server = make_server(
            args.host, args.port, create_app(state), threaded=True, request_handler=QuietHandler
        )
    except OSError as exc:
        return cannot_listen(args.host, args.port, exc)
    token = state.issue_token()
    # The first line names the URL (a launcher using --port 0 reads it); the rest are for people.
    print(f"Zendesk Sell emulator on http://{args.host}:{server.server_port}")
    if seeded:
        print(seeded)
    print(f"access token (1 h): {token.access_token}")
    print(f"refresh token: {token.refresh_token}")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.sell",
        description="Serve an emulated Zendesk Sell account: empty (the owner user only), or "
        "seeded with a generated sales org (--seed-deals). The OAuth client id and secret "
        "default to SELL_CLIENT_ID and SELL_CLIENT_SECRET from the environment, so a secret "
        "need not be given on the command line.",
    )
    env = os.environ
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8098, help="port to listen on (8098; 0: any free port)"
    )
    parser.add_argument(
        "--client-id",
        default=env.get("SELL_CLIENT_ID") or "sandbox-client-id",
        help="OAuth client id (SELL_CLIENT_ID, else sandbox-client-id)",
    )
    parser.add_argument(
        "--client-secret",
        default=env.get("SELL_CLIENT_SECRET") or "sandbox-client-secret",
        help="OAuth client secret (SELL_CLIENT_SECRET, else sandbox-client-secret)",
    )
    parser.add_argument(
        "--seed-deals",
        type=int,
        default=0,
        metavar="N",
        help="load a generated sales org of N deals, with their contacts and activities, "
        "before serving (0: an empty account)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated org (1)")
    parser.add_argument(
        "--hourly-limit",
        type=int,
        default=HOURLY_LIMIT,
        help=f"requests per hour per token before 429s ({HOURLY_LIMIT})",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="switch off the 429s")
    return parser


def _seed(state: SellState, deals: int, seed: int) -> str:
    """Generate a world of ``deals`` deals as of now, load it; a line saying what was loaded."""
    started = time.monotonic()
    world = generate(deals, seed, datetime.now(UTC))
    load_into_sell(state, world)
    return (
        f"seeded {len(world.deals)} deals, {len(world.people)} contacts, "
        f"{len(world.activities)} activities (seed {seed}) in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
