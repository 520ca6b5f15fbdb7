"""The application's configuration, read from the environment in one place.

"Settings" always means a tenant's alert and health settings (engine.settings); this is the
deployment's configuration: where the database and Redis are, the encryption keys, the CRM apps.
`Config.from_env` is the only reader of the environment in the whole product.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from connector.notify.config import NotifyConfig, NotifyConfigError

DEFAULT_DATABASE_URL = "sqlite:///" + str(Path("instance") / "dealradar.db")
"""Embedded default: a SQLite file under ./instance/ (PostgreSQL in production)."""
DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class ConfigError(RuntimeError):
    """A required setting is missing or unusable; the message names it and says what to do."""


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    """Fernet keys, newest first: the first encrypts, all decrypt (rotation)."""
    public_url: str = ""
    """PUBLIC_URL: the external base URL the CRMs call (signed webhook URIs are rebuilt from it,
    OAuth redirects point at it). No default: a wrong one fails every signature, so the web app
    refuses to start without it (`require_public_url`); other commands do not need it."""
    crm: Mapping[str, str] = field(default_factory=dict, repr=False)
    """CRM app credentials (HUBSPOT_CLIENT_ID, SELL_CLIENT_ID, ...) and hosts (HUBSPOT_API_URL,
    default https://api.hubapi.com; HUBSPOT_AUTHORIZE_URL, default HubSpot's consent page;
    SELL_API_URL, default https://api.getbase.com; SELL_AUTHORIZE_URL, default Sell's consent
    page; SALESFORCE_LOGIN_URL and SALESFORCE_SANDBOX_LOGIN_URL, default login.salesforce.com
    and test.salesforce.com; SALESFORCE_CA_BUNDLE, a CA file to verify Salesforce with instead
    of the system's), by environment name; an unset name is absent."""
    metrics_dir: str = ""
    """PROMETHEUS_MULTIPROC_DIR: where each gunicorn worker keeps its counters, so that /metrics
    adds up every worker's (emptied when gunicorn starts); unset: one process's counters."""
    coalesce_seconds: float = 2.0
    """DEALRADAR_COALESCE_SECONDS: events for a tenant within this window cause one pull."""
    lock_seconds: float = 90.0
    """DEALRADAR_LOCK_SECONDS: how long a dead worker's deal locks last."""
    stale_seconds: float = 60.0
    """DEALRADAR_STALE_SECONDS: pending work older than this is put back on the queues."""
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    """Mail (SMTP_URL, the outbox folder) and the policy for tenant-chosen outbound URLs."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_keys: bool = True
    ) -> Config:
        """The configuration in the environment; `require_keys=False` for commands that never
        touch a secret (`dealradar db upgrade`)."""
        env = os.environ if environ is None else environ
        keys = tuple(
            k.strip() for k in env.get("DEALRADAR_SECRET_KEYS", "").split(",") if k.strip()
        )
        if not keys and require_keys:
            raise ConfigError(
                "DEALRADAR_SECRET_KEYS is not set: give one or more Fernet keys, comma-separated, "
                'newest first. Make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            )
        crm_names = (
            "HUBSPOT_APP_ID",
            "HUBSPOT_CLIENT_ID",
            "HUBSPOT_CLIENT_SECRET",
            "HUBSPOT_API_URL",
            "HUBSPOT_AUTHORIZE_URL",
            "SALESFORCE_CLIENT_ID",
            "SALESFORCE_CLIENT_SECRET",
            "SALESFORCE_LOGIN_URL",
            "SALESFORCE_SANDBOX_LOGIN_URL",
            "SALESFORCE_CA_BUNDLE",
            "SELL_CLIENT_ID",
            "SELL_CLIENT_SECRET",
            "SELL_API_URL",
            "SELL_AUTHORIZE_URL",
        )
        return cls(
            database_url=check_database_url(
                env.get("DATABASE_URL") or DEFAULT_DATABASE_URL, "DATABASE_URL"
            ),
            redis_url=_redis_url(env.get("REDIS_URL") or DEFAULT_REDIS_URL),
            secret_keys=keys,
            public_url=_base_url(env, "PUBLIC_URL"),
            crm={name: env[name] for name in crm_names if env.get(name)},
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", ""),
            coalesce_seconds=_seconds(env, "DEALRADAR_COALESCE_SECONDS", 2.0),
            lock_seconds=_seconds(env, "DEALRADAR_LOCK_SECONDS", 90.0),
            stale_seconds=_seconds(env, "DEALRADAR_STALE_SECONDS", 60.0),
            notify=_notify(env),
        )

    def require_public_url(self) -> str:
        """PUBLIC_URL, for the web app; a ConfigError saying what to set when it is missing."""
        if not self.public_url:
            raise ConfigError(
                "PUBLIC_URL is not set: give the external base URL the CRMs post to, e.g. "
                "PUBLIC_URL=https://dealradar.example.com (PUBLIC_URL=http://localhost:8000 for "
                "a local run); webhook signatures are checked against it and OAuth redirects "
                "are built from it"
            )
        return self.public_url


DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
"""The databases the store runs on: SQLite, and PostgreSQL through psycopg 3."""


def check_database_url(url: str, name: str) -> str:
    """`url` if the store can open it; else a ConfigError naming `name` and the forms it takes
    (a driver that is not installed, such as psycopg2, would fail with an ImportError)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(
            f"{name} must be a SQLite or PostgreSQL URL, such as sqlite:///instance/dealradar.db "
            f"or postgresql://user@host/dbname (postgresql+psycopg:// too), got {scheme or url!r}"
            + (" (PostgreSQL here goes through psycopg 3)" if scheme.startswith("postgres") else "")
        )
    return url


def _redis_url(url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"REDIS_URL must be a URL such as redis://localhost:6379/0 (rediss:// with TLS, "
            f"unix:///path/to/redis.sock), got {url!r}"
        )
    return url


def _base_url(env: Mapping[str, str], name: str) -> str:
    """An absolute http(s) URL without a trailing slash, or "" when unset."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return ""
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query:
        raise ConfigError(
            f"{name} must be an absolute http(s) URL such as https://dealradar.example.com, "
            f"got {raw!r}"
        )
    return raw.rstrip("/")


def _notify(env: Mapping[str, str]) -> NotifyConfig:
    try:
        return NotifyConfig.from_env(env)
    except NotifyConfigError as exc:
        raise ConfigError(str(exc)) from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a number of seconds, 0 or more, got {raw!r}")
    return value
