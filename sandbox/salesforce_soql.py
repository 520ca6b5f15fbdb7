"""A SOQL subset: parsed for real, checked against the org's schema and the user's field-level
security, and evaluated over the in-memory records.

Supported (SOQL and SOSL Reference):

- ``SELECT`` field lists with parent relationships (``Contact.Title``, ``Owner.Email``,
  ``What.Name`` on polymorphic lookups), ``COUNT()``, and child subqueries on the declared
  child relationships (``(SELECT ... FROM OpportunityContactRoles WHERE ... ORDER BY ...
  LIMIT n)``; an empty child relationship is ``null``, as Salesforce answers);
- ``WHERE`` with ``AND``, ``OR``, ``NOT`` and parentheses; ``= != <> < <= > >=``; ``IN`` and
  ``NOT IN`` with value lists or a semi-join (``Id IN (SELECT EmailMessageId FROM
  EmailMessageRelation WHERE ...)``); ``LIKE`` with ``%`` and ``_``; ``null``; ``true`` and
  ``false``; numbers; quoted strings (``\\'`` escapes); date (``2026-01-31``) and datetime
  (``2026-01-31T09:00:00Z``, ``+01:00`` offsets) literals, checked against the field's type
  (a date is refused on a datetime field, as Salesforce does); the date literals ``TODAY``,
  ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``, ``N_DAYS_AGO:n``,
  ``LAST_90_DAYS``, ``NEXT_90_DAYS``, ``THIS_MONTH``, ``LAST_MONTH``, ``THIS_YEAR`` (the org's
  time zone is UTC). Text comparisons ignore case; ``!=`` and ``NOT IN`` keep null values.
- ``ORDER BY`` field list with ``ASC``/``DESC`` and ``NULLS FIRST``/``NULLS LAST`` (nulls first
  by default ascending, last descending); ``LIMIT``; ``OFFSET`` (at most 2,000).

Anything else (``GROUP BY``, ``HAVING``, aggregate functions but ``COUNT()``, ``TYPEOF``,
``WITH``, ``FOR``, ``USING SCOPE``, ``INCLUDES``/``EXCLUDES``, ``FIELDS()``, bind variables,
``toLabel``...) is refused with ``MALFORMED_QUERY`` naming what is not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.salesforce_errors import SalesforceError, invalid_field, malformed_query
from sandbox.salesforce_ids import to18
from sandbox.salesforce_objects import KEY_PREFIXES, FieldDef

__all__ = ["Context", "Query", "execute", "json_value", "parse"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,|:)
    """,
    re.VERBOSE,
)

_UNSUPPORTED = {
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "TYPEOF": "TYPEOF",
    "WITH": "WITH",
    "FOR": "FOR VIEW/REFERENCE/UPDATE",
    "USING": "USING SCOPE",
    "INCLUDES": "INCLUDES",
    "EXCLUDES": "EXCLUDES",
    "ROLLUP": "GROUP BY ROLLUP",
}
_DATE_CONSTANTS = [
    "TODAY",
    "YESTERDAY",
    "TOMORROW",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_MONTH",
    "LAST_MONTH",
    "THIS_YEAR",
]
_DATE_N = ("LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO")
_DATE_OTHER = re.compile(
    r"^(LAST|THIS|NEXT)_(WEEK|MONTH|QUARTER|YEAR|FISCAL_QUARTER|FISCAL_YEAR)$|"
    r"^(LAST|NEXT)_N_(WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)$|"
    r"^N_(WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)_AGO$",
    re.IGNORECASE,
)
MAX_SOQL = 100_000
MAX_WHERE_STRING = 4_000
_TEXT_TYPES = ("id", "reference", "string", "picklist", "email", "textarea", "multipicklist")
_NUMBER_TYPES = ("double", "currency", "percent", "int")


# --- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(slots=True)
class Literal:
    kind: str
    """string, number, boolean, null, date, datetime, constant."""
    value: Any
    text: str


@dataclass(slots=True)
class Comparison:
    path: str
    op: str
    value: Literal


