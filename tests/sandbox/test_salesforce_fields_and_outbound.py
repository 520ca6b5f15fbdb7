"""Custom fields through the Tooling API, invisible until field-level security grants them; and
Outbound Messages posted to a local receiver, retried until acknowledged."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from werkzeug.serving import make_server

from sandbox.salesforce import SalesforceState, ServerHandle
from tests.sandbox.conftest import Clock, _Quiet, https_session

NS = {
    "o": "http://soap.sforce.com/2005/09/outbound",
    "sf": "urn:sobject.enterprise.soap.sforce.com",
}
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>{}</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


@pytest.fixture
def opportunity(sf_state: SalesforceState) -> str:
    return sf_state.insert(
        "Opportunity", {"Name": "Acme", "StageName": "Prospecting", "CloseDate": "2027-01-31"}
    )


def test_custom_field_invisible_until_granted(
    sf: Salesforce, sf_state: SalesforceState, opportunity: str
) -> None:
    created = sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={
            "FullName": "Opportunity.DealRadar_Score__c",
            "Metadata": {"label": "Deal Radar score", "type": "Number", "precision": 3, "scale": 0},
        },
    )
    assert created["success"] is True and created["id"].startswith("00N")
    listed = sf.toolingexecute(
        "query/?q=SELECT+Id,DeveloperName+FROM+CustomField+WHERE+TableEnumOrId='Opportunity'"
    )
    assert [r["DeveloperName"] for r in listed["records"]] == ["DealRadar_Score"]
    # The field exists, but no one may read or write it yet.
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query("SELECT DealRadar_Score__c FROM Opportunity")
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.update(opportunity, {"DealRadar_Score__c": 42})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    described = sf.Opportunity.describe()
    assert "DealRadar_Score__c" not in {f["name"] for f in described["fields"]}
    # Read only first: visible in SOQL, still not writable.
    grant = {
        "ParentId": sf_state.profile_permission_set_id,
        "SobjectType": "Opportunity",
        "Field": "Opportunity.DealRadar_Score__c",
        "PermissionsRead": True,
        "PermissionsEdit": False,
    }
    perm = sf.FieldPermissions.create(grant)["id"]
    assert (
        sf.query("SELECT DealRadar_Score__c FROM Opportunity")["records"][0]["DealRadar_Score__c"]
        is None
    )
    with pytest.raises(SalesforceMalformedRequest):
        sf.Opportunity.update(opportunity, {"DealRadar_Score__c": 42})
    sf.FieldPermissions.update(perm, {"PermissionsEdit": True})
    sf.Opportunity.update(opportunity, {"DealRadar_Score__c": 42})
    assert sf.Opportunity.get(opportunity)["DealRadar_Score__c"] == 42
    described = sf.Opportunity.describe()
    field = next(f for f in described["fields"] if f["name"] == "DealRadar_Score__c")
    assert (field["custom"], field["type"]) == (True, "double")


def test_a_grant_on_an_unassigned_permission_set_does_not_count(
    sf: Salesforce, sf_state: SalesforceState
) -> None:
    sf_state.create_custom_field("Opportunity.Alerts__c", {"label": "Alerts", "type": "Text"})
    other = sf.PermissionSet.create({"Name": "Deal_Radar", "Label": "Deal Radar"})["id"]
    sf.FieldPermissions.create(
        {
            "ParentId": other,
            "SobjectType": "Opportunity",
            "Field": "Opportunity.Alerts__c",
            "PermissionsRead": True,
            "PermissionsEdit": True,
        }
    )
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Alerts__c FROM Opportunity")
    sf.PermissionSetAssignment.create(
        {"PermissionSetId": other, "AssigneeId": sf_state.api_user_id}
    )
    assert sf.query("SELECT Alerts__c FROM Opportunity")["totalSize"] == 0


def test_duplicate_custom_field_is_refused(sf: Salesforce) -> None:
    data = {"FullName": "Opportunity.Alerts__c", "Metadata": {"label": "Alerts", "type": "Text"}}
    sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
    assert refused.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"


def test_a_picklist_value_is_named_by_value_name_as_the_tooling_api_takes_it(
    sf: Salesforce, sf_state: SalesforceState
) -> None:
    """The Tooling API's CustomValue has ValueName; `fullName` is the Metadata API's."""

    def picklist(name: str, key: str) -> dict:
        value = {key: "poor", "label": "Poor", "default": False}
        return {"FullName": f"Opportunity.{name}", "Metadata": {
            "label": name, "type": "Picklist",
            "valueSet": {"restricted": True, "valueSetDefinition": {"value": [value]}},
        }}  # fmt: skip

    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.toolingexecute("sobjects/CustomField", method="POST", data=picklist("A__c", "fullName"))
    assert refused.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    sf.toolingexecute("sobjects/CustomField", method="POST", data=picklist("B__c", "valueName"))
    assert sf_state.picklist("Opportunity", "B__c") == ["poor"]


class SoapReceiver:
    """A local outbound-message listener answering the planned (status, Ack) pairs, then Ack."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.planned: deque[tuple[int, str]] = deque()
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}/outbound/salesforce"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def app(self, environ: dict, start_response) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.bodies.append(body)
            status, ack = self.planned.popleft() if self.planned else (200, "true")
        answer = ACK.format(ack).encode()
        start_response(
            f"{status} X", [("Content-Type", "text/xml"), ("Content-Length", str(len(answer)))]
        )
        return [answer]


