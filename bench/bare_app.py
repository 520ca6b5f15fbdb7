"""The bare Flask endpoint that bench/webhooks.py measures the webhook receiver against.

    gunicorn "bench.bare_app:create_app()"   (from the project root)

One POST endpoint, `/webhooks/hubspot` like the real one, that reads the body and answers 202
with a small JSON document, and a `GET /healthz` answering 200 so that the benchmark waits for it
exactly as it waits for the real app. No signature check, no database, no Redis: what is left is
the cost of gunicorn, Werkzeug and Flask themselves, the ceiling the real receiver is judged by.
Nothing here reads the environment or does anything at import time.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

MAX_BODY_BYTES = 1024 * 1024
"""The real app's limit (connector.app.MAX_BODY_BYTES), so both parse requests alike."""


def create_app() -> Flask:
    """A Flask app with the bare endpoint and a health check (a gunicorn app factory)."""
    app = Flask("dealradar-bare")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.post("/webhooks/hubspot")
    def hubspot() -> tuple[Response, int]:
        body = request.get_data(cache=False)
        return jsonify(status="accepted", bytes=len(body)), 202

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    return app