@dataclass(slots=True)
class Membership:
    path: str
    values: list[Literal] | Query
    negated: bool


@dataclass(slots=True)
class Like:
    path: str
    pattern: str


@dataclass(slots=True)
class Junction:
    op: str
    """AND, OR."""
    parts: list[Any]


@dataclass(slots=True)
class Negation:
    part: Any


@dataclass(slots=True)
class Order:
    path: str
    descending: bool
    nulls_first: bool


@dataclass(slots=True)
class Query:
    fields: list[str | Query]
    sobject: str
    count: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


# --- parsing -------------------------------------------------------------------------------------


def parse(soql: str) -> Query:
    """The syntax tree of one SOQL statement; MALFORMED_QUERY on anything outside the subset."""
    if len(soql) > MAX_SOQL:
        raise malformed_query(
            f"SOQL statements cannot be longer than {MAX_SOQL:,} characters ({len(soql):,} given)"
        )
    parser = _Parser(soql)
    query = parser.query(top=True)
    if parser.peek() is not None:
        parser.fail(f"unexpected token: '{parser.peek().text}'")  # type: ignore[union-attr]
    return query


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                raise malformed_query(
                    f"{text}\nERROR at column {pos + 1}: unexpected character '{text[pos]}'"
                )
            if match.lastgroup != "ws":
                self.tokens.append(Token(match.lastgroup or "", match.group(), pos))
            pos = match.end()
        self.at = 0

    def fail(self, message: str) -> None:
        token = self.peek()
        where = f" at column {token.pos + 1}" if token else " at the end"
        raise malformed_query(f"{self.text}\nERROR{where}: {message}")

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            self.fail("unexpected end of query")
        self.at += 1
        return token  # type: ignore[return-value]

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.upper in words:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        token = self.peek()
        if token is None or token.upper != word:
            found = f"'{token.text}'" if token else "the end of the query"
            self.fail(f"expecting {word}, found {found}")
        self.at += 1

    def unsupported_check(self) -> None:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.upper in _UNSUPPORTED:
            self.fail(f"{_UNSUPPORTED[token.upper]} is not supported by this emulator")

    def query(self, *, top: bool) -> Query:
        self.expect("SELECT")
        fields: list[str | Query] = []
        count = False
        while True:
            token = self.peek()
            if token is not None and token.text == "(":
                if not top:
                    self.fail("a child subquery cannot hold another subquery")
                self.take()
                sub = self.query(top=False)
                self.expect(")")
                fields.append(sub)
            else:
                name = self.take()
                if name.kind != "ident" or name.upper in ("FROM",):
                    self.fail(f"unexpected token: '{name.text}'")
                after = self.peek()
                if after is not None and after.text == "(":
                    if name.upper == "COUNT" and (self.peek(1) or name).text == ")":
                        self.at += 2
                        count = True
                    else:
                        self.at -= 1
                        self.fail(
                            f"the function {name.text}() is not supported by this emulator "
                            "(only COUNT() is)"
                        )
                else:
                    if name.upper == "TYPEOF":
                        self.at -= 1
                        self.unsupported_check()
                    fields.append(name.text)
            if not self.keyword_comma():
                break
        if count and fields:
            self.fail("COUNT() cannot be combined with other fields")
        self.expect("FROM")
        sobject = self.take()
        if sobject.kind != "ident" or "." in sobject.text:
            self.fail(f"unexpected token: '{sobject.text}'")
        query = Query(fields, sobject.text, count=count)
        if self.keyword("USING"):
            self.at -= 1
            self.unsupported_check()
        if self.keyword("WHERE"):
            query.where = self.condition()
        self.unsupported_check()
        if self.keyword("ORDER"):
            self.expect("BY")
            while True:
                path = self.take()
                if path.kind != "ident":
                    self.fail(f"unexpected token: '{path.text}'")
                descending = self.keyword("DESC")
                if not descending:
                    self.keyword("ASC")
                nulls_first = not descending
                if self.keyword("NULLS"):
                    nulls_first = self.keyword("FIRST")
                    if not nulls_first:
                        self.expect("LAST")
                query.order.append(Order(path.text, descending, nulls_first))
                if not self.keyword_comma():
                    break
        if self.keyword("LIMIT"):
            query.limit = self.integer("LIMIT")
        if self.keyword("OFFSET"):
            query.offset = self.integer("OFFSET")
            if query.offset > 2000:
                raise SalesforceError(
                    400, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"
                )
        self.unsupported_check()
        return query

    def keyword_comma(self) -> bool:
        token = self.peek()
        if token is not None and token.text == ",":
            self.at += 1
            return True
        return False

    def integer(self, clause: str) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            self.at -= 1
            self.fail(f"{clause} needs a whole number")
        return int(token.text)

    def condition(self) -> Any:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Junction("OR", parts)

    def conjunction(self) -> Any:
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else Junction("AND", parts)

    def factor(self) -> Any:
        if self.keyword("NOT"):
            return Negation(self.factor())
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.predicate()

    def predicate(self) -> Any:
        path = self.take()
        if path.kind != "ident":
            self.at -= 1
            self.fail(f"unexpected token: '{path.text}'")
        if (self.peek() or path).text == "(":
            self.at -= 1
            self.fail(f"the function {path.text}() is not supported in WHERE by this emulator")
        self.unsupported_check()
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect("(")
            token = self.peek()
            if token is not None and token.upper == "SELECT":
                sub = self.query(top=False)
                self.expect(")")
                return Membership(path.text, sub, negated)
            values = [self.literal()]
            while self.keyword_comma():
                values.append(self.literal())
            self.expect(")")
            return Membership(path.text, values, negated)
        if negated:
            self.fail("expecting IN after NOT")
        if self.keyword("LIKE"):
            value = self.literal()
            if value.kind != "string":
                self.fail("LIKE needs a quoted string")
            return Like(path.text, value.value)
        op = self.take()
        if op.kind != "op" or op.text in ("(", ")", ",", ":"):
            self.at -= 1
            self.fail(f"unexpected token: '{op.text}'")
        return Comparison(path.text, "!=" if op.text == "<>" else op.text, self.literal())

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            text = _unescape(token.text[1:-1])
            if len(text) > MAX_WHERE_STRING:
                self.at -= 1
                self.fail(f"a string in WHERE is limited to {MAX_WHERE_STRING:,} characters")
            return Literal("string", text, token.text)
        if token.kind == "number":
            return Literal(
                "number", float(token.text) if "." in token.text else int(token.text), token.text
            )
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text), token.text)
            except ValueError:
                self.at -= 1
                self.fail(f"invalid date: {token.text}")
        if token.kind == "datetime":
            text = token.text.replace("Z", "+00:00")
            if re.search(r"[+-]\d{4}$", text):
                text = text[:-2] + ":" + text[-2:]
            try:
                return Literal("datetime", datetime.fromisoformat(text).astimezone(UTC), token.text)
            except ValueError:
                self.at -= 1
                self.fail(f"invalid datetime: {token.text}")
        if token.kind == "ident":
            word = token.upper
            if word == "NULL":
                return Literal("null", None, token.text)
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", token.text)
            if word in _DATE_CONSTANTS:
                return Literal("constant", (word, 0), token.text)
            if word in _DATE_N:
                self.expect(":")
                n = self.integer(word)
                return Literal("constant", (word, n), f"{token.text}:{n}")
            if _DATE_OTHER.match(word):
                self.at -= 1
                self.fail(f"the date literal {token.text} is not supported by this emulator")
        if token.text == ":":
            self.at -= 1
            self.fail("bind variables are Apex only")
        self.at -= 1
        self.fail(f"unexpected token: '{token.text}'")
        raise AssertionError  # unreachable: fail raises


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), text)


