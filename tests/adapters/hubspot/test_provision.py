"""Provisioning against the emulator over real HTTP: the Deal Radar group and properties exist
with the right types afterwards, a second run writes nothing, a drifted property is repaired,
the portal's association labels are read, and a refused scope says what the admin must do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.errors import InvalidRequest, PermissionDenied
from adapters.hubspot.client import HubSpotClient
from adapters.hubspot.oauth import SCOPES
from adapters.hubspot.properties import GROUP, NAMES, PROPERTIES, encode
from adapters.hubspot.provision import AssociationLabel, provision, suggest_roles
from engine.settings import ALERT_CODES
from sandbox.hubspot import HubSpotState, ServerHandle, create_app, serve

PORTAL = 62515


class StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def current(self) -> str:
        return self.token

    def renew(self, rejected: str) -> str:
        return self.token


@pytest.fixture
def state() -> Iterator[HubSpotState]:
    portal = HubSpotState(portal_id=PORTAL, rate_limit=None, search_rate_limit=None)
    yield portal
    portal.webhooks.stop()


@pytest.fixture
def server(state: HubSpotState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


def client_for(state: HubSpotState, url: str, scopes: tuple[str, ...] = ()) -> HubSpotClient:
    token = state.issue_token(scopes).access_token
    return HubSpotClient(
        str(PORTAL), StaticTokens(token), None, host=url, burst=None, search_burst=None,
        app=(state.client_id, state.client_secret),
    )  # fmt: skip


INTROSPECT = "POST /oauth/2026-03/token/introspect"
"""The scope check's one call (a POST that writes nothing)."""


def writes(state: HubSpotState) -> dict[str, int]:
    return {
        k: n for k, n in state.counts().items() if not k.startswith("GET ") and k != INTROSPECT
    }


def test_provisioning_defines_the_group_and_every_property(state, server) -> None:  # type: ignore[no-untyped-def]
    done = provision(client_for(state, server.url))
    assert done.group_created
    assert done.created == list(NAMES)
    groups = {g["name"]: g for g in state.property_groups("deals")}
    assert groups[GROUP["name"]]["label"] == "Deal Radar"
    for prop in PROPERTIES:
        defined = state.get_property("deals", prop.name)
        assert (defined["type"], defined["fieldType"], defined["groupName"]) == (
            prop.type,
            prop.field_type,
            "dealradar",
        )
        assert defined["label"] == prop.label
    alerts = state.get_property("deals", "dealradar_alerts")
    assert (alerts["type"], alerts["fieldType"]) == ("enumeration", "checkbox")  # multi-select
    assert [o["value"] for o in alerts["options"]] == list(ALERT_CODES)
    labels = {o["value"]: o["label"] for o in alerts["options"]}
    assert labels["no_activity"] == "No activity"
    assert all("_" not in label for label in labels.values())  # plain words, not codes


def test_a_second_run_changes_nothing_and_only_reads(state, server) -> None:  # type: ignore[no-untyped-def]
    client = client_for(state, server.url)
    provision(client)
    before = [state.get_property("deals", name) for name in NAMES]
    state.reset_counts()
    again = provision(client)
    assert not again.changed
    assert again.unchanged == list(NAMES)
    assert writes(state) == {}
    assert sum(state.counts().values()) == 4  # scopes, groups, properties, labels
    assert state.counts()[INTROSPECT] == 1  # OAuth v3: v1's token info retires on 2027-02-16
    assert [state.get_property("deals", name) for name in NAMES] == before


def test_a_drifted_property_is_repaired_and_the_rest_left_alone(state, server) -> None:  # type: ignore[no-untyped-def]
    state.define_property_group("deals", "dealradar", "Deal Radar")
    state.define_property(
        "deals", "dealradar_alerts", "Deal Radar alerts", "enumeration", "checkbox",
        group_name="dealradar", description=PROPERTIES[0].description,
        options=[{"label": "No activity", "value": "no_activity"}],
    )  # fmt: skip
    state.define_property(
        "deals", "dealradar_summary", "Old summary", "string", "textarea", group_name="dealradar"
    )
    state.reset_counts()
    done = provision(client_for(state, server.url))
    assert not done.group_created
    assert done.updated == ["dealradar_alerts", "dealradar_summary"]
    assert len(done.created) == len(NAMES) - 2
    assert writes(state) == {
        "PATCH /crm/v3/properties/deals/{name}": 2,
        "POST /crm/v3/properties/deals": len(NAMES) - 2,
    }
    alerts = state.get_property("deals", "dealradar_alerts")
    assert [o["value"] for o in alerts["options"]] == list(ALERT_CODES)
    summary = state.get_property("deals", "dealradar_summary")
    assert (summary["label"], summary["fieldType"]) == ("Deal Radar summary", "text")


