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
from connector.notify.config import NotifyConfig
from connector.notify.ssrf import OutboundPolicy
from connector.store.db import Store

SECRET_KEY = Fernet.generate_key().decode()
NAMES = {
    "hooks.example.com": "93.184.215.14",
    "intranet.example.com": "10.1.2.3",
    "rebind.example.com": "169.254.169.254",
}
"""What the app's outbound policy resolves names to in these tests: no real DNS, ever."""


def resolve(host: str, port: int, *_: object) -> list[tuple]:
    """socket.getaddrinfo over NAMES (IP literals as themselves); unknown names do not resolve."""
    import ipaddress
    import socket

    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        ip = NAMES[host]
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]


@pytest.fixture
def app(store: Store, redis: Redis) -> Iterator[Flask]:
    config = Config(
        database_url=store.url,
        secret_keys=(SECRET_KEY,),
        public_url="https://dealradar.example",
        crm={"HUBSPOT_APP_ID": "54321", "HUBSPOT_CLIENT_SECRET": "hs-test-secret"},
        notify=NotifyConfig(outbound=OutboundPolicy(resolver=resolve)),
    )
    yield create_app(config, store=store, redis=redis, clock=lambda: datetime.now(UTC))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