# --- evaluation ----------------------------------------------------------------------------------


Schema = Callable[[str], dict[str, FieldDef]]
"""The fields of a type the user may see (raises for an unknown type)."""


@dataclass(slots=True)
class _Step:
    """One hop of a field path: the reference field to follow, or the final field."""

    field: FieldDef
    relationship: str | None


class Context:
    """What a query runs against: the org's records, the user's schema, the clock, the
    canonical type name, and how records are addressed in ``attributes.url``."""

    def __init__(
        self,
        records: Callable[[str], Iterable[dict[str, Any]]],
        lookup: Callable[[str], dict[str, Any] | None],
        schema: Schema,
        type_name: Callable[[str], str],
        children: Callable[[str], dict[str, tuple[str, str]]],
        now: datetime,
        url: Callable[[str, str], str],
    ) -> None:
        self.records = records
        self.lookup = lookup
        self.schema = schema
        self.type_name = type_name
        self.children = children
        self.now = now
        self.url = url
        self.child_index: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        self.resolved: dict[tuple[str, str], list[_Step]] = {}


def execute(query: Query, ctx: Context) -> tuple[int, list[dict[str, Any]]]:
    """(totalSize, records as Salesforce serialises them, ``attributes`` first)."""
    sobject = ctx.type_name(query.sobject)
    _check_fields(query, sobject, ctx)  # refused even when no record matches
    _check_restrictions(query, sobject)
    rows = _select(query, sobject, ctx, list(ctx.records(sobject)))
    if query.count:
        return len(rows), []
    return len(rows), [_render(query, sobject, row, ctx) for row in rows]


