"""The Sell emulator's HTTP API: a Flask app over one ``SellState``.

Routes follow Sell's documented paths and shapes, listed in ``sandbox.sell``'s docstring. Every
``/v2`` and ``/v3`` request needs a ``User-Agent`` (400 ``invalid_user_agent`` without one) and
``Authorization: Bearer <token>`` (401), then counts against the token's hourly allowance (429).
Writes are wrapped in ``{"data": {...}}`` and answered as ``{"data": {...}, "meta": {"type"}}``;
lists as ``{"items": [{"data", "meta"}], "meta": {"type": "collection", "count", "links"}}``.
``/_sandbox/...`` routes are the emulator's own (no auth, not counted, not limited).

Error policy: every refusal is Sell's error envelope with its status (400 malformed, 401 auth,
404 missing, 410 expired position, 422 invalid value, 429 allowance); unexpected exceptions are a
500 with the same envelope so a client's error translation sees what it would in production.
"""

import re
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

from sandbox.sell_auth import DEFAULT_SCOPE
from sandbox.sell_errors import SellError, bad_request, oauth_error
from sandbox.sell_firehose import DEFAULT_LIMIT, MAX_LIMIT
from sandbox.sell_resources import DEFAULTS, FILTERS, ITEM_TYPE, SORTABLE_EXCLUDED, WRITABLE
from sandbox.sell_state import SellState

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "create_app", "route_key"]

DEFAULT_PER_PAGE = 25
"""Items per page of a list when ``per_page`` is not given."""

MAX_PER_PAGE = 100
"""Largest ``per_page`` of a list."""

_PARAM = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def create_app(state: SellState) -> Flask:
    """The emulator's Flask app serving ``state`` (no work happens at import time)."""
    app = Flask("sandbox.sell")
    app.json.sort_keys = False
    _register_errors(app)
    _register_gate(app, state)
    _register_oauth(app, state)
    _register_records(app, state)
    _register_associations(app, state)
    _register_custom_fields(app, state)
    _register_firehose(app, state)
    _register_sandbox(app, state)
    return app


# --------------------------------------------------------------------------------------------
# Errors, counting, user agent, auth and the hourly allowance
# --------------------------------------------------------------------------------------------


