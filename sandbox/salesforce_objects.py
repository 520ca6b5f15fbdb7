"""The emulated org's sObject types: key prefixes, fields (with describe types), parent
relationships and child relationships, after the Object Reference (Opportunity,
OpportunityContactRole, OpportunityHistory, Task, TaskRelation, Event, EventRelation, EmailMessage,
EmailMessageRelation, PermissionSet, FieldPermissions...) and the Tooling API's CustomField.

Only the fields an integration reads or writes are declared; custom fields are added at run
time through the Tooling API (``SalesforceState.create_custom_field``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_ROLES",
    "KEY_PREFIXES",
    "OBJECTS",
    "TOOLING_OBJECTS",
    "FieldDef",
    "ObjectDef",
]

DEFAULT_ROLES = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
)
"""OpportunityContactRole.Role's values in a new org; admins add their own."""


@dataclass(slots=True)
class FieldDef:
    name: str
    type: str
    """Describe's type: id, string, textarea, email, picklist, multipicklist, boolean, date,
    datetime, double, currency, percent, int, reference, base64."""
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: list[str] | None = None
    restricted: bool = False
    custom: bool = False
    length: int = 255
    label: str = ""

    def describe(self, picklist: list[str] | None = None) -> dict:
        """Describe's entry; ``picklist``: the org's live values (the definition's by default)."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length if self.type in _TEXT else 0,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "custom": self.custom,
            "filterable": True,
            "sortable": self.type not in ("textarea", "multipicklist"),
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": False,
                    "label": v,
                    "validFor": None,
                    "value": v,
                }
                for v in (picklist if picklist is not None else self.picklist or [])
            ],
        }


_TEXT = ("string", "textarea", "email", "picklist", "multipicklist", "id", "reference")
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "base64": "xsd:base64Binary",
}


@dataclass(slots=True)
class ObjectDef:
    name: str
    prefix: str
    fields: dict[str, FieldDef]
    children: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Child relationship name -> (child type, the child's reference field)."""
    createable: bool = True
    updateable: bool = True
    required: tuple[str, ...] = ()


def _f(name: str, type_: str, **kw: object) -> FieldDef:
    return FieldDef(name, type_, **kw)  # type: ignore[arg-type]


def _ref(name: str, to: str | tuple[str, ...], rel: str | None, **kw: object) -> FieldDef:
    targets = (to,) if isinstance(to, str) else to
    return FieldDef(name, "reference", reference_to=targets, relationship_name=rel, **kw)  # type: ignore[arg-type]


def _system() -> list[FieldDef]:
    """The audit fields every object has (read-only)."""
    ro = {"createable": False, "updateable": False}
    return [
        _f("Id", "id", nillable=False, **ro),
        _f("IsDeleted", "boolean", nillable=False, **ro),
        _f("CreatedDate", "datetime", **ro),
        _ref("CreatedById", "User", "CreatedBy", **ro),
        _f("LastModifiedDate", "datetime", **ro),
        _ref("LastModifiedById", "User", "LastModifiedBy", **ro),
        _f("SystemModstamp", "datetime", **ro),
    ]


def _object(name: str, prefix: str, fields: list[FieldDef], **kw: object) -> ObjectDef:
    return ObjectDef(name, prefix, {f.name: f for f in _system() + fields}, **kw)  # type: ignore[arg-type]


_RO = {"createable": False, "updateable": False}
_WHAT = ("Opportunity", "Account")
_WHO = ("Contact",)

