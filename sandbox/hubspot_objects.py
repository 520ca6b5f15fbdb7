"""Static HubSpot facts the emulator serves: object types, default properties, association types.

Kept apart from the state so the tables can be read (and checked against the docs) on their own.
Sources: object type ids https://developers.hubspot.com/docs/guides/crm/using-object-apis ;
default association type ids https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/guide
(and ``hubspot/crm/association_type.py`` in hubspot-api-client 12); property names from the
object guides (deals, contacts, calls, emails, meetings, tasks, notes) on developers.hubspot.com.
"""

from dataclasses import dataclass

__all__ = [
    "ACTIVITY_TYPES",
    "DEFAULT_ASSOCIATION_TYPES",
    "OBJECT_TYPES",
    "ObjectType",
    "default_properties",
    "resolve_object_type",
]


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type as HubSpot names it in paths, payloads and webhooks."""

    name: str  # plural path name, the emulator's canonical key ("deals")
    singular: str  # v4 association and webhook name ("deal")
    type_id: str  # "0-3"
    # Prefix of legacy webhook subscription types ("deal" -> deal.creation); None when only the
    # generic object.* format covers the type (calls, emails, meetings, notes, tasks).
    legacy_prefix: str | None
    # Properties returned when a read names none (the object guides' "default properties").
    default_read: tuple[str, ...]
    created_property: str  # "createdate" or "hs_createdate" on activities
    modified_property: str  # "hs_lastmodifieddate", or "lastmodifieddate" on contacts
    group: str  # default property group


_ACTIVITY_READ = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType(
            "deals",
            "deal",
            "0-3",
            "deal",
            (
                "dealname",
                "amount",
                "closedate",
                "pipeline",
                "dealstage",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ),
            "createdate",
            "hs_lastmodifieddate",
            "dealinformation",
        ),
        ObjectType(
            "contacts",
            "contact",
            "0-1",
            "contact",
            ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
            "createdate",
            "lastmodifieddate",
            "contactinformation",
        ),
        ObjectType(
            "companies",
            "company",
            "0-2",
            "company",
            ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            "createdate",
            "hs_lastmodifieddate",
            "companyinformation",
        ),
        ObjectType(
            "calls", "call", "0-48", None, _ACTIVITY_READ, "hs_createdate", "hs_lastmodifieddate",
            "callinformation",
        ),
        ObjectType(
            "emails", "email", "0-49", None, _ACTIVITY_READ, "hs_createdate",
            "hs_lastmodifieddate", "emailinformation",
        ),
        ObjectType(
            "meetings", "meeting", "0-47", None, _ACTIVITY_READ, "hs_createdate",
            "hs_lastmodifieddate", "meetinginformation",
        ),
        ObjectType(
            "notes", "note", "0-46", None, _ACTIVITY_READ, "hs_createdate", "hs_lastmodifieddate",
            "noteinformation",
        ),
        ObjectType(
            "tasks", "task", "0-27", None, _ACTIVITY_READ, "hs_createdate", "hs_lastmodifieddate",
            "taskinformation",
        ),
    )
}  # fmt: skip

ACTIVITY_TYPES = frozenset({"calls", "emails", "meetings", "notes", "tasks"})

_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id):
        _ALIASES[_alias] = _t.name
# HubSpot's own spellings in webhooks and older paths.
_ALIASES["meeting_event"] = "meetings"
_ALIASES["meeting_events"] = "meetings"


def resolve_object_type(name: str) -> str | None:
    """The canonical plural name for any spelling HubSpot accepts ("deal", "0-3", "DEALS")."""
    return _ALIASES.get(name.lower())


# (from, to) -> the unlabeled typeId (HUBSPOT_DEFINED, label null); the inverse is the
# entry for (to, from).
DEFAULT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "calls"): 205,
    ("calls", "deals"): 206,
    ("deals", "emails"): 209,
    ("emails", "deals"): 210,
    ("deals", "meetings"): 211,
    ("meetings", "deals"): 212,
    ("deals", "notes"): 213,
    ("notes", "deals"): 214,
    ("deals", "tasks"): 215,
    ("tasks", "deals"): 216,
    ("contacts", "calls"): 193,
    ("calls", "contacts"): 194,
    ("contacts", "emails"): 197,
    ("emails", "contacts"): 198,
    ("contacts", "meetings"): 199,
    ("meetings", "contacts"): 200,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("contacts", "tasks"): 203,
    ("tasks", "contacts"): 204,
    ("companies", "calls"): 181,
    ("calls", "companies"): 182,
    ("companies", "emails"): 185,
    ("emails", "companies"): 186,
    ("companies", "meetings"): 187,
    ("meetings", "companies"): 188,
    ("companies", "notes"): 189,
    ("notes", "companies"): 190,
    ("companies", "tasks"): 191,
    ("tasks", "companies"): 192,
}

# Primary associations are HUBSPOT_DEFINED with the label "Primary".
PRIMARY_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
}


def _prop(
    name: str,
    label: str,
    type_: str = "string",
    field_type: str = "text",
    *,
    options: tuple[tuple[str, str], ...] = (),
    read_only: bool = False,
    calculated: bool = False,
) -> dict:
    """One HubSpot-defined property as a plain dict (see ``Property`` in properties v3)."""
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "options": [
            {"label": lab, "value": val, "hidden": False, "displayOrder": i}
            for i, (val, lab) in enumerate(options)
        ],
        "hubspotDefined": True,
        "calculated": calculated,
        "readOnly": read_only,
    }


_DT = ("datetime", "date")
_NUM = ("number", "number")

_COMMON = (
    _prop("hs_object_id", "Record ID", "number", "number", read_only=True),
    _prop("hubspot_owner_id", "Owner", "enumeration", "select"),
)

_DEAL_PROPS = (
    _prop("dealname", "Deal Name"),
    _prop("amount", "Amount", *_NUM),
    _prop("closedate", "Close Date", *_DT),
    _prop("pipeline", "Pipeline", "enumeration", "select"),
    _prop("dealstage", "Deal Stage", "enumeration", "radio"),
    _prop("deal_currency_code", "Currency", "enumeration", "select"),
    _prop("dealtype", "Deal Type", "enumeration", "radio",
          options=(("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))),
    _prop("description", "Deal Description", "string", "textarea"),
    _prop("createdate", "Create Date", *_DT),
    _prop("hs_lastmodifieddate", "Last Modified Date", *_DT, read_only=True),
    _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox",
          options=(("true", "True"), ("false", "False")), read_only=True, calculated=True),
    _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox",
          options=(("true", "True"), ("false", "False")), read_only=True, calculated=True),
    _prop("hs_deal_stage_probability", "Deal probability", "number", "number",
          read_only=True, calculated=True),
    _prop("hs_v2_date_entered_current_stage", "Date entered current stage", *_DT,
          read_only=True, calculated=True),
    _prop("notes_last_contacted", "Last Contacted", *_DT, read_only=True, calculated=True),
    _prop("notes_last_updated", "Last Activity Date", *_DT, read_only=True, calculated=True),
    _prop("notes_next_activity_date", "Next Activity Date", *_DT, read_only=True,
          calculated=True),
    _prop("num_contacted_notes", "Number of times contacted", *_NUM, read_only=True,
          calculated=True),
    _prop("num_associated_contacts", "Number of Associated Contacts", *_NUM, read_only=True,
          calculated=True),
)  # fmt: skip

_CONTACT_PROPS = (
    _prop("firstname", "First Name"),
    _prop("lastname", "Last Name"),
    _prop("email", "Email"),
    _prop("jobtitle", "Job Title"),
    _prop("phone", "Phone Number", "string", "phonenumber"),
    _prop("company", "Company Name"),
    _prop("hs_language", "Preferred language", "enumeration", "select",
          options=(("en", "English"), ("fr", "French"))),
    _prop("createdate", "Create Date", *_DT),
    _prop("lastmodifieddate", "Last Modified Date", *_DT, read_only=True),
)  # fmt: skip

_COMPANY_PROPS = (
    _prop("name", "Company name"),
    _prop("domain", "Company Domain Name"),
    _prop("createdate", "Create Date", *_DT),
    _prop("hs_lastmodifieddate", "Last Modified Date", *_DT, read_only=True),
)

_ACTIVITY_COMMON = (
    _prop("hs_timestamp", "Activity date", *_DT),
    _prop("hs_createdate", "Created at", *_DT, read_only=True),
    _prop("hs_lastmodifieddate", "Last Modified Date", *_DT, read_only=True),
)

_CALL_PROPS = (
    _prop("hs_call_title", "Call Title"),
    _prop("hs_call_body", "Call notes", "string", "html"),
    _prop("hs_call_direction", "Call direction", "enumeration", "select",
          options=(("INBOUND", "Inbound"), ("OUTBOUND", "Outbound"))),
    _prop("hs_call_status", "Call status", "enumeration", "select",
          options=tuple((v, v.title()) for v in (
              "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED",
              "IN_PROGRESS", "MISSED", "NO_ANSWER", "QUEUED", "RINGING"))),
    _prop("hs_call_duration", "Call duration", *_NUM),
    _prop("hs_call_disposition", "Call outcome"),
    _prop("hs_call_has_voicemail", "Has voicemail", "bool", "booleancheckbox",
          options=(("true", "Yes"), ("false", "No"))),
    _prop("hs_call_from_number", "From number"),
    _prop("hs_call_to_number", "To number"),
    _prop("hs_call_callee_object_id", "Callee object id", *_NUM),
    _prop("hs_call_callee_object_type", "Callee object type"),
    _prop("hs_call_recording_url", "Recording URL"),
)  # fmt: skip

_EMAIL_PROPS = (
    _prop("hs_email_direction", "Email direction", "enumeration", "select",
          options=(("EMAIL", "Logged or sent"), ("INCOMING_EMAIL", "Reply"),
                   ("FORWARDED_EMAIL", "Forwarded"))),
    _prop("hs_email_status", "Email send status", "enumeration", "select",
          options=tuple((v, v.title()) for v in ("BOUNCED", "FAILED", "SCHEDULED", "SENDING",
                                                  "SENT"))),
    _prop("hs_email_subject", "Email subject"),
    _prop("hs_email_text", "Email body", "string", "textarea"),
    _prop("hs_email_html", "Email HTML body", "string", "html"),
    _prop("hs_email_headers", "Email headers", "string", "textarea"),
    _prop("hs_email_from_email", "From email"),
    _prop("hs_email_from_firstname", "From first name"),
    _prop("hs_email_from_lastname", "From last name"),
    _prop("hs_email_to_email", "To email"),
    _prop("hs_email_to_firstname", "To first name"),
    _prop("hs_email_to_lastname", "To last name"),
    _prop("hs_email_cc_email", "CC email"),
    _prop("hs_email_bcc_email", "BCC email"),
)  # fmt: skip

_MEETING_PROPS = (
    _prop("hs_meeting_title", "Meeting name"),
    _prop("hs_meeting_body", "Meeting description", "string", "html"),
    _prop("hs_internal_meeting_notes", "Internal notes", "string", "html"),
    _prop("hs_meeting_external_url", "External URL"),
    _prop("hs_meeting_location", "Location"),
    _prop("hs_meeting_start_time", "Start Time", *_DT),
    _prop("hs_meeting_end_time", "End Time", *_DT),
    _prop("hs_meeting_outcome", "Meeting outcome", "enumeration", "select",
          options=tuple((v, v.title()) for v in ("SCHEDULED", "COMPLETED", "RESCHEDULED",
                                                  "NO_SHOW", "CANCELED"))),
)  # fmt: skip

_TASK_PROPS = (
    _prop("hs_task_subject", "Task Title"),
    _prop("hs_task_body", "Notes", "string", "html"),
    _prop("hs_task_status", "Task Status", "enumeration", "select",
          options=(("NOT_STARTED", "Not Started"), ("IN_PROGRESS", "In Progress"),
                   ("WAITING", "Waiting"), ("COMPLETED", "Completed"),
                   ("DEFERRED", "Deferred"))),
    _prop("hs_task_priority", "Priority", "enumeration", "select",
          options=(("NONE", "None"), ("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"))),
    _prop("hs_task_type", "Task Type", "enumeration", "select",
          options=(("TODO", "To-do"), ("CALL", "Call"), ("EMAIL", "Email"))),
    _prop("hs_task_completion_date", "Completed at", *_DT, read_only=True, calculated=True),
)  # fmt: skip

_NOTE_PROPS = (
    _prop("hs_note_body", "Note body", "string", "html"),
    _prop("hs_attachment_ids", "Attachment IDs", "enumeration", "checkbox"),
)

_BY_TYPE = {
    "deals": _DEAL_PROPS,
    "contacts": _CONTACT_PROPS,
    "companies": _COMPANY_PROPS,
    "calls": _ACTIVITY_COMMON + _CALL_PROPS,
    "emails": _ACTIVITY_COMMON + _EMAIL_PROPS,
    "meetings": _ACTIVITY_COMMON + _MEETING_PROPS,
    "notes": _ACTIVITY_COMMON + _NOTE_PROPS,
    "tasks": _ACTIVITY_COMMON + _TASK_PROPS,
}


def default_properties(object_type: str) -> list[dict]:
    """Fresh copies of the HubSpot-defined properties of one object type."""
    group = OBJECT_TYPES[object_type].group
    out = []
    for prop in _COMMON + _BY_TYPE[object_type]:
        copy = {**prop, "options": [dict(o) for o in prop["options"]], "groupName": group}
        out.append(copy)
    return out
