"""OAuth tokens: encrypted per tenant, and refreshed once however many workers need them."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from adapters.errors import PermissionDenied
from connector.store import credentials as credentials_mod
from connector.store.credentials import (
    LOCK_KEY,
    NoTokens,
    RefreshBusy,
    Tokens,
    fresh_tokens,
    load_tokens,
    save_tokens,
)
from connector.store.db import Store
from connector.store.models import Credential
from connector.store.secrets import TokenBox, TokenMismatch
from connector.store.tenants import create_tenant

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
OLD = {"access_token": "at-OLD-SECRET", "refresh_token": "rt-SECRET"}
NEW = {"access_token": "at-NEW-SECRET", "refresh_token": "rt-SECRET-2"}


@pytest.fixture
def box() -> TokenBox:
    return TokenBox([Fernet.generate_key().decode()])


def _tenant(store: Store, account: str = "1") -> str:
    tenant, _ = create_tenant(store, crm="hubspot", account_id=account, now=NOW)
    return tenant.id


class NoRedis:
    """Stands for Redis where the test proves it is not touched."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"Redis used: {name}")


def test_save_and_load_round_trip_encrypted(store: Store, box: TokenBox) -> None:
    tid = _tenant(store)
    assert load_tokens(store, box, tid) is None
    first = save_tokens(store, box, tid, OLD, NOW + timedelta(hours=1), NOW)
    assert first.version == 1
    second = save_tokens(store, box, tid, NEW, NOW + timedelta(hours=2), NOW)
    assert second.version == 2
    loaded = load_tokens(store, box, tid)
    assert loaded == Tokens(NEW, NOW + timedelta(hours=2), 2)
    assert loaded.expires_at.tzinfo is not None
    with store.tenant(tid) as s:
        [row] = s.scalars(select(Credential)).all()
        assert "SECRET" not in row.ciphertext and row.name == "oauth"


def test_a_database_error_on_a_secret_write_shows_no_ciphertext(
    store: Store, box: TokenBox
) -> None:
    """A statement's values stay out of its error, which jobs log and RQ keeps."""
    tid = _tenant(store)
    sealed = box.seal(tid, OLD)
    with pytest.raises(IntegrityError) as refused, store.tenant(tid) as s:
        for _ in range(2):  # the same key twice
            s.add(Credential(tenant_id=tid, name="oauth", ciphertext=sealed, updated_at=NOW))
            s.flush()
    assert sealed not in str(refused.value) and sealed[:20] not in repr(refused.value)


def test_tokens_repr_hides_values(box: TokenBox) -> None:
    tokens = Tokens(dict(NEW), NOW, 3)
    for text in (repr(tokens), str(tokens), f"{tokens}"):
        assert "SECRET" not in text and "access_token" in text and "version=3" in text


def test_a_row_copied_to_another_tenant_is_refused(store: Store, box: TokenBox) -> None:
    a, b = _tenant(store, "11"), _tenant(store, "12")
    save_tokens(store, box, a, OLD, None, NOW)
    save_tokens(store, box, b, NEW, None, NOW)
    with store.tenant(a) as s:
        stolen = s.scalars(select(Credential)).one().ciphertext
    with store.tenant(b) as s:
        s.execute(update(Credential).values(ciphertext=stolen))
    with pytest.raises(TokenMismatch):
        load_tokens(store, box, b)


def test_valid_tokens_are_returned_without_redis(store: Store, box: TokenBox) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW + timedelta(minutes=6), NOW)

    def refresh(old: dict) -> tuple[dict, datetime]:
        raise AssertionError("refreshed valid tokens")

    got = fresh_tokens(store, box, NoRedis(), tid, refresh, lambda: NOW)  # type: ignore[arg-type]
    assert got.data == OLD
    no_expiry = _tenant(store, "2")
    save_tokens(store, box, no_expiry, OLD, None, NOW)
    got = fresh_tokens(store, box, NoRedis(), no_expiry, refresh, lambda: NOW)  # type: ignore[arg-type]
    assert got.data == OLD


def test_no_tokens_is_an_error_that_says_to_install(store: Store, box: TokenBox) -> None:
    tid = _tenant(store)
    with pytest.raises(NoTokens, match="install"):
        fresh_tokens(store, box, NoRedis(), tid, dict, lambda: NOW)  # type: ignore[arg-type]


def test_ten_workers_with_an_expired_token_refresh_once(
    store: Store, box: TokenBox, redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW - timedelta(hours=1))
    calls: list[dict] = []
    start = threading.Barrier(10)
    results: list[Tokens] = []
    errors: list[BaseException] = []

    def refresh(old: dict) -> tuple[dict, datetime]:
        calls.append(old)
        time.sleep(0.3)  # a slow token endpoint: the other workers pile up on the lock
        return dict(NEW), NOW + timedelta(hours=1)

    def worker() -> None:
        try:
            start.wait()
            results.append(fresh_tokens(store, box, redis, tid, refresh, lambda: NOW))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    caplog.set_level(logging.DEBUG)
    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert calls == [OLD]
    assert len(results) == 10
    assert all(r.data == NEW and r.version == 2 for r in results)
    assert load_tokens(store, box, tid).data == NEW
    assert redis.exists(LOCK_KEY.format(tenant=tid)) == 0
    assert "SECRET" not in caplog.text


