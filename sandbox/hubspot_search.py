"""CRM search (``POST /crm/v3/objects/{objectType}/search``) over the emulator's records.

Follows the search guide (https://developers.hubspot.com/docs/api-reference/search/guide.md):
filter groups are OR-ed (at most 5), filters in a group AND-ed (at most 6, 18 in all), one sort,
``limit`` at most 200 (default 10), ``after`` an integer offset, no more than 10,000 results
reachable by paging (a 400 past that), archived records never found, and the pseudo-property
``associations.{objectType}`` to find, e.g., the tasks of a deal. Dates compare as instants
(filters accept epoch ms or ISO), numbers as numbers, strings case-insensitively, enumerations
exactly. ``query`` matches a substring of a few default text properties (HubSpot's full-text
index is richer). The emulator's optional indexing lag hides records modified in the last N
seconds, like HubSpot's "a few moments" before a change is searchable.

Error policy: malformed requests raise HubSpotError 400 (VALIDATION_ERROR), never a 500.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from sandbox.hubspot_state import HubSpotState, Record, parse_datetime, validation

__all__ = ["MAX_RESULTS", "MAX_SEARCH_LIMIT", "search"]

MAX_SEARCH_LIMIT = 200
"""Largest page a search returns."""

MAX_RESULTS = 10_000
"""Results reachable by paging one query."""

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18

# Text properties a free-text ``query`` looks at, per object type.
_QUERY_PROPERTIES = {
    "deals": ("dealname",),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "calls": ("hs_call_title", "hs_call_body"),
    "emails": ("hs_email_subject", "hs_email_text"),
    "meetings": ("hs_meeting_title", "hs_meeting_body"),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject", "hs_task_body"),
}


def search(state: HubSpotState, kind: str, body: Mapping) -> tuple[list[Record], int, int | None]:
    """Run one search: (page of records, total matches, next offset or None).

    The caller holds ``state.lock``."""
    limit = _limit(body.get("limit"))
    offset = _offset(body.get("after"))
    if offset + limit > MAX_RESULTS:
        raise validation(
            f"Paging beyond {MAX_RESULTS} results is not supported: after={offset}, "
            f"limit={limit}. Narrow the filters (for example on hs_lastmodifieddate).",
            context={"after": [str(offset)], "limit": [str(limit)]},
        )
    groups = _groups(body.get("filterGroups") or [])
    predicates = [[_predicate(state, kind, f) for f in g] for g in groups]
    matches = _query_matcher(kind, body.get("query"))
    horizon = state.now() - timedelta(seconds=state.search_lag_seconds)
    found = [
        r
        for r in state.records(kind)
        if (state.search_lag_seconds <= 0 or r.updated_at <= horizon)
        and matches(r)
        and (not predicates or any(all(p(r) for p in g) for g in predicates))
    ]
    found = _sorted(state, kind, found, body.get("sorts") or [])
    page = found[offset : offset + limit]
    following = offset + limit
    return page, len(found), following if following < len(found) else None


def _limit(raw: object) -> int:
    if raw is None:
        return 10
    try:
        limit = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise validation(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise validation(f"limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}")
    return limit


def _offset(raw: object) -> int:
    if raw in (None, ""):
        return 0
    try:
        offset = int(str(raw))
    except ValueError:
        raise validation(f"after must be an integer string, got {raw!r}") from None
    if offset < 0:
        raise validation(f"after must not be negative, got {offset}")
    return offset


def _groups(groups: Sequence) -> list[list[Mapping]]:
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise validation(f"At most {MAX_GROUPS} filterGroups are allowed")
    out = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation(f"Each filterGroup may have at most {MAX_FILTERS_PER_GROUP} filters")
        out.append(filters)
    if sum(len(g) for g in out) > MAX_FILTERS:
        raise validation(f"At most {MAX_FILTERS} filters are allowed across all filterGroups")
    return out


Predicate = Callable[[Record], bool]


def _predicate(state: HubSpotState, kind: str, spec: Mapping) -> Predicate:
    name = spec.get("propertyName")
    operator = spec.get("operator", "EQ")
    if not isinstance(name, str) or not name:
        raise validation("Each filter needs a propertyName")
    if name.startswith("associations."):
        return _association_predicate(state, kind, name, operator, spec)
    key = _key_function(state.property_type(kind, name))

    def value(record: Record) -> object:
        raw = record.properties.get(name)
        return None if raw in (None, "") else raw

    if operator not in _OPERATORS:
        raise validation(f"Unsupported filter operator: {operator}")
    return _OPERATORS[operator](spec, value, key)


def _key_function(ptype: str) -> Callable[[object], object]:
    """How values of a property type compare."""
    if ptype in ("datetime", "date"):
        return lambda v: parse_datetime(str(v)).timestamp()
    if ptype == "number":
        return lambda v: float(str(v))
    if ptype == "enumeration":
        return lambda v: str(v)
    return lambda v: str(v).lower()


def _safe(key: Callable, raw: object) -> object:
    try:
        return key(raw)
    except (ValueError, TypeError, OverflowError):
        raise validation(f"Invalid filter value: {raw!r}") from None


def _compare(op: Callable[[object, object], bool]) -> Callable:
    def build(spec: Mapping, value: Callable, key: Callable) -> Predicate:
        wanted = _safe(key, spec.get("value"))

        def check(record: Record) -> bool:
            current = value(record)
            if current is None:
                return False
            try:
                return op(key(current), wanted)
            except (TypeError, ValueError):
                return False

        return check

    return build


def _neq(spec: Mapping, value: Callable, key: Callable) -> Predicate:
    wanted = _safe(key, spec.get("value"))
    return lambda r: value(r) is None or key(value(r)) != wanted


def _between(spec: Mapping, value: Callable, key: Callable) -> Predicate:
    low, high = _safe(key, spec.get("value")), _safe(key, spec.get("highValue"))

    def check(record: Record) -> bool:
        current = value(record)
        return current is not None and low <= key(current) <= high  # type: ignore[operator]

    return check


def _in(negate: bool) -> Callable:
    def build(spec: Mapping, value: Callable, key: Callable) -> Predicate:
        wanted = {_safe(key, v) for v in spec.get("values") or []}

        def check(record: Record) -> bool:
            current = value(record)
            if current is None:
                return negate
            values = {key(v) for v in str(current).split(";")}
            return bool(values & wanted) != negate

        return check

    return build


def _has(negate: bool) -> Callable:
    def build(spec: Mapping, value: Callable, key: Callable) -> Predicate:
        return lambda r: (value(r) is None) == negate

    return build


def _token(negate: bool) -> Callable:
    def build(spec: Mapping, value: Callable, key: Callable) -> Predicate:
        wanted = str(spec.get("value", "")).lower()

        def check(record: Record) -> bool:
            current = value(record)
            tokens = str(current or "").lower().replace(";", " ").split()
            if wanted.startswith("*") or wanted.endswith("*"):
                core = wanted.strip("*")
                found = any(core in t for t in tokens)
            else:
                found = wanted in tokens
            return found != negate

        return check

    return build


_OPERATORS: dict[str, Callable] = {
    "EQ": _compare(lambda a, b: a == b),
    "NEQ": _neq,
    "LT": _compare(lambda a, b: a < b),  # type: ignore[operator]
    "LTE": _compare(lambda a, b: a <= b),  # type: ignore[operator]
    "GT": _compare(lambda a, b: a > b),  # type: ignore[operator]
    "GTE": _compare(lambda a, b: a >= b),  # type: ignore[operator]
    "BETWEEN": _between,
    "IN": _in(negate=False),
    "NOT_IN": _in(negate=True),
    "HAS_PROPERTY": _has(negate=False),
    "NOT_HAS_PROPERTY": _has(negate=True),
    "CONTAINS_TOKEN": _token(negate=False),
    "NOT_CONTAINS_TOKEN": _token(negate=True),
}


def _association_predicate(
    state: HubSpotState, kind: str, name: str, operator: str, spec: Mapping
) -> Predicate:
    """``associations.deal EQ 123``: records associated with that deal."""
    other = state.object_type(name.split(".", 1)[1])
    if operator == "EQ":
        wanted = {str(spec.get("value"))}
    elif operator == "IN":
        wanted = {str(v) for v in spec.get("values") or []}
    else:
        raise validation(f"Operator {operator} is not supported on {name}")

    def check(record: Record) -> bool:
        return bool(wanted & state.linked_ids(kind, record.id, other))

    return check


def _query_matcher(kind: str, query: object) -> Predicate:
    if not query:
        return lambda r: True
    needle = str(query).lower().strip("*")
    fields = _QUERY_PROPERTIES.get(kind, ())
    return lambda r: any(needle in str(r.properties.get(f) or "").lower() for f in fields)


def _sorted(state: HubSpotState, kind: str, records: list[Record], sorts: Sequence) -> list[Record]:
    """One sort rule (``{"propertyName", "direction"}`` or ``"name"``/``"-name"``); records
    without a value go last; ties by id. Without a rule: by id."""
    if len(sorts) > 1:
        raise validation("Only one sort is allowed")
    by_id = sorted(records, key=lambda r: int(r.id))
    if not sorts:
        return by_id
    name, descending = _sort_rule(sorts[0])
    key = _key_function(state.property_type(kind, name))

    def sort_key(record: Record) -> tuple:
        raw = record.properties.get(name)
        if raw in (None, ""):
            return (1, 0)
        try:
            return (0, key(raw))
        except (ValueError, TypeError):
            return (1, 0)

    present = [r for r in by_id if sort_key(r)[0] == 0]
    missing = [r for r in by_id if sort_key(r)[0] == 1]
    present.sort(key=sort_key, reverse=descending)
    return present + missing


def _sort_rule(rule: object) -> tuple[str, bool]:
    if isinstance(rule, Mapping):
        direction = str(rule.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation(f"Invalid sort direction: {direction}")
        return str(rule.get("propertyName")), direction == "DESCENDING"
    text = str(rule)
    return (text[1:], True) if text.startswith("-") else (text, False)