ID_FILTER_REQUIRED = {"ContentDocumentLink": ("Id", "ContentDocumentId", "LinkedEntityId")}
"""Types Salesforce refuses to query without an equality or IN filter on one of these fields
("Implementation restriction: ContentDocumentLink requires a filter by a single Id on
ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN
operator", Object Reference, ContentDocumentLink)."""


def _check_restrictions(query: Query, sobject: str) -> None:
    wanted = ID_FILTER_REQUIRED.get(sobject)
    if wanted is None:
        return
    node = query.where
    parts = node.parts if isinstance(node, Junction) and node.op == "AND" else [node]
    keys = {name.lower() for name in wanted}
    for part in parts:
        equal = isinstance(part, Comparison) and part.op == "="
        member = isinstance(part, Membership) and not part.negated
        if (equal or member) and part.path.lower() in keys:
            return
    raise malformed_query(
        f"Implementation restriction: {sobject} requires a filter by a single Id on "
        f"{' or '.join(wanted[1:])} using the equals operator or multiple Id's using the IN "
        "operator."
    )


def _check_fields(query: Query, sobject: str, ctx: Context) -> None:
    for item in query.fields:
        if isinstance(item, Query):
            child_type, _, _ = _relationship(item, sobject, ctx)
            _check_fields(item, child_type, ctx)
            if item.where is not None:
                _compile(item.where, child_type, ctx)
            for order in item.order:
                _resolve(order.path, child_type, ctx)
        else:
            _resolve(item, sobject, ctx)


def _select(
    query: Query, sobject: str, ctx: Context, candidates: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    predicate = _compile(query.where, sobject, ctx) if query.where is not None else None
    rows = [r for r in candidates if predicate is None or predicate(r)]
    if query.order:
        rows = _sort(rows, query.order, sobject, ctx)
    if query.offset:
        rows = rows[query.offset :]
    if query.limit is not None:
        rows = rows[: query.limit]
    return rows


def _resolve(path: str, sobject: str, ctx: Context) -> list[_Step]:
    """The hops of ``Contact.Account.Name`` from ``sobject``; INVALID_FIELD when any part is
    unknown or hidden from the user. Resolved once per query (records are rendered in bulk)."""
    key = (sobject, path.lower())
    steps = ctx.resolved.get(key)
    if steps is None:
        steps = ctx.resolved[key] = _resolve_path(path, sobject, ctx)
    return steps


def _resolve_path(path: str, sobject: str, ctx: Context) -> list[_Step]:
    parts = path.split(".")
    steps: list[_Step] = []
    types = [sobject]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        found: FieldDef | None = None
        for type_ in types:
            fields = ctx.schema(type_)
            if last:
                found = _by_name(fields, part)
            else:
                found = next(
                    (
                        f
                        for f in fields.values()
                        if f.relationship_name and f.relationship_name.lower() == part.lower()
                    ),
                    None,
                )
            if found is not None:
                break
        if found is None:
            if last and len(parts) == 1:
                raise invalid_field(part, sobject)
            shown = ".".join(parts[: i + 1])
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"Didn't understand relationship '{part}' in field path '{path}'"
                if not last
                else f"No such column '{part}' on entity '{' or '.join(types)}' ({shown}). If you "
                "are attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name.",
            )
        steps.append(_Step(found, found.relationship_name if not last else None))
        types = list(found.reference_to)
    return steps


