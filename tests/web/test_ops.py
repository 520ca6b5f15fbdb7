"""Operations: health that tells what is down, metrics in Prometheus format, request ids."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from connector.app import create_app


def test_healthz_reports_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_is_503_when_redis_is_unreachable(app: Flask) -> None:
    services = app.extensions["dealradar"]
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    broken = create_app(services.config, store=services.store, redis=dead)
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["redis"].startswith("unreachable") and response.json["database"] == "ok"


def test_metrics_in_prometheus_format(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'dealradar_queue_depth{queue="refresh"} 0.0' in text
    assert "# TYPE dealradar_webhooks_refused_total counter" in text


def test_request_ids_are_echoed_or_made(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"]
        == "abc-123"
    )
    made = client.get("/healthz").headers["X-Request-Id"]
    assert len(made) == 32


def test_unknown_paths_answer_json(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json["error"] == "Not Found"
