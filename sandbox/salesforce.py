"""Salesforce emulator for tests, benchmarks and ``make run``: an in-memory org served over HTTPS
(a self-signed certificate made at start: simple-salesforce always speaks https) with
Salesforce's documented paths, JSON shapes, limits and errors, and Outbound Messages out.

Emulated (each shape loads through simple-salesforce 1.12):

- OAuth web-server flow: ``GET /services/oauth2/authorize`` (consent answered at once: 302 to
  ``redirect_uri`` with ``code`` and ``state``; ``code_challenge`` S256 or plain kept),
  ``POST /services/oauth2/token`` (``authorization_code`` with ``code_verifier`` checked
  against the challenge, or the client secret; ``refresh_token``), answering ``access_token``,
  ``refresh_token`` (code grant only), ``instance_url``, ``id``, ``issued_at``, ``signature``
  and no ``expires_in``; errors ``{error, error_description}`` (``invalid_grant``...);
  ``POST /services/oauth2/revoke``. Access tokens expire after ``session_seconds`` (the org's
  session timeout); then 401 ``INVALID_SESSION_ID``.
- REST under ``/services/data/vXX.X`` (v20.0 to v62.0): ``query`` and ``queryAll`` with a real
  SOQL subset (``sandbox.salesforce_soql``), batches of 2,000 records (``Sforce-Query-Options:
  batchSize``) in which child records count ("Child objects count toward the number of records
  for the batch size"), a child result larger than a batch with its own ``nextRecordsUrl``,
  ``nextRecordsUrl`` and ``/query/{locator}``; ``sobjects`` (describeGlobal),
  ``/sobjects/{type}/describe`` (live picklists: the OpportunityContactRole roles an admin
  added, the org's stages), ``POST /sobjects/{type}``, ``GET|PATCH|DELETE
  /sobjects/{type}/{id}`` (15- or 18-character ids, ``?fields=``), ``/composite/sobjects``
  (POST create, PATCH update, DELETE ``?ids=``; at most 200 records; ``allOrNone`` false:
  per-record SaveResults, HTTP 200 even when some fail; true: nothing saved if one fails),
  ``/limits`` (``DailyApiRequests``); ``POST /composite`` (up to 25 subrequests run in order,
  at most 5 of them queries or sObject Collections,
  ``@{ref.id}`` and ``@{ref.records[0].Id}`` references, one API call for the whole; not
  ``allOrNone`` true), the way to send a query too long for a URI.
- Request size: a URI over 16,384 bytes is answered 414, URI plus headers over it 431 (Help
  article 000386264); a SOQL statement over 100,000 characters, or a WHERE string over 4,000,
  is a MALFORMED_QUERY (limits cheat sheet).
- ``GET /sobjects/{type}/updated`` and ``/deleted`` (``start``, ``end``: the getUpdated and
  getDeleted windows); ``GET /composite/sobjects/{type}?ids=&fields=`` (null for an id not
  found); the identity URL ``GET /id/{orgId}/{userId}`` named in the token response.
- Tooling API: ``POST /tooling/sobjects/CustomField`` (``{FullName: "Opportunity.X__c",
  Metadata: {label, type, ...}}``), ``GET /tooling/sobjects/CustomField/{id}``,
  ``/tooling/query`` over CustomField. Field-level security: a new custom field is invisible
  to every user (``INVALID_FIELD`` in SOQL, on read and on write) until a ``FieldPermissions``
  row (``POST /sobjects/FieldPermissions``: ParentId, SobjectType, Field, PermissionsRead,
  PermissionsEdit) on a permission set assigned to the user grants it; one row per permission
  set and field (``DUPLICATE_VALUE`` for a second), naming an existing custom field. The API
  user's profile is the permission set ``state.profile_permission_set_id``; ``PermissionSet``
  and ``PermissionSetAssignment`` can be created too.
- Notes: ``ContentNote`` (Title, Content as base64 of HTML or text; TextPreview, FileType
  SNOTE and ContentSize derived; a query returns Content as its blob URL) and
  ``ContentDocumentLink`` (a note linked to a record; queries must filter on ContentDocumentId
  or LinkedEntityId, Salesforce's implementation restriction). Long text and blob fields cannot
  be filtered; a reference to a deleted record is ``ENTITY_IS_DELETED``.
- Derived values: Name of contacts and users; IsClosed, IsWon, Probability, ForecastCategoryName
  and LastStageChangeDate from the stage; an OpportunityHistory row on create and whenever
  StageName, Amount, CloseDate or Probability changes (PrevAmount, PrevCloseDate); a task's
  IsClosed and CompletedDateTime; an event's ActivityDateTime, ActivityDate and duration; a
  user invitee's own copy of an event (a child Event: IsChild, OwnerId the invitee); the
  AccountId of activities; an opportunity's LastActivityDate (without stamping the
  opportunity: whether Salesforce moves its SystemModstamp then is not documented, so the
  emulator does not); CreatedDate, LastModifiedDate and SystemModstamp; the OwnerId of a
  record created without one (its creator).
- Shared Activities: on unless ``SalesforceState(shared_activities=False)``, which makes
  TaskRelation no type of the org (``INVALID_TYPE`` in SOQL, as in an org without the
  setting). TaskRelation rows (TaskId, RelationId, IsWhat: a task's contacts, up to 50) are
  stored as inserted: the rows Salesforce itself keeps for a task's WhoId and WhatId are not
  derived.
- Users: ``IsActive`` (true unless the insert says false; seeded reps are active). An admin
  deactivates one with ``PATCH /sobjects/User/{id}`` ``{"IsActive": false}`` (or
  ``state.update("User", id, {"IsActive": False})``); a record then given to that user, on
  insert or update (``OwnerId``), is refused 400 ``INACTIVE_OWNER_OR_USER`` ("operation
  performed with inactive user [005...] as owner of task"); what the user already owns stays
  theirs and can still be edited.
- Limits: every REST response carries ``Sforce-Limit-Info: api-usage=USED/MAX`` over a rolling
  24 hours; past ``daily_api_limit``, 403 ``REQUEST_LIMIT_EXCEEDED`` (not counted). Request
  counts by route (``state.counts()``, ``GET /_sandbox/counts``).
- Outbound Messages (``sandbox.salesforce_outbound``): when an opportunity is created or
  edited (by anyone, the API user too), the SOAP ``notifications`` message goes to the
  configured endpoint, up to 100 notifications a message, retried with back-off until the
  answer is a ``notificationsResponse`` with ``Ack`` true. The default fields include
  LastModifiedById, so a listener can tell the echo of its own writes.

Errors: ``[{"message", "errorCode", "fields"?}]`` (``MALFORMED_QUERY``, ``INVALID_FIELD``,
``INVALID_TYPE``, ``INVALID_QUERY_FILTER_OPERATOR``, ``REQUIRED_FIELD_MISSING``,
``INVALID_CROSS_REFERENCE_KEY``, ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``,
``INACTIVE_OWNER_OR_USER``, ``NOT_FOUND``...);
where Salesforce's exact words were not at hand, the code follows the docs and the message is
the emulator's own.

Not emulated: the Metadata (SOAP) API, Bulk API 2.0, Composite graphs and batches, Change Data
Capture and the Pub/Sub API, Flow callouts, sharing (every user sees every record), record
types, currencies, Leads, the per-app usage in ``Sforce-Limit-Info``, concurrency
limits, nested child subqueries (API 58.0), session timeouts extended by activity (a token lives
``session_seconds`` from its issue), Salesforce's 24-hour retry schedule (quick retries).

Sandbox-only routes (no auth, not counted): ``GET /_sandbox/counts``, ``POST
/_sandbox/counts/reset``, ``POST /_sandbox/sessions`` (a token for the API user), ``POST
/_sandbox/sessions/expire``, ``POST /_sandbox/outbound`` (``{endpoint, fields?,
sendSessionId?}``), and a user's clicks: ``POST /_sandbox/ui/{type}``, ``PATCH
/_sandbox/ui/{type}/{id}`` (outbound messages follow).

Use from Python::

    from sandbox.salesforce import SalesforceState, serve

    state = SalesforceState(clock=lambda: now)
    account = state.insert("Account", {"Name": "Acme"})
    with serve(state) as server:
        token = state.issue_session().access_token
        session = requests.Session()
        session.trust_env = False          # else REQUESTS_CA_BUNDLE wins over verify
        session.verify = server.cert_path  # the emulator's own certificate, never False
        sf = Salesforce(instance_url=server.url, session_id=token, session=session)
        sf.query("SELECT Id, Name FROM Account")

The state's world-building API (used by ``sandbox/salesforce_seed.py``, stable):
``insert(type, values, by=, at=)`` and ``update(...)`` (``at`` back-dates a change, history
included), ``delete``, ``add_stage(label, probability, closed=, won=)``,
``add_picklist_value(type, field, value)``, ``create_custom_field("Opportunity.X__c",
{"type": "Number", ...})``, ``issue_session()``, ``expire_sessions()``,
``set_daily_limit(n)``, ``counts()``; ``state.api_user_id`` and
``state.profile_permission_set_id`` (the API user's profile, for FieldPermissions); a served
org's ``server.outbound.configure(endpoint, fields)``.

Run it alone with ``python -m sandbox.salesforce --seed-deals 300`` (``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.salesforce_app import create_app
from sandbox.salesforce_errors import SalesforceError
from sandbox.salesforce_outbound import OutboundMessages
from sandbox.salesforce_seed import load_into_salesforce
from sandbox.salesforce_state import Change, SalesforceState, Session
from sandbox.seed import generate
from sandbox.serving import BackgroundServer, cannot_listen, handler, interrupt_on_sigterm

__all__ = [
    "Change",
    "OutboundMessages",
    "SalesforceError",
    "SalesforceState",
    "ServerHandle",
    "Session",
    "create_app",
    "make_certificate",
    "serve",
]


def make_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (also valid for localhost), written as PEM files
    (certificate, key) in ``directory``; clients verify against the certificate file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Salesforce emulator")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(alt))), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "salesforce-emulator.crt"
    key_path = directory / "salesforce-emulator.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class ServerHandle(BackgroundServer):
    """A running emulator: ``url`` (https), ``port``, ``cert_path``, ``outbound``, ``stop()``;
    a context manager."""

    def __init__(
        self,
        server: BaseWSGIServer,
        state: SalesforceState,
        outbound: OutboundMessages,
        cert_dir: tempfile.TemporaryDirectory[str] | None,
        cert_path: Path,
    ) -> None:
        super().__init__(server, "salesforce-emulator", scheme="https")
        self.state = state
        self.outbound = outbound
        self.cert_path = str(cert_path)
        self._cert_dir = cert_dir

    def stop(self) -> None:
        """Stop serving and delivering outbound messages."""
        super().stop()
        self.outbound.stop()
        if self._cert_dir is not None:
            self._cert_dir.cleanup()


def serve(
    state: SalesforceState,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    quiet: bool = True,
    cert_dir: Path | None = None,
    outbound: OutboundMessages | None = None,
) -> ServerHandle:
    """Serve ``state`` over HTTPS on a threaded werkzeug server in a background thread (port 0:
    any free port). The certificate is made in ``cert_dir`` (default: a temporary directory
    removed on stop); ``state.instance_url`` becomes the served URL."""
    temp = None
    if cert_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="sf-emulator-")
        cert_dir = Path(temp.name)
    cert_path, key_path = make_certificate(cert_dir, host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    outbound = outbound or OutboundMessages(state)
    server = make_server(
        host,
        port,
        create_app(state, outbound),
        threaded=True,
        request_handler=handler(quiet),
        ssl_context=context,
    )
    state.instance_url = f"https://{host}:{server.server_port}"
    return ServerHandle(server, state, outbound, temp, cert_path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sandbox.salesforce``: serve an org (empty, or seeded) until interrupted."""
    args = _parser().parse_args(argv)
    if args.seed_deals < 0:
        _parser().error("--seed-deals must be 0 or more")
    interrupt_on_sigterm()
    try:
        return _serve(args)
    except KeyboardInterrupt:
        return 0


