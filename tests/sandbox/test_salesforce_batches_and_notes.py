"""The Salesforce emulator, through simple-salesforce over real HTTPS: child records count
toward a query batch and a large child result pages on its own (QueryOptions, Understanding
Query Results), ContentNote and ContentDocumentLink (with its filter restriction), no
filtering on long text or blobs, a reference to a deleted record, and field-level security
that a deleted FieldPermissions row no longer grants."""

from __future__ import annotations

import base64

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import SalesforceState


def _opportunity(state: SalesforceState, name: str) -> str:
    return state.insert(
        "Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2030-01-01"}
    )


def _tasks(state: SalesforceState, opp: str, n: int) -> None:
    for i in range(n):
        state.insert("Task", {"WhatId": opp, "Subject": f"t{i}", "Status": "Completed",
                              "Priority": "Normal"})  # fmt: skip


def test_child_records_count_toward_the_batch(sf: Salesforce, sf_state: SalesforceState) -> None:
    opps = [_opportunity(sf_state, f"D{i}") for i in range(5)]
    for opp in opps:
        _tasks(sf_state, opp, 600)  # 601 records a row: three rows fit in 2,000
    page = sf.query("SELECT Id, (SELECT Id FROM Tasks) FROM Opportunity")
    assert page["totalSize"] == 5 and not page["done"]
    assert len(page["records"]) == 3
    assert all(len(r["Tasks"]["records"]) == 600 for r in page["records"])
    rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] and len(rest["records"]) == 2
    ids = [r["Id"] for r in page["records"] + rest["records"]]
    assert sorted(ids) == sorted(opps)


def test_a_child_result_larger_than_a_batch_pages_on_its_own(
    sf: Salesforce, sf_state: SalesforceState
) -> None:
    big, small = _opportunity(sf_state, "Big"), _opportunity(sf_state, "Small")
    _tasks(sf_state, big, 2_300)
    _tasks(sf_state, small, 3)
    page = sf.query(f"SELECT Id, (SELECT Id FROM Tasks) FROM Opportunity WHERE Id = '{big}'")
    tasks = page["records"][0]["Tasks"]
    assert (tasks["totalSize"], tasks["done"], len(tasks["records"])) == (2_300, False, 2_000)
    more = sf.query_more(tasks["nextRecordsUrl"], identifier_is_url=True)
    assert more["done"] and len(more["records"]) == 300
    seen = {t["Id"] for t in tasks["records"] + more["records"]}
    assert len(seen) == 2_300
    assert page["done"], "the parent's own result is complete"


def test_a_content_note_linked_to_an_opportunity(sf: Salesforce, sf_state: SalesforceState) -> None:
    opp = _opportunity(sf_state, "Acme")
    text = "<p>Call the CFO &amp; the CTO</p>" + "<p>more</p>" * 60
    note = sf.ContentNote.create(
        {"Title": "Next steps", "Content": base64.b64encode(text.encode()).decode()}
    )["id"]
    assert note.startswith("069")
    sf.ContentDocumentLink.create({"ContentDocumentId": note, "LinkedEntityId": opp})
    (row,) = sf.query(
        "SELECT Id, Title, TextPreview, FileType, Content FROM ContentNote WHERE Id IN "
        f"(SELECT ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId = '{opp}')"
    )["records"]
    assert row["Title"] == "Next steps" and row["FileType"] == "SNOTE"
    assert row["TextPreview"].startswith("Call the CFO & the CTO more more")
    assert len(row["TextPreview"]) == 255
    assert row["Content"].endswith(f"/sobjects/ContentNote/{note}/Content"), "a blob's URL"
    (link,) = sf.query(
        f"SELECT ShareType, Visibility FROM ContentDocumentLink WHERE ContentDocumentId = '{note}'"
    )["records"]
    assert (link["ShareType"], link["Visibility"]) == ("V", "AllUsers")
    with pytest.raises(SalesforceMalformedRequest, match="Implementation restriction"):
        sf.query("SELECT Id FROM ContentDocumentLink")


def test_no_filter_on_long_text_or_blobs(sf: Salesforce) -> None:
    for soql in (
        "SELECT Id FROM Task WHERE Description = 'x'",
        "SELECT Id FROM ContentNote WHERE Content = 'x'",
    ):
        with pytest.raises(SalesforceMalformedRequest, match="can not be filtered"):
            sf.query(soql)


def test_a_reference_to_a_deleted_record(sf: Salesforce, sf_state: SalesforceState) -> None:
    opp = _opportunity(sf_state, "Gone")
    sf_state.delete("Opportunity", opp)
    with pytest.raises(SalesforceMalformedRequest, match="ENTITY_IS_DELETED"):
        sf.Task.create({"WhatId": opp, "Subject": "x", "Status": "Completed",
                        "Priority": "Normal"})  # fmt: skip


def test_a_deleted_field_permission_grants_nothing(
    sf: Salesforce, sf_state: SalesforceState
) -> None:
    sf_state.create_custom_field("Opportunity.Score__c", {"type": "Number", "label": "Score"})
    grant = sf.FieldPermissions.create({
        "ParentId": sf_state.profile_permission_set_id, "SobjectType": "Opportunity",
        "Field": "Opportunity.Score__c", "PermissionsRead": True, "PermissionsEdit": True,
    })["id"]  # fmt: skip
    sf.query("SELECT Score__c FROM Opportunity")
    sf.FieldPermissions.delete(grant)
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.query("SELECT Score__c FROM Opportunity")
