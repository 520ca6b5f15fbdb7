"""PUBLIC_URL: the web app does not start without it; commands that do not need it still run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.app import create_app
from connector.config import Config, ConfigError
from connector.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
KEYS = Fernet.generate_key().decode()


def test_the_web_app_refuses_to_start_without_public_url() -> None:
    config = Config.from_env({"DEALRADAR_SECRET_KEYS": KEYS})
    with pytest.raises(ConfigError, match=r"PUBLIC_URL is not set.*PUBLIC_URL=https://"):
        create_app(config)


def test_commands_that_do_not_serve_the_web_read_the_configuration_without_it() -> None:
    config = Config.from_env({"DEALRADAR_SECRET_KEYS": KEYS})
    assert config.public_url == ""
    assert config.secret_keys == (KEYS,)


@pytest.mark.parametrize(
    "given", ["dealradar.example.com", "ftp://dealradar.example.com", "https://x?y=1"]
)
def test_a_public_url_that_is_not_an_http_base_url_is_refused(given: str) -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL must be an absolute http"):
        Config.from_env({"PUBLIC_URL": given}, require_keys=False)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL must be a SQLite or PostgreSQL URL"),
        ({"DATABASE_URL": "postgresql+psycopg2://db/x"}, "goes through psycopg 3"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a URL such as redis://"),
        ({"DEALRADAR_COALESCE_SECONDS": "nan"}, "must be a number of seconds, 0 or more"),
        ({"DEALRADAR_LOCK_SECONDS": "inf"}, "must be a number of seconds, 0 or more"),
    ],
)
def test_settings_the_product_cannot_use_stop_it_at_start_up(env: dict, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        Config.from_env(env, require_keys=False)


@pytest.mark.parametrize(
    "url", ["sqlite:///instance/x.db", "postgres://u@h/d", "postgresql+psycopg://u@h/d"]
)
def test_the_databases_the_store_opens_are_taken(url: str) -> None:
    assert Config.from_env({"DATABASE_URL": url}, require_keys=False).database_url == url


def test_a_trailing_slash_is_dropped_so_signed_uris_are_rebuilt_right() -> None:
    config = Config.from_env({"PUBLIC_URL": "https://dealradar.example.com/"}, require_keys=False)
    assert config.require_public_url() == "https://dealradar.example.com"


def test_gunicorn_stops_at_start_up_naming_public_url(tmp_path: Path) -> None:
    """The Procfile's web line, without PUBLIC_URL: gunicorn exits, and says what to set."""
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "DEALRADAR_SECRET_KEYS": KEYS,
    }
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "1",
        "--bind", f"127.0.0.1:{free_port()}", "connector:create_app()",
    ]  # fmt: skip
    ran = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    assert "dealradar: PUBLIC_URL is not set" in ran.stderr
    assert "Traceback" not in ran.stderr, "one line that says what to set, not a traceback"


class _Reads(dict):
    """An environment that records every name the configuration asks it for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: object = None) -> object:
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return super().__getitem__(name)


def test_the_readme_tables_name_every_variable_the_configuration_reads() -> None:
    """The README's environment tables are the operator's list: every name Config.from_env
    reads is in them, and they name none it does not read."""
    env = _Reads()
    Config.from_env(env, require_keys=False)
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \|", readme, re.M)
    documented = {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row)}
    assert env.asked - documented == set(), "read but not in the README"
    assert documented - env.asked == set(), "in the README but never read"