def _by_name(fields: dict[str, FieldDef], name: str) -> FieldDef | None:
    hit = fields.get(name)
    if hit is not None:
        return hit
    lower = name.lower()
    return next((f for n, f in fields.items() if n.lower() == lower), None)


def _getter(steps: list[_Step], ctx: Context) -> Callable[[dict[str, Any]], Any]:
    *hops, final = steps
    name = final.field.name

    def get(record: dict[str, Any]) -> Any:
        current: dict[str, Any] | None = record
        for hop in hops:
            ref = current.get(hop.field.name) if current else None
            current = ctx.lookup(ref) if ref else None
            if current is None:
                return None
        return current.get(name) if current else None

    return get


def _compile(node: Any, sobject: str, ctx: Context) -> Callable[[dict[str, Any]], bool]:
    if isinstance(node, Junction):
        parts = [_compile(p, sobject, ctx) for p in node.parts]
        if node.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, Negation):
        inner = _compile(node.part, sobject, ctx)
        return lambda r: not inner(r)
    steps = _resolve(node.path, sobject, ctx)
    fdef = steps[-1].field
    get = _getter(steps, ctx)
    if fdef.type in ("textarea", "base64"):
        # "You can't filter against the content of textarea fields, blobs" (SOQL reference).
        raise SalesforceError(
            400,
            "INVALID_FIELD",
            f"field '{fdef.name}' can not be filtered in a query call",
        )
    if isinstance(node, Like):
        if fdef.type not in _TEXT_TYPES:
            raise SalesforceError(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on {fdef.type} field {fdef.name}: LIKE",
            )
        regex = re.compile(_like_regex(node.pattern), re.IGNORECASE | re.DOTALL)
        return lambda r: (v := get(r)) is not None and regex.fullmatch(str(v)) is not None
    if isinstance(node, Membership):
        if isinstance(node.values, Query):
            wanted = _semi_join(node.values, ctx)
        else:
            wanted = {_key(fdef, _typed(fdef, v, ctx)) for v in node.values}
        if node.negated:
            return lambda r: _key(fdef, get(r)) not in wanted
        return lambda r: _key(fdef, get(r)) in wanted
    value = node.value
    if value.kind == "constant":
        start, end = _date_range(value.value, ctx.now)
        return _range_predicate(get, fdef, node.op, start, end)
    target = _typed(fdef, value, ctx)
    op = node.op
    if op in ("<", "<=", ">", ">=") and fdef.type in ("boolean", "textarea", "multipicklist"):
        raise SalesforceError(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            f"invalid operator on {fdef.type} field {fdef.name}: {op}",
        )
    wanted = _key(fdef, target)
    if op == "=":
        return lambda r: _key(fdef, get(r)) == wanted
    if op == "!=":
        return lambda r: _key(fdef, get(r)) != wanted
    if wanted is None:
        return lambda r: False
    compare = {
        "<": lambda a: a < wanted,
        "<=": lambda a: a <= wanted,
        ">": lambda a: a > wanted,
        ">=": lambda a: a >= wanted,
    }[op]
    return lambda r: (v := _key(fdef, get(r))) is not None and compare(v)


_NO_SEMI_JOIN = frozenset(
    {"ActivityHistory", "Attachment", "Event", "EventAttendee", "Note", "OpenActivity", "Task"}
)
"""Objects the SOQL reference's semi-join restrictions exclude from an inner select."""


