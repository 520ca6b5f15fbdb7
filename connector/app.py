"""`create_app(config)`: the only way to build the web app (webhooks, API, operations).

Nothing happens at import time: the store, Redis and metrics are created here, per app, and
handed to handlers through `app.extensions["dealradar"]`. Handlers are thin: verify, persist,
enqueue. Logs are JSON lines carrying the request id and, once known, the tenant; they never
carry bodies, headers or secrets.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, g, jsonify, request
from redis import Redis
from werkzeug.exceptions import HTTPException

from connector.config import Config
from connector.intake import Intake
from connector.metrics import Metrics
from connector.refresh_requests import RefreshRequests
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.tenants import AccountTenants
from connector.store.times import utc_now

MAX_BODY_BYTES = 1024 * 1024
"""Bodies over 1 MiB get 413: no CRM sends batches that large."""
REDIS_TIMEOUT_SECONDS = 2.0
"""A webhook must be answered in milliseconds; a hung Redis must not hold it (the inbox has the
event, and the sweeper enqueues it later)."""


@dataclass
class Services:
    config: Config
    store: Store
    redis: Redis
    metrics: Metrics
    box: TokenBox
    accounts: AccountTenants
    intake: Intake
    clock: Callable[[], datetime] = utc_now


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id and tenant when there is a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "tenant"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry)


class RequestContext(logging.Filter):
    """Adds the current request's id and tenant to every log record made while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id")
            record.tenant = g.get("tenant")
        except RuntimeError:  # outside a request
            pass
        return True


def create_app(
    config: Config | None = None,
    *,
    store: Store | None = None,
    redis: Redis | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    config = config or Config.from_env()
    config.require_public_url()  # a ConfigError naming it stops the web app's start-up
    app = Flask("dealradar")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    redis = redis or Redis.from_url(
        config.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    store = store or Store(config.database_url)
    metrics = Metrics(redis, config.metrics_dir)

    def queued(source: str, events: int, taken: bool) -> None:
        metrics.count(metrics.queued, source, str(taken).lower(), amount=events)

    refreshes = RefreshRequests(redis, window=config.coalesce_seconds, sent=queued)
    app.extensions["dealradar"] = Services(
        config=config,
        store=store,
        redis=redis,
        metrics=metrics,
        box=TokenBox(config.secret_keys),
        accounts=AccountTenants(store),
        intake=Intake(store, redis, window=config.coalesce_seconds, refreshes=refreshes),
        clock=clock or utc_now,
    )
    context = RequestContext()
    for handler in app.logger.handlers:
        handler.setFormatter(JsonLogFormatter())
        handler.addFilter(context)

    @app.before_request
    def _request_id() -> None:
        # Read from the WSGI environ and made from 16 random bytes: on every request, werkzeug's
        # header view and uuid4 cost several times as much for the same id.
        given = request.environ.get("HTTP_X_REQUEST_ID", "")
        g.request_id = given if given.isascii() and 0 < len(given) <= 64 else os.urandom(16).hex()

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.name, detail=exc.description), exc.code or 500

    from connector.web import api, install, install_salesforce, install_sell, ops, webhooks

    app.register_blueprint(ops.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(install.bp)
    app.register_blueprint(install_salesforce.bp)
    app.register_blueprint(install_sell.bp)
    api.register(app)
    return app
