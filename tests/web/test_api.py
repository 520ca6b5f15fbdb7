"""/api/v1 on a real store (SQLite and PostgreSQL) and a real Redis: keys, settings, deals,
mutes, refreshes, sweeps, and one tenant's key reading nothing of another's."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select, update

from connector import queues
from connector.app import Services, create_app
from connector.store.models import Evaluation, HealthPoint, Mute, SweepRun
from connector.store.snapshots import save_bundles
from connector.store.tenants import (
    create_tenant,
    current_settings,
    issue_api_key,
    list_api_keys,
    revoke_api_key,
    set_status,
    uninstall_tenant,
)
from connector.web import api
from engine.model import load_bundle
from jobs import runtime, sweep
from jobs.pipeline import record
from jobs.runtime import Runtime

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TODAY = date(2026, 11, 25)  # in Europe/Paris too, at 09:00
EXAMPLES = {
    json.loads(p.read_text())["deal"]["id"]: json.loads(p.read_text())
    for p in sorted((Path(__file__).parents[2] / "examples" / "bundles").glob("*.json"))
}
"""d-1001 Acme (enterprise, u-claire), d-1002 Globex (u-tom, poor, close date passed),
d-1003 Initech (u-claire), d-1004 Umbrella (u-tom, no amount), d-1005 Hooli (won)."""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Tenant:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def clock(app: Flask) -> Clock:
    clock = Clock(NOW)
    app.extensions["dealradar"].clock = clock
    return clock


@pytest.fixture
def services(app: Flask, clock: Clock) -> Services:
    return app.extensions["dealradar"]


def _tenant(services: Services, account: str) -> Tenant:
    tenant, key = create_tenant(
        services.store, crm="test", account_id=account, timezone="Europe/Paris", now=NOW
    )
    return Tenant(tenant.id, key)


@pytest.fixture
def a(services: Services) -> Tenant:
    return _tenant(services, "account-a")


@pytest.fixture
def b(services: Services) -> Tenant:
    return _tenant(services, "account-b")


def _bundle(deal_id: str, source: str = "d-1001", **deal: Any) -> Any:
    data = copy.deepcopy(EXAMPLES[source])
    data["deal"].update(id=deal_id, **deal)
    return load_bundle(data)


def seed(services: Services, tenant: Tenant, bundles: list[Any], *, evaluate: bool = True) -> None:
    settings = current_settings(services.store, tenant.id)
    with services.store.tenant(tenant.id) as s:
        save_bundles(s, tenant.id, bundles, NOW)
        if evaluate:
            record(s, tenant.id, bundles, settings, NOW)


def seed_examples(services: Services, tenant: Tenant) -> None:
    seed(services, tenant, [load_bundle(data) for data in EXAMPLES.values()])


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


# --- authentication -----------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/settings"),
    ("PUT", "/api/v1/settings"),
    ("PATCH", "/api/v1/settings"),
    ("GET", "/api/v1/settings/history"),
    ("GET", "/api/v1/deals"),
    ("GET", "/api/v1/deals/d-1001"),
    ("POST", "/api/v1/deals/d-1001/mutes"),
    ("DELETE", "/api/v1/deals/d-1001/mutes/no_activity"),
    ("POST", "/api/v1/deals/d-1001/refresh"),
    ("POST", "/api/v1/sweep"),
    ("POST", "/api/v1/hooks"),
    ("GET", "/api/v1/hooks"),
    ("DELETE", "/api/v1/hooks/0b6a8c47-54ad-4c47-9d43-3d6e3e0a2a1f"),
    ("PUT", "/api/v1/slack-webhooks/sales"),
    ("GET", "/api/v1/slack-webhooks"),
    ("DELETE", "/api/v1/slack-webhooks/sales"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_wants_a_key(client: FlaskClient, a: Tenant, method: str, path: str) -> None:
    response = client.open(path, method=method, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="dealradar"'
    assert response.json["error"] == "Unauthorized" and "Bearer" in response.json["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer drk_" + "x" * 40},  # well-formed, unknown
        {"Authorization": "Bearer not-a-key"},
        {"X-Api-Key": "drk_" + "y" * 40},
    ],
)
def test_unknown_keys_are_401_invalid_token(
    client: FlaskClient, a: Tenant, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/settings", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert set(response.json) == {"error", "detail"}
    assert "dealradar tenants api-key issue" in response.json["detail"], "says how to get one"


def test_a_key_in_another_scheme_is_not_taken(client: FlaskClient, a: Tenant) -> None:
    response = client.get("/api/v1/settings", headers={"Authorization": f"Basic {a.key}"})
    assert response.status_code == 401


def test_x_api_key_is_accepted(client: FlaskClient, a: Tenant) -> None:
    assert client.get("/api/v1/settings", headers={"X-Api-Key": a.key}).status_code == 200


def test_x_api_key_is_taken_beside_an_authorization_in_another_scheme(
    client: FlaskClient, a: Tenant
) -> None:
    """A client (or a proxy) sending Basic credentials had its X-Api-Key ignored: 401."""
    basic = {"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": a.key}
    assert client.get("/api/v1/settings", headers=basic).status_code == 200
    bearer_wins = {"Authorization": "Bearer drk_" + "x" * 40, "X-Api-Key": a.key}
    assert client.get("/api/v1/settings", headers=bearer_wins).status_code == 401


def test_an_uninstalled_tenants_key_is_told_to_install_again_not_to_get_a_new_key(
    client: FlaskClient, services: Services, a: Tenant, b: Tenant
) -> None:
    """The 401 told an uninstalled tenant's admin to issue a new key, which was refused too."""
    fresh = issue_api_key(services.store, a.id, "before the uninstall", NOW)
    uninstall_tenant(services.store, a.id, "the customer left", NOW)
    for key in (a.key, fresh):
        response = client.get("/api/v1/settings", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401
        detail = response.json["detail"]
        assert "uninstalled (the customer left)" in detail and "installed again" in detail
        assert "api-key issue" not in detail
    assert client.get("/api/v1/settings", headers=b.headers).status_code == 200
    unknown = client.get("/api/v1/settings", headers={"X-Api-Key": "drk_" + "z" * 40})
    assert "uninstalled" not in unknown.json["detail"], "an unknown key learns of no tenant"


def test_a_revoked_key_is_401_and_the_tenants_other_keys_still_work(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    second = issue_api_key(services.store, a.id, "ci", NOW)
    (first,) = [k for k in list_api_keys(services.store, a.id) if k.label == "initial"]
    revoke_api_key(services.store, a.id, first.id, NOW)
    assert client.get("/api/v1/settings", headers=a.headers).status_code == 401
    ok = client.get("/api/v1/settings", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200


def test_the_openapi_document_is_public_and_describes_every_endpoint(
    client: FlaskClient,
) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "The tenant's API key",
    }  # fmt: skip
    assert {"bearer": []} in spec["security"]
    operations = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert len(operations) == len(ENDPOINTS)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                assert "401" in operation["responses"], (method, path)
    assert "alerts" in spec["components"]["schemas"]["Settings"]["properties"]


def test_the_rest_of_the_app_keeps_its_own_error_answers(client: FlaskClient) -> None:
    response = client.get("/webhooks/hubspot")
    assert response.status_code == 405
    assert set(response.json) == {"error", "detail"}


# --- settings -----------------------------------------------------------------------------------


def test_settings_before_any_save_are_the_defaults_in_the_tenants_zone(
    client: FlaskClient, a: Tenant
) -> None:
    response = client.get("/api/v1/settings", headers=a.headers)
    assert response.status_code == 200
    body = response.json
    assert (body["version"], body["document"], body["changed_by"]) == (0, {}, None)
    assert body["effective"]["timezone"] == "Europe/Paris"
    assert body["effective"]["alerts"]["no_activity"] == {
        "enabled": True, "days": 10, "unless_next_step": False,
    }  # fmt: skip


def test_put_replaces_the_document_and_records_who(client: FlaskClient, a: Tenant) -> None:
    first = {"locale": "fr", "alerts": {"no_activity": {"days": 14}}}
    assert client.put("/api/v1/settings", headers=a.headers, json=first).json["version"] == 1
    second = {"alerts": {"deal_too_old": {"days": 90}}}
    response = client.put("/api/v1/settings", headers=a.headers, json=second)
    assert response.status_code == 200
    body = response.json
    assert (body["version"], body["document"]) == (2, second)
    assert body["effective"]["locale"] == "en", "replaced, not merged"
    assert body["effective"]["alerts"]["no_activity"]["days"] == 10
    assert body["effective"]["alerts"]["deal_too_old"]["days"] == 90
    assert body["changed_by"] == a.key[:8]
    assert datetime.fromisoformat(body["changed_at"]) == NOW
    history = client.get("/api/v1/settings/history", headers=a.headers).json["items"]
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["document"] == first
    assert {h["changed_by"] for h in history} == {a.key[:8]}
    assert history[0]["comment"] == "replaced through the API"


def test_patch_merges_into_the_saved_document(client: FlaskClient, a: Tenant) -> None:
    client.put(
        "/api/v1/settings",
        headers=a.headers,
        json={"locale": "fr", "alerts": {"no_activity": {"days": 14, "enabled": True}}},
    )
    patch = {"alerts": {"no_activity": {"enabled": False}, "deal_too_old": {"days": 90}}}
    response = client.patch("/api/v1/settings", headers=a.headers, json=patch)
    assert response.status_code == 200
    assert response.json["version"] == 2
    assert response.json["document"] == {
        "locale": "fr",
        "alerts": {"no_activity": {"days": 14, "enabled": False}, "deal_too_old": {"days": 90}},
    }
    # null removes a key (JSON merge patch): the setting is back to its default
    response = client.patch(
        "/api/v1/settings",
        headers=a.headers,
        data=json.dumps({"locale": None, "alerts": {"no_activity": {"days": None}}}),
        content_type="application/merge-patch+json",
    )
    assert response.status_code == 200, response.json
    assert response.json["document"] == {
        "alerts": {"no_activity": {"enabled": False}, "deal_too_old": {"days": 90}},
    }
    assert response.json["effective"]["locale"] == "en"
    assert response.json["effective"]["alerts"]["no_activity"]["days"] == 10


def test_removing_a_team_an_alert_still_gives_its_tasks_to_is_refused_naming_the_alert(
    client: FlaskClient, a: Tenant
) -> None:
    team = {"tasks": {"teams": {"revops": ["101", "102"]},
                      "alerts": {"amount_missing": {"team": "revops"}}}}  # fmt: skip
    assert client.put("/api/v1/settings", headers=a.headers, json=team).status_code == 200

    response = client.patch("/api/v1/settings", headers=a.headers, data=json.dumps(
        {"tasks": {"teams": {"revops": None}}}), content_type="application/merge-patch+json")

    assert response.status_code == 422
    assert list(response.json["errors"]) == ["tasks.alerts.amount_missing.team"]
    assert client.get("/api/v1/settings", headers=a.headers).json["document"] == team


def test_the_documented_patch_body_takes_the_nulls_that_remove_settings(
    client: FlaskClient, a: Tenant
) -> None:
    """The document described the PATCH body with the closed Settings schema, which forbids
    null: a client generated from it could not remove a setting, nor a validator pass one."""
    patch = {"locale": None, "alerts": {"no_activity": {"days": None}}, "pipelines": {"p": None}}
    response = client.patch("/api/v1/settings", headers=a.headers, data=json.dumps(patch),
                            content_type="application/merge-patch+json")  # fmt: skip
    assert response.status_code == 200, response.json
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    body = spec["paths"]["/api/v1/settings"]["patch"]["requestBody"]["content"]
    for media in ("application/json", "application/merge-patch+json"):
        patch_schema = _resolved(schemas, body[media]["schema"])
        assert patch_schema.get("additionalProperties") is False, "still closed"
        alerts = _resolved(schemas, patch_schema["properties"]["alerts"])
        no_activity = _resolved(schemas, alerts["properties"]["no_activity"])
        for nullable in (
            patch_schema["properties"]["locale"],
            patch_schema["properties"]["alerts"],
            no_activity["properties"]["days"],
            patch_schema["properties"]["pipelines"]["additionalProperties"],
        ):
            assert _takes_null(nullable), nullable
    put = spec["paths"]["/api/v1/settings"]["put"]["requestBody"]["content"]["application/json"]
    assert not _takes_null(_resolved(schemas, put["schema"])["properties"]["locale"])


def _resolved(schemas: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema reached through its $ref, also when it is one branch of a nullable anyOf."""
    for branch in node.get("anyOf", [node]):
        if "$ref" in branch:
            return schemas[branch["$ref"].rsplit("/", 1)[-1]]
    return node


def _takes_null(node: dict[str, Any]) -> bool:
    types = node.get("type")
    return (
        node.get("nullable") is True
        or (isinstance(types, list) and "null" in types)
        or any(branch.get("type") == "null" for branch in node.get("anyOf", []))
    )


def test_patch_with_nothing_saved_starts_from_an_empty_document(
    client: FlaskClient, a: Tenant
) -> None:
    patch = {"health": {"good_from": 70}}
    response = client.patch("/api/v1/settings", headers=a.headers, json=patch)
    assert (response.status_code, response.json["document"]) == (200, patch)


def test_a_cut_point_patched_past_the_other_takes_it_along(client: FlaskClient, a: Tenant) -> None:
    """An admin drags one grade boundary past the other: the other moves with it (as in
    Dynamics), rather than a 422 asking to move both."""
    saved = {"health": {"good_from": 70, "fair_from": 50}}
    assert client.put("/api/v1/settings", headers=a.headers, json=saved).status_code == 200

    def patched(health: dict[str, int]) -> tuple[int, Any]:
        response = client.patch("/api/v1/settings", headers=a.headers, json={"health": health})
        return response.status_code, (response.json.get("effective") or {}).get("health")

    status, health = patched({"fair_from": 80})
    assert (status, health["good_from"], health["fair_from"]) == (200, 80, 80)
    status, health = patched({"good_from": 30})
    assert (status, health["good_from"], health["fair_from"]) == (200, 30, 30)
    status, health = patched({"good_from": 90})  # past nothing: the other stays
    assert (status, health["good_from"], health["fair_from"]) == (200, 90, 30)
    status, _ = patched({"good_from": 40, "fair_from": 60})  # both given: the admin's own pair
    assert status == 422


@pytest.mark.parametrize(
    ("health", "path"),
    [({"fair_from": 150}, "health.fair_from"), ({"good_from": -5}, "health.good_from")],
)
def test_a_cut_point_patched_out_of_range_is_the_only_field_refused(
    client: FlaskClient, a: Tenant, health: dict[str, int], path: str
) -> None:
    """A cut point out of 0..100 is the admin's mistake alone: the 422 names the field they
    sent, not the other one, which a valid value would have taken along."""
    saved = {"health": {"good_from": 70, "fair_from": 50}}
    assert client.put("/api/v1/settings", headers=a.headers, json=saved).status_code == 200
    response = client.patch("/api/v1/settings", headers=a.headers, json={"health": health})
    assert response.status_code == 422
    assert list(response.json["errors"]) == [path]
    assert client.get("/api/v1/settings", headers=a.headers).json["document"] == saved


def test_two_admins_patching_at_once_both_keep_their_change(
    client: FlaskClient, a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admin A's patch lands between admin B's read and B's save: B's patch is applied to A's
    version, not to the one it read, so neither change is lost."""
    client.put("/api/v1/settings", headers=a.headers, json={"locale": "fr"})
    save = api.save_settings
    overtaken: list[int] = []

    def a_patches_first(*args: Any, **kwargs: Any) -> int:
        if not overtaken:
            overtaken.append(1)
            first = client.patch("/api/v1/settings", headers=a.headers,
                                 json={"alerts": {"no_activity": {"days": 20}}})  # fmt: skip
            assert first.status_code == 200
        return save(*args, **kwargs)

    monkeypatch.setattr(api, "save_settings", a_patches_first)
    second = client.patch("/api/v1/settings", headers=a.headers, json={"health": {"good_from": 70}})
    assert second.status_code == 200, second.json
    assert second.json["version"] == 3
    assert second.json["document"] == {
        "locale": "fr", "alerts": {"no_activity": {"days": 20}}, "health": {"good_from": 70},
    }  # fmt: skip


def test_a_patch_overtaken_at_every_try_is_409_and_saves_nothing(
    client: FlaskClient, a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = api.save_settings
    tries: list[int] = []

    def always_overtaken(*args: Any, **kwargs: Any) -> int:
        if kwargs.get("based_on") is not None:  # the patch's save, not the other admin's put
            tries.append(1)
            client.put("/api/v1/settings", headers=a.headers, json={"locale": "fr"})
        return save(*args, **kwargs)

    monkeypatch.setattr(api, "save_settings", always_overtaken)
    response = client.patch("/api/v1/settings", headers=a.headers, json={"locale": "en"})
    assert response.status_code == 409
    assert "apply the change to the new one" in response.json["detail"]
    assert len(tries) == api.PATCH_ATTEMPTS
    monkeypatch.undo()
    latest = client.get("/api/v1/settings", headers=a.headers).json
    assert (latest["version"], latest["document"]) == (api.PATCH_ATTEMPTS, {"locale": "fr"})


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"alerts": {"no_activity": {"days": 0}}}, "alerts.no_activity.days"),
        ({"alerts": {"no_activty": {"days": 3}}}, "alerts.no_activty"),
        ({"pipelines": {"": {}}}, "pipelines"),  # an empty key: not "pipelines..key"
        ({"health": {"good_from": 30, "fair_from": 50}}, "health.fair_from"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "Europe"}, "timezone"),  # zoneinfo: IsADirectoryError, not 'not found'
        ({"timezone": "x" * 300}, "timezone"),  # zoneinfo: OSError, file name too long
        ({"alerts": {"key_role_silent": {"roles": ["\ud800"]}}}, "settings"),
    ],
)
def test_invalid_settings_are_422_with_field_errors_and_nothing_saved(
    client: FlaskClient, a: Tenant, method: str, document: dict, path: str
) -> None:
    response = client.open("/api/v1/settings", method=method, headers=a.headers, json=document)
    assert response.status_code == 422, response.json
    assert path in response.json["errors"]
    assert all(isinstance(m, str) for m in response.json["errors"][path])
    assert client.get("/api/v1/settings", headers=a.headers).json["version"] == 0


