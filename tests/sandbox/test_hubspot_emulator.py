"""The HubSpot emulator over real HTTP, read and written with the real hubspot-api-client: every
answer must load into the SDK's models, and limits and errors must be HubSpot's documented ones.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicFetchAssociationsBatchRequest,
    BatchResponsePublicAssociationMultiWithLabel,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
    LabelsBetweenObjectPair,
    PublicFetchAssociationsBatchRequest,
    StandardError,
)
from hubspot.crm.associations.v4.schema import (
    CollectionResponseAssociationSpecWithLabelNoPaging,
    PublicAssociationDefinitionCreateRequest,
)
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    CollectionResponseSimplePublicObjectWithAssociationsForwardPaging,
    CollectionResponseWithTotalSimplePublicObjectForwardPaging,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectWithAssociations,
    ValueWithTimestamp,
)
from hubspot.crm.objects.notes import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputForCreate,
)
from hubspot.crm.objects.tasks import (
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObject,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.owners import ApiException as OwnersError
from hubspot.crm.owners import CollectionResponsePublicOwnerForwardPaging, PublicOwner
from hubspot.crm.pipelines import CollectionResponsePipelineNoPaging, Pipeline
from hubspot.crm.properties import (
    ModelProperty,
    OptionInput,
    PropertyCreate,
    PropertyGroup,
    PropertyGroupCreate,
    PropertyUpdate,
)

from sandbox.hubspot import HubSpotError, HubSpotState, ServerHandle
from sandbox.hubspot_state import Token
from tests.sandbox.conftest import API_ERRORS, Clock


def _deal(state: HubSpotState, name: str = "Acme renewal", **props: object) -> str:
    return state.create_object("deals", {"dealname": name, **props})


def _error(exc: Exception) -> dict:
    return json.loads(exc.body)


def _ids(inputs: list[str]) -> list[SimplePublicObjectId]:
    return [SimplePublicObjectId(id=i) for i in inputs]


# ---- reading deals ---------------------------------------------------------------------------


def test_list_pages_through_every_deal_once(state: HubSpotState, client: HubSpot) -> None:
    created = [_deal(state, f"Deal {i}", amount=i * 100) for i in range(25)]
    seen, after, pages = [], None, 0
    while True:
        page = client.crm.deals.basic_api.get_page(limit=10, after=after, properties=["amount"])
        assert isinstance(page, CollectionResponseSimplePublicObjectWithAssociationsForwardPaging)
        pages += 1
        seen += [(r.id, r.properties["amount"]) for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 3
    assert [i for i, _ in seen] == created
    assert dict(seen)[created[3]] == "300"
    first = client.crm.deals.basic_api.get_page(limit=1, properties=["amount"]).results[0]
    assert "dealname" not in first.properties, "only requested properties (and the id/dates)"
    assert set(first.properties) == {"amount", "createdate", "hs_lastmodifieddate", "hs_object_id"}


def test_list_refuses_pages_above_100_and_above_50_with_history(
    state: HubSpotState, client: HubSpot
) -> None:
    _deal(state)
    assert len(client.crm.deals.basic_api.get_page(limit=100).results) == 1
    for kwargs in ({"limit": 101}, {"limit": 51, "properties_with_history": ["dealstage"]}):
        with pytest.raises(API_ERRORS) as caught:
            client.crm.deals.basic_api.get_page(**kwargs)
        assert caught.value.status == 400
        assert _error(caught.value)["category"] == "VALIDATION_ERROR"


def test_get_returns_stage_history_newest_first_with_its_source(
    state: HubSpotState, client: HubSpot, clock: Clock
) -> None:
    t0 = clock() - timedelta(days=40)
    t1 = clock() - timedelta(days=12)
    deal = state.create_object(
        "deals",
        {"dealname": "Globex"},
        created_at=t0,
        history={"dealstage": [("appointmentscheduled", t0), ("qualifiedtobuy", t1)]},
    )
    got = client.crm.deals.basic_api.get_by_id(
        deal, properties=["dealstage", "hs_date_entered_qualifiedtobuy", "hs_is_closed"],
        properties_with_history=["dealstage"],
    )  # fmt: skip
    assert isinstance(got, SimplePublicObjectWithAssociations)
    history = got.properties_with_history["dealstage"]
    assert all(isinstance(v, ValueWithTimestamp) for v in history)
    assert [v.value for v in history] == ["qualifiedtobuy", "appointmentscheduled"]
    assert history[0].timestamp == t1
    assert history[0].source_type == "CRM_UI"
    assert history[0].source_id == f"userId:{state.ui_user_id}"
    assert got.properties["dealstage"] == "qualifiedtobuy"
    assert got.properties["hs_date_entered_qualifiedtobuy"] == t1.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert got.properties["hs_is_closed"] == "false"
    assert got.created_at == t0


def test_get_unknown_deal_is_404(client: HubSpot) -> None:
    with pytest.raises(API_ERRORS) as caught:
        client.crm.deals.basic_api.get_by_id("987654")
    assert caught.value.status == 404
    assert _error(caught.value)["category"] == "OBJECT_NOT_FOUND"


def test_object_type_ids_and_comma_separated_properties_work_in_paths(
    state: HubSpotState, server: ServerHandle, token: Token
) -> None:
    deal = _deal(state, amount=5)
    answer = requests.get(
        f"{server.url}/crm/v3/objects/0-3/{deal}",
        params={"properties": "dealname,amount"},
        headers={"Authorization": f"Bearer {token.access_token}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["properties"]["amount"] == "5"
    assert answer.json()["properties"]["dealname"] == "Acme renewal"


# ---- batch read ------------------------------------------------------------------------------


def test_batch_read_with_history_reports_missing_ids_as_multi_status(
    state: HubSpotState, client: HubSpot
) -> None:
    deals = [_deal(state, f"D{i}") for i in range(3)]
    state.update_object("deals", deals[0], {"dealstage": "closedwon"})
    answer = client.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=_ids([*deals, "424242"]),
            properties=["dealname"],
            properties_with_history=["dealstage"],
        )
    )
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert answer.num_errors == 1
    assert answer.errors[0].context == {"ids": ["424242"]}
    assert sorted(r.id for r in answer.results) == sorted(deals)
    by_id = {r.id: r for r in answer.results}
    assert [v.value for v in by_id[deals[0]].properties_with_history["dealstage"]] == [
        "closedwon",
        "appointmentscheduled",
    ]


def test_batch_read_limits_are_100_inputs_and_50_with_history(
    state: HubSpotState, client: HubSpot
) -> None:
    ids = [_deal(state, f"D{i}") for i in range(101)]
    ok = client.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=_ids(ids[:100]), properties=["dealname"])
    )
    assert isinstance(ok, BatchResponseSimplePublicObject)
    assert len(ok.results) == 100
    assert (
        len(
            client.crm.deals.batch_api.read(
                BatchReadInputSimplePublicObjectId(
                    inputs=_ids(ids[:50]), properties=[], properties_with_history=["dealstage"]
                )
            ).results
        )
        == 50
    )
    too_many = [
        BatchReadInputSimplePublicObjectId(inputs=_ids(ids), properties=["dealname"]),
        BatchReadInputSimplePublicObjectId(
            inputs=_ids(ids[:51]), properties=[], properties_with_history=["dealstage"]
        ),
    ]
    for body in too_many:
        with pytest.raises(API_ERRORS) as caught:
            client.crm.deals.batch_api.read(body)
        assert caught.value.status == 400
    assert "property histories is 50" in _error(caught.value)["message"]


def test_batch_read_by_a_unique_id_property(state: HubSpotState, client: HubSpot) -> None:
    state.define_property("deals", "external_ref", "External ref", has_unique_value=True)
    deal = _deal(state, external_ref="ext-1")
    answer = client.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=_ids(["ext-1"]), properties=["dealname"], id_property="external_ref"
        )
    )
    assert [r.id for r in answer.results] == [deal]


# ---- batch update (write-back) -------------------------------------------------------------


def _update(client: HubSpot, changes: dict[str, dict[str, str]]) -> BatchResponseSimplePublicObject:
    inputs = [SimplePublicObjectBatchInput(id=i, properties=p) for i, p in changes.items()]
    return client.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))


def test_batch_update_records_history_bumps_modified_date_and_recalculates(
    state: HubSpotState, client: HubSpot, clock: Clock
) -> None:
    deal = _deal(state, amount=10)
    clock.advance(minutes=10)  # less than the token's 30 minutes
    answer = _update(client, {deal: {"amount": "2500", "dealstage": "closedwon"}})
    assert isinstance(answer, BatchResponseSimplePublicObject)
    assert answer.results[0].properties["amount"] == "2500"
    assert answer.results[0].updated_at == clock()
    got = client.crm.deals.basic_api.get_by_id(
        deal, properties=["hs_is_closed_won", "hs_lastmodifieddate"],
        properties_with_history=["amount"],
    )  # fmt: skip
    assert got.properties["hs_is_closed_won"] == "true"
    assert got.properties["hs_lastmodifieddate"] == clock().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    newest = got.properties_with_history["amount"][0]
    assert (newest.value, newest.source_type, newest.source_id) == (
        "2500",
        "INTEGRATION",
        str(state.app_id),
    )


def test_batch_update_with_an_unknown_property_changes_nothing(
    state: HubSpotState, client: HubSpot
) -> None:
    good, bad = _deal(state, amount=1), _deal(state, amount=2)
    with pytest.raises(API_ERRORS) as caught:
        _update(client, {good: {"amount": "100"}, bad: {"dealradar_nope": "x"}})
    assert caught.value.status == 400
    body = _error(caught.value)
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    problems = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert problems[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert problems[0]["name"] == "dealradar_nope"
    assert state.get_object("deals", good)["amount"] == "1", "all or nothing"


def test_batch_update_refuses_101_inputs_duplicates_and_read_only_values(
    state: HubSpotState, client: HubSpot
) -> None:
    ids = [_deal(state, f"D{i}") for i in range(101)]
    with pytest.raises(API_ERRORS) as caught:
        _update(client, {i: {"amount": "1"} for i in ids})
    assert caught.value.status == 400
    duplicate = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=ids[0], properties={"amount": "1"})] * 2
    )
    with pytest.raises(API_ERRORS) as caught:
        client.crm.deals.batch_api.update(duplicate)
    assert "Duplicate IDs" in _error(caught.value)["message"]
    with pytest.raises(API_ERRORS) as caught:
        _update(client, {ids[0]: {"hs_lastmodifieddate": "0"}})
    assert "READ_ONLY_VALUE" in _error(caught.value)["message"]


# ---- properties ------------------------------------------------------------------------------


def test_custom_properties_in_a_group_with_a_multi_select(
    state: HubSpotState, client: HubSpot
) -> None:
    group = client.crm.properties.groups_api.create(
        "deals", PropertyGroupCreate(name="dealradar", label="Deal Radar", display_order=1)
    )
    assert isinstance(group, PropertyGroup)
    created = client.crm.properties.core_api.create(
        "deals",
        PropertyCreate(
            name="dealradar_alerts",
            label="Deal Radar alerts",
            type="enumeration",
            field_type="checkbox",
            group_name="dealradar",
            options=[
                OptionInput(
                    label="No activity", value="no_activity", hidden=False, display_order=0
                ),
                OptionInput(label="Stuck", value="stuck_in_stage", hidden=False, display_order=1),
            ],
        ),
    )
    assert isinstance(created, ModelProperty)
    assert [o.value for o in created.options] == ["no_activity", "stuck_in_stage"]
    with pytest.raises(API_ERRORS) as caught:
        client.crm.properties.core_api.create(
            "deals",
            PropertyCreate(name="dealradar_alerts", label="Again", type="string",
                           field_type="text", group_name="dealradar"),
        )  # fmt: skip
    assert caught.value.status == 409
    assert _error(caught.value)["category"] == "CONFLICT"
    with pytest.raises(API_ERRORS) as caught:
        client.crm.properties.groups_api.create(
            "deals", PropertyGroupCreate(name="dealradar", label="Again")
        )
    assert caught.value.status == 409
    deal = _deal(state)
    _update(client, {deal: {"dealradar_alerts": "no_activity;stuck_in_stage"}})
    assert state.get_object("deals", deal)["dealradar_alerts"] == "no_activity;stuck_in_stage"
    with pytest.raises(API_ERRORS) as caught:
        _update(client, {deal: {"dealradar_alerts": "no_activity;made_up"}})
    assert "INVALID_OPTION" in _error(caught.value)["message"]
    names = [p.name for p in client.crm.properties.core_api.get_all("deals").results]
    assert "dealradar_alerts" in names and "hs_is_closed_won" in names
    fetched = client.crm.properties.core_api.get_by_name("deals", "dealradar_alerts")
    assert fetched.group_name == "dealradar"
    assert fetched.modification_metadata.archivable is True


def test_number_and_datetime_properties_validate_and_normalise(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = _deal(state)
    _update(client, {deal: {"closedate": "1767225600000", "amount": "12.5"}})
    values = state.get_object("deals", deal)
    assert values["closedate"] == "2026-01-01T00:00:00.000Z"
    assert values["amount"] == "12.5"
    with pytest.raises(API_ERRORS) as caught:
        _update(client, {deal: {"amount": "twelve"}})
    assert caught.value.status == 400


# ---- search ----------------------------------------------------------------------------------


def _search(client: HubSpot, **body: object):
    return client.crm.deals.search_api.do_search(PublicObjectSearchRequest(**body))


def test_search_by_modified_date_sorted_ascending_in_pages(
    state: HubSpotState, client: HubSpot, clock: Clock
) -> None:
    start = clock()
    deals = []
    for minutes in (30, 10, 20, 40):  # modified out of id order
        deal = _deal(state, f"m{minutes}")
        state.update_object(
            "deals", deal, {"amount": minutes}, at=start + timedelta(minutes=minutes)
        )
        deals.append((minutes, deal))
    watermark = int((start + timedelta(minutes=15)).timestamp() * 1000)
    body = {
        "filter_groups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                          "value": str(watermark)}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["dealname", "hs_lastmodifieddate"],
        "limit": 2,
    }  # fmt: skip
    first = _search(client, **body)
    assert isinstance(first, CollectionResponseWithTotalSimplePublicObjectForwardPaging)
    assert first.total == 3
    assert [r.properties["dealname"] for r in first.results] == ["m20", "m30"]
    second = _search(client, **body, after=first.paging.next.after)
    assert [r.properties["dealname"] for r in second.results] == ["m40"]
    assert second.paging is None


def test_search_operators_and_or_groups(state: HubSpotState, client: HubSpot) -> None:
    a = _deal(state, "Alpha deal", amount=100, dealstage="qualifiedtobuy")
    b = _deal(state, "Beta deal", amount=900, dealstage="closedwon")
    c = _deal(state, "Gamma", dealstage="closedlost")

    def ids(*filters: dict, groups: list | None = None) -> list[str]:
        filter_groups = groups if groups is not None else [{"filters": list(filters)}]
        return [r.id for r in _search(client, filter_groups=filter_groups, limit=10).results]

    assert ids({"propertyName": "amount", "operator": "GT", "value": "500"}) == [b]
    assert ids({"propertyName": "amount", "operator": "HAS_PROPERTY"}) == [a, b]
    assert ids({"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"}) == [c]
    assert ids({"propertyName": "dealstage", "operator": "IN",
                "values": ["closedwon", "closedlost"]}) == [b, c]  # fmt: skip
    assert ids({"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"}) == [a]
    assert ids({"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "deal"}) == [
        a,
        b,
    ]
    assert ids(groups=[
        {"filters": [{"propertyName": "amount", "operator": "LT", "value": "200"}]},
        {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedlost"}]},
    ]) == [a, c]  # fmt: skip
    descending = _search(client, sorts=[{"propertyName": "amount", "direction": "DESCENDING"}])
    assert [r.id for r in descending.results] == [b, a, c], "no value sorts last"


def test_search_refuses_limit_above_200_and_too_many_filters(client: HubSpot) -> None:
    with pytest.raises(API_ERRORS) as caught:
        _search(client, limit=201)
    assert caught.value.status == 400
    seven = [{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 7
    with pytest.raises(API_ERRORS) as caught:
        _search(client, filter_groups=[{"filters": seven}])
    assert caught.value.status == 400


def test_search_cannot_page_past_10000_results(state: HubSpotState, client: HubSpot) -> None:
    for i in range(10_050):
        state.create_object("deals", {"dealname": f"bulk {i}"})
    page = _search(client, limit=200, after="9800", properties=["dealname"])
    assert page.total == 10_050
    assert len(page.results) == 200
    assert page.paging.next.after == "10000"
    with pytest.raises(API_ERRORS) as caught:
        _search(client, limit=200, after=page.paging.next.after)
    assert caught.value.status == 400
    assert _error(caught.value)["category"] == "VALIDATION_ERROR"


def test_search_lags_behind_writes_when_configured(
    state: HubSpotState, client: HubSpot, clock: Clock
) -> None:
    state.search_lag_seconds = 5
    deal = _deal(state, "Fresh")
    assert _search(client).total == 0, "not indexed yet"
    assert client.crm.deals.basic_api.get_by_id(deal).id == deal, "reads by id see it at once"
    clock.advance(seconds=6)
    assert [r.id for r in _search(client).results] == [deal]


# ---- activities: tasks and notes written by the app, calls/emails/meetings read -------------


def test_task_created_on_a_deal_in_one_call_and_patched(
    state: HubSpotState, client: HubSpot, clock: Clock
) -> None:
    deal = _deal(state)
    owner = state.add_owner("rep@example.com", "Rita", "Rep")
    task = client.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": str(int(clock().timestamp() * 1000)),
                "hs_task_subject": "Re-engage Acme",
                "hs_task_body": "No activity for 12 days",
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hubspot_owner_id": owner,
            },
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=deal),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED",
                                           association_type_id=216)],
                )
            ],
        )
    )  # fmt: skip
    assert isinstance(task, SimplePublicObject)
    assert task.properties["hs_task_subject"] == "Re-engage Acme"
    links = state.associations("deals", deal, "tasks")
    assert [(t.type_id, t.category) for t in links[task.id]] == [(215, "HUBSPOT_DEFINED")]
    patched = client.crm.objects.tasks.basic_api.update(
        task.id, SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"})
    )
    assert patched.properties["hs_task_status"] == "COMPLETED"
    with pytest.raises(API_ERRORS) as caught:
        client.crm.objects.tasks.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"hs_task_subject": "no date"},
                                             associations=[])
        )  # fmt: skip
    assert caught.value.status == 400


def test_task_with_an_unknown_association_type_is_refused(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = _deal(state)
    with pytest.raises(API_ERRORS) as caught:
        client.crm.objects.tasks.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "2026-01-01T00:00:00Z", "hs_task_subject": "x"},
                associations=[PublicAssociationsForObject(
                    to=PublicObjectId(id=deal),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED",
                                           association_type_id=214)],  # note→deal, not task
                )],
            )
        )  # fmt: skip
    assert caught.value.status == 400
    assert state.records("tasks") == []


def test_notes_batch_created_with_deal_associations(state: HubSpotState, client: HubSpot) -> None:
    deal = _deal(state)
    spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=214)
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={"hs_timestamp": "2026-03-01T09:00:00Z", "hs_note_body": f"note {i}"},
            associations=[PublicAssociationsForObject(to=PublicObjectId(id=deal), types=[spec])],
        )
        for i in range(3)
    ]
    answer = client.crm.objects.notes.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert answer.status == "COMPLETE"
    assert sorted(r.properties["hs_note_body"] for r in answer.results) == [
        "note 0", "note 1", "note 2",
    ]  # fmt: skip
    assert answer.results[0].properties["hs_timestamp"] == "2026-03-01T09:00:00.000Z"
    assert len(state.associations("deals", deal, "notes")) == 3


def test_calls_emails_and_meetings_read_and_searched_by_deal(
    state: HubSpotState, client: HubSpot
) -> None:
    deal, other = _deal(state), _deal(state, "Other")
    contact = state.create_object(
        "contacts", {"firstname": "Ann", "lastname": "Lee", "email": "ann@acme.example",
                     "jobtitle": "VP Sales"},
    )  # fmt: skip
    call = state.log_activity(
        "calls", {"hs_timestamp": "2026-02-01T10:00:00Z", "hs_call_direction": "OUTBOUND",
                  "hs_call_status": "COMPLETED", "hs_call_duration": "60000"},
        deal_ids=[deal], contact_ids=[contact],
    )  # fmt: skip
    email = state.log_activity(
        "emails", {"hs_timestamp": "2026-02-02T10:00:00Z", "hs_email_direction": "EMAIL",
                   "hs_email_status": "SENT", "hs_email_to_email": "ann@acme.example",
                   "hs_email_cc_email": "cfo@acme.example"},
        deal_ids=[deal], contact_ids=[contact],
    )  # fmt: skip
    state.log_activity("emails", {"hs_timestamp": "2026-02-03T10:00:00Z"}, deal_ids=[other])
    meeting = state.log_activity(
        "meetings", {"hs_meeting_start_time": "2026-02-05T14:00:00Z",
                     "hs_meeting_end_time": "2026-02-05T15:00:00Z",
                     "hs_meeting_outcome": "SCHEDULED"},
        deal_ids=[deal],
    )  # fmt: skip
    got_call = client.crm.objects.calls.basic_api.get_by_id(
        call, properties=["hs_call_direction", "hs_call_duration"]
    )
    assert got_call.properties["hs_call_direction"] == "OUTBOUND"
    got_meeting = client.crm.objects.meetings.basic_api.get_by_id(
        meeting, properties=["hs_timestamp"]
    )
    assert got_meeting.properties["hs_timestamp"] == "2026-02-05T14:00:00.000Z", "defaults to start"
    found = client.crm.objects.emails.search_api.do_search(
        {"filterGroups": [{"filters": [{"propertyName": "associations.deal", "operator": "EQ",
                                        "value": deal}]}],
         "properties": ["hs_email_to_email", "hs_email_cc_email"]}
    )  # fmt: skip
    assert [r.id for r in found.results] == [email]
    assert found.results[0].properties["hs_email_cc_email"] == "cfo@acme.example"
    person = client.crm.contacts.basic_api.get_by_id(contact, properties=["jobtitle", "email"])
    assert person.properties["jobtitle"] == "VP Sales"


# ---- associations v4 and labels --------------------------------------------------------------


def _assoc_read(client: HubSpot, ids: list, src: str = "deal", dst: str = "contact"):
    inputs = [
        PublicFetchAssociationsBatchRequest(id=i) if isinstance(i, str)
        else PublicFetchAssociationsBatchRequest(id=i[0], after=i[1])
        for i in ids
    ]  # fmt: skip
    return client.crm.associations.v4.batch_api.get_page(
        src, dst, BatchInputPublicFetchAssociationsBatchRequest(inputs=inputs)
    )


def _no_associations(error: StandardError) -> tuple:
    """What an error of a multi-status associations read says, once the SDK has loaded it."""
    assert (error.status, error.links, error.errors) == ("error", {}, [])
    return error.category, error.sub_category, error.message, error.context


def test_association_batch_read_shows_labels_and_pages_per_record(
    state: HubSpotState, client: HubSpot
) -> None:
    champion = state.define_association_label("deals", "contacts", "Champion")
    big, small, lonely = _deal(state, "Big"), _deal(state, "Small"), _deal(state, "Lonely")
    crowd = [state.create_object("contacts", {"firstname": f"C{i}"}) for i in range(600)]
    for contact in crowd:
        state.associate("deals", big, "contacts", contact)
    state.associate("deals", small, "contacts", crowd[0], labels=["Champion"])
    answer = _assoc_read(client, [big, small, lonely])
    assert isinstance(answer, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    by_from = {r._from.id: r for r in answer.results}
    assert set(by_from) == {big, small}, "records without associations are left out"
    assert [_no_associations(e) for e in answer.errors] == [
        ("OBJECT_NOT_FOUND", "crm.associations.NO_ASSOCIATIONS_FOUND",
         f"No contact is associated with deal {lonely}.",
         {"fromObjectId": [lonely], "fromObjectType": ["deal"], "toObjectType": ["contact"]})
    ]  # fmt: skip
    assert answer.num_errors == 1
    assert len(by_from[big].to) == 500
    rest = _assoc_read(client, [(big, by_from[big].paging.next.after)])
    assert len(rest.results[0].to) == 100
    assert {t.to_object_id for t in by_from[big].to + rest.results[0].to} == set(crowd)
    types = by_from[small].to[0].association_types
    assert {(t.category, t.type_id, t.label) for t in types} == {
        ("HUBSPOT_DEFINED", 3, None),
        ("USER_DEFINED", champion, "Champion"),
    }
    back = _assoc_read(client, [crowd[0]], "contacts", "deals")
    assert isinstance(back, BatchResponsePublicAssociationMultiWithLabel), "a 200: no errors"
    assert {t.to_object_id for t in back.results[0].to} == {big, small}


def test_association_batch_read_limits_and_unknown_ids(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = _deal(state)
    contact = state.create_object("contacts", {"firstname": "A"})
    state.associate("deals", deal, "contacts", contact)
    partial = _assoc_read(client, [deal, "31337", "31338"], "deals", "contacts")
    assert isinstance(partial, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    assert [r._from.id for r in partial.results] == [deal]
    # HubSpot tells an unknown record from one without associations no more than this.
    assert [_no_associations(e) for e in partial.errors] == [
        ("OBJECT_NOT_FOUND", "crm.associations.NO_ASSOCIATIONS_FOUND",
         f"No contact is associated with deal {gone}.",
         {"fromObjectId": [gone], "fromObjectType": ["deal"], "toObjectType": ["contact"]})
        for gone in ("31337", "31338")
    ]  # fmt: skip
    assert partial.num_errors == 2
    with pytest.raises(API_ERRORS) as caught:
        _assoc_read(client, [str(i) for i in range(1001)])
    assert caught.value.status == 400


def test_labels_are_listed_created_and_put_replaces_them(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = _deal(state)
    contact = state.create_object("contacts", {"firstname": "Dee", "jobtitle": "CFO"})
    schema = client.crm.associations.v4.schema.definitions_api
    created = schema.create(
        "deal", "contact",
        PublicAssociationDefinitionCreateRequest(label="Decision maker", name="decision_maker",
                                                 inverse_label="Decides on"),
    )  # fmt: skip
    assert isinstance(created, CollectionResponseAssociationSpecWithLabelNoPaging)
    decision = next(r.type_id for r in created.results if r.label == "Decision maker")
    listed = schema.get_all("deal", "contact").results
    assert {(r.category, r.type_id, r.label) for r in listed} >= {
        ("HUBSPOT_DEFINED", 3, None),
        ("USER_DEFINED", decision, "Decision maker"),
    }
    assert {r.label for r in schema.get_all("contact", "deal").results} >= {"Decides on"}
    put = client.crm.associations.v4.basic_api.create(
        "deal", deal, "contact", contact,
        [{"associationCategory": "USER_DEFINED", "associationTypeId": decision}],
    )  # fmt: skip
    assert isinstance(put, LabelsBetweenObjectPair)
    assert put.labels == ["Decision maker"]
    client.crm.associations.v4.basic_api.create(
        "deal", deal, "contact", contact,
        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
    )  # fmt: skip
    left = state.associations("deals", deal, "contacts")[contact]
    assert [t.type_id for t in left] == [3], "a PUT replaces the labels"
    listed_page = client.crm.associations.v4.basic_api.get_page("deal", deal, "contact")
    assert [r.to_object_id for r in listed_page.results] == [contact]
    client.crm.associations.v4.basic_api.archive("deal", deal, "contact", contact)
    assert state.associations("deals", deal, "contacts") == {}


# ---- pipelines and owners --------------------------------------------------------------------


def test_pipelines_with_stage_metadata(state: HubSpotState, client: HubSpot) -> None:
    state.add_pipeline(
        "enterprise", "Enterprise",
        [("discovery", "Discovery", 0.1, False), ("won", "Won", 1.0, True),
         ("lost", "Lost", 0.0, True)],
    )  # fmt: skip
    all_pipelines = client.crm.pipelines.pipelines_api.get_all("deals")
    assert isinstance(all_pipelines, CollectionResponsePipelineNoPaging)
    assert [p.id for p in all_pipelines.results] == ["default", "enterprise"]
    one = client.crm.pipelines.pipelines_api.get_by_id("deals", "enterprise")
    assert isinstance(one, Pipeline)
    assert [(s.id, s.metadata) for s in one.stages] == [
        ("discovery", {"isClosed": "false", "probability": "0.1"}),
        ("won", {"isClosed": "true", "probability": "1.0"}),
        ("lost", {"isClosed": "true", "probability": "0.0"}),
    ]
    deal = _deal(state, pipeline="enterprise", dealstage="lost")
    values = state.get_object("deals", deal)
    assert (values["hs_is_closed"], values["hs_is_closed_won"]) == ("true", "false")
    with pytest.raises(HubSpotError):
        _deal(state, pipeline="enterprise", dealstage="closedwon")  # a stage of another pipeline


def test_owners_page(state: HubSpotState, client: HubSpot) -> None:
    for i in range(5):
        state.add_owner(f"rep{i}@example.com", f"Rep{i}", "Smith")
    first = client.crm.owners.owners_api.get_page(limit=2)
    assert isinstance(first, CollectionResponsePublicOwnerForwardPaging)
    emails = [o.email for o in first.results]
    after = first.paging.next.after
    while after:
        page = client.crm.owners.owners_api.get_page(limit=2, after=after)
        emails += [o.email for o in page.results]
        after = page.paging.next.after if page.paging else None
    assert emails == [f"rep{i}@example.com" for i in range(5)]
    assert (
        client.crm.owners.owners_api.get_page(email="rep3@example.com").results[0].first_name
        == "Rep3"
    )


def _all_owners(client: HubSpot, *, archived: bool) -> list[PublicOwner]:
    owners, after = [], None
    while True:
        page = client.crm.owners.owners_api.get_page(limit=2, after=after, archived=archived)
        owners += page.results
        after = page.paging.next.after if page.paging else None
        if not after:
            return owners


def test_owners_listing_gives_active_owners_by_default_and_archived_ones_only_on_request(
    state: HubSpotState, server: ServerHandle, client: HubSpot
) -> None:
    ids = [state.add_owner(f"rep{i}@example.com", f"Rep{i}", "Smith") for i in range(5)]
    state.archive_owner(ids[1])  # the Python API
    for gone in (ids[3], ids[4]):  # what `make run` users and e2e tests call
        answer = requests.post(f"{server.url}/_sandbox/owners/{gone}/archive", timeout=5)
        assert answer.status_code == 204

    default = client.crm.owners.owners_api.get_page()
    assert [(o.id, o.archived) for o in default.results] == [(ids[0], False), (ids[2], False)]
    active = _all_owners(client, archived=False)
    assert [(o.id, o.archived) for o in active] == [(ids[0], False), (ids[2], False)]
    archived = _all_owners(client, archived=True)  # two pages of two, then one
    assert [(o.id, o.archived, o.email) for o in archived] == [
        (i, True, f"rep{n}@example.com") for n, i in ((1, ids[1]), (3, ids[3]), (4, ids[4]))
    ]

    owners_api = client.crm.owners.owners_api
    assert owners_api.get_by_id(int(ids[1]), archived=True).archived is True
    with pytest.raises(OwnersError) as missing:
        owners_api.get_by_id(int(ids[1]))  # archived: not among the active owners
    assert missing.value.status == 404
    with pytest.raises(OwnersError):
        owners_api.get_by_id(int(ids[0]), archived=True)

    restored = requests.post(f"{server.url}/_sandbox/owners/{ids[1]}/restore", timeout=5)
    assert restored.status_code == 204
    assert [o.id for o in _all_owners(client, archived=False)] == [ids[0], ids[1], ids[2]]
    unknown = requests.post(f"{server.url}/_sandbox/owners/424242/archive", timeout=5)
    assert unknown.status_code == 404


def test_a_deal_keeps_and_can_take_an_archived_owner(state: HubSpotState, client: HubSpot) -> None:
    """HubSpot documents no refusal of an archived owner id, so the emulator has none."""
    left = state.add_owner("left@example.com", "Lee", "Left")
    deal = _deal(state, hubspot_owner_id=left)
    state.archive_owner(left)
    later = _deal(state, "Later", hubspot_owner_id=left)
    for deal_id in (deal, later):
        read = client.crm.deals.basic_api.get_by_id(deal_id, properties=["hubspot_owner_id"])
        assert read.properties["hubspot_owner_id"] == left


# ---- deletion and the world-building API -----------------------------------------------------


def test_deleting_a_deal_archives_it_and_drops_its_associations(
    state: HubSpotState, client: HubSpot
) -> None:
    deal = _deal(state)
    contact = state.create_object("contacts", {"firstname": "A"})
    state.associate("deals", deal, "contacts", contact)
    client.crm.deals.basic_api.archive(deal)
    with pytest.raises(API_ERRORS):
        client.crm.deals.basic_api.get_by_id(deal)
    archived = client.crm.deals.basic_api.get_page(archived=True).results
    assert [(d.id, d.archived) for d in archived] == [(deal, True)]
    assert state.associations("contacts", contact, "deals") == {}


def test_world_building_validates_like_the_api(state: HubSpotState) -> None:
    with pytest.raises(HubSpotError) as caught:
        state.create_object("deals", {"dealname": "x", "not_a_property": "1"})
    assert caught.value.status == 400
    assert state.define_association_label("deals", "contacts", "Champion") == (
        state.define_association_label("deals", "contacts", "Champion")
    ), "defining a label twice returns the same typeId"
    with pytest.raises(HubSpotError):
        state.associate("deals", "1", "contacts", "2")  # neither exists


def test_a_current_value_beside_its_history_is_not_back_dated(
    state: HubSpotState, clock: Clock
) -> None:
    t0, t1 = clock() - timedelta(days=30), clock() - timedelta(days=3)
    same = state.create_object(
        "deals",
        {"dealname": "Same", "dealstage": "qualifiedtobuy"},
        created_at=t0,
        history={"dealstage": [("appointmentscheduled", t0), ("qualifiedtobuy", t1)]},
    )
    with state.lock:
        versions = state.record("deals", same).history["dealstage"]
        assert [(v.value, v.timestamp) for v in versions] == [
            ("appointmentscheduled", t0),
            ("qualifiedtobuy", t1),
        ]
    values = state.get_object("deals", same)
    assert values["hs_v2_date_entered_current_stage"] == t1.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert values["hs_lastmodifieddate"] == values["hs_v2_date_entered_current_stage"]
    moved_on = state.create_object(
        "deals",
        {"dealname": "Moved on", "dealstage": "contractsent"},
        created_at=t0,
        history={"dealstage": [("appointmentscheduled", t0), ("qualifiedtobuy", t1)]},
    )
    with state.lock:
        latest = state.record("deals", moved_on).history["dealstage"][-1]
    assert (latest.value, latest.timestamp) == ("contractsent", t1)


def test_property_options_can_be_added_by_patch(state: HubSpotState, client: HubSpot) -> None:
    state.define_property(
        "deals", "dealradar_grade", "Grade", "enumeration", "select",
        options=[{"label": "Good", "value": "good"}],
    )  # fmt: skip
    deal = _deal(state)
    with pytest.raises(API_ERRORS):
        _update(client, {deal: {"dealradar_grade": "poor"}})
    patched = client.crm.properties.core_api.update(
        "deals",
        "dealradar_grade",
        PropertyUpdate(
            options=[
                OptionInput(label="Good", value="good", hidden=False, display_order=0),
                OptionInput(label="Poor", value="poor", hidden=False, display_order=1),
            ]
        ),
    )
    assert isinstance(patched, ModelProperty)
    assert [o.value for o in patched.options] == ["good", "poor"]
    _update(client, {deal: {"dealradar_grade": "poor"}})
    assert state.get_object("deals", deal)["dealradar_grade"] == "poor"