def _error_response(error: SellError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _register_errors(app: Flask) -> None:
    app.register_error_handler(SellError, _error_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.code or 0, "bad_request")
        return _error_response(SellError(exc.code or 500, code, exc.description or ""))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        app.logger.exception("emulator bug")
        return _error_response(SellError(500, "server_error", f"Internal error: {exc}"))


def route_key(method: str, rule: str, view_args: Mapping[str, object]) -> str:
    """``"GET /v2/deals/{id}"``: the route with the resource named and other parameters as
    ``{name}``."""

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name in ("resource", "resource_type"):
            return str(view_args.get(name, name))
        return "{" + name + "}"

    return f"{method} {_PARAM.sub(fill, rule)}"


def _register_gate(app: Flask, state: SellState) -> None:
    @app.before_request
    def gate() -> None:
        if request.path.startswith("/_sandbox"):
            return
        rule = request.url_rule.rule if request.url_rule else request.path
        state.count(route_key(request.method, rule, request.view_args or {}))
        if not request.path.startswith(("/v2/", "/v3/")):
            return
        if not request.headers.get("User-Agent", "").strip():
            raise bad_request(
                "invalid_user_agent",
                "Missing User-Agent header: send one naming your client, e.g. "
                "'User-Agent: dealradar/1.0'.",
            )
        header = request.headers.get("Authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
        g.token = state.authenticate(bearer)
        g.rate = state.hit(g.token)

    @app.after_request
    def rate_headers(response: Response) -> Response:
        for name, value in (g.get("rate") or {}).items():
            response.headers[name] = value
        return response


# --------------------------------------------------------------------------------------------
# OAuth 2
# --------------------------------------------------------------------------------------------


def _register_oauth(app: Flask, state: SellState) -> None:
    @app.get("/oauth2/authorize")
    def authorize() -> Response:
        """Consent is given at once: 302 to ``redirect_uri`` with ``code`` and ``state``."""
        args = request.args
        if args.get("client_id") != state.oauth.client_id:
            raise oauth_error(400, "invalid_client", "Unknown client_id.")
        if args.get("response_type", "code") != "code":
            raise oauth_error(400, "unsupported_response_type", "Only response_type=code.")
        redirect_uri = args.get("redirect_uri")
        if not redirect_uri:
            raise oauth_error(400, "invalid_request", "redirect_uri is required.")
        scope = (args.get("scope") or DEFAULT_SCOPE).replace("+", " ")
        with state.lock:
            code = state.oauth.issue_code(state.admin_id, redirect_uri, scope, state.clock())
        query = {"code": code}
        if "state" in args:
            query["state"] = args["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return redirect(f"{redirect_uri}{sep}{urlencode(query)}", 302)

    @app.post("/oauth2/token")
    def token() -> Response:
        form = request.form
        auth = request.authorization
        client_id = auth.username if auth else form.get("client_id")
        client_secret = auth.password if auth else form.get("client_secret")
        grant = form.get("grant_type")
        with state.lock:
            state.oauth.check_client(client_id, client_secret)
            now = state.clock()
            if grant == "authorization_code":
                issued = state.oauth.exchange_code(
                    form.get("code", ""), form.get("redirect_uri"), now
                )
            elif grant == "refresh_token":
                issued = state.oauth.refresh(form.get("refresh_token", ""), now)
            else:
                raise oauth_error(
                    400,
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token.",
                )
            body = {
                "access_token": issued.access_token,
                "token_type": "bearer",
                "expires_in": issued.expires_in(now),
                "refresh_token": issued.refresh_token,
                "scope": issued.scope,
            }
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        return response


# --------------------------------------------------------------------------------------------
# Core API v2 records
# --------------------------------------------------------------------------------------------


def _one(resource: str, record: dict) -> dict:
    return {"data": record, "meta": {"type": ITEM_TYPE[resource]}}


def _body() -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise bad_request(
            "invalid_envelope", 'The request body must be a JSON object {"data": {...}}.'
        )
    return payload["data"]


def _known(resource: str) -> str:
    if resource not in DEFAULTS:
        raise SellError(404, "not_found", f"Unknown resource /v2/{resource}")
    return resource


def _writable(resource: str) -> str:
    if _known(resource) not in WRITABLE:
        raise SellError(405, "method_not_allowed", f"/v2/{resource} is read only")
    return resource


def _register_records(app: Flask, state: SellState) -> None:
    @app.get("/v2/accounts/self")
    def accounts_self() -> Response:
        with state.lock:
            account = dict(state.account)
        return jsonify({"data": account, "meta": {"type": "account"}})

    @app.get("/v2/users/self")
    def users_self() -> Response:
        return jsonify(_one("users", state.get("users", g.token.user_id)))

    @app.get("/v2/<resource>")
    def list_records(resource: str) -> Response:
        ids, where = _filters(_known(resource))
        records = _sorted(resource, state.select(resource, ids, where))
        return jsonify(_paged(ITEM_TYPE[resource], records))

    @app.get("/v2/<resource>/<int:record_id>")
    def get_record(resource: str, record_id: int) -> Response:
        return jsonify(_one(resource, state.get(_known(resource), record_id)))

    @app.post("/v2/<resource>")
    def create_record(resource: str) -> Response:
        record = state.create(_writable(resource), _body(), user_id=g.token.user_id)
        return jsonify(_one(resource, record))

    @app.put("/v2/<resource>/<int:record_id>")
    def update_record(resource: str, record_id: int) -> Response:
        record = state.update(_writable(resource), record_id, _body(), user_id=g.token.user_id)
        return jsonify(_one(resource, record))

    @app.delete("/v2/<resource>/<int:record_id>")
    def delete_record(resource: str, record_id: int) -> Response:
        state.delete(_writable(resource), record_id)
        return Response(status=204)


def _filters(resource: str) -> tuple[list[int] | None, dict[str, object]]:
    """``ids`` and the exact-match filters of the query string."""
    args = request.args
    ids = None
    if "ids" in args:
        ids = [_int("ids", part) for part in args["ids"].split(",") if part.strip()]
    where = {
        name: _typed(name, args[name], kind)
        for name, kind in FILTERS.get(resource, {}).items()
        if name in args
    }
    return ids, where


def _sorted(resource: str, records: list[dict]) -> list[dict]:
    """``sort_by=<field>:<asc|desc>``; by id when not given."""
    if "sort_by" not in request.args:
        return records
    field, _, order = request.args["sort_by"].partition(":")
    sortable = (set(DEFAULTS[resource]()) | {"id", "created_at", "updated_at"}) - SORTABLE_EXCLUDED
    if field not in sortable:
        raise bad_request("invalid_param", f"cannot sort {resource} by {field!r}")
    if order not in ("", "asc", "desc"):
        raise bad_request("invalid_param", "sort_by order must be asc or desc")
    # None last whatever the order; ties by id so pages never overlap.
    present = sorted(
        (r for r in records if r[field] is not None), key=lambda r: (r[field], r["id"])
    )
    if order == "desc":
        present.reverse()
    return present + [r for r in records if r[field] is None]


def _typed(name: str, raw: str, kind: str) -> object:
    if kind == "int":
        return _int(name, raw)
    if kind == "bool":
        if raw not in ("true", "false"):
            raise bad_request("invalid_param", f"{name} must be true or false")
        return raw == "true"
    return raw


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise bad_request("invalid_param", f"{name} must be an integer, got {raw!r}") from None


def _paged(item_type: str, records: list[dict]) -> dict:
    """One page of ``records`` in Sell's collection envelope (page items copied: the state may
    change them once its lock is released)."""
    page = _int("page", request.args.get("page", "1"))
    per_page = _int("per_page", request.args.get("per_page", str(DEFAULT_PER_PAGE)))
    if page < 1:
        raise bad_request("invalid_param", "page starts at 1")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise bad_request("invalid_param", f"per_page must be between 1 and {MAX_PER_PAGE}")
    chunk = records[(page - 1) * per_page : page * per_page]
    links = {"self": _page_url(page), "first_page": _page_url(1)}
    if page > 1:
        links["prev_page"] = _page_url(page - 1)
    if page * per_page < len(records):
        links["next_page"] = _page_url(page + 1)
    return {
        "items": [{"data": dict(r), "meta": {"type": item_type}} for r in chunk],
        "meta": {"type": "collection", "count": len(chunk), "links": links},
    }


def _page_url(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = str(page)
    return f"{request.base_url}?{urlencode(args)}"


# --------------------------------------------------------------------------------------------
# Associated contacts, custom fields, Firehose
# --------------------------------------------------------------------------------------------


def _register_associations(app: Flask, state: SellState) -> None:
    base = "/v2/deals/<int:deal_id>/associated_contacts"

    def item(link: dict) -> dict:
        return {"data": link, "meta": {"type": "associated_contact"}}

    @app.get(base)
    def list_associated(deal_id: int) -> Response:
        return jsonify(_paged("associated_contact", state.associated_contacts(deal_id)))

    @app.post(base)
    def add_associated(deal_id: int) -> Response:
        data = _body()
        contact_id = data.get("contact_id")
        if not isinstance(contact_id, int):
            raise SellError(422, "missing", "contact_id is required", field="/data/contact_id")
        link = state.associate(deal_id, contact_id, data.get("role", "involved"))
        return jsonify(item(link))

    @app.delete(base + "/<int:contact_id>")
    def remove_associated(deal_id: int, contact_id: int) -> Response:
        state.dissociate(deal_id, contact_id)
        return Response(status=204)


def _register_custom_fields(app: Flask, state: SellState) -> None:
    def listing(resource_type: str) -> Response:
        if resource_type not in ("deal", "contact", "lead"):
            raise bad_request("invalid_param", "resource_type must be deal, contact or lead")
        with state.lock:
            fields = state.custom_fields.list(resource_type)
        items = [{"data": f, "meta": {"type": "custom_field"}} for f in fields]
        return jsonify({"items": items, "meta": {"type": "collection", "count": len(items)}})

    for resource_type in ("deal", "contact", "lead"):
        app.add_url_rule(
            f"/v2/{resource_type}/custom_fields",
            f"custom_fields_{resource_type}",
            _bind(listing, resource_type),
        )

    @app.get("/v2/custom_fields")
    def custom_fields_by_query() -> Response:
        return listing(request.args.get("resource_type", ""))

    @app.get("/v3/<resource>/custom_fields")
    def custom_fields_mapping(resource: str) -> Response:
        """The Search API's custom fields mapping: ids as strings, with ``search_api_id``."""
        resource_type = {"deals": "deal", "contacts": "contact", "leads": "lead"}.get(resource)
        if resource_type is None:
            raise SellError(404, "not_found", f"Unknown resource /v3/{resource}/custom_fields")
        with state.lock:
            fields = state.custom_fields.list(resource_type)
        items = [
            {
                "data": {
                    "id": str(f["id"]),
                    "name": f["name"],
                    "type": f["type"],
                    "resource_type": resource_type,
                    "search_api_id": f"custom_fields.{f['id']}",
                },
                "meta": {"type": "custom_field"},
            }
            for f in fields
        ]
        return jsonify({"items": items, "meta": {"type": "collection", "count": len(items)}})


def _bind(view: Callable[[str], Response], value: str) -> Callable[[], Response]:
    return lambda: view(value)


def _register_firehose(app: Flask, state: SellState) -> None:
    @app.get("/v3/<resource>/stream")
    def stream(resource: str) -> Response:
        if resource != "custom_fields":
            _known(resource)
        limit = _int("limit", request.args.get("limit", str(DEFAULT_LIMIT)))
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_request("invalid_param", f"limit must be between 1 and {MAX_LIMIT}")
        page = state.stream(resource, request.args.get("position"), limit)
        next_url = f"{request.base_url}?{urlencode({'position': page['position']})}"
        return jsonify(
            {
                "items": page["items"],
                "meta": {
                    "links": {"next": next_url},
                    "position": page["position"],
                    "top": page["top"],
                },
            }
        )


# --------------------------------------------------------------------------------------------
# The emulator's own routes
# --------------------------------------------------------------------------------------------


def _register_sandbox(app: Flask, state: SellState) -> None:
    @app.get("/_sandbox/counts")
    def counts() -> Response:
        return jsonify(state.counts())

    @app.post("/_sandbox/counts/reset")
    def reset_counts() -> Response:
        state.reset_counts()
        return Response(status=204)

    @app.post("/_sandbox/users/<int:user_id>/deactivate")
    def deactivate_user(user_id: int) -> Response:
        """A rep leaves: what an admin does in Sell's settings (``SellState.deactivate_user``)."""
        return jsonify(_one("users", _status_change(state.deactivate_user, user_id)))

    @app.post("/_sandbox/users/<int:user_id>/reactivate")
    def reactivate_user(user_id: int) -> Response:
        return jsonify(_one("users", _status_change(state.reactivate_user, user_id)))

    @app.post("/_sandbox/tokens")
    def tokens() -> Response:
        """``{"personal": true}`` for a personal access token, else an OAuth pair."""
        payload = request.get_json(silent=True) or {}
        token = state.personal_access_token() if payload.get("personal") else state.issue_token()
        return jsonify(
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_in": token.expires_in(state.clock()),
                "user_id": token.user_id,
            }
        )


def _status_change(change: Callable[[int], dict], user_id: int) -> dict:
    try:
        return change(user_id)
    except ValueError as exc:  # the account owner
        raise bad_request("invalid_param", str(exc)) from None