# Salesforce user ids: the API sends 18 characters, the UI and reports often show 15.
ANA15, ANA18 = "005Dx0023j4OKWi", "005Dx0023j4OKWiIAO"
BEN15, BEN18 = "005Dx0023j4OISz", "005Dx0023j4OISzIAO"


@pytest.fixture
def sf(services: Services) -> Tenant:
    tenant, key = create_tenant(
        services.store, crm="salesforce", account_id="00D5e000000Hxb2", timezone="UTC", now=NOW
    )
    return Tenant(tenant.id, key)


def test_a_salesforce_tenants_settings_take_15_character_user_ids_as_their_18(
    client: FlaskClient, sf: Tenant
) -> None:
    """Wherever settings name users, a 15-character id works as the 18-character one the API
    sends: the document keeps what the admin wrote, the settings in force say the 18."""
    document = {
        "tasks": {"fallback_owner": ANA15, "teams": {"desk": [ANA15, BEN18]}},
        "notifications": {"reps": {BEN15: {"digest": False}}},
        "digest": {"managers": [{"email": "sam@vendor.example", "reps": [ANA15, BEN15]}]},
    }
    response = client.put("/api/v1/settings", headers=sf.headers, json=document)
    assert response.status_code == 200, response.json
    assert response.json["document"] == document
    effective = response.json["effective"]
    assert effective["tasks"]["fallback_owner"] == ANA18
    assert effective["tasks"]["teams"] == {"desk": [ANA18, BEN18]}
    assert effective["notifications"]["reps"] == {BEN18: {"digest": False}}
    assert effective["digest"]["managers"][0]["reps"] == [ANA18, BEN18]


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"tasks": {"fallback_owner": "u-claire"}}, "tasks.fallback_owner", "15 or 18"),
        ({"tasks": {"fallback_owner": ANA15 + "I"}}, "tasks.fallback_owner", "15 or 18"),
        ({"tasks": {"fallback_owner": "00G5e000000AbCd"}}, "tasks.fallback_owner", "005"),
        ({"tasks": {"fallback_owner": ANA15 + "AAA"}}, "tasks.fallback_owner", "IAO"),
        ({"tasks": {"fallback_owner": ANA15.lower() + "IAO"}}, "tasks.fallback_owner", "AAA"),
        ({"tasks": {"teams": {"desk": [BEN18, "0051x0000#abcde"]}}}, "tasks.teams.desk.1", "#"),
        ({"tasks": {"teams": {"desk": [ANA15, BEN15, ANA18]}}}, "tasks.teams.desk", "twice"),
        ({"notifications": {"reps": {"tom": {"digest": False}}}}, "notifications.reps", "tom"),
        ({"notifications": {"reps": {ANA15: {}, ANA18: {}}}}, "notifications.reps", "twice"),
        (
            {"digest": {"managers": [{"email": "sam@vendor.example", "reps": [ANA15[:14]]}]}},
            "digest.managers.0.reps.0",
            "15 or 18",
        ),
    ],
)
def test_a_salesforce_tenants_settings_refuse_what_is_no_salesforce_user_id(
    client: FlaskClient, sf: Tenant, a: Tenant, document: dict, path: str, words: str
) -> None:
    """An id that can match no Salesforce user would be a fallback owner, a team member or a
    rep's choice that silently never applies: refused, naming the setting and the id."""
    response = client.put("/api/v1/settings", headers=sf.headers, json=document)
    assert response.status_code == 422, response.json
    assert path in response.json["errors"], response.json
    assert words in " ".join(response.json["errors"][path])
    assert client.get("/api/v1/settings", headers=sf.headers).json["version"] == 0
    other = client.put("/api/v1/settings", headers=a.headers, json=document)
    assert other.status_code == 200, "another CRM's ids are its own business"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("[1, 2]", "application/json", 422),
        ("null", "application/json", 422),
        ("{not json", "application/json", 400),
        ("locale=fr", "application/x-www-form-urlencoded", 415),
    ],
)
def test_a_settings_body_must_be_a_json_object(
    client: FlaskClient, a: Tenant, data: str, content_type: str, status: int
) -> None:
    response = client.put(
        "/api/v1/settings", headers=a.headers, data=data, content_type=content_type
    )
    assert response.status_code == status
    assert {"error", "detail"} <= set(response.json)


