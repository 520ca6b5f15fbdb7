"""Fixtures for the emulator tests: a settable clock; a HubSpot portal served over real HTTP with
the real hubspot-api-client pointed at it, and a tiny webhook receiver; a Salesforce org served
over real HTTPS with simple-salesforce pointed at it."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as AssociationsError
from hubspot.crm.deals import ApiException as DealsError
from hubspot.crm.objects.notes import ApiException as NotesError
from hubspot.crm.objects.tasks import ApiException as TasksError
from hubspot.crm.properties import ApiException as PropertiesError
from hubspot.oauth import ApiException as OAuthError
from simple_salesforce import Salesforce
from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot_state import Token
from sandbox.salesforce import SalesforceState
from sandbox.salesforce import ServerHandle as SalesforceServer
from sandbox.salesforce import serve as serve_salesforce

CLIENT_SECRET = "sandbox-test-client-secret"

# Each generated SDK package raises its own ApiException (all carry .status and .body).
API_ERRORS = (AssociationsError, DealsError, NotesError, OAuthError, PropertiesError, TasksError)


class Clock:
    """The emulator's clock, moved by hand. Starts at the wall clock (second precision) so that
    v3 signatures pass hubspot-api-client's real-time freshness check."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> Iterator[HubSpotState]:
    # Limits off: the clock stands still, so any test making many calls would trip them; the
    # rate-limit tests switch them back on.
    portal = HubSpotState(
        portal_id=62515,
        clock=clock,
        client_secret=CLIENT_SECRET,
        rate_limit=None,
        search_rate_limit=None,
    )
    yield portal
    portal.webhooks.stop()


@pytest.fixture
def server(state: HubSpotState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


@pytest.fixture
def token(state: HubSpotState) -> Token:
    return state.issue_token()


@pytest.fixture
def client(server: ServerHandle, token: Token) -> HubSpot:
    return HubSpot(access_token=token.access_token, host=server.url)


@dataclass
class Received:
    """One webhook POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict]:
        return json.loads(self.body)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Receiver:
    """A local webhook target: records every request, answers the planned statuses (then
    204)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.planned: deque[int] = deque()
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/hubspot?app=dealradar"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _app(self, environ: dict, start_response) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        headers = {  # lower-cased names: HTTP header names are case-insensitive
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        with self._lock:
            self.requests.append(Received(environ["PATH_INFO"], headers, body))
            status = self.planned.popleft() if self.planned else 204
        start_response(f"{status} X", [("Content-Length", "0")])
        return [b""]

    def events(self) -> list[dict]:
        with self._lock:
            return [e for r in self.requests for e in r.events]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    yield target
    target.stop()


# --- Salesforce emulator -------------------------------------------------------------------------


@pytest.fixture
def sf_state(clock: Clock) -> SalesforceState:
    return SalesforceState(clock=clock, client_secret=CLIENT_SECRET)


@pytest.fixture
def sf_server(sf_state: SalesforceState) -> Iterator[SalesforceServer]:
    with serve_salesforce(sf_state) as handle:
        yield handle


def https_session(server: SalesforceServer) -> requests.Session:
    """A requests session trusting only the emulator's own certificate. trust_env off: these
    machines set REQUESTS_CA_BUNDLE, which requests would prefer to the session's verify."""
    session = requests.Session()
    session.trust_env = False
    session.verify = server.cert_path
    return session


@pytest.fixture
def sf(sf_server: SalesforceServer, sf_state: SalesforceState) -> Salesforce:
    """simple-salesforce on the emulator over real HTTPS, as the API user."""
    return Salesforce(
        instance_url=sf_server.url,
        session_id=sf_state.issue_session().access_token,
        session=https_session(sf_server),
    )
