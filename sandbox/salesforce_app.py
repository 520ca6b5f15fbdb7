"""The emulated org's HTTP face (Flask): OAuth, the REST API under ``/services/data/vXX.X``, the
Tooling API, and sandbox-only routes. Shapes follow Salesforce's REST API Developer Guide;
``sandbox/salesforce.py`` lists what is emulated.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, request

from sandbox.salesforce_errors import SalesforceError, not_found
from sandbox.salesforce_ids import normalize
from sandbox.salesforce_objects import OBJECTS, TOOLING_OBJECTS
from sandbox.salesforce_outbound import DEFAULT_FIELDS, OutboundMessages
from sandbox.salesforce_soql import Context, execute, json_value, parse
from sandbox.salesforce_state import SalesforceState, Session

__all__ = ["create_app"]

BATCH = 2000
"""Records per query batch (the most Salesforce returns)."""
MAX_CURSORS = 50
COLLECTION_MAX = 200
COMPOSITE_MAX = 25
COMPOSITE_QUERIES_MAX = 5
"""Of a Composite request's subrequests, how many may be queries (query, queryAll) or sObject
Collections (REST API Developer Guide, Composite: "up to 5 of these subrequests")."""
_COMPOSITE_HEAVY = re.compile(r"/services/data/v[\d.]+/(?:query|queryAll|composite/sobjects)\b")
URI_MAX = 16_384
"""Bytes of URI (and of URI plus headers) a REST call may carry: 414, then 431 past it."""
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _Cursors:
    """Open query locators: the rows not yet returned, oldest dropped past ``MAX_CURSORS``."""

    def __init__(self, prefix: Callable[[], str]) -> None:
        self._open: OrderedDict[str, tuple[list[dict], int, int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._new = prefix

    def open(self, rows: list[dict], total: int, size: int, offset: int) -> str:
        with self._lock:
            locator = self._new()
            self._open[locator] = (rows, total, size, offset)
            while len(self._open) > MAX_CURSORS:
                self._open.popitem(last=False)
            return locator

    def take(self, locator: str) -> tuple[list[dict], int, int, int]:
        with self._lock:
            found = self._open.pop(locator, None)
        if found is None:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return found


def create_app(state: SalesforceState, outbound: OutboundMessages | None = None) -> Flask:
    """The Flask app serving ``state``; ``outbound`` is the org's outbound-message action
    (configured through ``POST /_sandbox/outbound`` when given)."""
    app = Flask("sandbox.salesforce")
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # attributes first, as Salesforce
    cursors = _Cursors(lambda: state.ids.new("01g")[:15])
    # Marks a Composite subrequest replayed inside the app: one call for the whole composite.
    inner_key = secrets.token_hex(16)

    # --- plumbing -----------------------------------------------------------------------------

    @app.errorhandler(SalesforceError)
    def refused(exc: SalesforceError) -> Response:
        if exc.headers.pop("X-OAuth-Error", None):
            response = jsonify({"error": exc.code, "error_description": exc.message})
        else:
            response = jsonify(exc.body())
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(404)
    def missing(_exc: Exception) -> Response:
        return refused(not_found())

    @app.errorhandler(405)
    def wrong_method(_exc: Exception) -> Response:
        return refused(
            SalesforceError(
                405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed."
            )
        )

    @app.before_request
    def size_limits() -> Response | None:
        if not request.path.startswith("/services/") or _inner(inner_key):
            return None
        environ = request.environ
        uri = len((environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").encode())
        headers = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if uri > URI_MAX:
            return refused(SalesforceError(414, "URI_TOO_LONG", f"URI Too Long ({uri} bytes)"))
        if uri + headers > URI_MAX:
            return refused(
                SalesforceError(
                    431,
                    "REQUEST_HEADER_FIELDS_TOO_LARGE",
                    f"Request Header Fields Too Large (URI and headers: {uri + headers} bytes)",
                )
            )
        return None

    @app.after_request
    def limit_header(response: Response) -> Response:
        if request.path.startswith("/services/data/v"):
            used, limit = state.api_usage()
            response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
        return response

    def api(rule: str, route: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
        """A counted, authenticated REST route under /services/data/vXX.X."""

        def wrap(view: Callable) -> Callable:
            def guarded(version: str, **kwargs: Any) -> Any:
                _version(version)
                g.session = state.authenticate(_bearer())
                if not _inner(inner_key):
                    state.count_call(f"{request.method} {route}")
                return view(**kwargs)

            guarded.__name__ = f"api_{view.__name__}"
            app.add_url_rule(
                f"/services/data/v<version>{rule}", view_func=guarded, methods=list(methods)
            )
            return view

        return wrap

    def session() -> Session:
        return g.session

    def body() -> Any:
        data = request.get_json(silent=True)
        if data is None:
            raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        return data

    def url(sobject: str, record_id: str) -> str:
        return f"/services/data/v{state.api_version}/sobjects/{sobject}/{record_id}"

    def context(*, tooling: bool = False, include_deleted: bool = False) -> Context:
        user = session().user_id
        table = TOOLING_OBJECTS if tooling else OBJECTS

        def records(sobject: str) -> Any:
            rows = state.records[sobject].values()
            return rows if include_deleted else (r for r in rows if not r["IsDeleted"])

        def lookup(record_id: str) -> dict | None:
            sobject = state.type_of(record_id)
            record = state.records.get(sobject or "", {}).get(record_id)
            return record if record is not None and not record["IsDeleted"] else None

        def type_name(name: str) -> str:
            odef = next(
                (o for n, o in table.items() if n.lower() == name.lower() and state.has_type(n)),
                None,
            )
            if odef is None:
                raise SalesforceError(
                    400,
                    "INVALID_TYPE",
                    f"sObject type '{name}' is not supported. If you are attempting to use a "
                    "custom object, be sure to append the '__c' after the entity name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                )
            return odef.name

        return Context(
            records=records,
            lookup=lookup,
            schema=lambda t: state.fields_for(t, user, tooling=tooling),
            type_name=type_name,
            children=lambda t: {
                n: c for n, c in table[t].children.items() if state.has_type(c[0])
            },
            now=state.clock(),
            url=url,
        )

    def run_query(
        soql: str | None, *, tooling: bool = False, include_deleted: bool = False
    ) -> Response:
        if not soql:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        query = parse(soql)
        with state.lock:
            total, rows = execute(query, context(tooling=tooling, include_deleted=include_deleted))
        size = _batch_size()
        return jsonify(_page(rows, total, size, 0, tooling))

    def _page(rows: list[dict], total: int, size: int, offset: int, tooling: bool) -> dict:
        """One batch from ``rows`` (those left from ``offset`` on), with the locator of the
        rest: ``nextRecordsUrl`` ends ``/<locator>-<offset of the next batch>``.

        Child records count toward the batch size (QueryOptions: "in relationship queries,
        multiple child objects are returned per parent row returned"): a batch holds the
        parents whose rows and children fit in ``size`` (one parent at least). A child result
        larger than the batch size carries its own ``nextRecordsUrl`` with ``done`` false, to
        be read with queryMore like any result ("Understanding Query Results")."""
        base = f"/services/data/v{state.api_version}/{'tooling/' if tooling else ''}query"
        taken, used = 0, 0
        for row in rows:
            weight = 1 + sum(min(len(child["records"]), size) for child in _child_results(row))
            if taken and used + weight > size:
                break
            taken, used = taken + 1, used + weight
        for row in rows[:taken]:
            for child in _child_results(row):
                if len(child["records"]) > size and child["done"]:
                    rest = child["records"][size:]
                    locator = cursors.open(rest, child["totalSize"], size, size)
                    child["records"] = child["records"][:size]
                    child["done"] = False
                    child["nextRecordsUrl"] = f"{base}/{locator}-{size}"
        out: dict[str, Any] = {"totalSize": total, "done": taken >= len(rows)}
        if taken < len(rows):
            locator = cursors.open(rows[taken:], total, size, offset + taken)
            out["nextRecordsUrl"] = f"{base}/{locator}-{offset + taken}"
        out["records"] = rows[:taken]
        if tooling:
            out["entityTypeName"] = rows[0]["attributes"]["type"] if rows else None
        return out

    # --- OAuth --------------------------------------------------------------------------------

    @app.get("/services/oauth2/authorize")
    def authorize() -> Response:
        args = request.args
        if args.get("response_type") != "code":
            raise SalesforceError(400, "unsupported_response_type", "response type not supported")
        redirect_uri = args.get("redirect_uri", "")
        state.check_client(args.get("client_id", ""), redirect_uri)
        method = args.get("code_challenge_method", "S256")
        challenge = args.get("code_challenge")
        if challenge is not None and method not in ("S256", "plain"):
            query = {
                "error": "invalid_request",
                "error_description": "invalid code challenge method",
            }
        else:
            code = state.authorize(
                args["client_id"],
                redirect_uri,
                code_challenge=challenge,
                method=method,
                scope=args.get("scope", "api refresh_token"),
            )
            query = {"code": code}
        if "state" in args:
            query["state"] = args["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return redirect(f"{redirect_uri}{separator}{urlencode(query)}", code=302)

    @app.post("/services/oauth2/token")
    def token() -> Response:
        form = request.form
        grant = form.get("grant_type")
        if grant == "authorization_code":
            issued = state.exchange_code(
                form.get("code", ""),
                form.get("client_id", ""),
                form.get("client_secret"),
                form.get("redirect_uri", ""),
                form.get("code_verifier"),
            )
        elif grant == "refresh_token":
            issued = state.refresh(
                form.get("refresh_token", ""), form.get("client_id", ""), form.get("client_secret")
            )
        else:
            exc = SalesforceError(400, "unsupported_grant_type", "grant type not supported")
            exc.headers["X-OAuth-Error"] = "1"
            raise exc
        answer = {
            "access_token": issued.access_token,
            "signature": state.signature(issued),
            "scope": "api refresh_token",
            "instance_url": state.instance_url,
            "id": state.id_url(issued),
            "token_type": "Bearer",
            "issued_at": str(int(issued.issued_at.timestamp() * 1000)),
        }
        if grant == "authorization_code" or state.rotate_refresh_tokens:
            answer["refresh_token"] = issued.refresh_token
        return jsonify(answer)

    @app.get("/id/<org_id>/<user_id>")
    def identity(org_id: str, user_id: str) -> Response:
        """The identity URL of the token response: who the token's user is, in which org."""
        current = state.authenticate(_bearer())
        if org_id != state.org_id or user_id != current.user_id:
            raise SalesforceError(403, "Bad_Id", "Bad_Id")
        with state.lock:
            user = dict(state.get("User", user_id))
        return jsonify(
            {
                "id": state.id_url(current),
                "organization_id": state.org_id,
                "user_id": user_id,
                "username": user["Username"],
                "display_name": user["Name"],
                "email": user["Email"],
                "active": user["IsActive"],
                "urls": {
                    "rest": f"{state.instance_url}/services/data/v{{version}}/",
                    "query": f"{state.instance_url}/services/data/v{{version}}/query/",
                    "sobjects": f"{state.instance_url}/services/data/v{{version}}/sobjects/",
                    "custom_domain": state.instance_url,
                },
            }
        )

    @app.post("/services/oauth2/revoke")
    def revoke() -> Response:
        state.revoke(request.form.get("token", ""))
        return Response(status=200)

    # --- REST: versions, limits, describe -----------------------------------------------------

    @app.get("/services/data")
    def versions() -> Response:
        return jsonify(
            [
                {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"},
                {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"},
            ]
        )

    @api("/limits", "limits")
    def limits() -> Response:
        used, limit = state.api_usage()
        return jsonify({"DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)}})

    @api("/sobjects", "describeGlobal")
    def describe_global() -> Response:
        return jsonify(
            {
                "encoding": "UTF-8",
                "maxBatchSize": COLLECTION_MAX,
                "sobjects": [
                    _object_summary(o.name, o.prefix)
                    for o in OBJECTS.values()
                    if state.has_type(o.name)
                ],
            }
        )

    @api("/sobjects/<sobject>/describe", "describe")
    def describe(sobject: str) -> Response:
        odef = state.object_def(sobject)
        fields = state.fields_for(odef.name, session().user_id)
        return jsonify(
            {
                **_object_summary(odef.name, odef.prefix),
                "createable": odef.createable,
                "updateable": odef.updateable,
                "fields": [
                    f.describe(state.picklist(odef.name, f.name) or None) for f in fields.values()
                ],
                "childRelationships": [
                    {
                        "childSObject": child,
                        "field": ref,
                        "relationshipName": name,
                        "cascadeDelete": False,
                    }
                    for name, (child, ref) in odef.children.items()
                ],
            }
        )

    # --- REST: records ------------------------------------------------------------------------

    @api("/sobjects/<sobject>", "sobject", methods=("POST",))
    def create(sobject: str) -> Response:
        values = body()
        if not isinstance(values, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        record_id = state.insert(sobject, values, by=session().user_id, user_id=session().user_id)
        response = jsonify({"id": record_id, "success": True, "errors": []})
        response.status_code = 201
        response.headers["Location"] = url(state.object_def(sobject).name, record_id)
        return response

    @api("/sobjects/<sobject>/updated", "sobject/updated")
    def updated(sobject: str) -> Response:
        """Ids of records changed (SystemModstamp) in [start, end] (the getUpdated call)."""
        odef = state.object_def(sobject)
        start, end = _window()
        with state.lock:
            ids = [r["Id"] for r in state.live(odef.name) if start <= r["SystemModstamp"] <= end]
        return jsonify({"ids": ids, "latestDateCovered": json_value(end)})

    @api("/sobjects/<sobject>/deleted", "sobject/deleted")
    def deleted(sobject: str) -> Response:
        """Records deleted in [start, end] (the getDeleted call)."""
        odef = state.object_def(sobject)
        start, end = _window()
        with state.lock:
            gone = [
                {"id": r["Id"], "deletedDate": json_value(r["SystemModstamp"])}
                for r in state.records[odef.name].values()
                if r["IsDeleted"] and start <= r["SystemModstamp"] <= end
            ]
        return jsonify(
            {
                "deletedRecords": gone,
                "earliestDateAvailable": json_value(state.created_at),
                "latestDateCovered": json_value(end),
            }
        )

    def _window() -> tuple[datetime, datetime]:
        try:
            start = datetime.fromisoformat(request.args["start"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(request.args["end"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise SalesforceError(
                400,
                "INVALID_REPLICATION_DATE",
                "start and end must be ISO 8601 date-times, e.g. 2026-11-01T00:00:00+00:00",
            ) from None
        if start.tzinfo is None or end.tzinfo is None or end < start:
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "start and end need offsets, start before end"
            )
        return start.astimezone(UTC), min(end.astimezone(UTC), state.clock())

    @api("/composite/sobjects/<sobject>", "composite/sobjects/{type}")
    def retrieve_many(sobject: str) -> Response:
        """Records of one type by id (``ids``, ``fields``); null for an id not found."""
        odef = state.object_def(sobject)
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        names = [n.strip() for n in request.args.get("fields", "").split(",") if n.strip()]
        if not ids or not names:
            raise SalesforceError(400, "MALFORMED_QUERY", "ids and fields are required")
        _collection_size(len(ids))
        with state.lock:
            visible = {n.lower(): n for n in state.fields_for(odef.name, session().user_id)}
            unknown = [n for n in names if n.lower() not in visible]
            if unknown:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{unknown[0]}' on sobject of type {odef.name}",
                )
            out: list[dict | None] = []
            for record_id in ids:
                rid = normalize(record_id)
                data = state.records[odef.name].get(rid or "")
                if data is None or data["IsDeleted"]:
                    out.append(None)
                    continue
                row: dict[str, Any] = {
                    "attributes": {"type": odef.name, "url": url(odef.name, data["Id"])}
                }
                row.update(
                    {visible[n.lower()]: json_value(data[visible[n.lower()]]) for n in names}
                )
                out.append(row)
        return jsonify(out)

    @api("/sobjects/<sobject>/<record_id>", "sobject/{id}", methods=("GET", "PATCH", "DELETE"))
    def record(sobject: str, record_id: str) -> Response:
        odef = state.object_def(sobject)
        user = session().user_id
        if normalize(record_id) is None or state.type_of(normalize(record_id) or "") != odef.name:
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        if request.method == "PATCH":
            values = body()
            if not isinstance(values, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            state.update(odef.name, record_id, values, by=user, user_id=user)
            return Response(status=204)
        if request.method == "DELETE":
            state.delete(odef.name, record_id, by=user)
            return Response(status=204)
        with state.lock:
            visible = state.fields_for(odef.name, user)
            data = state.get(odef.name, record_id)
            wanted = request.args.get("fields")
            names = [n.strip() for n in wanted.split(",")] if wanted else list(visible)
            out: dict[str, Any] = {
                "attributes": {"type": odef.name, "url": url(odef.name, data["Id"])}
            }
            lower = {n.lower(): n for n in visible}
            for name in names:
                canonical = lower.get(name.lower())
                if canonical is None:
                    raise SalesforceError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name}' on sobject of type {odef.name}",
                    )
                out[canonical] = json_value(data.get(canonical))
        return jsonify(out)

    @api("/composite/sobjects", "composite/sobjects", methods=("POST", "PATCH", "DELETE"))
    def collections() -> Response:
        user = session().user_id
        if request.method == "DELETE":
            ids = [i for i in request.args.get("ids", "").split(",") if i]
            _collection_size(len(ids))
            results = []
            for record_id in ids:
                try:
                    state.delete(
                        state.type_of(normalize(record_id) or "") or "", record_id, by=user
                    )
                    results.append({"id": normalize(record_id), "success": True, "errors": []})
                except SalesforceError as exc:
                    results.append(
                        {"id": record_id, "success": False, "errors": [exc.save_error()]}
                    )
            return jsonify(results)
        payload = body()
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "The request must carry a records list")
        _collection_size(len(records))
        all_or_none = bool(payload.get("allOrNone", False))
        creating = request.method == "POST"
        with state.lock:
            if all_or_none:
                failures = _dry_run(records, creating, user)
                if any(failures):
                    return jsonify(
                        [
                            {
                                "id": None if creating else rec.get("id"),
                                "success": False,
                                "errors": [
                                    failure
                                    or {
                                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                        "message": "Record rolled back because not all records "
                                        "were valid and the request was using AllOrNone header",
                                        "fields": [],
                                    }
                                ],
                            }
                            for rec, failure in zip(records, failures, strict=True)
                        ]
                    )
            results = [_save(rec, creating, user) for rec in records]
        return jsonify(results)

    def _save(rec: Any, creating: bool, user: str) -> dict:
        try:
            sobject, values, record_id = _collection_record(rec, creating)
            if creating:
                record_id = state.insert(sobject, values, by=user, user_id=user)
            else:
                state.update(sobject, record_id, values, by=user, user_id=user)
            return {"id": normalize(record_id), "success": True, "errors": []}
        except SalesforceError as exc:
            rid = rec.get("id") if isinstance(rec, dict) and not creating else None
            return {"id": rid, "success": False, "errors": [exc.save_error()]}

    def _dry_run(records: list, creating: bool, user: str) -> list[dict | None]:
        """Each record's error if it were saved, without saving anything."""
        failures: list[dict | None] = []
        for rec in records:
            try:
                sobject, values, record_id = _collection_record(rec, creating)
                odef = state.object_def(sobject)
                if not creating:
                    state.get(odef.name, record_id)
                state.validate(odef, values, user, creating=creating)
                failures.append(None)
            except SalesforceError as exc:
                failures.append(exc.save_error())
        return failures

    def _collection_record(rec: Any, creating: bool) -> tuple[str, dict, str]:
        if not isinstance(rec, dict) or not isinstance(rec.get("attributes"), dict):
            raise SalesforceError(
                400, "INVALID_FIELD", "Each record must have attributes with its type"
            )
        sobject = str(rec["attributes"].get("type") or "")
        values = {k: v for k, v in rec.items() if k not in ("attributes", "id", "Id")}
        record_id = str(rec.get("id") or rec.get("Id") or "")
        if creating and record_id:
            raise SalesforceError(
                400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]
            )
        if not creating:
            rid = normalize(record_id)
            if rid is None:
                raise SalesforceError(400, "MALFORMED_ID", f"malformed id {record_id}", ["Id"])
            if state.type_of(rid) != state.object_def(sobject).name:
                raise SalesforceError(400, "INVALID_ID_FIELD", f"invalid record id {record_id}")
        return sobject, values, record_id

    @api("/composite", "composite", methods=("POST",))
    def composite() -> Response:
        """Subrequests run in order, each answered apart; the whole counts as one call."""
        payload = body()
        subrequests = payload.get("compositeRequest") if isinstance(payload, dict) else None
        if not isinstance(subrequests, list) or not 1 <= len(subrequests) <= COMPOSITE_MAX:
            raise SalesforceError(
                400,
                "INVALID_BATCH_REQUEST",
                f"compositeRequest must hold 1 to {COMPOSITE_MAX} subrequests",
            )
        heavy = sum(1 for sub in subrequests if _COMPOSITE_HEAVY.match(str(sub.get("url") or "")))
        if heavy > COMPOSITE_QUERIES_MAX:
            raise SalesforceError(
                400,
                "INVALID_BATCH_REQUEST",
                f"compositeRequest may hold at most {COMPOSITE_QUERIES_MAX} query or sObject "
                f"Collections subrequests, not {heavy}",
            )
        if payload.get("allOrNone"):
            raise SalesforceError(
                400, "INVALID_BATCH_REQUEST", "allOrNone true is not supported by this emulator"
            )
        client = app.test_client()
        done: dict[str, Any] = {}
        answers = []
        for sub in subrequests:
            reference = str(sub.get("referenceId") or "")
            try:
                url = _substitute(str(sub.get("url") or ""), done)
                data = json.loads(_substitute(json.dumps(sub.get("body")), done, quoted=True))
            except KeyError as exc:
                answers.append(_halted(reference, f"Invalid reference specified: {exc.args[0]}"))
                continue
            if not url.startswith("/services/data/v"):
                answers.append(_halted(reference, f"Invalid subrequest url: {url}"))
                continue
            answer = client.open(
                url,
                method=str(sub.get("method") or "GET"),
                json=data,
                headers={
                    "Authorization": request.headers.get("Authorization", ""),
                    "X-Sandbox-Inner": inner_key,
                },
            )
            result = answer.get_json(silent=True)
            if answer.status_code < 300:
                done[reference] = result
            headers = (
                {"Location": answer.headers["Location"]} if "Location" in answer.headers else {}
            )
            answers.append(
                {
                    "body": result,
                    "httpHeaders": headers,
                    "httpStatusCode": answer.status_code,
                    "referenceId": reference,
                }
            )
        return jsonify({"compositeResponse": answers})

    # --- REST: query --------------------------------------------------------------------------

    @api("/query", "query")
    def query() -> Response:
        return run_query(request.args.get("q"))

    @api("/queryAll", "queryAll")
    def query_all() -> Response:
        return run_query(request.args.get("q"), include_deleted=True)

    @api("/query/<locator>", "query/{locator}")
    def query_more(locator: str) -> Response:
        return _more(locator, tooling=False)

    @api("/queryAll/<locator>", "queryAll/{locator}")
    def query_all_more(locator: str) -> Response:
        return _more(locator, tooling=False)

    def _more(locator: str, *, tooling: bool) -> Response:
        rows, total, size, offset = cursors.take(locator.split("-")[0])
        return jsonify(_page(rows, total, size, offset, tooling))

    # --- Tooling API --------------------------------------------------------------------------

    @api("/tooling/query", "tooling/query")
    def tooling_query() -> Response:
        return run_query(request.args.get("q"), tooling=True)

    @api("/tooling/query/<locator>", "tooling/query/{locator}")
    def tooling_query_more(locator: str) -> Response:
        return _more(locator, tooling=True)

    @api("/tooling/sobjects/CustomField", "tooling/sobjects/CustomField", methods=("POST",))
    def create_custom_field() -> Response:
        data = body()
        if not isinstance(data, dict) or not isinstance(data.get("Metadata"), dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "CustomField needs FullName and a Metadata object"
            )
        field_id = state.create_custom_field(str(data.get("FullName") or ""), data["Metadata"])
        response = jsonify(
            {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []}
        )
        response.status_code = 201
        return response

    @api("/tooling/sobjects/CustomField/<field_id>", "tooling/sobjects/CustomField/{id}")
    def get_custom_field(field_id: str) -> Response:
        with state.lock:
            data = state.get("CustomField", field_id)
            out = {"attributes": {"type": "CustomField"}}
            out.update({k: json_value(v) for k, v in data.items()})
        return jsonify(out)

    # --- sandbox-only -------------------------------------------------------------------------

    @app.get("/_sandbox/counts")
    def counts() -> Response:
        used, limit = state.api_usage()
        return jsonify({"byRoute": state.counts(), "apiUsage": used, "dailyLimit": limit})

    @app.post("/_sandbox/counts/reset")
    def reset_counts() -> Response:
        state.reset_counts()
        return Response(status=204)

    @app.post("/_sandbox/sessions")
    def new_session() -> Response:
        issued = state.issue_session()
        return jsonify(
            {
                "access_token": issued.access_token,
                "refresh_token": issued.refresh_token,
                "instance_url": state.instance_url,
            }
        )

    @app.post("/_sandbox/sessions/expire")
    def expire_sessions() -> Response:
        state.expire_sessions()
        return Response(status=204)

    @app.post("/_sandbox/outbound")
    def configure_outbound() -> Response:
        if outbound is None:
            raise not_found("this emulator runs without outbound messages")
        data = request.get_json(silent=True) or {}
        outbound.configure(
            data.get("endpoint"),
            tuple(data.get("fields") or DEFAULT_FIELDS),
            send_session_id=bool(data.get("sendSessionId", False)),
        )
        return Response(status=204)

    @app.route("/_sandbox/ui/<sobject>/<record_id>", methods=["PATCH"])
    def ui_update(sobject: str, record_id: str) -> Response:
        """A user edits a record in Salesforce's UI (as the first active seeded rep, or the API
        user)."""
        data = request.get_json(silent=True) or {}
        state.update(sobject, record_id, data, by=_ui_user())
        return Response(status=204)

    @app.route("/_sandbox/ui/<sobject>", methods=["POST"])
    def ui_create(sobject: str) -> Response:
        data = request.get_json(silent=True) or {}
        record_id = state.insert(sobject, data, by=_ui_user())
        return jsonify({"id": record_id})

    def _ui_user() -> str:
        # A deactivated user cannot log in, so cannot click either.
        users = [
            u for u in state.live("User") if u["Id"] != state.api_user_id and u["IsActive"]
        ]
        return users[0]["Id"] if users else state.api_user_id

    return app


def _child_results(row: dict) -> list[dict]:
    """The child relationship results of a rendered row (``{totalSize, done, records}``)."""
    return [
        value
        for value in row.values()
        if isinstance(value, dict) and "records" in value and "done" in value
    ]


def _inner(key: str) -> bool:
    return request.headers.get("X-Sandbox-Inner") == key


def _halted(reference: str, message: str) -> dict:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }


def _substitute(text: str, done: dict[str, Any], *, quoted: bool = False) -> str:
    """Replace ``@{ref.field}`` / ``@{ref.records[0].Id}`` by earlier results (KeyError when
    a reference names nothing)."""

    def value(match: re.Match[str]) -> str:
        current: Any = done[match[1]] if match[1] in done else _missing(match[0])
        for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", match[2]):
            try:
                current = current[part[0]] if part[0] else current[int(part[1])]
            except (KeyError, IndexError, TypeError):
                _missing(match[0])
        text = str(current)
        return json.dumps(text)[1:-1] if quoted else text

    return _REFERENCE.sub(value, text)


def _missing(reference: str) -> Any:
    raise KeyError(reference)


def _version(version: str) -> None:
    try:
        number = float(version)
    except ValueError:
        raise not_found() from None
    if not 20.0 <= number <= 62.0:
        raise not_found()


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    for scheme in ("Bearer ", "OAuth "):
        if header.startswith(scheme):
            return header[len(scheme) :].strip()
    return None


def _batch_size() -> int:
    """``Sforce-Query-Options: batchSize=N`` (200 to 2,000; a hint, as in Salesforce)."""
    option = request.headers.get("Sforce-Query-Options", "")
    for part in option.split(","):
        key, _, value = part.strip().partition("=")
        if key == "batchSize" and value.isdigit():
            return min(BATCH, max(200, int(value)))
    return BATCH


def _collection_size(n: int) -> None:
    if n > COLLECTION_MAX:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {COLLECTION_MAX} records into this "
            "call",
        )


def _object_summary(name: str, prefix: str) -> dict:
    return {
        "name": name,
        "label": name,
        "keyPrefix": prefix,
        "custom": False,
        "queryable": True,
        "urls": {
            "sobject": f"/services/data/v59.0/sobjects/{name}",
            "describe": f"/services/data/v59.0/sobjects/{name}/describe",
        },
    }
