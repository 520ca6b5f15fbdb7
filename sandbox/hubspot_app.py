"""The HubSpot emulator's HTTP API: a Flask app over one ``HubSpotState``.

Routes follow HubSpot's documented paths, status codes and JSON shapes (the ones
hubspot-api-client 12 deserialises), listed in ``sandbox.hubspot``'s docstring. Every CRM route
needs ``Authorization: Bearer <access token>``; changes made through it are credited to the app
(``changeSource`` INTEGRATION, ``sourceId`` the app id). ``/_sandbox/...`` routes are the
emulator's own (no auth, not counted, not rate limited).

Error policy: every refusal is HubSpot's JSON error body with its status (400 validation, 401
auth, 404 missing, 409 conflict, 429 rate limit); unexpected exceptions are a 500 with the same
body shape so a client's error translation sees what it would see in production.
"""

import re
import uuid
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

from sandbox.hubspot_auth import Token, not_authenticated
from sandbox.hubspot_errors import oauth_error
from sandbox.hubspot_objects import (
    DEFAULT_ASSOCIATION_TYPES,
    OBJECT_TYPES,
    PRIMARY_ASSOCIATION_TYPES,
    resolve_object_type,
)
from sandbox.hubspot_search import search
from sandbox.hubspot_state import (
    HubSpotError,
    HubSpotState,
    Record,
    Source,
    format_datetime,
    not_found,
    validation,
)

__all__ = ["MAX_BATCH_INPUTS", "create_app"]

MAX_BATCH_INPUTS = 100
"""Inputs per batch read/create/update/archive of CRM objects."""

MAX_HISTORY_BATCH_INPUTS = 50
"""Inputs per batch read when ``propertiesWithHistory`` is asked."""

MAX_LIST_LIMIT = 100
"""Largest page of ``GET /crm/v3/objects/{type}`` (50 with ``propertiesWithHistory``)."""

MAX_ASSOCIATION_INPUTS = 1_000
"""Inputs per associations v4 batch read."""

ASSOCIATIONS_PER_PAGE = 500
"""Associated records returned per object (v4 batch read and list)."""

MAX_OWNERS_LIMIT = 500
"""Largest page of ``GET /crm/v3/owners``."""

_PARAM = re.compile(r"<(?:[^:>]+:)?([^>]+)>")
_TYPE_PARAMS = ("object_type", "from_type", "to_type")


def create_app(state: HubSpotState) -> Flask:
    """The emulator's Flask app serving ``state`` (no work happens at import time)."""
    app = Flask("sandbox.hubspot")
    app.json.sort_keys = False  # keep HubSpot's field order readable in captures
    _register_errors(app)
    _register_gate(app, state)
    _register_oauth(app, state)
    _register_objects(app, state)
    _register_properties(app, state)
    _register_pipelines_and_owners(app, state)
    _register_account(app, state)
    _register_associations(app, state)
    _register_sandbox(app, state)
    return app


# --------------------------------------------------------------------------------------------
# Errors, counting, auth and rate limits
# --------------------------------------------------------------------------------------------


