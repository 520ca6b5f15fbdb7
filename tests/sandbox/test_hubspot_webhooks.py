"""Webhooks from the HubSpot emulator to a local receiver: payload fields, v1 and v3 signatures
checked with an independent computation and with hubspot-api-client's ``Signature``, batching,
retries, subscriptions, and the changeSource that tells the app's own writes from a user's."""

from __future__ import annotations

import base64
import hashlib
import hmac

import requests
from hubspot import HubSpot
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from hubspot.utils.signature import Signature

from sandbox.hubspot import HubSpotState, ServerHandle
from tests.sandbox.conftest import CLIENT_SECRET, Clock, Receiver


def _update(client: HubSpot, changes: dict[str, dict[str, str]]) -> None:
    inputs = [SimplePublicObjectBatchInput(id=i, properties=p) for i, p in changes.items()]
    client.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))


def _configure(state: HubSpotState, receiver: Receiver, **options: object) -> None:
    state.webhooks.configure(receiver.url, **options)


def test_an_app_write_arrives_signed_v1_and_v3_with_the_app_as_source(
    state: HubSpotState, client: HubSpot, receiver: Receiver, clock: Clock
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    _configure(state, receiver)
    _update(client, {deal: {"dealstage": "closedwon"}})
    assert state.webhooks.flush()
    [request] = receiver.requests
    assert request.path == "/webhooks/hubspot"
    assert request.headers["content-type"] == "application/json"
    raw = request.body
    # Independent computation of the documented algorithms, then the SDK's own check.
    v1 = hashlib.sha256(CLIENT_SECRET.encode() + raw).hexdigest()
    assert request.headers["x-hubspot-signature"] == v1
    assert request.headers["x-hubspot-signature-version"] == "v1"
    timestamp = request.headers["x-hubspot-request-timestamp"]
    assert timestamp == str(int(clock().timestamp() * 1000))
    v3 = base64.b64encode(
        hmac.new(
            CLIENT_SECRET.encode(),
            b"POST" + receiver.url.encode() + raw + timestamp.encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    assert request.headers["x-hubspot-signature-v3"] == v3
    assert Signature.is_valid(v1, CLIENT_SECRET, raw.decode(), signature_version="v1")
    assert Signature.is_valid(
        v3, CLIENT_SECRET, raw.decode(), http_uri=receiver.url, signature_version="v3",
        timestamp=timestamp,
    )  # fmt: skip
    assert not Signature.is_valid(v1, "another-secret", raw.decode(), signature_version="v1")
    [event] = request.events  # dealstage only: not hs_lastmodifieddate, not calculated ones
    assert event == {
        "eventId": event["eventId"],
        "subscriptionId": event["subscriptionId"],
        "portalId": state.portal_id,
        "appId": state.app_id,
        "occurredAt": int(clock().timestamp() * 1000),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal),
        "changeSource": "INTEGRATION",
        "sourceId": str(state.app_id),
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
    }


def test_ui_changes_carry_crm_ui_and_activities_use_generic_events(
    state: HubSpotState, server: ServerHandle, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    contact = state.create_object("contacts", {"firstname": "Ann", "jobtitle": "Manager"})
    _configure(state, receiver)
    ui = f"{server.url}/_sandbox/ui"
    changed = requests.patch(
        f"{ui}/contacts/{contact}", json={"properties": {"jobtitle": "VP Sales"}}, timeout=5
    )
    assert changed.json()["changed"] == ["jobtitle"]
    meeting = requests.post(
        f"{ui}/deals/{deal}/meetings",
        json={"properties": {"hs_meeting_start_time": "2026-03-02T10:00:00Z",
                             "hs_meeting_outcome": "SCHEDULED"},
              "contactIds": [contact]},
        timeout=5,
    ).json()["id"]  # fmt: skip
    assert requests.delete(f"{ui}/deals/{deal}", timeout=5).status_code == 204
    assert state.webhooks.flush()
    events = receiver.events()
    assert {e["changeSource"] for e in events} == {"CRM_UI"}
    assert {e["sourceId"] for e in events} == {f"userId:{state.ui_user_id}"}
    kinds = [(e["subscriptionType"], e.get("objectTypeId"), e["objectId"]) for e in events]
    assert ("contact.propertyChange", None, int(contact)) in kinds
    assert ("object.creation", "0-47", int(meeting)) in kinds
    assert ("deal.deletion", None, int(deal)) in kinds
    title = next(e for e in events if e["subscriptionType"] == "contact.propertyChange")
    assert (title["propertyName"], title["propertyValue"]) == ("jobtitle", "VP Sales")
    links = [e for e in events if e["subscriptionType"] == "object.associationChange"]
    assert {
        (e["fromObjectTypeId"], e["toObjectTypeId"], e["associationTypeId"]) for e in links
    } >= {
        ("0-47", "0-3", 212),
        ("0-47", "0-1", 200),
    }
    legacy_links = [e for e in events if e["subscriptionType"] == "deal.associationChange"]
    assert all(e["associationType"] != "DEAL_TO_MEETING" for e in legacy_links), (
        "legacy association events exist between CRM objects only"
    )
    deletion = next(e for e in events if e["subscriptionType"] == "deal.deletion")
    assert deletion["changeFlag"] == "DELETED"


def test_association_changes_from_the_app_reach_both_sides(
    state: HubSpotState, client: HubSpot, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    contact = state.create_object("contacts", {"firstname": "Ann"})
    _configure(state, receiver)
    client.crm.associations.v4.basic_api.create(
        "deal", deal, "contact", contact,
        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
    )  # fmt: skip
    assert state.webhooks.flush()
    got = {
        (e["subscriptionType"], e["associationType"], e["fromObjectId"], e["toObjectId"])
        for e in receiver.events()
    }
    assert got == {
        ("deal.associationChange", "DEAL_TO_CONTACT", int(deal), int(contact)),
        ("contact.associationChange", "CONTACT_TO_DEAL", int(contact), int(deal)),
    }
    assert {e["changeSource"] for e in receiver.events()} == {"INTEGRATION"}
    assert all(e["associationRemoved"] is False for e in receiver.events())


def test_batches_hold_at_most_100_events_with_unique_ids(
    state: HubSpotState, client: HubSpot, receiver: Receiver
) -> None:
    deals = [state.create_object("deals", {"dealname": f"D{i}"}) for i in range(75)]
    _configure(state, receiver, batch_delay=5.0)  # only flush() sends: one deterministic burst
    _update(client, {d: {"amount": "10", "dealname": f"renamed {d}"} for d in deals})
    assert receiver.requests == [], "still inside the batching delay"
    assert state.webhooks.flush()
    assert [len(r.events) for r in receiver.requests] == [100, 50]
    ids = [e["eventId"] for e in receiver.events()]
    assert len(set(ids)) == 150


def test_a_failed_delivery_is_retried_with_the_next_attempt_number(
    state: HubSpotState, client: HubSpot, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    receiver.planned.extend([500, 503])
    _configure(state, receiver, retry_backoff=0.01)
    _update(client, {deal: {"amount": "1"}})
    assert state.webhooks.flush()
    attempts = [r.events[0]["attemptNumber"] for r in receiver.requests]
    assert attempts == [0, 1, 2]
    assert len({r.events[0]["eventId"] for r in receiver.requests}) == 1, "the same event again"
    assert [d.status for d in state.webhooks.deliveries] == [500, 503, 204]
    assert len(state.webhooks.delivered_events()) == 1


def test_an_unreachable_target_is_retried_then_dropped(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    state.webhooks.configure("http://127.0.0.1:9/closed", max_attempts=2, retry_backoff=0.01,
                             timeout=1)  # fmt: skip
    _update(client, {deal: {"amount": "1"}})
    assert state.webhooks.flush()
    assert [d.error is not None for d in state.webhooks.deliveries] == [True, True]
    assert len(state.webhooks.dropped) == 1


def test_explicit_subscriptions_choose_what_is_sent(
    state: HubSpotState, client: HubSpot, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    _configure(
        state,
        receiver,
        subscriptions=[
            {"id": 77, "subscriptionType": "deal.propertyChange", "propertyName": "dealstage"},
            {"id": 78, "subscriptionType": "deal.propertyChange", "propertyName": "hs_is_closed"},
        ],
    )
    _update(client, {deal: {"amount": "5"}})
    _update(client, {deal: {"dealstage": "closedlost"}})
    assert state.webhooks.flush()
    got = {(e["subscriptionId"], e["propertyName"], e["changeSource"]) for e in receiver.events()}
    assert got == {(77, "dealstage", "INTEGRATION"), (78, "hs_is_closed", "CALCULATED")}


def test_disabled_webhooks_send_nothing(
    state: HubSpotState, client: HubSpot, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme"})
    _configure(state, receiver)
    state.webhooks.disable()
    _update(client, {deal: {"amount": "5"}})
    assert state.webhooks.flush()
    assert receiver.requests == []


def test_configured_over_http_and_unchanged_values_send_nothing(
    state: HubSpotState, server: ServerHandle, client: HubSpot, receiver: Receiver
) -> None:
    deal = state.create_object("deals", {"dealname": "Acme", "amount": 5})
    answer = requests.post(
        f"{server.url}/_sandbox/webhooks", json={"targetUrl": receiver.url}, timeout=5
    )
    assert answer.status_code == 200
    assert {"subscriptionType": "object.creation", "objectTypeId": "0-27"}.items() <= next(
        s for s in answer.json()["subscriptions"] if s.get("objectTypeId") == "0-27"
        and s["subscriptionType"] == "object.creation"
    ).items()  # fmt: skip
    _update(client, {deal: {"amount": "5"}})  # same value: no change, no event
    flushed = requests.post(f"{server.url}/_sandbox/webhooks/flush", timeout=15).json()
    assert flushed["drained"] is True
    assert receiver.requests == []
    requests.post(f"{server.url}/_sandbox/ui/deals", json={"properties": {"dealname": "New"}},
                  timeout=5)  # fmt: skip
    state.webhooks.flush()
    [creation] = receiver.events()
    assert (creation["subscriptionType"], creation["changeFlag"]) == ("deal.creation", "CREATED")
