"""The JSON API's shapes: what `/api/v1` takes and returns, as marshmallow schemas.

These schemas are the contract: flask-smorest validates query strings and bodies with them and
generates the OpenAPI document (`/api/v1/openapi.json`) from them, and schemathesis holds the
app to that document (tests/web/test_openapi.py). A settings document's own shape is the
engine's (engine.settings.SettingsSchema), so the API never describes it twice.

Every response schema is closed (marshmallow's default `unknown = RAISE` becomes
`additionalProperties: false`), so a field the code adds without documenting it fails the
schemathesis run instead of reaching clients unannounced.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from connector.store.models import CRM_ID, DealRow
from engine.settings import ALERT_CODES, SettingsSchema

GRADES = ("good", "fair", "poor")
TRENDS = ("improving", "steady", "declining")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 200
"""A cursor is an encoded deal id (at most 64 characters); anything longer is not one of ours."""
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")
"""PostgreSQL text cannot hold NUL: a filter with one is refused (422), never sent to SQL."""


def _text(max_length: int) -> list[validate.Validator]:
    return [validate.Length(min=1, max=max_length), NO_NUL]


# --- settings patches ---------------------------------------------------------------------------


@functools.cache
def merge_patch_schema(schema: type[Schema]) -> type[Schema]:
    """`schema` as a JSON merge patch (RFC 7396) of its documents: every property may also be
    null, which removes it, in nested objects and maps too. Generated from `schema` so that the
    PATCH body the document describes never drifts from it; it only documents: the view applies
    the patch and validates the result with `schema` itself. Cached: one class, so one
    component, per schema however many fields nest it."""
    declared = {name: _nullable(field) for name, field in schema._declared_fields.items()}
    name = schema.__name__.lstrip("_").removesuffix("Schema") + "PatchSchema"
    return Schema.from_dict(declared, name=name)


def _nullable(field: fields.Field) -> fields.Field:
    if isinstance(field, fields.Nested) and isinstance(field.nested, type):
        patched: fields.Field = fields.Nested(merge_patch_schema(field.nested))
        patched.metadata = dict(field.metadata)
    else:
        patched = copy.deepcopy(field)
        if isinstance(patched, fields.Dict) and patched.value_field is not None:
            patched.value_field = _nullable(patched.value_field)  # null removes the entry
    patched.allow_none = True
    return patched


# --- errors -------------------------------------------------------------------------------------


class ErrorSchema(Schema):
    """Every error the API returns: a name, a sentence saying what to do, and field errors."""

    error = fields.String(required=True, metadata={"description": "What went wrong, in short"})
    detail = fields.String(required=True, metadata={"description": "What to do about it"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "Field errors by dotted path, e.g. `alerts.no_activity.days` (422)"
        },
    )


# --- settings -----------------------------------------------------------------------------------


class SettingsOutSchema(Schema):
    version = fields.Integer(
        required=True, metadata={"description": "The version in force; 0 while none is saved"}
    )
    document = fields.Nested(
        SettingsSchema,
        required=True,
        metadata={"description": "The document as saved (partial: what it omits is default)"},
    )
    effective = fields.Nested(
        SettingsSchema,
        required=True,
        metadata={"description": "The settings in force: the document over the defaults"},
    )
    changed_by = fields.String(required=True, allow_none=True)
    changed_at = fields.DateTime(required=True, allow_none=True)


class SettingsVersionSchema(Schema):
    version = fields.Integer(required=True)
    document = fields.Nested(SettingsSchema, required=True)
    changed_by = fields.String(required=True)
    changed_at = fields.DateTime(required=True)
    comment = fields.String(required=True)


class SettingsHistorySchema(Schema):
    items = fields.List(
        fields.Nested(SettingsVersionSchema),
        required=True,
        metadata={"description": "Every saved version, newest first"},
    )


# --- deals --------------------------------------------------------------------------------------


class DealsQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _each_once(self, data: Any, **kwargs: Any) -> Any:
        """A filter given twice (`owner=a&owner=b`) would be read as its first value alone,
        answering a question the caller did not ask: refused instead."""
        getlist = getattr(data, "getlist", None)
        if getlist is not None:
            repeated = sorted(key for key in data if len(getlist(key)) > 1)
            if repeated:
                raise ValidationError(
                    {key: ["given more than once; give it once"] for key in repeated}
                )
        return data

    alert = fields.String(
        validate=validate.OneOf(ALERT_CODES),
        metadata={"description": "Only deals whose latest evaluation raised this alert"},
    )
    owner = fields.String(validate=_text(CRM_ID.length), metadata={"description": "Owner user id"})
    pipeline = fields.String(validate=_text(DealRow.__table__.c.pipeline.type.length))
    grade = fields.String(
        validate=validate.OneOf(GRADES),
        metadata={"description": "Only deals whose latest health grade is this"},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=MAX_CURSOR),
        metadata={"description": "`next_cursor` of the previous page"},
    )


class HealthSummarySchema(Schema):
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    grade = fields.String(required=True, validate=validate.OneOf(GRADES))
    trend = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(TRENDS),
        metadata={"description": "Against the score a week earlier; null with no such score"},
    )


class HealthSchema(HealthSummarySchema):
    components = fields.Dict(
        required=True, metadata={"description": "The parts of the score and what earned them"}
    )


STAGE_NAME = "The stage as reps read it in the CRM (its id when it has no other name)"


class DealSummarySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    pipeline = fields.String(required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True, metadata={"description": STAGE_NAME})
    owner = fields.String(required=True, allow_none=True)
    amount = fields.Float(required=True, allow_none=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "open, won or lost"})
    health = fields.Nested(
        HealthSummarySchema,
        required=True,
        allow_none=True,
        metadata={"description": "null until the deal is first evaluated"},
    )
    alerts = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Codes of the alerts the latest evaluation raised"},
    )
    evaluated_at = fields.DateTime(required=True, allow_none=True)


class DealPageSchema(Schema):
    items = fields.List(fields.Nested(DealSummarySchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page"},
    )


class DealSchema(Schema):
    """The deal as the CRM last gave it (the snapshot)."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    pipeline = fields.String(required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True, metadata={"description": STAGE_NAME})
    stage_entered_at = fields.DateTime(required=True, allow_none=True)
    amount = fields.Float(required=True, allow_none=True)
    currency = fields.String(required=True)
    close_date = fields.Date(required=True, allow_none=True)
    created_at = fields.DateTime(required=True, allow_none=True)
    owner = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    url = fields.String(required=True, allow_none=True)


class AlertSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "In the tenant's locale"})
    facts = fields.Dict(required=True, metadata={"description": "The numbers behind the alert"})
    since = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When this alert's current episode began"},
    )


class EvaluationSchema(Schema):
    evaluated_at = fields.DateTime(required=True)
    alerts = fields.List(fields.Nested(AlertSchema), required=True)
    health = fields.Nested(HealthSchema, required=True)


class EpisodeSchema(Schema):
    code = fields.String(required=True)
    key = fields.String(
        required=True, metadata={"description": "The code, plus the role for key_role_silent"}
    )
    started_at = fields.DateTime(required=True)
    message = fields.String(required=True)
    facts = fields.Dict(required=True)


class HealthPointSchema(Schema):
    day = fields.Date(required=True, metadata={"description": "The tenant's local day"})
    score = fields.Integer(required=True)
    grade = fields.String(required=True)


class MuteSchema(Schema):
    deal_id = fields.String(required=True)
    code = fields.String(required=True)
    until = fields.Date(required=True, metadata={"description": "The alert is back on this day"})
    created_by = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class DealDetailSchema(Schema):
    deal = fields.Nested(DealSchema, required=True)
    evaluation = fields.Nested(
        EvaluationSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The latest evaluation; null until the first one"},
    )
    open_episodes = fields.List(fields.Nested(EpisodeSchema), required=True)
    history = fields.List(
        fields.Nested(HealthPointSchema),
        required=True,
        metadata={"description": "Daily health over the last 90 days, oldest first"},
    )
    mutes = fields.List(
        fields.Nested(MuteSchema),
        required=True,
        metadata={"description": "The mutes in force (an ended one is not listed)"},
    )


NOT_AN_OBJECT = {"type": "the body must be a JSON object"}
"""A request body schema's answer to a body that is JSON but no object (`[1]`, `"x"`), in the
words the settings routes use, instead of marshmallow's "Invalid input type."."""


class MuteInSchema(Schema):
    error_messages = NOT_AN_OBJECT

    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.OneOf(ALERT_CODES))
    until = fields.Date(
        required=True,
        error_messages={"invalid": "Not a valid date: give the day as YYYY-MM-DD (2027-01-15)."},
        metadata={"description": "A day after today (the tenant's): the alert is back then"},
    )


# --- work ---------------------------------------------------------------------------------------


class RefreshOutSchema(Schema):
    deal_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "queued"})


class SweepOutSchema(Schema):
    day = fields.Date(required=True, metadata={"description": "The tenant's local day swept"})
    status = fields.String(required=True, metadata={"description": "queued"})
    job_id = fields.String(required=True)
