"""Write-back through sObject Collections over real HTTPS: 200 records a call, values encoded
for Salesforce, and a partial failure (a deleted opportunity, a value a rule refuses) that
leaves the other records written and says which were not."""

from __future__ import annotations

import json

import responses

from adapters.salesforce.adapter import SalesforceAdapter
from adapters.salesforce.client import API_VERSION, SalesforceClient
from adapters.salesforce.fields import FIELDS
from adapters.salesforce.provision import provision
from adapters.salesforce.writeback import write_back
from sandbox.salesforce import SalesforceState

VALUES = {
    "alerts": ["no_activity", "stuck_in_stage"], "alert_count": 2,
    "summary": "No activity for 14 days · In stage for 20 days", "health_score": 37,
    "health_grade": "poor", "health_trend": "", "days_since_interaction": 14,
    "evaluated_at": "2026-11-25T08:00:00+00:00",
}  # fmt: skip


def _opportunities(org: SalesforceState, n: int) -> list[str]:
    return [
        org.insert("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting",
                                   "CloseDate": "2030-01-01"})
        for i in range(n)
    ]  # fmt: skip


def test_two_hundred_a_call_values_as_salesforce_takes_them(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter
) -> None:
    provision(client)
    opps = _opportunities(org, 450)
    org.reset_counts()
    result = adapter.write_back({o: VALUES for o in opps})
    assert result.failed == {} and result.skipped_fields == {}
    assert org.counts() == {"PATCH composite/sobjects": 3}
    record = org.records["Opportunity"][opps[-1]]
    assert record["DealRadar_Alerts__c"] == "no_activity;stuck_in_stage"
    assert record["DealRadar_Health_Trend__c"] is None, "an empty trend clears the field"
    assert record["DealRadar_Evaluated_At__c"].isoformat() == "2026-11-25T08:00:00+00:00"
    assert record["DealRadar_Days_Since_Interaction__c"] == 14


def test_a_partial_failure_writes_the_others_and_names_what_was_not_written(
    org: SalesforceState, client: SalesforceClient, adapter: SalesforceAdapter
) -> None:
    provision(client)
    kept, gone, refused = _opportunities(org, 3)
    org.delete("Opportunity", gone)
    values = {kept: VALUES, gone: VALUES, refused: {**VALUES, "health_grade": "excellent"}}
    org.reset_counts()
    result = adapter.write_back(values)
    assert set(result.failed) == {gone, refused}
    assert result.failed[gone].startswith(("ENTITY_IS_DELETED", "NOT_FOUND"))
    assert result.failed[refused].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    assert org.records["Opportunity"][kept]["DealRadar_Health_Grade__c"] == "poor"
    assert org.records["Opportunity"][refused]["DealRadar_Health_Grade__c"] is None
    assert org.counts() == {"PATCH composite/sobjects": 1}


class _Token:
    def current(self) -> str:
        return "00Dxx!token"

    def renew(self, rejected: str) -> str:
        return "00Dxx!token"

    def detail(self, name: str) -> str | None:
        return None


@responses.activate
def test_a_whole_update_refused_for_a_field_the_user_cannot_see_goes_again_without_it() -> None:
    """Whether an org refuses a Collections update record by record or as a whole when one of
    our fields is not visible to Deal Radar's user, the others are written and the field is
    named as skipped, never the whole batch failed."""
    base = f"https://org.example.my.salesforce.com/services/data/v{API_VERSION}"
    hidden = "DealRadar_Health_Grade__c"
    responses.patch(f"{base}/composite/sobjects", status=400, json=[{
        "errorCode": "INVALID_FIELD",
        "message": f"No such column '{hidden}' on sobject of type Opportunity",
    }])  # fmt: skip
    visible = [{"name": f.api_name, "updateable": True} for f in FIELDS if f.api_name != hidden]
    responses.get(f"{base}/sobjects/Opportunity/describe", json={"fields": visible})
    responses.patch(
        f"{base}/composite/sobjects", json=[{"id": "006A", "success": True, "errors": []}]
    )
    client = SalesforceClient("00Dxx", _Token(), instance_url="https://org.example.my.salesforce.com",
                              sleep=lambda s: None)  # fmt: skip
    result = write_back(client, {"006A": {"health_grade": "poor", "health_score": 37}})
    assert result.failed == {} and result.skipped_fields == {"006A": ["health_grade"]}
    sent = json.loads(responses.calls[-1].request.body)["records"]
    assert [sorted(k for k in r if k.startswith("DealRadar")) for r in sent] == [
        ["DealRadar_Health_Score__c"]
    ]