@pytest.mark.parametrize(
    ("method", "path", "documented"),
    [
        ("PUT", "/api/v1/settings", "/api/v1/settings"),
        ("PATCH", "/api/v1/settings", "/api/v1/settings"),
        ("POST", "/api/v1/deals/d-1002/mutes", "/api/v1/deals/{deal_id}/mutes"),
        ("POST", "/api/v1/hooks", "/api/v1/hooks"),
        ("PUT", "/api/v1/slack-webhooks/sales", "/api/v1/slack-webhooks/{name}"),
    ],
)
def test_a_form_instead_of_json_is_415_wherever_a_body_is_taken(
    client: FlaskClient, services: Services, a: Tenant, method: str, path: str, documented: str
) -> None:
    """A form-encoded body got 422 "Missing data" from the hooks, Slack webhooks and mutes,
    where the document and the settings say 415: not JSON."""
    seed_examples(services, a)
    form = "target_url=https://hooks.example.com/x&url=https://hooks.example.com/s&until=2027-01-15"
    response = client.open(path, method=method, headers=a.headers, data=form,
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 415, response.json
    assert "application/json" in response.json["detail"]
    spec = client.get("/api/v1/openapi.json").json
    assert "415" in spec["paths"][documented][method.lower()]["responses"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/settings"),
        ("PATCH", "/api/v1/settings"),
        ("POST", "/api/v1/deals/d-1002/mutes"),
        ("POST", "/api/v1/hooks"),
        ("PUT", "/api/v1/slack-webhooks/sales"),
    ],
)
def test_a_malformed_json_body_is_400_saying_the_json_is_invalid_and_where(
    client: FlaskClient, services: Services, a: Tenant, method: str, path: str
) -> None:
    """A typo in a curl -d (a missing brace) got Werkzeug's "The browser (or proxy) sent a
    request that this server could not understand": nothing said the JSON was at fault."""
    seed_examples(services, a)
    missing_brace = '{"alerts": {"no_activity": {"days": 14}}'
    response = client.open(path, method=method, headers=a.headers, data=missing_brace,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400, response.json
    detail = response.json["detail"]
    assert "not valid JSON" in detail and "line 1 column" in detail, detail


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/settings"),
        ("POST", "/api/v1/deals/d-1002/mutes"),
        ("POST", "/api/v1/hooks"),
        ("PUT", "/api/v1/slack-webhooks/sales"),
    ],
)
def test_a_json_body_that_is_no_object_is_422_saying_so_on_every_route(
    client: FlaskClient, services: Services, a: Tenant, method: str, path: str
) -> None:
    """`[1]` got "the body must be a JSON object" from the settings, but marshmallow's
    "Invalid input type." from mutes, hooks and Slack webhooks."""
    seed_examples(services, a)
    response = client.open(path, method=method, headers=a.headers, json=[1])
    assert response.status_code == 422, response.json
    assert "must be a JSON object" in json.dumps(response.json), response.json