def test_a_batch_update_of_the_provisioned_properties_is_accepted(state, server) -> None:  # type: ignore[no-untyped-def]
    client = client_for(state, server.url)
    provision(client)
    deal = state.create_object("deals", {"dealname": "Acme", "dealstage": "appointmentscheduled"})
    values = encode(
        {
            "alerts": ["no_activity", "single_threaded"],
            "alert_count": 2,
            "summary": "No interaction for 12 days · Only Ann has been in touch",
            "health_score": 41,
            "health_grade": "poor",
            "health_trend": "declining",
            "days_since_interaction": 12,
            "evaluated_at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC).isoformat(),
        }
    )
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=deal, properties=values)]
    )
    client.call("deals.batch_update", lambda sdk: sdk.crm.deals.batch_api.update(body))
    stored = state.get_object("deals", deal)
    assert stored["dealradar_alerts"] == "no_activity;single_threaded"
    assert stored["dealradar_health_grade"] == "poor"
    assert float(stored["dealradar_alert_count"]) == 2


def test_the_portals_association_labels_are_read_and_matched_to_roles(state, server) -> None:  # type: ignore[no-untyped-def]
    for label in ("Champion", "Decision maker", "Technical buyer"):
        state.define_association_label("deals", "contacts", label)
    done = provision(client_for(state, server.url))
    labelled = {lab.label: lab for lab in done.labels if lab.label}
    assert {"Champion", "Decision maker", "Technical buyer"} <= set(labelled)
    assert all(labelled[n].category == "USER_DEFINED" for n in ("Champion", "Technical buyer"))
    assert any(lab.label is None and lab.type_id == 3 for lab in done.labels)  # the default
    roles = suggest_roles(done.labels, ["Champion", "Decision Maker", "Economic Buyer"])
    assert roles["Champion"] == "Champion"
    assert roles["Decision maker"] == "Decision Maker"
    assert roles["Technical buyer"] == "Technical buyer"  # kept as it is, for the admin to map


def test_hubspots_primary_flag_is_not_a_role() -> None:
    labels = [AssociationLabel(5, "Primary", "HUBSPOT_DEFINED"), AssociationLabel(3, None, "X")]
    assert suggest_roles(labels, ["Champion"]) == {}


def test_a_grant_without_the_schema_scope_is_refused_before_any_write(state, server) -> None:  # type: ignore[no-untyped-def]
    fewer = tuple(
        s for s in SCOPES if s not in ("crm.schemas.deals.write", "crm.objects.owners.read")
    )
    with pytest.raises(PermissionDenied) as caught:
        provision(client_for(state, server.url, fewer))
    message = str(caught.value)
    assert "crm.objects.owners.read, crm.schemas.deals.write scopes" in message
    assert "install Deal Radar again from /install/hubspot" in message
    assert writes(state) == {}
    assert not any(g["name"] == "dealradar" for g in state.property_groups("deals"))


def test_without_the_apps_credentials_the_scope_check_says_what_to_set(state, server) -> None:  # type: ignore[no-untyped-def]
    client = client_for(state, server.url)
    client.app = None
    with pytest.raises(InvalidRequest, match="HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET"):
        provision(client)
    assert state.counts() == {}


MISSING_SCOPES = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call.",
    "correlationId": "3d9a1c5e-0000-4000-8000-000000000000",
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredScopes": ["crm.schemas.deals.write"]},
        }
    ],
    "category": "MISSING_SCOPES",
}


def test_a_refused_scope_says_what_the_admin_must_do(state) -> None:  # type: ignore[no-untyped-def]
    emulator = create_app(state)

    @Request.application
    def without_schema_scope(request: Request) -> Response:
        # HubSpot's answer to a token without crm.schemas.deals.write (the emulator ignores
        # scopes), for the writes that need it; everything else is the emulator's.
        if request.method != "GET" and request.path.startswith("/crm/v3/properties/"):
            return Response(json.dumps(MISSING_SCOPES), 403, content_type="application/json")
        return emulator

    server = make_server("127.0.0.1", 0, without_schema_scope, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(PermissionDenied, match=r"crm\.schemas\.deals\.write") as caught:
            provision(client_for(state, f"http://127.0.0.1:{server.server_port}"))
        assert "install Deal Radar again" in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()