def _error_response(error: HubSpotError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _register_errors(app: Flask) -> None:
    app.register_error_handler(HubSpotError, _error_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        category = "OBJECT_NOT_FOUND" if exc.code == 404 else "VALIDATION_ERROR"
        return _error_response(HubSpotError(exc.code or 500, exc.description or "", category))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        app.logger.exception("emulator bug")
        return _error_response(HubSpotError(500, f"Internal error: {exc}", "INTERNAL_ERROR"))


def route_key(method: str, rule: str, view_args: Mapping[str, str]) -> str:
    """``"POST /crm/v3/objects/deals/batch/read"``: the route template with object types
    resolved to their plural names and other parameters as ``{name}``."""

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name in _TYPE_PARAMS:
            raw = view_args.get(name, name)
            return resolve_object_type(raw) or raw
        return "{" + _camel(name) + "}"

    return f"{method} {_PARAM.sub(fill, rule)}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _register_gate(app: Flask, state: HubSpotState) -> None:
    """Count every API request, then authenticate and rate-limit the CRM ones."""

    @app.before_request
    def gate() -> None:
        if request.path.startswith("/_sandbox"):
            return
        rule = request.url_rule.rule if request.url_rule else request.path
        state.count(route_key(request.method, rule, request.view_args or {}))
        if not request.path.startswith(("/crm/", "/account-info/")):
            return
        g.token = state.oauth.authenticate(_bearer())
        if request.path.endswith("/search") and request.method == "POST":
            state.hit_search()
            g.rate = None
        else:
            g.rate = state.hit_burst()

    @app.after_request
    def rate_headers(response: Response) -> Response:
        rate = g.get("rate")
        if rate and state.rate_limit is not None:
            response.headers["X-HubSpot-RateLimit-Max"] = str(rate[0])
            response.headers["X-HubSpot-RateLimit-Remaining"] = str(rate[1])
            interval = int(rate[2].total_seconds() * 1000)
            response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(interval)
        response.headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
        return response


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise not_authenticated()
    return token.strip()


def _app_source(state: HubSpotState) -> Source:
    """Changes made with the app's token: INTEGRATION, sourceId = the app id."""
    return Source.integration(state.app_id, state.app_name)


# --------------------------------------------------------------------------------------------
# Request helpers
# --------------------------------------------------------------------------------------------


def _body(kind: type = dict) -> object:
    data = request.get_json(silent=True)
    if not isinstance(data, kind):
        raise validation(
            "Invalid input JSON: expected a JSON "
            + ("object" if kind is dict else "array")
            + " body with Content-Type application/json"
        )
    return data


def _names(param: str) -> list[str]:
    """A list query parameter, sent repeated (the SDK) or comma-separated (the docs)."""
    out: list[str] = []
    for raw in request.args.getlist(param):
        out.extend(p.strip() for p in raw.split(",") if p.strip())
    return out


def _flag(param: str) -> bool:
    return request.args.get(param, "false").lower() == "true"


def _int_arg(param: str, default: int, maximum: int) -> int:
    raw = request.args.get(param)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"{param} must be an integer, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise validation(f"{param} must be between 1 and {maximum}, got {value}")
    return value


def _inputs(body: Mapping, maximum: int) -> list:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation("inputs must be an array")
    if len(inputs) > maximum:
        raise validation(
            f"Batch input limit exceeded: at most {maximum} inputs are allowed, got {len(inputs)}",
            context={"inputs": [str(len(inputs))]},
        )
    return inputs


def _batch(state: HubSpotState, results: list, errors: list[dict], status: int) -> Response:
    """``BatchResponse...`` (or ``...WithErrors`` as a 207 when some inputs failed)."""
    now = format_datetime(state.now())
    body: dict = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        status = 207
    response = jsonify(body)
    response.status_code = status
    return response


def _standard_error(message: str, category: str, ids: list[str]) -> dict:
    """One ``StandardError`` of a multi-status batch answer."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "links": {},
        "errors": [],
    }


# --------------------------------------------------------------------------------------------
# Object JSON
# --------------------------------------------------------------------------------------------


def object_json(
    state: HubSpotState,
    record: Record,
    properties: list[str] | None = None,
    history: list[str] | None = None,
    associations: list[str] | None = None,
) -> dict:
    """``SimplePublicObject``(``WithAssociations``): requested properties (null when empty,
    unknown names left out) plus the id and the created/modified dates HubSpot always adds."""
    spec = OBJECT_TYPES[record.object_type]
    names = list(properties) if properties else list(spec.default_read)
    for always in (spec.created_property, spec.modified_property, "hs_object_id"):
        if always not in names:
            names.append(always)
    known = state.property_names(record.object_type)
    out: dict = {
        "id": record.id,
        "properties": {n: record.properties.get(n) for n in names if n in known},
        "createdAt": format_datetime(record.created_at),
        "updatedAt": format_datetime(record.updated_at),
        "archived": record.archived,
    }
    if record.archived_at is not None:
        out["archivedAt"] = format_datetime(record.archived_at)
    if history:
        out["propertiesWithHistory"] = {
            name: [_version_json(v) for v in reversed(record.history.get(name, []))]
            for name in history
            if name in known
        }
    if associations:
        linked = _v3_associations(state, record, associations)
        if linked:
            out["associations"] = linked
    return out


def _version_json(version) -> dict:
    """``ValueWithTimestamp``; newest first in the list, as HubSpot returns history."""
    out: dict = {
        "value": version.value,
        "timestamp": format_datetime(version.timestamp),
        "sourceType": version.source.change_source,
    }
    if version.source.source_id is not None:
        out["sourceId"] = version.source.source_id
    if version.source.label is not None:
        out["sourceLabel"] = version.source.label
    if version.source.user_id is not None:
        out["updatedByUserId"] = version.source.user_id
    return out


def _v3_associations(state: HubSpotState, record: Record, wanted: list[str]) -> dict:
    """v3 reads' ``associations``: ``{"contacts": {"results": [{"id", "type"}]}}``."""
    out: dict = {}
    for name in wanted:
        other = state.object_type(name)
        links = state.associations(record.object_type, record.id, other)
        results = [
            {"id": to_id, "type": _v3_type_name(record.object_type, other, label)}
            for to_id, labels in links.items()
            for label in labels
        ]
        if results:
            out[other] = {"results": results}
    return out


def _v3_type_name(src: str, dst: str, label) -> str:
    base = f"{OBJECT_TYPES[src].singular}_to_{OBJECT_TYPES[dst].singular}"
    if label.category == "USER_DEFINED":
        return label.name or base
    if label.label == "Primary":
        return base
    return f"{base}_unlabeled" if (src, dst) in PRIMARY_ASSOCIATION_TYPES else base


# --------------------------------------------------------------------------------------------
# OAuth
# --------------------------------------------------------------------------------------------


def _register_oauth(app: Flask, state: HubSpotState) -> None:
    @app.get("/oauth/authorize")
    def authorize() -> Response:
        """The consent screen, answered "yes" at once: back to redirect_uri with a code."""
        if request.args.get("client_id") != state.client_id:
            raise validation("Unknown client_id")
        redirect_uri = request.args.get("redirect_uri")
        if not redirect_uri:
            raise validation("redirect_uri is required")
        scopes = (request.args.get("scope") or "").replace("+", " ").split()
        code = state.oauth.issue_code(redirect_uri, tuple(scopes))
        query = {"code": code}
        if "state" in request.args:
            query["state"] = request.args["state"]
        joiner = "&" if "?" in redirect_uri else "?"
        return redirect(redirect_uri + joiner + urlencode(query), code=302)

    def grant() -> Token:
        """The grant a token request's form asks for (the same in v1 and v3)."""
        form = request.form
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return state.oauth.exchange_code(
                form.get("code", ""),
                form.get("redirect_uri", ""),
                form.get("client_id", ""),
                form.get("client_secret", ""),
            )
        if grant_type == "refresh_token":
            return state.oauth.refresh(
                form.get("refresh_token", ""),
                form.get("client_id", ""),
                form.get("client_secret", ""),
            )
        raise oauth_error(
            "BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token"
        )

    def tokens(issued: Token) -> dict:
        return {
            "token_type": "bearer",
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
            "expires_in": int((issued.expires_at - issued.issued_at).total_seconds()),
            "hub_id": state.portal_id,
            "user_id": issued.user_id,
            "scopes": list(issued.scopes),
        }

    @app.post("/oauth/v1/token")
    def token() -> Response:
        return jsonify(tokens(grant()))

    @app.post("/oauth/v3/token")
    @app.post("/oauth/2026-03/token")
    def token_v3() -> Response:
        """The 2026-03 spec's ``AccessTokenResponse``: v1's fields and ``token_use``."""
        return jsonify(tokens(grant()) | {"token_use": "access_token"})

    @app.post("/oauth/v3/token/introspect")
    @app.post("/oauth/2026-03/token/introspect")
    def introspect() -> Response:
        form = request.form
        return jsonify(
            state.oauth.introspect(
                form.get("token", ""),
                form.get("client_id", ""),
                form.get("client_secret", ""),
                form.get("token_type_hint", ""),
            )
        )

    @app.post("/oauth/v3/token/revoke")
    @app.post("/oauth/2026-03/token/revoke")
    def revoke_v3() -> Response:
        form = request.form
        state.oauth.revoke_by_client(
            form.get("token", ""), form.get("client_id", ""), form.get("client_secret", "")
        )
        return Response(status=200)

    @app.get("/oauth/v1/access-tokens/<token>")
    def access_token_info(token: str) -> Response:
        return jsonify(state.oauth.access_token_info(token))

    @app.get("/oauth/v1/refresh-tokens/<token>")
    def refresh_token_info(token: str) -> Response:
        return jsonify(state.oauth.refresh_token_info(token))

    @app.delete("/oauth/v1/refresh-tokens/<token>")
    def revoke(token: str) -> Response:
        if not state.revoke_refresh_token(token):
            raise not_found("refresh token not found")
        return Response(status=204)


# --------------------------------------------------------------------------------------------
# CRM objects (generic over deals, contacts, companies, calls, emails, meetings, notes, tasks)
# --------------------------------------------------------------------------------------------


def _register_objects(app: Flask, state: HubSpotState) -> None:
    base = "/crm/v3/objects/<object_type>"

    @app.get(base)
    def list_objects(object_type: str) -> Response:
        kind = state.object_type(object_type)
        history = _names("propertiesWithHistory")
        limit = _int_arg("limit", 10, 50 if history else MAX_LIST_LIMIT)
        after = request.args.get("after")
        with state.lock:
            records = state.records(kind, archived=_flag("archived"))
            start = _start_index(records, after)
            page = records[start : start + limit]
            body: dict = {
                "results": [
                    object_json(state, r, _names("properties"), history, _names("associations"))
                    for r in page
                ]
            }
            if start + limit < len(records):
                body["paging"] = {"next": {"after": records[start + limit].id}}
        return jsonify(body)

    @app.get(f"{base}/<object_id>")
    def get_object(object_type: str, object_id: str) -> Response:
        kind = state.object_type(object_type)
        with state.lock:
            record = _find(state, kind, object_id, request.args.get("idProperty"),
                           archived=_flag("archived"))  # fmt: skip
            return jsonify(
                object_json(
                    state, record, _names("properties"), _names("propertiesWithHistory"),
                    _names("associations"),
                )
            )  # fmt: skip

    @app.post(base)
    def create_object(object_type: str) -> Response:
        kind = state.object_type(object_type)
        body = _body()
        with state.lock:
            record = _create_with_associations(state, kind, body)
            response = jsonify(object_json(state, record, list(body.get("properties") or {})))
        response.status_code = 201
        return response

    @app.patch(f"{base}/<object_id>")
    def update_object(object_type: str, object_id: str) -> Response:
        kind = state.object_type(object_type)
        body = _body()
        with state.lock:
            record = _find(state, kind, object_id, request.args.get("idProperty"))
            properties = _properties_of(body)
            state.update_object(kind, record.id, properties, source=_app_source(state), strict=True)
            return jsonify(object_json(state, record, list(properties)))

    @app.delete(f"{base}/<object_id>")
    def archive_object(object_type: str, object_id: str) -> Response:
        kind = state.object_type(object_type)
        with state.lock:
            if state.exists(kind, object_id):
                state.archive_object(kind, object_id, source=_app_source(state))
        return Response(status=204)  # HubSpot answers 204 even for an unknown id

    @app.post(f"{base}/search")
    def search_objects(object_type: str) -> Response:
        kind = state.object_type(object_type)
        body = _body()
        with state.lock:
            page, total, following = search(state, kind, body)
            props = body.get("properties") or None
            result: dict = {
                "total": total,
                "results": [object_json(state, r, props) for r in page],
            }
            if following is not None:
                result["paging"] = {"next": {"after": str(following)}}
        return jsonify(result)

    @app.post(f"{base}/batch/read")
    def batch_read(object_type: str) -> Response:
        kind = state.object_type(object_type)
        body = _body()
        history = body.get("propertiesWithHistory") or []
        if history and len(body.get("inputs") or []) > MAX_HISTORY_BATCH_INPUTS:
            raise validation(
                "maximum number of inputs supported in a batch request for property histories "
                f"is {MAX_HISTORY_BATCH_INPUTS}"
            )
        inputs = _inputs(body, MAX_BATCH_INPUTS)
        id_property = body.get("idProperty")
        results, missing = [], []
        with state.lock:
            for item in inputs:
                wanted = str(item.get("id", ""))
                try:
                    record = _find(
                        state, kind, wanted, id_property, archived=bool(body.get("archived"))
                    )
                except HubSpotError:
                    missing.append(wanted)
                    continue
                results.append(object_json(state, record, body.get("properties") or None, history))
        errors = []
        if missing:
            label = OBJECT_TYPES[kind].singular.upper()
            errors.append(
                _standard_error(
                    f"Could not get some {label} objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "OBJECT_NOT_FOUND",
                    missing,
                )
            )
        return _batch(state, results, errors, 200)

    @app.post(f"{base}/batch/update")
    def batch_update(object_type: str) -> Response:
        kind = state.object_type(object_type)
        inputs = _inputs(_body(), MAX_BATCH_INPUTS)
        with state.lock:
            targets = _batch_update_targets(state, kind, inputs)
            for record, properties in targets:  # validate everything before changing anything
                state.validate_properties(kind, properties, record.id)
            results = []
            for record, properties in targets:
                state.update_object(kind, record.id, properties, source=_app_source(state),
                                    strict=True)  # fmt: skip
                results.append(object_json(state, record, list(properties)))
        return _batch(state, results, [], 200)

    @app.post(f"{base}/batch/create")
    def batch_create(object_type: str) -> Response:
        kind = state.object_type(object_type)
        inputs = _inputs(_body(), MAX_BATCH_INPUTS)
        with state.lock:
            for item in inputs:  # validate all first: HubSpot creates all or none on a 400
                _validate_create(state, kind, item)
            results = []
            for item in inputs:
                record = _create_with_associations(state, kind, item)
                result = object_json(state, record, list(item.get("properties") or {}))
                if item.get("objectWriteTraceId"):
                    result["objectWriteTraceId"] = item["objectWriteTraceId"]
                results.append(result)
        return _batch(state, results, [], 201)

    @app.post(f"{base}/batch/archive")
    def batch_archive(object_type: str) -> Response:
        kind = state.object_type(object_type)
        inputs = _inputs(_body(), MAX_BATCH_INPUTS)
        with state.lock:
            for item in inputs:
                if state.exists(kind, str(item.get("id"))):
                    state.archive_object(kind, str(item["id"]), source=_app_source(state))
        return Response(status=204)


def _start_index(records: list[Record], after: str | None) -> int:
    """List cursors are record ids: the page starts at the first id at or above it."""
    if not after:
        return 0
    cursor = _int(after)
    return next((i for i, r in enumerate(records) if int(r.id) >= cursor), len(records))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise validation(f"Invalid paging cursor: {text!r}") from None


def _find(
    state: HubSpotState, kind: str, wanted: str, id_property: str | None, archived: bool = False
) -> Record:
    if id_property and id_property != "hs_object_id":
        found = state.find_by(kind, id_property, wanted, archived=archived)
        if found is None:
            raise not_found()
        return found
    return state.record(kind, wanted, archived=archived)


def _properties_of(body: Mapping) -> dict:
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise validation("properties must be an object of property names to string values")
    return properties


def _batch_update_targets(
    state: HubSpotState, kind: str, inputs: list
) -> list[tuple[Record, dict]]:
    ids = [str(item.get("id")) for item in inputs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise validation(
            f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
            context={"ids": duplicates},
        )
    targets = []
    for item in inputs:
        record = _find(state, kind, str(item.get("id")), item.get("idProperty"))
        targets.append((record, _properties_of(item)))
    return targets


def _association_targets(state: HubSpotState, kind: str, specs: object) -> list[tuple]:
    """``associations`` of a create: [(to type, to id, [typeIds])], each typeId checked."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise validation("associations must be an array")
    out = []
    for spec in specs:
        to_id = str(((spec or {}).get("to") or {}).get("id", ""))
        types = (spec or {}).get("types") or []
        if not types:
            raise validation("Each association needs at least one type")
        destinations = {_destination(state, kind, t) for t in types}
        if len(destinations) != 1:
            raise validation("All types of one association must point at one object type")
        dst = destinations.pop()
        state.record(dst, to_id)  # 404 when the target does not exist
        out.append((dst, to_id, [int(t["associationTypeId"]) for t in types]))
    return out


def _destination(state: HubSpotState, kind: str, spec: Mapping) -> str:
    """The object type an association typeId from ``kind`` points at."""
    try:
        type_id = int(spec.get("associationTypeId"))
    except (TypeError, ValueError):
        raise validation("associationTypeId must be an integer") from None
    category = spec.get("associationCategory", "HUBSPOT_DEFINED")
    for dst in OBJECT_TYPES:
        for label in state.association_labels(kind, dst):
            if label.type_id == type_id and label.category == category:
                return dst
    raise validation(
        f"association type id {type_id} ({category}) does not exist for {kind}",
        sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
    )


def _validate_create(state: HubSpotState, kind: str, item: Mapping) -> None:
    properties = _properties_of(item)
    state.validate_properties(kind, properties)
    _association_targets(state, kind, item.get("associations"))


def _create_with_associations(state: HubSpotState, kind: str, body: Mapping) -> Record:
    properties = _properties_of(body)
    links = _association_targets(state, kind, body.get("associations"))
    source = _app_source(state)
    new_id = state.create_object(kind, properties, source=source, strict=True)
    for dst, to_id, type_ids in links:
        state.associate(kind, new_id, dst, to_id, type_ids, source=source)
    return state.record(kind, new_id)


# --------------------------------------------------------------------------------------------
# Properties and groups
# --------------------------------------------------------------------------------------------


def _register_properties(app: Flask, state: HubSpotState) -> None:
    base = "/crm/v3/properties/<object_type>"

    @app.get(base)
    def list_properties(object_type: str) -> Response:
        return jsonify({"results": state.properties(object_type, archived=_flag("archived"))})

    @app.post(base)
    def create_property(object_type: str) -> Response:
        body = _body()
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise validation(f"Missing required fields: {', '.join(missing)}")
        prop = state.define_property(
            object_type,
            body["name"],
            body["label"],
            body["type"],
            body["fieldType"],
            group_name=body["groupName"],
            options=body.get("options") or [],
            description=body.get("description", ""),
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            form_field=bool(body.get("formField", False)),
            display_order=int(body.get("displayOrder", -1)),
        )
        response = jsonify(prop)
        response.status_code = 201
        return response

    @app.get(f"{base}/<name>")
    def get_property(object_type: str, name: str) -> Response:
        return jsonify(state.get_property(object_type, name))

    @app.patch(f"{base}/<name>")
    def patch_property(object_type: str, name: str) -> Response:
        return jsonify(state.update_property(object_type, name, _body()))

    @app.get(f"{base}/groups")
    def list_groups(object_type: str) -> Response:
        return jsonify({"results": state.property_groups(object_type)})

    @app.post(f"{base}/groups")
    def create_group(object_type: str) -> Response:
        body = _body()
        if not body.get("name") or not body.get("label"):
            raise validation("Missing required fields: name, label")
        group = state.define_property_group(
            object_type, body["name"], body["label"], int(body.get("displayOrder", -1))
        )
        response = jsonify(group)
        response.status_code = 201
        return response

    @app.get(f"{base}/groups/<name>")
    def get_group(object_type: str, name: str) -> Response:
        for group in state.property_groups(object_type):
            if group["name"] == name:
                return jsonify(group)
        raise not_found(f"Unable to find property group {name}")


# --------------------------------------------------------------------------------------------
# Account information
# --------------------------------------------------------------------------------------------


def _register_account(app: Flask, state: HubSpotState) -> None:
    @app.get("/account-info/v3/details")
    def account_details() -> Response:
        return jsonify(state.account_details())


# --------------------------------------------------------------------------------------------
# Pipelines and owners
# --------------------------------------------------------------------------------------------


def _register_pipelines_and_owners(app: Flask, state: HubSpotState) -> None:
    @app.get("/crm/v3/pipelines/<object_type>")
    def list_pipelines(object_type: str) -> Response:
        return jsonify({"results": state.pipelines(object_type)})

    @app.get("/crm/v3/pipelines/<object_type>/<pipeline_id>")
    def get_pipeline(object_type: str, pipeline_id: str) -> Response:
        return jsonify(_pipeline(state, object_type, pipeline_id))

    @app.get("/crm/v3/pipelines/<object_type>/<pipeline_id>/stages")
    def list_stages(object_type: str, pipeline_id: str) -> Response:
        return jsonify({"results": _pipeline(state, object_type, pipeline_id)["stages"]})

    @app.get("/crm/v3/owners/", strict_slashes=False)
    def list_owners() -> Response:
        limit = _int_arg("limit", 100, MAX_OWNERS_LIMIT)
        start = _int(request.args.get("after") or "0")
        owners = state.owners(archived=_flag("archived"))
        if request.args.get("email"):
            owners = [o for o in owners if o["email"].lower() == request.args["email"].lower()]
        body: dict = {"results": owners[start : start + limit]}
        if start + limit < len(owners):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return jsonify(body)

    @app.get("/crm/v3/owners/<owner_id>")
    def get_owner(owner_id: str) -> Response:
        field = "userId" if request.args.get("idProperty") == "userId" else "id"
        for owner in state.owners(archived=_flag("archived")):
            if str(owner.get(field)) == owner_id:
                return jsonify(owner)
        raise not_found(f"Owner {owner_id} not found")


def _pipeline(state: HubSpotState, object_type: str, pipeline_id: str) -> dict:
    for pipeline in state.pipelines(object_type):
        if pipeline["id"] == pipeline_id:
            return pipeline
    raise not_found(f"Unable to find pipeline {pipeline_id}")


# --------------------------------------------------------------------------------------------
# Associations v4
# --------------------------------------------------------------------------------------------


def _spec_json(label) -> dict:
    return {"category": label.category, "typeId": label.type_id, "label": label.label}


def _register_associations(app: Flask, state: HubSpotState) -> None:
    v4 = "/crm/v4/associations/<from_type>/<to_type>"
    objects = "/crm/v4/objects/<from_type>/<from_id>/associations"

    @app.post(f"{v4}/batch/read")
    def batch_read_associations(from_type: str, to_type: str) -> Response:
        src, dst = state.object_type(from_type), state.object_type(to_type)
        inputs = _inputs(_body(), MAX_ASSOCIATION_INPUTS)
        results, errors = [], []
        with state.lock:
            for item in inputs:
                from_id = str(item.get("id", ""))
                try:
                    state.record(src, from_id)
                except HubSpotError:
                    page, following = [], None
                else:
                    page, following = _association_page(state, src, from_id, dst, item.get("after"))
                if not page:
                    errors.append(_no_associations(src, from_id, dst))
                    continue
                result: dict = {"from": {"id": from_id}, "to": page}
                if following is not None:
                    result["paging"] = {"next": {"after": following}}
                results.append(result)
        return _batch(state, results, errors, 200)

    @app.get(f"{objects}/<to_type>")
    def list_associations(from_type: str, from_id: str, to_type: str) -> Response:
        src, dst = state.object_type(from_type), state.object_type(to_type)
        limit = _int_arg("limit", ASSOCIATIONS_PER_PAGE, ASSOCIATIONS_PER_PAGE)
        with state.lock:
            state.record(src, from_id)
            page, following = _association_page(state, src, from_id, dst,
                                                request.args.get("after"), limit)  # fmt: skip
        body: dict = {"results": page}
        if following is not None:
            body["paging"] = {"next": {"after": following}}
        return jsonify(body)

    @app.put(f"{objects}/<to_type>/<to_id>")
    def put_association(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        src, dst = state.object_type(from_type), state.object_type(to_type)
        specs = _body(list)
        type_ids = []
        for spec in specs:
            label = _known_spec(state, src, dst, spec)
            type_ids.append(label.type_id)
        with state.lock:
            state.associate(src, from_id, dst, to_id, type_ids, replace=True,
                            source=_app_source(state))  # fmt: skip
            labels = state.associations(src, from_id, dst).get(to_id, [])
        response = jsonify(
            {
                "fromObjectTypeId": OBJECT_TYPES[src].type_id,
                "fromObjectId": from_id,
                "toObjectTypeId": OBJECT_TYPES[dst].type_id,
                "toObjectId": to_id,
                "labels": [lab.label for lab in labels if lab.label],
            }
        )
        response.status_code = 201
        return response

    @app.put(f"{objects}/default/<to_type>/<to_id>", endpoint="put_default_association")
    def put_default(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        src, dst = state.object_type(from_type), state.object_type(to_type)
        default = DEFAULT_ASSOCIATION_TYPES.get((src, dst))
        if default is None:
            raise validation(f"No default association between {src} and {dst}")
        state.associate(src, from_id, dst, to_id, source=_app_source(state))
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": default}
        result = {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": spec}
        return _batch(state, [result], [], 200)

    @app.delete(f"{objects}/<to_type>/<to_id>")
    def delete_association(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        src, dst = state.object_type(from_type), state.object_type(to_type)
        state.dissociate(src, from_id, dst, to_id, source=_app_source(state))
        return Response(status=204)

    @app.get(f"{v4}/labels")
    def list_labels(from_type: str, to_type: str) -> Response:
        labels = state.association_labels(from_type, to_type)
        return jsonify({"results": [_spec_json(lab) for lab in labels]})

    @app.post(f"{v4}/labels")
    def create_label(from_type: str, to_type: str) -> Response:
        body = _body()
        if not body.get("label") or not body.get("name"):
            raise validation("label and name are required")
        src, dst = state.object_type(from_type), state.object_type(to_type)
        with state.lock:
            if any(lab.name == body["name"] for lab in state.association_labels(src, dst)):
                raise HubSpotError(409, f"A label named {body['name']} already exists", "CONFLICT")
            type_id = state.define_association_label(
                src, dst, body["label"], inverse_label=body.get("inverseLabel"), name=body["name"]
            )
            created = [lab for lab in state.association_labels(src, dst) if lab.type_id == type_id]
            created += [
                lab for lab in state.association_labels(dst, src) if lab.type_id == type_id + 1
            ]
        return jsonify({"results": [_spec_json(lab) for lab in created]})


def _no_associations(src: str, from_id: str, dst: str) -> dict:
    """The ``StandardError`` of one input of a v4 batch read that has nothing to return: a record
    without associations of that type, and an unknown or deleted one alike. HubSpot's spec
    documents only the 207 and the ``StandardError`` schema; category, subCategory, message and
    context are as real portals answer (quoted in public integrations' notes and code), with
    the schema's required ``links`` and ``errors`` that the SDK's model insists on."""
    singular_from, singular_to = OBJECT_TYPES[src].singular, OBJECT_TYPES[dst].singular
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {singular_to} is associated with {singular_from} {from_id}.",
        "context": {
            "fromObjectId": [from_id],
            "fromObjectType": [singular_from],
            "toObjectType": [singular_to],
        },
        "links": {},
        "errors": [],
    }


def _association_page(
    state: HubSpotState,
    src: str,
    from_id: str,
    dst: str,
    after: object,
    limit: int = ASSOCIATIONS_PER_PAGE,
) -> tuple[list[dict], str | None]:
    """One page of ``MultiAssociatedObjectWithLabel`` for a record, with the next cursor."""
    links = list(state.associations(src, from_id, dst).items())
    start = _int(str(after)) if after else 0
    page = [
        {"toObjectId": int(to_id), "associationTypes": [_spec_json(lab) for lab in labels]}
        for to_id, labels in links[start : start + limit]
    ]
    following = str(start + limit) if start + limit < len(links) else None
    return page, following


def _known_spec(state: HubSpotState, src: str, dst: str, spec: object):
    if not isinstance(spec, Mapping):
        raise validation("Each association spec must be an object")
    try:
        type_id = int(spec.get("associationTypeId"))
    except (TypeError, ValueError):
        raise validation("associationTypeId must be an integer") from None
    for label in state.association_labels(src, dst):
        if label.type_id == type_id and label.category == spec.get("associationCategory"):
            return label
    raise validation(
        f"{spec.get('associationCategory')} {type_id} is not a valid association type "
        f"between {src} and {dst}",
        sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
    )


# --------------------------------------------------------------------------------------------
# Sandbox-only endpoints: counts, webhooks, tokens, and "a user clicked in HubSpot"
# --------------------------------------------------------------------------------------------


def _register_sandbox(app: Flask, state: HubSpotState) -> None:
    @app.get("/_sandbox/counts")
    def counts() -> Response:
        return jsonify(state.counts())

    @app.post("/_sandbox/counts/reset")
    def reset_counts() -> Response:
        state.reset_counts()
        return Response(status=204)

    @app.post("/_sandbox/webhooks")
    def configure_webhooks() -> Response:
        body = _body()
        if not body.get("targetUrl"):
            raise validation("targetUrl is required")
        state.webhooks.configure(
            body["targetUrl"],
            client_secret=body.get("clientSecret"),
            app_id=body.get("appId"),
            subscriptions=body.get("subscriptions"),
        )
        return jsonify(
            {"targetUrl": body["targetUrl"], "subscriptions": state.webhooks.subscriptions}
        )

    @app.delete("/_sandbox/webhooks")
    def disable_webhooks() -> Response:
        state.webhooks.disable()
        return Response(status=204)

    @app.post("/_sandbox/webhooks/flush")
    def flush_webhooks() -> Response:
        drained = state.webhooks.flush(timeout=float(request.args.get("timeout", "10")))
        return jsonify({"drained": drained, "deliveries": len(state.webhooks.deliveries)})

    @app.post("/_sandbox/tokens")
    def issue_token() -> Response:
        token = state.issue_token((request.get_json(silent=True) or {}).get("scopes") or ())
        return jsonify(
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_in": int((token.expires_at - token.issued_at).total_seconds()),
                "token_type": "bearer",
            }
        )

    @app.post("/_sandbox/tokens/expire")
    def expire_tokens() -> Response:
        return jsonify({"expired": state.expire_access_tokens()})

    # A rep leaving is an admin's act in HubSpot's settings, not an API call: sandbox-only.
    @app.post("/_sandbox/owners/<owner_id>/archive")
    def archive_owner(owner_id: str) -> Response:
        state.archive_owner(owner_id)
        return Response(status=204)

    @app.post("/_sandbox/owners/<owner_id>/restore")
    def restore_owner(owner_id: str) -> Response:
        state.archive_owner(owner_id, archived=False)
        return Response(status=204)

    _register_ui(app, state)


def _register_ui(app: Flask, state: HubSpotState) -> None:
    """What a rep does in the HubSpot UI, with the webhooks HubSpot sends (CRM_UI)."""

    def ui() -> Source:
        return Source.ui(state.ui_user_id)

    @app.post("/_sandbox/ui/<object_type>")
    def ui_create(object_type: str) -> Response:
        body = _body()
        new_id = state.create_object(object_type, _properties_of(body), source=ui())
        return _created({"id": new_id})

    @app.patch("/_sandbox/ui/<object_type>/<object_id>")
    def ui_update(object_type: str, object_id: str) -> Response:
        changed = state.update_object(object_type, object_id, _properties_of(_body()), source=ui())
        return jsonify({"id": object_id, "changed": changed})

    @app.delete("/_sandbox/ui/<object_type>/<object_id>")
    def ui_delete(object_type: str, object_id: str) -> Response:
        state.archive_object(object_type, object_id, source=ui())
        return Response(status=204)

    @app.post("/_sandbox/ui/deals/<deal_id>/<activity_type>")
    def ui_log_activity(deal_id: str, activity_type: str) -> Response:
        body = _body()
        new_id = state.log_activity(
            activity_type,
            _properties_of(body),
            deal_ids=[deal_id],
            contact_ids=[str(c) for c in body.get("contactIds") or []],
            source=ui(),
        )
        return _created({"id": new_id})

    @app.put("/_sandbox/ui/associations/<from_type>/<from_id>/<to_type>/<to_id>")
    def ui_associate(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        types = state.associate(
            from_type, from_id, to_type, to_id, labels=body.get("labels") or [],
            replace=bool(body.get("replace")), source=ui(),
        )  # fmt: skip
        return jsonify({"typeIds": types})

    @app.delete("/_sandbox/ui/associations/<from_type>/<from_id>/<to_type>/<to_id>")
    def ui_dissociate(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        state.dissociate(from_type, from_id, to_type, to_id, source=ui())
        return Response(status=204)


def _created(body: dict) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response