def test_a_body_nested_too_deeply_to_parse_is_400(client: FlaskClient, a: Tenant) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for method in ("PUT", "PATCH"):
        response = client.open(
            "/api/v1/settings", method=method, headers=a.headers, data=deep,
            content_type="application/json",
        )  # fmt: skip
        assert response.status_code == 400 and "nested" in response.json["detail"]


# --- deals --------------------------------------------------------------------------------------


def test_deals_list_items_carry_snapshot_health_alerts_and_evaluated_at(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed_examples(services, a)
    response = client.get("/api/v1/deals", headers=a.headers)
    assert ids(response) == ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]
    assert response.json["next_cursor"] is None
    globex = response.json["items"][1]
    assert globex == {
        "id": "d-1002",
        "name": "Globex expansion",
        "pipeline": "sales",
        "stage": "contractsent",
        "stage_name": "contractsent",
        "owner": "u-tom",
        "amount": 23500.0,
        "currency": "EUR",
        "status": "open",
        "health": {"score": globex["health"]["score"], "grade": "poor", "trend": None},
        "alerts": sorted(globex["alerts"]),
        "evaluated_at": NOW.isoformat(),
    }
    assert {"close_date_passed", "no_activity", "stuck_in_stage"} <= set(globex["alerts"])
    umbrella = response.json["items"][3]
    assert umbrella["amount"] is None and "amount_missing" in umbrella["alerts"]