def test_refresh_errors_propagate_and_the_lock_is_released(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW + timedelta(minutes=4), NOW)  # inside the margin

    class Revoked(Exception):
        pass

    def refresh(old: dict) -> tuple[dict, datetime]:
        raise Revoked("invalid_grant")

    with pytest.raises(Revoked):
        fresh_tokens(store, box, redis, tid, refresh, lambda: NOW)
    assert redis.exists(LOCK_KEY.format(tenant=tid)) == 0
    assert load_tokens(store, box, tid) == Tokens(OLD, NOW + timedelta(minutes=4), 1)


def test_a_refresh_done_while_waiting_is_used(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)
    # Not thread-local: another thread (the other worker) releases it.
    held = redis.lock(LOCK_KEY.format(tenant=tid), timeout=10, thread_local=False)
    assert held.acquire()

    def other_worker() -> None:
        time.sleep(0.2)
        # Even tokens as short-lived as the margin: a moved version means someone refreshed.
        save_tokens(store, box, tid, NEW, NOW + timedelta(minutes=1), NOW)
        held.release()

    def refresh(old: dict) -> tuple[dict, datetime]:
        raise AssertionError("refreshed twice")

    thread = threading.Thread(target=other_worker)
    thread.start()
    began = time.monotonic()
    got = fresh_tokens(store, box, redis, tid, refresh, lambda: NOW)
    thread.join()
    assert time.monotonic() - began < 5  # woke on the release, not on the lock's expiry
    assert (got.data, got.version) == (NEW, 2)


def test_a_lock_held_too_long_is_refresh_busy(
    store: Store, box: TokenBox, redis: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)
    monkeypatch.setattr(credentials_mod, "LOCK_WAIT", 0.2)
    held = redis.lock(LOCK_KEY.format(tenant=tid), timeout=10)
    assert held.acquire()
    with pytest.raises(RefreshBusy):
        fresh_tokens(store, box, redis, tid, dict, lambda: NOW)  # type: ignore[arg-type]
    assert redis.exists(LOCK_KEY.format(tenant=tid)) == 1  # someone else's: left alone
    held.release()


def test_a_refresh_that_outlives_its_lock_still_counts(
    store: Store,
    box: TokenBox,
    redis: redis_lib.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)
    monkeypatch.setattr(credentials_mod, "LOCK_TIMEOUT", 0.1)

    def slow(old: dict) -> tuple[dict, datetime]:
        time.sleep(0.3)
        return dict(NEW), NOW + timedelta(hours=1)

    got = fresh_tokens(store, box, redis, tid, slow, lambda: NOW)
    assert got.data == NEW
    assert "outlived" in caplog.text and "SECRET" not in caplog.text


def test_a_rejected_token_is_refreshed_once_before_its_expiry(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    """The CRM refused a token it had not yet let expire (revoked by a reinstall, a clock
    ahead of ours): workers that saw it refused make one refresh between them."""
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW + timedelta(hours=1), NOW)
    calls: list[dict] = []

    def refresh(old: dict) -> tuple[dict, datetime]:
        calls.append(old)
        return dict(NEW), NOW + timedelta(hours=1)

    assert fresh_tokens(store, box, redis, tid, refresh, lambda: NOW).data == OLD
    first = fresh_tokens(store, box, redis, tid, refresh, lambda: NOW, rejected=OLD["access_token"])
    second = fresh_tokens(
        store, box, redis, tid, refresh, lambda: NOW, rejected=OLD["access_token"]
    )
    assert first.data == second.data == NEW
    assert calls == [OLD], "the second worker gets the first one's new token"


def test_tokens_stored_during_a_refresh_are_not_overwritten_by_it(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    """An admin reinstalls while a worker refreshes the old grant: the install's tokens are the
    newer, and the refresh (of a grant the CRM has just replaced) must not store over them."""
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)
    reinstalled = {"access_token": "at-INSTALL-SECRET", "refresh_token": "rt-INSTALL-SECRET"}

    def refresh(old: dict) -> tuple[dict, datetime]:
        save_tokens(store, box, tid, reinstalled, NOW + timedelta(hours=6), NOW)  # the install
        return dict(NEW), NOW + timedelta(hours=1)

    got = fresh_tokens(store, box, redis, tid, refresh, lambda: NOW)
    assert (got.data, got.version) == (reinstalled, 2)
    assert load_tokens(store, box, tid).data == reinstalled


def test_a_refused_refresh_uses_tokens_stored_meanwhile(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    """The CRM rotates refresh tokens: a worker whose lock expired refreshed first, so this
    worker's refresh token is refused. The tokens that worker stored are good: no suspension."""
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)

    def refresh(old: dict) -> tuple[dict, datetime]:
        save_tokens(store, box, tid, NEW, NOW + timedelta(hours=1), NOW)  # the other worker
        raise PermissionDenied("invalid_grant: expired access/refresh token")

    got = fresh_tokens(store, box, redis, tid, refresh, lambda: NOW)
    assert (got.data, got.version) == (NEW, 2)


def test_a_refused_refresh_with_nothing_newer_is_raised(
    store: Store, box: TokenBox, redis: redis_lib.Redis
) -> None:
    tid = _tenant(store)
    save_tokens(store, box, tid, OLD, NOW - timedelta(minutes=1), NOW)

    def refresh(old: dict) -> tuple[dict, datetime]:
        raise PermissionDenied("invalid_grant: expired access/refresh token")

    with pytest.raises(PermissionDenied):
        fresh_tokens(store, box, redis, tid, refresh, lambda: NOW)
    assert load_tokens(store, box, tid).version == 1
