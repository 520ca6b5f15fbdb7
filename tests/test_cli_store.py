"""`dealradar db` and `dealradar tenants` as an operator runs them, on a SQLite file."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from connector.cli import build_parser, main
from connector.store.credentials import load_tokens, save_tokens
from connector.store.db import Store
from connector.store.models import Credential, Hook
from connector.store.secrets import TokenBox
from connector.store.tenants import (
    create_tenant,
    list_api_keys,
    list_tenants,
    save_settings,
    tenant_for_api_key,
    uninstall_tenant,
)
from tests.store.test_migrations import HEAD

ROOT = Path(__file__).parent.parent


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dealradar.db'}"


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_upgrade_then_nothing_to_do(url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _run(capsys, "db", "current", "--database-url", url)
    assert code == 0 and "no schema yet" in out
    code, out, _ = _run(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0
    assert out.splitlines() == [
        f"{url}: upgraded from an empty database to {HEAD}",
        f"database at revision {HEAD}",
    ]
    code, out, _ = _run(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0 and "nothing done" in out
    assert out.endswith(f"revision {HEAD}\n")
    code, out, _ = _run(capsys, "db", "current", "--database-url", url)
    assert out == f"database at revision {HEAD} (the newest)\n"


def test_db_upgrade_reads_the_configuration(
    url: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("DEALRADAR_SECRET_KEYS", raising=False)  # migrations need no secret
    code, out, _ = _run(capsys, "db", "upgrade")
    assert code == 0 and out.endswith(f"database at revision {HEAD}\n")


def test_db_errors_say_what_to_do_and_hide_the_password(capsys: pytest.CaptureFixture) -> None:
    code, out, err = _run(
        capsys, "db", "upgrade", "--database-url", "postgresql://me:hunter2@127.0.0.1:1/x"
    )
    assert code == 2 and out == ""
    assert "hunter2" not in err and "me:***@127.0.0.1:1" in err and "Check that" in err
    code, _, err = _run(capsys, "db", "upgrade", "--database-url", "not a url")
    assert code == 2 and "is not a URL" in err


@pytest.mark.parametrize(
    ("where", "url", "said"),
    [
        ("--database-url", "mysql://me:hunter2@db/x", "got 'mysql'"),
        ("--database-url", "postgresql+psycopg2://me@db/x", "goes through psycopg 3"),
        ("DATABASE_URL", "mysql://me:hunter2@db/x", "got 'mysql'"),
    ],
)
def test_a_database_the_store_cannot_open_is_named_not_a_traceback(
    where: str, url: str, said: str, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    argv = ["tenants", "list"]
    if where == "DATABASE_URL":
        monkeypatch.setenv("DATABASE_URL", url)
    else:
        argv += ["--database-url", url]
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert f"{where} must be a SQLite or PostgreSQL URL" in err and said in err
    assert "hunter2" not in err


@pytest.mark.parametrize(
    ("name", "value", "database_hint"),
    [("PUBLIC_URL", "foo", False), ("DEALRADAR_COALESCE_SECONDS", "abc", False),
     ("DATABASE_URL", "mysql://db/x", True)],
)  # fmt: skip
def test_a_bad_setting_is_named_and_only_a_database_one_suggests_database_url(
    name: str, value: str, database_hint: bool, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv(name, value)
    code, _, err = _run(capsys, "tenants", "list")
    assert code == 2 and name in err
    assert ("--database-url" in err) is database_hint


@pytest.mark.parametrize(
    ("argv", "redis_url", "said"),
    [
        (["jobs", "failed"], "redis://127.0.0.1:1/0", "Redis failed: Error 111 connecting"),
        (["cron", "--interval", "1"], "redis://127.0.0.1:1/0", "Redis failed: Error 111"),
        (["jobs", "failed"], "localhost:6379", "REDIS_URL must be a URL such as redis://"),
    ],
)
def test_redis_down_or_misnamed_is_one_line_not_a_traceback(
    argv: list[str], redis_url: str, said: str, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_URL", redis_url)
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert said in err and "Traceback" not in err


@pytest.mark.parametrize("interval", ["nan", "inf", "0", "soon"])
def test_cron_wants_a_real_interval(interval: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["cron", "--interval", interval])
    assert exited.value.code == 2
    assert "expected a number of seconds, 1 or more" in capsys.readouterr().err


def test_db_upgrade_to_an_unknown_revision(url: str, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _run(capsys, "db", "upgrade", "--revision", "9999", "--database-url", url)
    assert code == 2 and "9999" in err and "dealradar db current" in err


def test_tenants_add_and_list(url: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "upgrade", "--database-url", url]) == 0
    capsys.readouterr()
    code, out, err = _run(
        capsys, "tenants", "add", "--crm", "hubspot", "--account-id", "42", "--name", "Acme",
        "--timezone", "Europe/Paris", "--locale", "fr", "--database-url", url,
    )  # fmt: skip
    assert code == 0 and err == ""
    added, key_line, warning = out.splitlines()
    key = key_line.removeprefix("API key: ")
    assert key.startswith("drk_") and len(key) == 44
    assert "will not be shown again" in warning
    store = Store(url)
    try:
        [tenant] = list_tenants(store)
        assert added == f"tenant {tenant.id} added for hubspot account 42"
        assert tenant_for_api_key(store, key, datetime.now(UTC)) == tenant.id
    finally:
        store.dispose()

    code, out, _ = _run(capsys, "tenants", "list", "--database-url", url)
    assert code == 0 and key not in out
    header, rule, row = out.splitlines()
    assert header.split() == ["id", "crm", "account", "name", "timezone", "locale", "status"]
    assert set(rule) <= {"-", " "}
    assert row.split() == [tenant.id, "hubspot", "42", "Acme", "Europe/Paris", "fr", "active"]


def test_tenants_list_shows_the_zone_and_locale_in_force(
    url: str, capsys: pytest.CaptureFixture
) -> None:
    """An admin who set `timezone` and `locale` in the settings (PUT /api/v1/settings) saw the
    zone and locale the tenant was added with in `tenants list`, not those its days, sweep and
    messages follow."""
    _a_tenant(url, capsys)
    store = Store(url)
    try:
        [tenant] = list_tenants(store)
        doc = {"timezone": "America/New_York", "locale": "fr"}
        save_settings(store, tenant.id, doc, "drk_test", datetime.now(UTC))
    finally:
        store.dispose()
    code, out, _ = _run(capsys, "tenants", "list", "--database-url", url)
    assert code == 0
    assert out.splitlines()[2].split()[-3:] == ["America/New_York", "fr", "active"], out


def _a_tenant(url: str, capsys: pytest.CaptureFixture) -> str:
    """A schema and a HubSpot tenant added through the command; its first API key."""
    main(["db", "upgrade", "--database-url", url])
    main(["tenants", "add", "--crm", "hubspot", "--account-id", "42", "--database-url", url])
    return capsys.readouterr().out.split("API key: ")[1].split()[0]


def test_a_lost_api_key_is_replaced_and_a_leaked_one_revoked(
    url: str, capsys: pytest.CaptureFixture
) -> None:
    first = _a_tenant(url, capsys)
    store = Store(url)
    try:
        [tenant] = list_tenants(store)
        keys = ["tenants", "api-key"]
        code, out, err = _run(capsys, *keys, "issue", tenant.id, "--label", "zapier",
                              "--database-url", url)  # fmt: skip
        assert code == 0 and "not readable" not in err
        second = out.split("API key: ")[1].split()[0]
        assert "will not be shown again" in out
        assert tenant_for_api_key(store, second, datetime.now(UTC)) == tenant.id
        code, out, _ = _run(capsys, *keys, "list", tenant.id, "--database-url", url)
        header, _rule, *rows = out.splitlines()
        assert header.split() == ["id", "prefix", "label", "created", "last_used", "revoked"]
        listed = {row.split()[2]: row.split() for row in rows}
        assert sorted(listed) == ["initial", "zapier"]
        assert listed["zapier"][1] == second[:8] + "..." and listed["zapier"][5] == "no"
        for secret in (first, second, sha256(second.encode()).hexdigest()):
            assert secret not in out, "a key is shown once, its hash never"
        leaked = listed["initial"][0]
        code, out, _ = _run(capsys, *keys, "revoke", tenant.id, leaked, "--database-url", url)
        assert (code, out) == (0, f"API key {leaked} revoked\n")
        assert tenant_for_api_key(store, first, datetime.now(UTC)) is None
        assert tenant_for_api_key(store, second, datetime.now(UTC)) == tenant.id
        code, out, _ = _run(capsys, *keys, "revoke", tenant.id, leaked, "--database-url", url)
        assert (code, out) == (0, f"API key {leaked} was revoked already\n")
        code, out, err = _run(capsys, *keys, "revoke", tenant.id, "nope", "--database-url", url)
        assert (code, out) == (2, "") and f"dealradar tenants api-key list {tenant.id}" in err
        code, out, err = _run(capsys, *keys, "issue", "nope", "--database-url", url)
        assert (code, out) == (2, "") and "dealradar tenants list" in err
    finally:
        store.dispose()


def test_an_uninstalled_tenant_keeps_no_secret_and_its_keys_stop(
    url: str, capsys: pytest.CaptureFixture
) -> None:
    key = _a_tenant(url, capsys)
    store = Store(url)
    try:
        [tenant] = list_tenants(store)
        box = TokenBox([Fernet.generate_key().decode()])
        for name in ("oauth", "webhook", "slack:team"):
            save_tokens(store, box, tenant.id, {"s": "x"}, None, datetime.now(UTC), name=name)
        code, out, err = _run(capsys, "tenants", "uninstall", tenant.id, "--reason",
                              "the customer left", "--database-url", url)  # fmt: skip
        assert code == 0 and "not readable" not in err and "3 stored secrets deleted" in out
        assert tenant_for_api_key(store, key, datetime.now(UTC)) is None
        [gone] = list_tenants(store)
        assert (gone.status, gone.status_reason) == ("uninstalled", "the customer left")
        with store.tenant(tenant.id) as s:
            assert s.scalars(select(Credential)).all() == []
        code, _, err = _run(capsys, "tenants", "uninstall", "nope", "--database-url", url)
        assert code == 2 and "dealradar tenants list" in err
    finally:
        store.dispose()


def test_no_api_key_is_issued_for_an_uninstalled_tenant_whose_keys_are_refused(
    url: str, capsys: pytest.CaptureFixture
) -> None:
    """`api-key issue` printed a key for an uninstalled tenant, which the API refused like the
    lost one: now it issues none and says the tenant must be installed again."""
    _a_tenant(url, capsys)
    store = Store(url)
    try:
        [tenant] = list_tenants(store)
        _run(capsys, "tenants", "uninstall", tenant.id, "--reason", "the customer left",
             "--database-url", url)  # fmt: skip
        code, out, err = _run(capsys, "tenants", "api-key", "issue", tenant.id,
                              "--database-url", url)  # fmt: skip
        assert (code, out) == (2, "")
        assert "uninstalled (the customer left)" in err and "installed again" in err
        assert "/install/hubspot" in err
        [initial] = list_api_keys(store, tenant.id)
        assert initial.label == "initial", "no key added"
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--crm", "hubspot", "--account-id", "42"], "already has a tenant"),
        (["--crm", "hubspot", "--account-id", "43", "--timezone", "Mars/Base"], "IANA"),
        (["--crm", "salesforce", "--account-id", "org-1"], "15- or 18-character"),
        # A portal's domain or name instead of its id: no webhook would ever find the tenant.
        (["--crm", "hubspot", "--account-id", "acme.hubspot.com"], "not a HubSpot portal id"),
        (["--crm", "hubspot", "--account-id", "0042"], "not a HubSpot portal id"),
        (["--crm", "sell", "--account-id", "acme"], "not a Zendesk Sell account id"),
    ],
)
def test_tenants_add_errors(
    url: str, capsys: pytest.CaptureFixture, argv: list[str], words: str
) -> None:
    main(["db", "upgrade", "--database-url", url])
    main(["tenants", "add", "--crm", "hubspot", "--account-id", "42", "--database-url", url])
    capsys.readouterr()
    code, out, err = _run(capsys, "tenants", "add", *argv, "--database-url", url)
    assert (code, out) == (2, "")
    assert err.startswith("dealradar tenants add: ") and words in err


def test_tenants_need_the_schema(url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, err = _run(capsys, "tenants", "list", "--database-url", url)
    assert (code, out) == (2, "")
    assert "run `dealradar db upgrade` first" in err
    main(["db", "upgrade", "--database-url", url])
    capsys.readouterr()
    code, out, _ = _run(capsys, "tenants", "list", "--database-url", url)
    assert code == 0 and "no tenants yet" in out


def test_a_bad_choice_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["tenants", "add", "--crm", "pipedrive", "--account-id", "1"])
    assert caught.value.code == 2
    assert "hubspot" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["db"], ["db", "upgrade"], ["db", "current"], ["db", "rotate-secrets"],
             ["tenants"], ["tenants", "add"], ["tenants", "list"], ["tenants", "api-key"],
             ["tenants", "api-key", "issue"], ["tenants", "api-key", "list"],
             ["tenants", "api-key", "revoke"], ["tenants", "uninstall"],
             ["hubspot"], ["hubspot", "subscriptions"]],
)  # fmt: skip
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: dealradar {' '.join(argv)}")


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_command_s_help_says_what_it_does(capsys: pytest.CaptureFixture) -> None:
    """Every command and sub-command the parser knows, the README's included: `--help` works
    and says, above the options, what the command does (not the usage line alone)."""
    commands = list(_commands(build_parser()))
    assert len(commands) > 20
    silent = []
    for argv, _parser in commands[1:]:
        with pytest.raises(SystemExit) as caught:
            main([*argv, "--help"])
        assert caught.value.code == 0
        out = capsys.readouterr().out
        usage, _, rest = out.partition("\n\n")
        assert usage.startswith(f"usage: dealradar {' '.join(argv)}")
        if rest.startswith(("positional arguments:", "options:")):
            silent.append(" ".join(argv))
    assert silent == []


def test_the_installed_way(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }

    def dealradar(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector.cli", *argv],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    done = dealradar("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"database at revision {HEAD}\n")
    done = dealradar("tenants", "add", "--crm", "test", "--account-id", "acme")
    assert done.returncode == 0, done.stderr
    assert "API key: drk_" in done.stdout
    done = dealradar("tenants", "list")
    assert done.returncode == 0 and " acme " in done.stdout


def test_rotate_secrets_lets_the_old_key_go(
    url: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets never refreshed (a hook's, a Slack webhook) stay sealed under the key they were
    made with until rotated: after `db rotate-secrets`, the new key alone opens every one."""
    old, new, lost = (Fernet.generate_key().decode() for _ in range(3))
    assert _run(capsys, "db", "upgrade", "--database-url", url)[0] == 0
    store = Store(url)
    now = datetime.now(UTC)
    try:
        tenant, _ = create_tenant(store, crm="hubspot", account_id="1", now=now)
        save_tokens(store, TokenBox([old]), tenant.id, {"url": "https://hooks.slack.com/x"},
                    None, now, name="slack:team")  # fmt: skip
        sealed = TokenBox([old]).seal(tenant.id, {"secret": "s"})
        with store.tenant(tenant.id) as s:
            s.add(Hook(tenant_id=tenant.id, id="h1", target_url="https://zap.example/h",
                       events=["alert.started"], secret=sealed, created_at=now,
                       updated_at=now))  # fmt: skip
        monkeypatch.setenv("DEALRADAR_SECRET_KEYS", f"{new},{old}")
        code, out, _ = _run(capsys, "db", "rotate-secrets", "--database-url", url)
        assert code == 0
        assert "1 credentials, 1 hook secrets" in out and "can now be removed" in out
        only_new = TokenBox([new])
        assert load_tokens(store, only_new, tenant.id, name="slack:team").data["url"].endswith("/x")
        with store.tenant(tenant.id) as s:
            assert only_new.open(tenant.id, s.get(Hook, "h1").secret) == {"secret": "s"}
        # A secret no configured key opens is named, and the old keys must stay.
        save_tokens(store, TokenBox([lost]), tenant.id, {"a": 1}, None, now, name="webhook")
        code, out, err = _run(capsys, "db", "rotate-secrets", "--database-url", url)
        assert code == 2
        assert f"not readable with any key: tenant {tenant.id}: credential 'webhook'" in err
        assert "`dealradar tenants webhook-secret`" in err, "how to replace that one"
        assert "1 secret no key" in err and "keep the old keys" in err
    finally:
        store.dispose()