OBJECTS: dict[str, ObjectDef] = {
    o.name: o
    for o in (
        _object(
            "User",
            "005",
            [
                _f("Username", "string"),
                _f("FirstName", "string"),
                _f("LastName", "string"),
                _f("Name", "string", **_RO),
                _f("Email", "email"),
                _f("IsActive", "boolean"),
                _ref("ManagerId", "User", "Manager"),
                _f("Department", "string"),
            ],
            required=("LastName", "Username", "Email"),
        ),
        _object(
            "Account",
            "001",
            [
                _f("Name", "string", nillable=False),
                _f("Website", "string"),
                _f("Industry", "picklist"),
                _f("BillingCountry", "string"),
                _ref("OwnerId", "User", "Owner"),
            ],
            children={
                "Contacts": ("Contact", "AccountId"),
                "Opportunities": ("Opportunity", "AccountId"),
            },
            required=("Name",),
        ),
        _object(
            "Contact",
            "003",
            [
                _f("FirstName", "string"),
                _f("LastName", "string", nillable=False),
                _f("Name", "string", **_RO),
                _f("Email", "email"),
                _f("Title", "string", length=128),
                _ref("AccountId", "Account", "Account"),
                _ref("OwnerId", "User", "Owner"),
            ],
            children={"OpportunityContactRoles": ("OpportunityContactRole", "ContactId")},
            required=("LastName",),
        ),
        _object(
            "Opportunity",
            "006",
            [
                _f("Name", "string", nillable=False, length=120),
                _f("Amount", "currency"),
                _f("CloseDate", "date", nillable=False),
                _f("StageName", "picklist", nillable=False, restricted=True),
                _f("Probability", "percent"),
                _f("ForecastCategoryName", "picklist"),
                _f("CurrencyIsoCode", "picklist"),
                _f("NextStep", "string"),
                _f("Description", "textarea", length=32000),
                _f("IsClosed", "boolean", **_RO),
                _f("IsWon", "boolean", **_RO),
                _f("LastActivityDate", "date", **_RO),
                _f("LastStageChangeDate", "datetime", **_RO),
                _ref("AccountId", "Account", "Account"),
                _ref("OwnerId", "User", "Owner"),
            ],
            children={
                "OpportunityContactRoles": ("OpportunityContactRole", "OpportunityId"),
                "OpportunityHistories": ("OpportunityHistory", "OpportunityId"),
                "Tasks": ("Task", "WhatId"),
                "Events": ("Event", "WhatId"),
                "Emails": ("EmailMessage", "RelatedToId"),  # Case has EmailMessages (ParentId)
            },
            required=("Name", "StageName", "CloseDate"),
        ),
        _object(
            "OpportunityContactRole",
            "00K",
            [
                _ref("OpportunityId", "Opportunity", "Opportunity", nillable=False),
                _ref("ContactId", "Contact", "Contact", nillable=False),
                _f("Role", "picklist", length=40),
                _f("IsPrimary", "boolean"),
            ],
            required=("OpportunityId", "ContactId"),
        ),
        _object(
            "OpportunityHistory",
            "008",
            [
                _ref("OpportunityId", "Opportunity", "Opportunity", **_RO),
                _f("StageName", "picklist", **_RO),
                _f("Amount", "currency", **_RO),
                _f("CloseDate", "date", **_RO),
                _f("Probability", "percent", **_RO),
                _f("ForecastCategory", "picklist", **_RO),
                _f("ExpectedRevenue", "currency", **_RO),
                _f("PrevAmount", "currency", **_RO),
                _f("PrevCloseDate", "date", **_RO),
            ],
            createable=False,
            updateable=False,
        ),
        _object(
            "Task",
            "00T",
            [
                _ref("WhatId", _WHAT, "What"),
                _ref("WhoId", _WHO, "Who"),
                _ref("AccountId", "Account", "Account", **_RO),
                _f("Subject", "string"),
                _f("Status", "picklist", nillable=False),
                _f("Priority", "picklist", nillable=False),
                _f("ActivityDate", "date"),
                _ref("OwnerId", "User", "Owner"),
                _f("Description", "textarea", length=32000),
                _f("TaskSubtype", "picklist", updateable=False),
                _f("CallType", "picklist"),
                _f("CallDurationInSeconds", "int"),
                _f("CallDisposition", "string"),
                _f("CompletedDateTime", "datetime", **_RO),
                _f("IsClosed", "boolean", **_RO),
            ],
            children={"TaskRelations": ("TaskRelation", "TaskId")},
            required=("Status", "Priority"),
        ),
        _object(
            "Event",
            "00U",
            [
                _ref("WhatId", _WHAT, "What"),
                _ref("WhoId", _WHO, "Who"),
                _ref("AccountId", "Account", "Account", **_RO),
                _f("Subject", "string"),
                _f("StartDateTime", "datetime"),
                _f("EndDateTime", "datetime"),
                _f("ActivityDateTime", "datetime"),
                _f("ActivityDate", "date", **_RO),
                _f("DurationInMinutes", "int"),
                _f("IsAllDayEvent", "boolean"),
                _f("IsChild", "boolean", **_RO),
                _f("EventSubtype", "picklist", updateable=False),
                _ref("OwnerId", "User", "Owner"),
                _f("Description", "textarea", length=32000),
            ],
            children={"EventRelations": ("EventRelation", "EventId")},
        ),
        _object(
            "EventRelation",
            "0RE",
            [
                _ref("EventId", "Event", "Event", nillable=False),
                _ref("RelationId", ("Contact", "User", "Opportunity", "Account"), "Relation"),
                _f("IsInvitee", "boolean"),
                _f("IsParent", "boolean"),
                _f("IsWhat", "boolean"),
                _f("Status", "picklist"),
                _f("Response", "string"),
                _f("RespondedDate", "datetime"),
            ],
            required=("EventId", "RelationId"),
        ),
        # With Shared Activities, a task's contacts (up to 50, WhoId among them) and its one
        # other record; only in orgs with Shared Activities on (Object Reference, TaskRelation).
        _object(
            "TaskRelation",
            "0RT",
            [
                _ref("TaskId", "Task", "Task", nillable=False, updateable=False),
                _ref(
                    "RelationId",
                    ("Contact", "Opportunity", "Account"),
                    "Relation",
                    updateable=False,
                ),
                _f("IsWhat", "boolean", updateable=False),
                _ref("AccountId", "Account", "Account", **_RO),
            ],
            required=("TaskId", "RelationId"),
        ),
        _object(
            "EmailMessage",
            "02s",
            [
                _f("Subject", "string"),
                _f("FromAddress", "email"),
                _f("FromName", "string"),
                _f("ToAddress", "string", length=4000),
                _f("CcAddress", "string", length=4000),
                _f("BccAddress", "string", length=4000),
                _f("TextBody", "textarea", length=32000),
                _f("HtmlBody", "textarea", length=32000),
                _f("MessageDate", "datetime"),
                _f("Incoming", "boolean"),
                _f("Status", "picklist"),
                _ref("RelatedToId", _WHAT, "RelatedTo"),
                _ref("ActivityId", "Task", "Activity"),
            ],
            children={"EmailMessageRelations": ("EmailMessageRelation", "EmailMessageId")},
        ),
        _object(
            "EmailMessageRelation",
            "0CZ",
            [
                _ref("EmailMessageId", "EmailMessage", "EmailMessage", nillable=False),
                _ref("RelationId", ("Contact", "User"), "Relation"),
                _f("RelationAddress", "email"),
                _f("RelationObjectType", "string", **_RO),
                _f("RelationType", "picklist", restricted=True),
            ],
            required=("EmailMessageId", "RelationType"),
        ),
        _object(
            "ContentNote",
            "069",
            [
                _f("Title", "string", nillable=False),
                _f("Content", "base64"),
                _f("TextPreview", "string", **_RO),
                _f("FileType", "string", **_RO),
                _f("FileExtension", "string", **_RO),
                _f("ContentSize", "int", **_RO),
                _f("IsReadOnly", "boolean", **_RO),
                _ref("OwnerId", "User", "Owner", updateable=False),
            ],
            required=("Title",),
        ),
        _object(
            "ContentDocumentLink",
            "06A",
            [
                # A note's ContentDocument has the note's own id (ContentNote is built on it).
                _ref(
                    "ContentDocumentId",
                    "ContentNote",
                    "ContentDocument",
                    nillable=False,
                    updateable=False,
                ),
                _ref(
                    "LinkedEntityId",
                    ("Opportunity", "Account", "Contact", "User"),
                    "LinkedEntity",
                    nillable=False,
                    updateable=False,
                ),
                _f("ShareType", "picklist", restricted=True),
                _f("Visibility", "picklist", restricted=True),
            ],
            required=("ContentDocumentId", "LinkedEntityId"),
        ),
        # The org itself (one read-only row): its time zone and locale, as the Organization
        # object reference lists them.
        _object(
            "Organization",
            "00D",
            [
                _f("Name", "string", **_RO),
                _f("TimeZoneSidKey", "picklist", **_RO),
                _f("DefaultLocaleSidKey", "picklist", **_RO),
                _f("LanguageLocaleKey", "picklist", **_RO),
                _f("IsSandbox", "boolean", **_RO),
            ],
            createable=False,
            updateable=False,
        ),
        _object(
            "PermissionSet",
            "0PS",
            [
                _f("Name", "string"),
                _f("Label", "string"),
                _f("IsOwnedByProfile", "boolean", **_RO),
            ],
            children={
                "Assignments": ("PermissionSetAssignment", "PermissionSetId"),
                "FieldPerms": ("FieldPermissions", "ParentId"),
            },
            required=("Name", "Label"),
        ),
        _object(
            "PermissionSetAssignment",
            "0Pa",
            [
                _ref("PermissionSetId", "PermissionSet", "PermissionSet"),
                _ref("AssigneeId", "User", "Assignee"),
            ],
            required=("PermissionSetId", "AssigneeId"),
        ),
        _object(
            "FieldPermissions",
            "01k",
            [
                _ref("ParentId", "PermissionSet", "Parent"),
                _f("SobjectType", "picklist"),
                _f("Field", "string"),
                _f("PermissionsRead", "boolean"),
                _f("PermissionsEdit", "boolean"),
            ],
            required=("ParentId", "SobjectType", "Field"),
        ),
    )
}

TOOLING_OBJECTS: dict[str, ObjectDef] = {
    "CustomField": _object(
        "CustomField",
        "00N",
        [
            _f("DeveloperName", "string", **_RO),
            _f("TableEnumOrId", "string", **_RO),
            _f("FullName", "string", **_RO),
            _f("NamespacePrefix", "string", **_RO),
        ],
    ),
}

KEY_PREFIXES: dict[str, str] = {
    **{o.prefix: o.name for o in OBJECTS.values()},
    **{o.prefix: o.name for o in TOOLING_OBJECTS.values()},
}