def _serve(args: argparse.Namespace) -> int:
    state = SalesforceState(
        client_id=args.client_id,
        client_secret=args.client_secret,
        daily_api_limit=args.daily_api_limit,
        session_seconds=args.session_seconds,
    )
    seeded = _seed(state, args.seed_deals, args.seed) if args.seed_deals else None
    cert_dir = Path(args.cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle = serve(state, args.host, args.port, cert_dir=cert_dir)
    except OSError as exc:
        return cannot_listen(args.host, args.port, exc)
    if args.outbound_url:
        handle.outbound.configure(args.outbound_url, verify=args.outbound_ca or True)
    session = state.issue_session()
    print(f"Salesforce emulator for org {state.org_id} on {handle.url}")
    print(f"certificate: {handle.cert_path} (verify against it)")
    if seeded:
        print(seeded)
    if args.outbound_url:
        print(f"outbound messages to {args.outbound_url}")
    print(f"access token ({args.session_seconds:.0f} s): {session.access_token}")
    print(f"refresh token: {session.refresh_token}")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.salesforce",
        description="Serve an emulated Salesforce org over HTTPS with a self-signed certificate "
        "made at start: empty, or seeded with a generated sales org (--seed-deals). The OAuth "
        "consumer key and secret default to SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET.",
    )
    env = os.environ
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8443, help="port to listen on (8443; 0: any free port)"
    )
    parser.add_argument(
        "--cert-dir",
        default="instance/sandbox/salesforce",
        help="where the certificate and key are written (instance/sandbox/salesforce)",
    )
    parser.add_argument(
        "--client-id",
        default=env.get("SALESFORCE_CLIENT_ID") or "sandbox-consumer-key",
        help="the connected app's consumer key",
    )
    parser.add_argument(
        "--client-secret",
        default=env.get("SALESFORCE_CLIENT_SECRET") or "sandbox-consumer-secret",
        help="the connected app's consumer secret",
    )
    parser.add_argument(
        "--daily-api-limit",
        type=int,
        default=100_000,
        help="API calls allowed in a rolling 24 h (100000); then 403 REQUEST_LIMIT_EXCEEDED",
    )
    parser.add_argument(
        "--session-seconds",
        type=float,
        default=7200,
        help="access-token lifetime, the org's session timeout (7200)",
    )
    parser.add_argument("--outbound-url", help="post Outbound Messages on opportunity changes here")
    parser.add_argument(
        "--outbound-ca", help="CA file to verify an https outbound endpoint (default: system CAs)"
    )
    parser.add_argument(
        "--seed-deals",
        type=int,
        default=0,
        metavar="N",
        help="load a generated sales org of N opportunities before serving (0: an empty org)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated org (1)")
    return parser


def _seed(state: SalesforceState, deals: int, seed: int) -> str:
    started = time.monotonic()
    world = generate(deals, seed, dt.datetime.now(dt.UTC))
    load_into_salesforce(state, world)
    return (
        f"seeded {len(world.deals)} opportunities, {len(world.people)} contacts, "
        f"{len(world.activities)} activities (seed {seed}) in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
