"""TokenBox: tokens sealed to their tenant, key rotation, and errors that never show a secret."""

from __future__ import annotations

import pickle
import traceback

import pytest
from cryptography.fernet import Fernet

from connector.config import ConfigError
from connector.store.secrets import SecretError, SecretKeyError, TokenBox, TokenMismatch

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
TOKENS = {"access_token": "at-SECRET-1", "refresh_token": "rt-SECRET-2"}


def test_round_trip_and_the_ciphertext_shows_nothing() -> None:
    box = TokenBox([NEW])
    sealed = box.seal("tenant-a", TOKENS)
    assert "SECRET" not in sealed and "tenant-a" not in sealed
    assert box.open("tenant-a", sealed) == TOKENS
    assert box.seal("tenant-a", TOKENS) != sealed  # a fresh IV every time


def test_a_ciphertext_copied_to_another_tenant_is_refused() -> None:
    box = TokenBox([NEW])
    sealed = box.seal("tenant-a", TOKENS)
    with pytest.raises(TokenMismatch) as caught:
        box.open("tenant-b", sealed)
    assert "SECRET" not in str(caught.value) and "tenant-a" not in str(caught.value)


def test_wrong_key_names_the_setting_and_not_the_secret() -> None:
    sealed = TokenBox([OLD]).seal("tenant-a", TOKENS)
    with pytest.raises(SecretError) as caught:
        TokenBox([NEW]).open("tenant-a", sealed)
    message = str(caught.value)
    assert "DEALRADAR_SECRET_KEYS" in message
    assert OLD not in message and NEW not in message and sealed not in message
    assert type(caught.value) is SecretError
    assert sealed not in "".join(traceback.format_exception(caught.value))


def test_garbage_is_a_secret_error() -> None:
    with pytest.raises(SecretError):
        TokenBox([NEW]).open("tenant-a", "not a token")
    with pytest.raises(SecretError):
        TokenBox([NEW]).rotate("not a token")


def test_rotation_new_key_first_old_keys_still_decrypt() -> None:
    sealed_old = TokenBox([OLD]).seal("tenant-a", TOKENS)
    both = TokenBox([NEW, OLD])
    assert both.open("tenant-a", sealed_old) == TOKENS
    rotated = both.rotate(sealed_old)
    assert TokenBox([NEW]).open("tenant-a", rotated) == TOKENS
    with pytest.raises(SecretError):
        TokenBox([OLD]).open("tenant-a", rotated)
    # The newest key is the one that encrypts.
    assert TokenBox([NEW]).open("tenant-a", both.seal("tenant-a", TOKENS)) == TOKENS


@pytest.mark.parametrize("keys", [[], ["not-a-key"], [NEW, "short"], [NEW, "é" * 44]])
def test_bad_keys_are_a_config_error_that_does_not_quote_them(keys: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        TokenBox(keys)
    assert isinstance(caught.value, SecretKeyError)
    message = str(caught.value)
    assert "DEALRADAR_SECRET_KEYS" in message
    shown = "".join(traceback.format_exception(caught.value))
    assert all(k not in message and k not in shown for k in keys if k)


def test_one_string_is_not_a_list_of_keys() -> None:
    with pytest.raises(TypeError):
        TokenBox(NEW)  # type: ignore[arg-type]


def test_repr_and_pickle_show_no_key() -> None:
    box = TokenBox([NEW, OLD])
    assert repr(box) == "TokenBox(keys=2)" and NEW not in str(box)
    with pytest.raises(TypeError):
        pickle.dumps(box)
