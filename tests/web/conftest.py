"""The web app on a real store (SQLite and PostgreSQL) and a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from connector.app import create_app
from connector.config import Config
from connector.store.db import Store

SECRET_KEY = Fernet.generate_key().decode()


@pytest.fixture
def app(store: Store, redis: Redis) -> Iterator[Flask]:
    config = Config(
        database_url=store.url,
        secret_keys=(SECRET_KEY,),
        public_url="https://dealradar.example",
        crm={"HUBSPOT_APP_ID": "54321", "HUBSPOT_CLIENT_SECRET": "hs-test-secret"},
    )
    yield create_app(config, store=store, redis=redis, clock=lambda: datetime.now(UTC))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