def _semi_join(sub: Query, ctx: Context) -> set[Any]:
    if sub.count or len(sub.fields) != 1 or not isinstance(sub.fields[0], str):
        raise malformed_query("a semi-join subquery must select exactly one field")
    sobject = ctx.type_name(sub.sobject)
    if sobject in _NO_SEMI_JOIN:
        raise malformed_query(f"Entity '{sobject}' is not supported for semi join inner selects")
    _check_restrictions(sub, sobject)
    steps = _resolve(sub.fields[0], sobject, ctx)
    get = _getter(steps, ctx)
    rows = _select(sub, sobject, ctx, list(ctx.records(sobject)))
    return {_key(steps[-1].field, get(r)) for r in rows}


def _like_regex(pattern: str) -> str:
    out = ""
    escaped = False
    for char in pattern:
        if escaped:
            out += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out += ".*"
        elif char == "_":
            out += "."
        else:
            out += re.escape(char)
    return out


def _typed(fdef: FieldDef, value: Literal, ctx: Context) -> Any:
    """The literal as a value of the field's type; Salesforce's refusal when they differ."""
    if value.kind == "null":
        return None
    kind = fdef.type

    def refuse(expected: str, quoted: bool) -> SalesforceError:
        how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SalesforceError(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            f"value of filter criterion for field '{fdef.name}' must be of type {expected} and "
            f"{how}",
        )

    if kind in _TEXT_TYPES:
        if value.kind != "string":
            raise refuse("string" if kind not in ("id", "reference") else "id", True)
        return value.value
    if kind == "boolean":
        if value.kind != "boolean":
            raise refuse("boolean", False)
        return value.value
    if kind in _NUMBER_TYPES:
        if value.kind != "number":
            raise refuse("double" if kind != "int" else "int", False)
        return value.value
    if kind == "date":
        if value.kind != "date":
            raise refuse("date", False)
        return value.value
    if kind == "datetime":
        if value.kind != "datetime":
            raise refuse("dateTime", False)
        return value.value
    raise SalesforceError(400, "INVALID_QUERY_FILTER_OPERATOR", f"cannot filter on {fdef.name}")


def _key(fdef: FieldDef, value: Any) -> Any:
    """What comparisons see: ids in 18-character upper case, text in lower case."""
    if value is None:
        return None
    if fdef.type in ("id", "reference"):
        text = str(value)
        if len(text) == 15:
            text = to18(text)
        return text.upper()
    if fdef.type in _TEXT_TYPES:
        return str(value).lower()
    return value


