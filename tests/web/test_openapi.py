"""/api/v1 against its own OpenAPI document, by schemathesis: generated requests (valid ones and
invalid ones) to every operation of the live app, on SQLite and PostgreSQL with a real Redis,
for a tenant with deals, alerts and a mute. No answer may be a 5xx, and every answer must be
one the document declares, with the body it declares."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from connector.store.models import Mute
from connector.store.snapshots import save_bundles
from connector.store.tenants import create_tenant, current_settings
from connector.web import api
from engine.model import load_bundle
from jobs.pipeline import record

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
BUNDLES = sorted((Path(__file__).parents[2] / "examples" / "bundles").glob("*.json"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 20
"""Generated requests per operation (fuzzing phase); the examples and coverage phases add a
bounded number of their own."""


@pytest.fixture
def api_key(app: Flask) -> str:
    """A tenant with the example deals, evaluated, and one mute."""
    services = app.extensions["dealradar"]
    services.clock = lambda: NOW
    store = services.store
    tenant, key = create_tenant(
        store, crm="test", account_id="schemathesis", timezone="Europe/Paris", now=NOW
    )
    bundles = [load_bundle(json.loads(p.read_text())) for p in BUNDLES]
    settings_ = current_settings(store, tenant.id)
    with store.tenant(tenant.id) as s:
        save_bundles(s, tenant.id, bundles, NOW)
        record(s, tenant.id, bundles, settings_, NOW)
        s.add(Mute(
            tenant_id=tenant.id, deal_id="d-1002", code="no_activity", until=date(2026, 12, 1),
            created_by="test", created_at=NOW,
        ))  # fmt: skip
    return key


def _document() -> dict[str, Any]:
    """The document the app serves, built from the blueprint alone (no store, no Redis): the
    operations must be known when pytest collects, before any fixture gives an app."""
    bare = Flask("openapi")
    api.register(bare)
    response = bare.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


SETTINGS_WRITES = {
    "include-path": "/api/v1/settings",
    "include-method": ["PUT", "PATCH"],
    "phases": {"coverage": {"generation": {"mode": "positive"}}},
}
"""The coverage phase walks every boundary of the settings document, valid and invalid: some
2,500 requests for PUT and PATCH, mostly re-testing engine.settings' validation (unit-tested in
tests/test_settings.py). Its valid boundaries stay; invalid documents still come from fuzzing."""

schema = schemathesis.openapi.from_dict(
    _document(), config=SchemathesisConfig.from_dict({"operations": [SETTINGS_WRITES]})
)


def test_the_app_serves_the_document_under_test(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").get_json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_to_its_openapi_document(case: Any, app: Flask, api_key: str) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)


DEAL_CALLS = [
    ("/api/v1/deals/{deal_id}", "GET", None),
    ("/api/v1/deals/{deal_id}/mutes", "POST", {"code": "amount_missing", "until": "2027-01-01"}),
    ("/api/v1/deals/{deal_id}", "GET", None),  # now with a mute
    ("/api/v1/deals/{deal_id}/mutes/{code}", "DELETE", None),
    ("/api/v1/deals/{deal_id}/refresh", "POST", None),
]


def test_stored_deals_answer_as_documented(app: Flask, api_key: str) -> None:
    """Generated ids almost never name a stored deal: the stored ones, through the same checks."""
    headers = {"Authorization": f"Bearer {api_key}"}
    for bundle in BUNDLES:
        deal_id = json.loads(bundle.read_text())["deal"]["id"]
        for path, method, body in DEAL_CALLS:
            params = {"deal_id": deal_id, "code": "amount_missing"}
            case = schema[path][method].Case(
                path_parameters={k: v for k, v in params.items() if f"{{{k}}}" in path},
                **({"body": body, "media_type": "application/json"} if body else {}),
            )
            response = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
            assert response.status_code < 300, (method, path, deal_id, response.text)


def _readme_calls() -> set[tuple[str, str]]:
    """(method, path) of every curl to /api/v1 in the README, ids as they are written there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    readme = readme.replace("$API", "http://127.0.0.1:8000/api/v1").replace("\\\n", " ")
    calls = set()
    for line in readme.splitlines():
        if "curl " not in line:
            continue
        method = re.search(r"-X (\w+)", line)
        for path in re.findall(r"(/api/v1/[^\s'\"?]*)", line):
            calls.add((method.group(1) if method else "GET", path))
    return calls


def _operations() -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path, a pattern its concrete paths match) of every operation of the document."""
    return [
        (method.upper(), path, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"))
        for path, operations in _document()["paths"].items()
        for method in operations
        if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]


def test_the_readme_shows_every_operation() -> None:
    """The README's curls are how a user finds the API: each operation of the document is
    shown there, with its method (ids as the README writes them: DEAL_ID, sales, ...), and the
    README shows none the API does not have."""
    calls, operations = _readme_calls(), _operations()
    missing = [
        f"{method} {path}" for method, path, pattern in operations
        if not any(m == method and pattern.match(p) for m, p in calls)
    ]  # fmt: skip
    assert missing == [], "operations the README does not show"
    unknown = sorted(
        f"{m} {p}" for m, p in calls
        if p != "/api/v1/openapi.json"
        and not any(m == method and pattern.match(p) for method, _, pattern in operations)
    )  # fmt: skip
    assert unknown == [], "calls the README shows that the API does not have"
