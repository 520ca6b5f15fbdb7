"""Provisioning an org over real HTTPS: the Tooling API's custom fields, the permission set and
its FieldPermissions, a second run that writes nothing, and what an admin is told when a field
is not visible to Deal Radar (no crash: the other fields are written)."""

from __future__ import annotations

import logging

import pytest

from adapters.salesforce import fields
from adapters.salesforce.adapter import SalesforceAdapter
from adapters.salesforce.client import SalesforceClient
from adapters.salesforce.fields import BY_FIELD
from adapters.salesforce.provision import provision
from sandbox.salesforce import SalesforceState

WRITES = ("POST", "PATCH", "DELETE")


def _field_permissions(org: SalesforceState) -> dict[str, dict]:
    with org.lock:
        return {r["Field"]: dict(r) for r in org.live("FieldPermissions")}


def test_fields_permission_set_and_grants_then_a_second_run_writes_nothing(
    org: SalesforceState, client: SalesforceClient
) -> None:
    done = provision(client)
    assert sorted(done.created) == sorted(fields.API_NAMES)
    assert sorted(done.granted) == sorted(fields.API_NAMES)
    assert done.invisible == [] and done.admin_steps == []
    alerts = org.custom_fields["Opportunity"]["DealRadar_Alerts__c"]
    assert (alerts.type, alerts.restricted) == ("multipicklist", True)
    assert org.picklist("Opportunity", "DealRadar_Alerts__c")[:2] == [
        "no_activity", "no_meeting_scheduled",
    ]  # fmt: skip
    grants = _field_permissions(org)
    assert all(grants[f"Opportunity.{n}"]["PermissionsEdit"] for n in fields.API_NAMES)
    with org.lock:
        (permission_set,) = [
            p for p in org.live("PermissionSet") if p["Name"] == fields.PERMISSION_SET
        ]
        assert any(
            a["PermissionSetId"] == permission_set["Id"] and a["AssigneeId"] == org.api_user_id
            for a in org.live("PermissionSetAssignment")
        ), "assigned to the user the tokens act as"

    org.reset_counts()
    again = provision(client)
    assert again.created == [] and again.granted == [] and again.admin_steps == []
    assert sorted(again.unchanged) == sorted(fields.API_NAMES)
    assert not [r for r in org.counts() if r.startswith(WRITES)], org.counts()


def test_a_field_an_admin_narrowed_is_reported_with_the_exact_steps(
    org: SalesforceState, client: SalesforceClient
) -> None:
    provision(client)
    with org.lock:
        row = next(
            r for r in org.live("FieldPermissions")
            if r["Field"] == "Opportunity.DealRadar_Summary__c"
        )  # fmt: skip
    org.update("FieldPermissions", row["Id"], {"PermissionsRead": False, "PermissionsEdit": False})
    done = provision(client)
    assert done.invisible == ["DealRadar_Summary__c"]
    (step,) = done.admin_steps
    assert "Permission Sets > Deal Radar > Object Settings > Opportunities > Edit" in step
    assert "'Deal Radar summary' (DealRadar_Summary__c)" in step
    assert "an admin must: (1) Setup > Permission Sets" in done.summary()


def test_alert_values_missing_from_an_older_picklist_are_an_admin_step(
    org: SalesforceState, client: SalesforceClient
) -> None:
    definition = fields.BY_FIELD["alerts"].definition()
    values = definition["Metadata"]["valueSet"]["valueSetDefinition"]["value"]
    definition["Metadata"]["valueSet"]["valueSetDefinition"]["value"] = values[:3]
    org.create_custom_field(definition["FullName"], definition["Metadata"])
    done = provision(client)
    assert "DealRadar_Alerts__c" in done.unchanged
    (step,) = done.admin_steps
    assert "Deal Radar alerts > Values > New: add key_role_silent, powermap_gap" in step
    assert "deal_too_old (each exactly so)" in step


def test_a_field_not_yet_visible_is_left_out_of_the_write_back(
    org: SalesforceState,
    client: SalesforceClient,
    adapter: SalesforceAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provision(client)
    hidden = {"Opportunity.DealRadar_Summary__c", "Opportunity.DealRadar_Health_Trend__c"}
    with org.lock:
        for row in list(org.live("FieldPermissions")):
            if row["Field"] in hidden:
                row["IsDeleted"] = True  # not granted (yet)
    opps = [
        org.insert("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting",
                                   "CloseDate": "2030-01-01"})
        for i in range(3)
    ]  # fmt: skip
    values = {
        o: {"alerts": ["no_activity"], "alert_count": 1, "summary": "No activity",
            "health_trend": "steady", "health_score": 40}
        for o in opps
    }  # fmt: skip
    org.reset_counts()
    with caplog.at_level(logging.WARNING, "adapters.salesforce.writeback"):
        result = adapter.write_back(values)
    assert result.failed == {}
    assert result.skipped_fields == {o: ["health_trend", "summary"] for o in opps}
    for o in opps:
        record = org.records["Opportunity"][o]
        assert (record["DealRadar_Alerts__c"], record["DealRadar_Health_Score__c"]) == (
            "no_activity", 40,
        )  # fmt: skip
        assert record["DealRadar_Summary__c"] is None
    assert "Object Settings > Opportunities > Edit, tick Read Access and Edit Access" in (
        caplog.text
    )
    assert org.counts() == {"PATCH composite/sobjects": 2, "GET describe": 1}, (
        "one update, one describe, the update again without the hidden fields"
    )


def test_the_step_to_create_a_field_by_hand_names_it_as_setup_asks() -> None:
    """Setup's Field Name box refuses a name ending in __c: Salesforce adds it."""
    step = BY_FIELD["summary"].admin_step()
    assert "Field Name DealRadar_Summary (API name DealRadar_Summary__c)" in step