def _date_range(constant: tuple[str, int], now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a date literal in the org's time zone (UTC)."""
    name, n = constant
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    day = timedelta(days=1)
    if name == "TODAY":
        return today, today + day
    if name == "YESTERDAY":
        return today - day, today
    if name == "TOMORROW":
        return today + day, today + 2 * day
    if name in ("LAST_N_DAYS", "LAST_90_DAYS"):
        n = 90 if name == "LAST_90_DAYS" else n
        return today - n * day, today + day
    if name in ("NEXT_N_DAYS", "NEXT_90_DAYS"):
        n = 90 if name == "NEXT_90_DAYS" else n
        return today + day, today + (n + 1) * day
    if name == "N_DAYS_AGO":
        return today - n * day, today - (n - 1) * day
    month = today.replace(day=1)
    next_month = (month + 32 * day).replace(day=1)
    if name == "THIS_MONTH":
        return month, next_month
    if name == "LAST_MONTH":
        return (month - day).replace(day=1), month
    if name == "THIS_YEAR":
        return month.replace(month=1), month.replace(year=month.year + 1, month=1)
    raise malformed_query(f"the date literal {name} is not supported by this emulator")


def _range_predicate(
    get: Callable[[dict[str, Any]], Any], fdef: FieldDef, op: str, start: datetime, end: datetime
) -> Callable[[dict[str, Any]], bool]:
    if fdef.type not in ("date", "datetime"):
        raise SalesforceError(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            f"value of filter criterion for field '{fdef.name}' must be of type "
            f"{fdef.type} and should not be a date literal",
        )

    def instant(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value
        return datetime(value.year, value.month, value.day, tzinfo=UTC)

    tests = {
        "=": lambda t: start <= t < end,
        "!=": lambda t: not start <= t < end,
        "<": lambda t: t < start,
        "<=": lambda t: t < end,
        ">": lambda t: t >= end,
        ">=": lambda t: t >= start,
    }
    test = tests[op]
    if op == "!=":
        return lambda r: (t := instant(get(r))) is None or test(t)
    return lambda r: (t := instant(get(r))) is not None and test(t)


def _sort(
    rows: list[dict[str, Any]], order: list[Order], sobject: str, ctx: Context
) -> list[dict[str, Any]]:
    # Stable sorts from the last key to the first give the multi-key order.
    for item in reversed(order):
        steps = _resolve(item.path, sobject, ctx)
        fdef = steps[-1].field
        get = _getter(steps, ctx)
        present = [r for r in rows if get(r) is not None]
        absent = [r for r in rows if get(r) is None]
        present.sort(key=lambda r: _key(fdef, get(r)), reverse=item.descending)
        rows = absent + present if item.nulls_first else present + absent
    return rows


def _render(query: Query, sobject: str, record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": sobject, "url": ctx.url(sobject, record["Id"])}}
    for item in query.fields:
        if isinstance(item, Query):
            name, rows = _children(item, sobject, record, ctx)
            out[name] = rows
            continue
        steps = _resolve(item, sobject, ctx)
        target = out
        current: dict[str, Any] | None = record
        for hop in steps[:-1]:
            ref = current.get(hop.field.name) if current else None
            parent = ctx.lookup(ref) if ref else None
            key = hop.relationship or hop.field.name
            if parent is None:
                target.setdefault(key, None)
                current = None
                break
            nested = target.get(key)
            if nested is None:
                parent_type = ctx.type_name(_type_of(parent, ctx))
                nested = {
                    "attributes": {"type": parent_type, "url": ctx.url(parent_type, parent["Id"])}
                }
                target[key] = nested
            target = nested
            current = parent
        if current is not None:
            final = steps[-1].field
            value = current.get(final.name)
            if final.type == "base64" and value is not None:
                # Queries return a blob field as the URL to read it from, not its content.
                value = ctx.url(_type_of(current, ctx), current["Id"]) + "/" + final.name
            target[final.name] = json_value(value)
    return out


def _type_of(record: dict[str, Any], ctx: Context) -> str:
    return KEY_PREFIXES[record["Id"][:3]]


def _relationship(sub: Query, sobject: str, ctx: Context) -> tuple[str, str, str]:
    """(child type, its reference field, the relationship's canonical name)."""
    relations = ctx.children(sobject)
    name = next((n for n in relations if n.lower() == sub.sobject.lower()), None)
    if name is None:
        raise SalesforceError(
            400,
            "INVALID_TYPE",
            f"Didn't understand relationship '{sub.sobject}' in FROM part of query call. If you "
            "are attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name.",
        )
    child_type, ref_field = relations[name]
    return child_type, ref_field, name


def _children(
    sub: Query, sobject: str, record: dict[str, Any], ctx: Context
) -> tuple[str, dict[str, Any] | None]:
    child_type, ref_field, name = _relationship(sub, sobject, ctx)
    cache = _child_index(ctx, child_type, ref_field)
    rows = _select(sub, child_type, ctx, cache.get(record["Id"], []))
    if not rows:
        return name, None
    rendered = [_render(sub, child_type, r, ctx) for r in rows]
    return name, {"totalSize": len(rendered), "done": True, "records": rendered}


def _child_index(ctx: Context, child_type: str, ref_field: str) -> dict[str, list[dict[str, Any]]]:
    """Children grouped by parent id, built once per query and relationship."""
    cache = ctx.child_index
    key = (child_type, ref_field)
    if key not in cache:
        index: dict[str, list[dict[str, Any]]] = {}
        for row in ctx.records(child_type):
            parent = row.get(ref_field)
            if parent:
                index.setdefault(parent, []).append(row)
        cache[key] = index
    return cache[key]


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{value.microsecond // 1000:03d}+0000"
        )
    if isinstance(value, date):
        return value.isoformat()
    return value
