"""Custom field definitions of a Sell account and the check of values written to them.

Admins create custom fields in Sell's UI; the API only lists them (``GET
/v2/:resource_type/custom_fields``, crm-apis.md 3.5), so definitions come from the emulator's
Python API. Types: address bool date datetime email list multi_select_list number phone string
text url. A definition is ``{id, name, type, resource_type, choices?, created_at, updated_at}``.

Values travel in a record's ``custom_fields`` object keyed by the field's **name** (UNCONFIRMED:
the docs do not settle name or id). ``number`` values are strings (a JSON number is accepted and
stored as its string), ``list`` values come back as ``{"id", "name"}`` of the chosen option (a
write may give the name, or ``{"id"}``/``{"name"}``), ``multi_select_list`` a list of those,
``date`` values as written, ``"4/27/2016"`` or ISO ``2016-04-27``; ``null`` clears a value; an
update merges (fields it does not name keep their values: UNCONFIRMED). An
unknown field name, or a value of the wrong type, is a 422 with Sell's generic code ``invalid``
and the field named in ``field`` (a JSON pointer into the request body), as Sell's error
envelope does for any refused value.
"""

import re
from collections.abc import Callable, Mapping

from sandbox.sell_errors import SellError, invalid

__all__ = ["CUSTOM_FIELD_TYPES", "CustomFields"]

CUSTOM_FIELD_TYPES = (
    "address",
    "bool",
    "date",
    "datetime",
    "email",
    "list",
    "multi_select_list",
    "number",
    "phone",
    "string",
    "text",
    "url",
)

_DATE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class CustomFields:
    """Definitions per resource type; the caller holds the state's lock."""

    def __init__(self) -> None:
        self._fields: dict[str, dict[str, dict]] = {"deal": {}, "contact": {}, "lead": {}}

    def define(
        self,
        resource_type: str,
        name: str,
        field_type: str,
        choices: list[str],
        when: str,
        new_id: Callable[[], int],
    ) -> dict:
        if name in self._fields[resource_type]:
            raise ValueError(f"{resource_type} custom field {name!r} already exists")
        field: dict = {
            "id": new_id(),
            "name": name,
            "type": field_type,
            "resource_type": resource_type,
        }
        if field_type in ("list", "multi_select_list"):
            if not choices:
                raise ValueError(f"a {field_type} custom field needs choices")
            field["choices"] = [{"id": new_id(), "name": c} for c in choices]
        field |= {"created_at": when, "updated_at": when}
        self._fields[resource_type][name] = field
        return dict(field)

    def rename(self, resource_type: str, name: str, new_name: str) -> tuple[dict, dict]:
        """(the definition before, the definition after)."""
        fields = self._fields[resource_type]
        if name not in fields:
            raise ValueError(f"{resource_type} custom field {name!r} does not exist")
        if new_name in fields:
            raise ValueError(f"{resource_type} custom field {new_name!r} already exists")
        old = dict(fields.pop(name))
        field = {**old, "name": new_name}
        fields[new_name] = field
        return old, dict(field)

    def remove(self, resource_type: str, name: str) -> dict:
        field = self._fields[resource_type].pop(name, None)
        if field is None:
            raise ValueError(f"{resource_type} custom field {name!r} does not exist")
        return field

    def by_name(self, resource_type: str) -> dict[str, dict]:
        return self._fields[resource_type]

    def list(self, resource_type: str) -> list[dict]:
        return [dict(f) for f in self._fields.get(resource_type, {}).values()]

    def check_values(self, resource_type: str, values: object) -> dict:
        """The values to store, or a 422 naming the first refused field."""
        if not isinstance(values, Mapping):
            raise invalid(
                "/data/custom_fields", "custom_fields must be an object", resource=resource_type
            )
        out = {}
        for name, value in values.items():
            field = self._fields[resource_type].get(name)
            pointer = f"/data/custom_fields/{name}"
            if field is None:
                raise SellError(
                    422,
                    "invalid",
                    f"Unknown {resource_type} custom field {name!r}: an admin must create it in "
                    "Sell's settings first.",
                    field=pointer,
                    resource=resource_type,
                )
            out[name] = None if value is None else _coerce(field, value, pointer)
        return out


def _coerce(field: dict, value: object, pointer: str) -> object:
    kind = field["type"]

    def refuse(expected: str) -> SellError:
        return SellError(
            422,
            "invalid",
            f"{field['name']!r} is a {kind} field: {expected}",
            field=pointer,
            resource=field["resource_type"],
        )

    if kind == "bool":
        if not isinstance(value, bool):
            raise refuse("give true or false")
        return value
    if kind == "number":
        text = (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )
        if not isinstance(text, str) or not _NUMBER.match(text):
            raise refuse('give a number as a string, e.g. "12.5"')
        return text
    if kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise refuse('give a date such as "4/27/2016"')
        return value
    if kind == "list":
        return _choice(field, value, refuse)
    if kind == "multi_select_list":
        if not isinstance(value, list):
            raise refuse("give a list of options")
        return [_choice(field, v, refuse) for v in value]
    if kind == "address":
        if not isinstance(value, Mapping):
            raise refuse("give an address object")
        return dict(value)
    if not isinstance(value, str):
        raise refuse("give a string")
    return value


def _choice(field: dict, value: object, refuse: Callable[[str], SellError]) -> dict:
    wanted_id = value.get("id") if isinstance(value, Mapping) else None
    wanted_name = value.get("name") if isinstance(value, Mapping) else value
    for choice in field["choices"]:
        if choice["id"] == wanted_id or (wanted_id is None and choice["name"] == wanted_name):
            return dict(choice)
    names = ", ".join(c["name"] for c in field["choices"])
    raise refuse(f"choose one of: {names}")
