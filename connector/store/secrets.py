"""Encryption of tokens at rest, bound to their tenant.

`TokenBox` wraps cryptography's MultiFernet over DEALRADAR_SECRET_KEYS (newest first: the first
key encrypts, every key decrypts, so a key is rotated by adding a new one in front, running
`rotate` over the stored ciphertexts (`dealradar db rotate-secrets`, connector.store.rotation),
then dropping the old key). The tenant's id is sealed inside
the encrypted payload: a ciphertext copied into another tenant's row decrypts but is refused with
`TokenMismatch`, never returned. Fernet authenticates what it encrypts, so neither the tenant id
nor the tokens can be altered without the decryption failing.

Error policy: every failure raises; no message, repr or log line ever contains a key, a token
or a ciphertext.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector.config import ConfigError

ENV_NAME = "DEALRADAR_SECRET_KEYS"
PAYLOAD_FORMAT = 1
"""The version of the sealed JSON envelope {"f": format, "t": tenant id, "d": payload}."""
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
"""The one-liner that prints a new key, quoted in every key error."""


class SecretError(RuntimeError):
    """A ciphertext that none of the configured keys can open, or that is not ours."""


class TokenMismatch(SecretError):
    """A ciphertext sealed for another tenant: a copied row, refused and never used."""


class SecretKeyError(ConfigError):
    """DEALRADAR_SECRET_KEYS holds something that is not a Fernet key (the value is never shown)."""


class TokenBox:
    """Seals and opens a tenant's tokens with the deployment's keys; its repr shows no key."""

    __slots__ = ("_fernet", "_key_count")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str | bytes):
            # A lone string would be taken character by character: say what went wrong instead.
            raise TypeError("TokenBox takes a sequence of keys, newest first, not one string")
        if not keys:
            raise SecretKeyError(
                f"{ENV_NAME} is empty: give one or more Fernet keys, comma-separated, newest "
                f"first. Make one with: {MAKE_KEY}"
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # `from None`: the underlying error could quote the key.
                raise SecretKeyError(
                    f"{ENV_NAME}: key {position} of {len(keys)} is not a Fernet key "
                    f"(32 url-safe base64-encoded bytes). Make one with: {MAKE_KEY}"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    def __repr__(self) -> str:
        return f"TokenBox(keys={self._key_count})"

    def __reduce__(self) -> Any:
        # Keys stay in the process that read them: never pickled into a job or a cache.
        raise TypeError("a TokenBox cannot be pickled; build one from Config in each process")

    def seal(self, tenant_id: str, payload: dict[str, Any]) -> str:
        """Encrypt `payload` (JSON-serialisable) for `tenant_id` with the newest key."""
        if not tenant_id:
            raise ValueError("seal needs the tenant's id")
        if not isinstance(payload, dict):
            raise TypeError(f"seal takes a dict, not {type(payload).__name__}")
        envelope = {"f": PAYLOAD_FORMAT, "t": tenant_id, "d": payload}
        plain = json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def open(self, tenant_id: str, ciphertext: str) -> dict[str, Any]:
        """Decrypt a ciphertext sealed for `tenant_id`.

        Raises SecretError when no configured key opens it (or it is not a Fernet token), and
        TokenMismatch when it was sealed for another tenant.
        """
        envelope = self._decrypt(ciphertext, tenant_id)
        if envelope.get("t") != tenant_id:
            raise TokenMismatch(
                f"the stored credentials of tenant {tenant_id!r} were sealed for another tenant "
                "(a copied row?): refused; reinstall the app for this tenant to store new ones"
            )
        return envelope["d"]

    def rotate(self, ciphertext: str) -> str:
        """The same sealed payload re-encrypted under the newest key; SecretError if unreadable."""
        try:
            return self._fernet.rotate(_as_bytes(ciphertext)).decode("ascii")
        except InvalidToken:
            raise SecretError(_cannot_decrypt("a stored ciphertext")) from None

    def _decrypt(self, ciphertext: str, tenant_id: str) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(_as_bytes(ciphertext))
        except InvalidToken:
            raise SecretError(_cannot_decrypt(f"tenant {tenant_id!r}'s credentials")) from None
        try:
            envelope = json.loads(plain)
        except ValueError:
            envelope = None
        if (
            not isinstance(envelope, dict)
            or envelope.get("f") != PAYLOAD_FORMAT
            or not isinstance(envelope.get("d"), dict)
        ):
            raise SecretError(
                f"tenant {tenant_id!r}'s credentials decrypt but are not a Deal Radar token "
                "envelope: refused; reinstall the app for this tenant to store new ones"
            )
        return envelope


def _as_bytes(ciphertext: str | bytes) -> bytes:
    return ciphertext if isinstance(ciphertext, bytes) else ciphertext.encode("ascii", "replace")


def _cannot_decrypt(what: str) -> str:
    return (
        f"cannot decrypt {what} with any key in {ENV_NAME}: check that the key they were "
        "encrypted with is still listed there (add new keys in front; drop an old key only "
        "after rotating)"
    )