def test_a_deal_not_yet_evaluated_is_listed_without_health(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed(services, a, [_bundle("d-9")], evaluate=False)
    (item,) = client.get("/api/v1/deals", headers=a.headers).json["items"]
    assert (item["id"], item["health"], item["alerts"], item["evaluated_at"]) == (
        "d-9", None, [], None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alert=close_date_passed", ["d-1002"]),
        ("alert=no_meeting_scheduled", ["d-1002", "d-1003", "d-1004"]),
        ("alert=amount_missing", ["d-1004"]),
        ("owner=u-tom", ["d-1002", "d-1004"]),
        ("pipeline=enterprise", ["d-1001"]),
        ("grade=poor", ["d-1002", "d-1005"]),
        ("grade=good&owner=u-claire", ["d-1001", "d-1003"]),
        ("alert=no_meeting_scheduled&owner=u-tom&pipeline=sales&grade=good", ["d-1004"]),
        ("owner=nobody", []),
    ],
)
def test_deals_filters(
    client: FlaskClient, services: Services, a: Tenant, query: str, expected: list[str]
) -> None:
    seed_examples(services, a)
    assert ids(client.get(f"/api/v1/deals?{query}", headers=a.headers)) == expected


def test_the_alert_filter_matches_whole_codes_only(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed(services, a, [_bundle(f"d-{i}") for i in range(4)])
    codes = {"d-0": "no_activity_x", "d-1": "noXactivity", "d-2": "deal_too_old no_activity"}
    with services.store.tenant(a.id) as s:
        for deal_id, alert_codes in codes.items():
            s.execute(
                update(Evaluation)
                .where(Evaluation.deal_id == deal_id)
                .values(alert_codes=alert_codes)
            )
        s.execute(update(Evaluation).where(Evaluation.deal_id == "d-3").values(alert_codes=""))
    assert ids(client.get("/api/v1/deals?alert=no_activity", headers=a.headers)) == ["d-2"]


def test_pagination_walks_every_deal_once_in_id_order(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    deal_ids = [f"d-{i:03}" for i in range(7)]
    seed(services, a, [_bundle(d) for d in reversed(deal_ids)])
    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/api/v1/deals?{query}", headers=a.headers)
        seen += ids(response)
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (deal_ids, 3)


def test_pagination_with_a_filter(client: FlaskClient, services: Services, a: Tenant) -> None:
    seed(services, a, [_bundle(f"d-{i}", owner="u-tom" if i % 2 else "u-ann") for i in range(7)])
    first = client.get("/api/v1/deals?owner=u-tom&limit=2", headers=a.headers)
    assert ids(first) == ["d-1", "d-3"]
    cursor = first.json["next_cursor"]
    second = client.get(f"/api/v1/deals?owner=u-tom&limit=2&cursor={cursor}", headers=a.headers)
    assert ids(second) == ["d-5"] and second.json["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("alert=no_activty", "alert"),
        ("grade=excellent", "grade"),
        ("cursor=%25%25%25", "cursor"),
        ("cursor=AA", "cursor"),  # decodes to a NUL byte
        ("owner=a%00b", "owner"),
        ("colour=red", "colour"),
        ("owner=u-tom&owner=u-claire", "owner"),  # read as u-tom alone, it would mislead
        ("alert=amount_missing&grade=poor&alert=no_activity", "alert"),
        ("limit=1&limit=200", "limit"),
    ],
)
def test_bad_deal_queries_are_422(client: FlaskClient, a: Tenant, query: str, field: str) -> None:
    response = client.get(f"/api/v1/deals?{query}", headers=a.headers)
    assert response.status_code == 422
    assert field in response.json["errors"]
    assert {"error", "detail", "errors"} == set(response.json)


def test_one_deal_with_alerts_health_episodes_history_and_mutes(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed_examples(services, a)
    with services.store.tenant(a.id) as s:
        for days, score in ((100, 10), (30, 50)):  # one outside the 90 days, one inside
            s.add(HealthPoint(
                tenant_id=a.id, deal_id="d-1002", day=TODAY - timedelta(days=days),
                score=score, grade="fair",
            ))  # fmt: skip
    client.post(
        "/api/v1/deals/d-1002/mutes",
        headers=a.headers,
        json={"code": "amount_missing", "until": "2026-12-31"},
    )
    response = client.get("/api/v1/deals/d-1002", headers=a.headers)
    assert response.status_code == 200
    body = response.json
    assert body["deal"]["id"] == "d-1002" and body["deal"]["close_date"] == "2026-11-20"
    assert datetime.fromisoformat(body["deal"]["created_at"]).utcoffset() == timedelta(0)
    evaluation = body["evaluation"]
    assert datetime.fromisoformat(evaluation["evaluated_at"]) == NOW
    passed = next(x for x in evaluation["alerts"] if x["code"] == "close_date_passed")
    assert passed["message"] == "Close date passed 5 days ago (2026-11-20)"
    assert passed["facts"]["close_date"] == "2026-11-20"
    assert datetime.fromisoformat(passed["since"]) == NOW
    assert evaluation["health"]["grade"] == "poor" and evaluation["health"]["components"]
    assert {e["code"] for e in body["open_episodes"]} == {x["code"] for x in evaluation["alerts"]}
    assert all(datetime.fromisoformat(e["started_at"]) == NOW for e in body["open_episodes"])
    assert [(p["day"], p["score"]) for p in body["history"]] == [
        ("2026-10-26", 50), ("2026-11-25", evaluation["health"]["score"]),
    ]  # fmt: skip
    (mute,) = body["mutes"]
    assert (mute["code"], mute["until"], mute["created_by"]) == (
        "amount_missing", "2026-12-31", a.key[:8],
    )  # fmt: skip


def test_a_mute_that_has_ended_is_no_longer_listed(
    client: FlaskClient, services: Services, clock: Clock, a: Tenant
) -> None:
    seed_examples(services, a)
    client.post("/api/v1/deals/d-1002/mutes", headers=a.headers,
                json={"code": "amount_missing", "until": "2026-11-27"})  # fmt: skip

    def listed() -> list[str]:
        body = client.get("/api/v1/deals/d-1002", headers=a.headers).json
        return [m["code"] for m in body["mutes"]]

    clock.now = datetime(2026, 11, 26, 22, 59, tzinfo=UTC)  # the 26th, 23:59 in Paris
    assert listed() == ["amount_missing"]
    clock.now = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # the 27th in Paris: the alert is back
    assert listed() == []


def test_a_deal_not_yet_evaluated_has_no_evaluation(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed(services, a, [_bundle("d-9")], evaluate=False)
    body = client.get("/api/v1/deals/d-9", headers=a.headers).json
    assert (body["evaluation"], body["open_episodes"], body["history"]) == (None, [], [])


@pytest.mark.parametrize("deal_id", ["d-404", "a%00b", "x" * 65])
def test_an_unknown_deal_is_404(client: FlaskClient, a: Tenant, deal_id: str) -> None:
    response = client.get(f"/api/v1/deals/{deal_id}", headers=a.headers)
    assert response.status_code == 404
    assert {"error", "detail"} <= set(response.json)
    gone = client.delete(f"/api/v1/deals/{deal_id}/mutes/no_activity", headers=a.headers)
    assert gone.status_code == 404, "not a 503 from PostgreSQL refusing a NUL"


# --- mutes --------------------------------------------------------------------------------------


def _mutes(services: Services, tenant: Tenant) -> list[tuple[str, str, date]]:
    with services.store.tenant(tenant.id) as s:
        return [(m.deal_id, m.code, m.until) for m in s.scalars(select(Mute).order_by(Mute.code))]


def test_a_mute_is_added_replaced_and_removed(
    client: FlaskClient, services: Services, redis: Redis, a: Tenant
) -> None:
    seed_examples(services, a)
    url = "/api/v1/deals/d-1002/mutes"
    first = client.post(url, headers=a.headers, json={"code": "no_activity", "until": "2026-12-01"})
    assert first.status_code == 201
    assert first.json == {
        "deal_id": "d-1002", "code": "no_activity", "until": "2026-12-01",
        "created_by": a.key[:8], "created_at": NOW.isoformat(),
    }  # fmt: skip
    assert redis.sismember(queues.pending_key(a.id), "d-1002"), "re-evaluated soon after"
    again = client.post(url, headers=a.headers, json={"code": "no_activity", "until": "2027-01-15"})
    assert again.status_code == 201
    assert _mutes(services, a) == [("d-1002", "no_activity", date(2027, 1, 15))]
    assert client.delete(f"{url}/no_activity", headers=a.headers).status_code == 204
    assert _mutes(services, a) == []
    gone = client.delete(f"{url}/no_activity", headers=a.headers)
    assert gone.status_code == 404 and "no mute" in gone.json["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "no_such_alert", "until": "2026-12-01"}, "code"),
        ({"code": "no_activity", "until": "2026-11-24"}, "until"),  # yesterday
        ({"code": "no_activity", "until": "2026-11-25"}, "until"),  # today: would mute nothing
        ({"code": "no_activity", "until": "next week"}, "until"),
        ({"code": "no_activity"}, "until"),
        ({"code": "no_activity", "until": "2026-12-01", "why": "noise"}, "why"),
    ],
)
def test_a_bad_mute_is_422(
    client: FlaskClient, services: Services, a: Tenant, body: dict, field: str
) -> None:
    seed_examples(services, a)
    response = client.post("/api/v1/deals/d-1002/mutes", headers=a.headers, json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]
    assert _mutes(services, a) == []


def test_the_past_is_the_tenants_local_day(
    client: FlaskClient, services: Services, clock: Clock, a: Tenant
) -> None:
    seed_examples(services, a)
    clock.now = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # already the 26th in Paris
    response = client.post(
        "/api/v1/deals/d-1002/mutes",
        headers=a.headers,
        json={"code": "no_activity", "until": "2026-11-26"},
    )
    assert response.status_code == 422
    assert "2026-11-26" in response.json["errors"]["until"][0]


@pytest.mark.parametrize("until", ["15/01/2027", "2027-01-15T00:00:00Z", "next monday"])
def test_a_mute_until_no_date_is_422_saying_how_to_write_the_day(
    client: FlaskClient, services: Services, a: Tenant, until: str
) -> None:
    """"Not a valid date." left the rep guessing which of the world's formats the API wants."""
    seed_examples(services, a)
    response = client.post("/api/v1/deals/d-1002/mutes", headers=a.headers,
                           json={"code": "no_activity", "until": until})  # fmt: skip
    assert response.status_code == 422
    assert "YYYY-MM-DD" in " ".join(response.json["errors"]["until"]), response.json


def test_muting_an_unknown_deal_is_404_whatever_the_date_and_a_malformed_body_400(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    seed_examples(services, a)
    unknown = client.post(
        "/api/v1/deals/d-404/mutes",
        headers=a.headers,
        json={"code": "no_activity", "until": "2026-12-01"},
    )
    assert unknown.status_code == 404
    ended = client.post(
        "/api/v1/deals/d-404/mutes",
        headers=a.headers,
        json={"code": "no_activity", "until": "2020-01-01"},
    )
    assert ended.status_code == 404, "not 422 for the date: the deal is what is wrong"
    assert "d-404" in ended.json["detail"]
    malformed = client.post(
        "/api/v1/deals/d-1002/mutes",
        headers=a.headers,
        data="{oops",
        content_type="application/json",
    )
    assert malformed.status_code == 400
    not_an_alert = client.delete("/api/v1/deals/d-1002/mutes/not_an_alert", headers=a.headers)
    assert not_an_alert.status_code == 404


def test_lifting_a_mute_of_a_misspelt_code_is_404_naming_the_codes(
    client: FlaskClient, services: Services, a: Tenant
) -> None:
    """A typo in the code got Werkzeug's page-style 404, saying nothing of the code."""
    seed_examples(services, a)
    response = client.delete("/api/v1/deals/d-1002/mutes/no_activty", headers=a.headers)
    assert response.status_code == 404
    assert set(response.json) == {"error", "detail"}
    assert "'no_activty'" in response.json["detail"]
    assert "no_activity, no_meeting_scheduled" in response.json["detail"]


# --- refresh and sweep --------------------------------------------------------------------------


def test_refresh_queues_the_deal(
    client: FlaskClient, services: Services, redis: Redis, a: Tenant
) -> None:
    seed_examples(services, a)
    response = client.post("/api/v1/deals/d-1003/refresh", headers=a.headers)
    assert response.status_code == 202
    assert response.json == {"deal_id": "d-1003", "status": "queued"}
    assert redis.smembers(queues.pending_key(a.id)) == {b"d-1003"}
    assert client.post("/api/v1/deals/d-404/refresh", headers=a.headers).status_code == 404


def test_sweep_enqueues_the_start_for_the_tenants_local_day(
    client: FlaskClient, services: Services, clock: Clock, redis: Redis, a: Tenant
) -> None:
    clock.now = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # the 26th in Paris
    response = client.post("/api/v1/sweep", headers=a.headers)
    assert response.status_code == 202
    assert (response.json["day"], response.json["status"]) == ("2026-11-26", "queued")
    (job,) = Queue(queues.SWEEP, connection=redis).get_jobs()
    assert (job.id, job.func_name, job.args) == (
        response.json["job_id"], "jobs.sweep.start", (a.id, "2026-11-26"),
    )  # fmt: skip


def test_saved_settings_ask_for_the_days_sweep_again_under_them(
    client: FlaskClient, services: Services, clock: Clock, redis: Redis, a: Tenant
) -> None:
    """A new threshold shows on every deal today, not at tomorrow's sweep; a refused change
    asks for nothing."""
    clock.now = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # the 26th in Paris
    assert client.patch("/api/v1/settings", headers=a.headers,
                        json={"alerts": {"x": 1}}).status_code == 422  # fmt: skip
    assert Queue(queues.SWEEP, connection=redis).count == 0
    for method in (client.put, client.patch):
        response = method("/api/v1/settings", headers=a.headers,
                          json={"alerts": {"no_activity": {"days": 14}}})  # fmt: skip
        assert response.status_code == 200
    jobs = Queue(queues.SWEEP, connection=redis).get_jobs()
    assert [(j.func_name, j.args) for j in jobs] == [("jobs.sweep.again", (a.id, "2026-11-26"))]


def test_a_patch_that_changes_nothing_saves_nothing_and_sweeps_nothing(
    client: FlaskClient, redis: Redis, a: Tenant
) -> None:
    """An empty patch, or one that sets what is saved already, is no new version: the history
    stays readable and the day's deals are not evaluated again for nothing."""
    saved = client.put("/api/v1/settings", headers=a.headers,
                       json={"alerts": {"no_activity": {"days": 14}}})  # fmt: skip
    assert saved.json["version"] == 1
    redis.flushdb()  # the PUT's own sweep and its mark, which would coalesce the next ask
    for patch in ({}, {"alerts": {"no_activity": {"days": 14}}}):
        response = client.patch("/api/v1/settings", headers=a.headers, json=patch)
        assert response.status_code == 200
        assert response.json["version"] == 1 and response.json == saved.json
    assert _sweeps_again(redis) == []
    changed = client.patch("/api/v1/settings", headers=a.headers,
                           json={"alerts": {"no_activity": {"days": 15}}})  # fmt: skip
    assert changed.json["version"] == 2 and len(_sweeps_again(redis)) == 1


def _sweeps_again(redis: Redis) -> list[tuple[str, ...]]:
    sweeps = Queue(queues.SWEEP, connection=redis).get_jobs()
    return [j.args for j in sweeps if j.func_name == "jobs.sweep.again"]


def test_saves_in_a_row_queue_one_sweep_again_and_one_more_once_it_has_started(
    client: FlaskClient,
    services: Services,
    clock: Clock,
    redis: Redis,
    a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An admin tuning a threshold saves ten times in a minute: one re-sweep of every open deal,
    not ten (each writing back to the CRM). Saves made once that sweep has started, which may
    have read the settings before them, get exactly one more."""
    seed_examples(services, a)

    def save(days: int) -> None:
        response = client.patch("/api/v1/settings", headers=a.headers,
                                json={"alerts": {"no_activity": {"days": days}}})  # fmt: skip
        assert response.status_code == 200

    for days in range(10, 20):
        save(days)
    assert _sweeps_again(redis) == [(a.id, "2026-11-25")]

    # A worker takes the re-sweep; the admin saves three more times while it runs.
    monkeypatch.setattr(sweep, "_queue_chunk", _saving_first(sweep._queue_chunk, save))
    runtime.install(Runtime(store=services.store, redis=redis, clock=clock))
    try:
        job, _queue = Queue.dequeue_any([Queue(queues.SWEEP, connection=redis)], None,
                                        connection=redis)  # fmt: skip
        job.perform()
    finally:
        runtime.install(None)
    assert _sweeps_again(redis) == [(a.id, "2026-11-25")], "the last save is swept, once"


def test_a_save_whose_sweep_redis_refused_does_not_hold_back_the_next_saves(
    client: FlaskClient,
    services: Services,
    clock: Clock,
    redis: Redis,
    a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis took the "one is queued" mark but refused the job: the next save must queue the
    sweep, or the settings would wait for tomorrow's."""

    def refused(*args: Any, **kwargs: Any) -> None:
        raise RedisError("OOM command not allowed when used memory > 'maxmemory'")

    with monkeypatch.context() as m:
        m.setattr(Queue, "enqueue", refused)
        response = client.patch("/api/v1/settings", headers=a.headers,
                                json={"alerts": {"no_activity": {"days": 14}}})  # fmt: skip
        assert response.status_code == 200, "saved all the same"
    assert _sweeps_again(redis) == []
    response = client.patch("/api/v1/settings", headers=a.headers,
                            json={"alerts": {"no_activity": {"days": 15}}})  # fmt: skip
    assert response.status_code == 200
    assert _sweeps_again(redis) == [(a.id, "2026-11-25")]


def _saving_first(queue_chunk: Any, save: Any) -> Any:
    def saved_then_queued(*args: Any, **kwargs: Any) -> None:
        for days in (20, 21, 22):
            save(days)
        queue_chunk(*args, **kwargs)

    return saved_then_queued


def test_a_sweep_already_started_today_is_409(
    client: FlaskClient, services: Services, redis: Redis, a: Tenant
) -> None:
    with services.store.tenant(a.id) as s:
        s.add(SweepRun(tenant_id=a.id, day=TODAY, status="done", started_at=NOW))
    response = client.post("/api/v1/sweep", headers=a.headers)
    assert response.status_code == 409 and "status done" in response.json["detail"]
    assert Queue(queues.SWEEP, connection=redis).count == 0


def test_a_suspended_tenant_is_told_why_its_refresh_or_sweep_would_not_run(
    client: FlaskClient, services: Services, redis: Redis, a: Tenant
) -> None:
    """The workers leave a suspended tenant's work alone: answering "queued" would be false."""
    seed_examples(services, a)
    set_status(services.store, a.id, "suspended", "HubSpot refused our token", NOW)
    for path in ("/api/v1/deals/d-1003/refresh", "/api/v1/sweep"):
        response = client.post(path, headers=a.headers)
        assert response.status_code == 409, path
        assert "suspended (HubSpot refused our token)" in response.json["detail"]
        assert "reinstall the app" in response.json["detail"]
    assert not redis.exists(queues.pending_key(a.id))
    assert Queue(queues.SWEEP, connection=redis).count == 0
    assert client.get("/api/v1/deals/d-1003", headers=a.headers).status_code == 200, "still read"


def test_redis_down_is_503_for_refresh_and_sweep_but_a_mute_is_kept(
    app: Flask, services: Services, a: Tenant
) -> None:
    seed_examples(services, a)
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    client = create_app(services.config, store=services.store, redis=dead, clock=Clock(NOW))
    c = client.test_client()
    for path in ("/api/v1/deals/d-1002/refresh", "/api/v1/sweep"):
        response = c.post(path, headers=a.headers)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "30"
        assert "try again" in response.json["detail"]
    muted = c.post(
        "/api/v1/deals/d-1002/mutes",
        headers=a.headers,
        json={"code": "no_activity", "until": "2026-12-01"},
    )
    assert muted.status_code == 201


# --- tenants apart ------------------------------------------------------------------------------


def test_tenant_as_key_reads_and_changes_nothing_of_tenant_b(
    client: FlaskClient, services: Services, redis: Redis, a: Tenant, b: Tenant
) -> None:
    seed_examples(services, b)
    with services.store.tenant(b.id) as s:
        s.add(Mute(
            tenant_id=b.id, deal_id="d-1002", code="no_activity", until=date(2026, 12, 1),
            created_by="b", created_at=NOW,
        ))  # fmt: skip
    client.put("/api/v1/settings", headers=b.headers, json={"locale": "fr"})

    # reads
    assert ids(client.get("/api/v1/deals", headers=a.headers)) == []
    for query in ("alert=close_date_passed", "owner=u-tom", "grade=poor", "pipeline=sales"):
        assert ids(client.get(f"/api/v1/deals?{query}", headers=a.headers)) == []
    b_page = client.get("/api/v1/deals?limit=1", headers=b.headers).json
    after_b = client.get(f"/api/v1/deals?cursor={b_page['next_cursor']}", headers=a.headers)
    assert ids(after_b) == [], "B's cursor opens nothing of B's to A"
    assert client.get("/api/v1/deals/d-1002", headers=a.headers).status_code == 404
    settings = client.get("/api/v1/settings", headers=a.headers).json
    assert (settings["version"], settings["document"]) == (0, {})
    assert client.get("/api/v1/settings/history", headers=a.headers).json == {"items": []}

    # writes
    mute = {"code": "amount_missing", "until": "2026-12-01"}
    muted = client.post("/api/v1/deals/d-1002/mutes", headers=a.headers, json=mute)
    assert muted.status_code == 404
    gone = client.delete("/api/v1/deals/d-1002/mutes/no_activity", headers=a.headers)
    assert gone.status_code == 404
    assert _mutes(services, b) == [("d-1002", "no_activity", date(2026, 12, 1))]
    assert client.post("/api/v1/deals/d-1002/refresh", headers=a.headers).status_code == 404
    assert not any(redis.exists(queues.pending_key(t.id)) for t in (a, b)), "nothing queued"
    client.patch("/api/v1/settings", headers=a.headers, json={"locale": "en"})
    b_settings = client.get("/api/v1/settings", headers=b.headers).json
    assert (b_settings["version"], b_settings["document"]) == (1, {"locale": "fr"})

    # and B still sees its own
    assert len(ids(client.get("/api/v1/deals", headers=b.headers))) == 5
    assert client.get("/api/v1/deals/d-1002", headers=b.headers).status_code == 200