@pytest.fixture
def soap() -> Iterator[SoapReceiver]:
    receiver = SoapReceiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_outbound_message_retried_until_acknowledged(
    sf: Salesforce,
    sf_state: SalesforceState,
    sf_server: ServerHandle,
    soap: SoapReceiver,
    opportunity: str,
) -> None:
    sf_server.outbound.retry_base = 0.01
    sf_server.outbound.configure(soap.url, ("Id", "Name", "StageName", "Amount"))
    soap.planned.extend([(500, "true"), (200, "false")])
    sf.Opportunity.update(opportunity, {"StageName": "Needs Analysis"})
    assert sf_server.outbound.flush(timeout=10)
    assert len(soap.bodies) == 3
    assert [a["acked"] for a in sf_server.outbound.sent] == [False, False, True]
    envelopes = [ElementTree.fromstring(b) for b in soap.bodies]
    ids = [e.find(".//o:Notification/o:Id", NS).text for e in envelopes]
    assert len(set(ids)) == 1  # the same notification each time: receivers de-duplicate on it
    message = envelopes[-1].find(".//o:notifications", NS)
    assert message.find("o:OrganizationId", NS).text == sf_state.org_id[:15]
    assert message.find("o:ActionId", NS).text.startswith("04k")
    assert message.find("o:EnterpriseUrl", NS).text.startswith(f"{sf_server.url}/services/Soap/c/")
    assert message.find("o:PartnerUrl", NS).text.startswith(f"{sf_server.url}/services/Soap/u/")
    sobject = message.find("o:Notification/o:sObject", NS)
    assert sobject.find("sf:Id", NS).text == opportunity
    assert sobject.find("sf:StageName", NS).text == "Needs Analysis"
    assert (
        sobject.find("sf:Amount", NS).get("{http://www.w3.org/2001/XMLSchema-instance}nil")
        == "true"
    )


def test_outbound_messages_carry_the_latest_values_in_batches(
    sf: Salesforce,
    sf_state: SalesforceState,
    sf_server: ServerHandle,
    soap: SoapReceiver,
    clock: Clock,
) -> None:
    sf_server.outbound.retry_base = 0.01
    soap.planned.append((503, "true"))  # hold the first delivery back while changes pile up
    sf_server.outbound.configure(soap.url, ("Id", "StageName"))
    opps = [
        sf_state.insert(
            "Opportunity", {"Name": f"D{i}", "StageName": "Prospecting", "CloseDate": "2027-01-31"}
        )
        for i in range(130)
    ]
    sf.Opportunity.update(opps[0], {"StageName": "Closed Lost"})
    assert sf_server.outbound.flush(timeout=10)
    counts = [len(ElementTree.fromstring(b).findall(".//o:Notification", NS)) for b in soap.bodies]
    assert max(counts) <= 100 and sum(counts[1:]) == 131
    stages = {
        n.find("o:sObject/sf:Id", NS).text: n.find("o:sObject/sf:StageName", NS).text
        for b in soap.bodies[1:]
        for n in ElementTree.fromstring(b).findall(".//o:Notification", NS)
    }
    assert stages[opps[0]] == "Closed Lost"  # the last message about it: its latest value


def test_outbound_messages_tell_whose_change_it_was(
    sf: Salesforce,
    sf_state: SalesforceState,
    sf_server: ServerHandle,
    soap: SoapReceiver,
    opportunity: str,
) -> None:
    rep = sf_state.insert("User", {"LastName": "Rep", "Username": "rep@x.io", "Email": "rep@x.io"})
    sf_server.outbound.configure(soap.url)  # the default fields, LastModifiedById among them
    sf.Opportunity.update(opportunity, {"NextStep": "written by the integration"})
    assert sf_server.outbound.flush(timeout=10)
    answer = https_session(sf_server).patch(
        f"{sf_server.url}/_sandbox/ui/Opportunity/{opportunity}", json={"StageName": "Closed Lost"}
    )
    assert answer.status_code == 204
    assert sf_server.outbound.flush(timeout=10)
    editors = [
        ElementTree.fromstring(b).find(".//sf:LastModifiedById", NS).text for b in soap.bodies
    ]
    assert editors == [sf_state.api_user_id, rep]


def test_undelivered_notifications_are_dropped_after_24_hours(
    sf: Salesforce, sf_server: ServerHandle, soap: SoapReceiver, opportunity: str, clock: Clock
) -> None:
    sf_server.outbound.retry_base = 0.01
    sf_server.outbound.retry_cap = 0.05
    soap.planned.extend([(503, "true")] * 1000)  # the listener is down
    sf_server.outbound.configure(soap.url)
    sf.Opportunity.update(opportunity, {"NextStep": "x"})
    assert not sf_server.outbound.flush(timeout=0.3)  # retried, still queued
    attempts = len(soap.bodies)
    assert attempts >= 2
    clock.advance(hours=24)
    assert sf_server.outbound.flush(timeout=5)  # dropped, never acknowledged
    assert not any(a["acked"] for a in sf_server.outbound.sent)


def test_field_permissions_name_a_real_field_once(
    sf: Salesforce, sf_state: SalesforceState
) -> None:
    sf_state.create_custom_field("Opportunity.Alerts__c", {"label": "Alerts", "type": "Text"})
    grant = {
        "ParentId": sf_state.profile_permission_set_id,
        "SobjectType": "Opportunity",
        "Field": "Opportunity.Alerts__c",
        "PermissionsRead": True,
    }
    first = sf.FieldPermissions.create(grant)["id"]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.FieldPermissions.create(grant)  # provisioning run twice must look before it writes
    assert refused.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert first in refused.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.FieldPermissions.create({**grant, "Field": "Opportunity.Nope__c"})
    assert refused.value.content[0]["fields"] == ["Field"]