def test_rotate_secrets_passes_over_the_hooks_an_uninstall_erased(
    url: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uninstall erases its hooks' secrets (secret ""): nothing is left to re-encrypt, and
    the old key can still go (its tenant's API keys are refused, so nobody could delete them)."""
    old, new = (Fernet.generate_key().decode() for _ in range(2))
    assert _run(capsys, "db", "upgrade", "--database-url", url)[0] == 0
    store = Store(url)
    now = datetime.now(UTC)
    try:
        tenant, _ = create_tenant(store, crm="hubspot", account_id="1", now=now)
        with store.tenant(tenant.id) as s:
            s.add(Hook(tenant_id=tenant.id, id="h1", target_url="https://zap.example/h",
                       events=["alert.started"], secret=TokenBox([old]).seal(tenant.id, {}),
                       created_at=now, updated_at=now))  # fmt: skip
        uninstall_tenant(store, tenant.id, "left", now)
        monkeypatch.setenv("DEALRADAR_SECRET_KEYS", f"{new},{old}")
        code, out, err = _run(capsys, "db", "rotate-secrets", "--database-url", url)
        assert code == 0 and "not readable" not in err
        assert "0 credentials, 0 hook secrets" in out and "can now be removed" in out
        with store.tenant(tenant.id) as s:
            assert s.get(Hook, "h1").secret == ""
    finally:
        store.dispose()
