"""Standard Webhooks (standardwebhooks.com, spec 1.0.0) symmetric signatures: verify and sign.

The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`; the signature is
base64(HMAC-SHA256(key, content)), sent as "v1,<base64>" in `webhook-signature`, a
space-separated list so that a sender rotating its secret can sign with both keys. The secret is
"whsec_" + base64(key); like the reference libraries we also take the bare base64.

`verify` raises only `SignatureError`, with the reason "missing" (a header absent or empty),
"malformed" (an unreadable timestamp or id, or no readable signature), "mismatch" (no v1
signature matches), "stale" (an authentic message older than `tolerance_s`) or "future" (dated
more than `tolerance_s` ahead). A `secret` that is not valid base64 is a configuration error,
raised as ValueError at once rather than passed off as a bad request. Nothing here does I/O or
reads the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping

from adapters.webhooks import MalformedBody, SignatureError

TOLERANCE_S = 300
"""How far `webhook-timestamp` may be from now, either way (the reference libraries' 5 min)."""

SECRET_PREFIX = "whsec_"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,256}")


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now_s: int,
    tolerance_s: int = TOLERANCE_S,
) -> str:
    """Check the message's signature and return its `webhook-id` (the idempotency key).

    `headers` may be any mapping; names are matched without regard to case.
    """
    key = _key(secret)
    found = {name.lower(): value for name, value in headers.items()}
    msg_id, timestamp, signatures = (
        found.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not msg_id or not timestamp or not signatures:
        raise SignatureError("missing")
    if not _readable(msg_id, _MESSAGE_ID) or not _readable(timestamp, _TIMESTAMP):
        raise SignatureError("malformed")
    expected = _mac(key, msg_id, timestamp, body)
    candidates = _v1_signatures(signatures)
    if candidates is None:
        raise SignatureError("malformed")
    # Compare against every candidate, so the time taken does not say which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise SignatureError("mismatch")
    age_s = now_s - int(timestamp)
    if age_s > tolerance_s:
        raise SignatureError("stale")
    if -age_s > tolerance_s:
        raise SignatureError("future")
    return msg_id


def sign(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The `webhook-signature` header value ("v1,<base64>") for an outbound delivery."""
    signature = _mac(_key(secret), msg_id, str(timestamp), body)
    return f"v1,{base64.b64encode(signature).decode()}"


def new_secret() -> str:
    """A new signing secret in the spec's form: "whsec_" + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is 'whsec_' + base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret may not be empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _v1_signatures(header: str) -> list[bytes] | None:
    """The decoded v1 signatures of the header; None when no entry at all could be read.

    Entries of other versions (such as the asymmetric "v1a") are readable but skipped.
    """
    if not isinstance(header, str) or not header.isascii():
        return None
    readable, v1 = False, []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if not comma or not decoded:
            continue
        readable = True
        if version == "v1":
            v1.append(decoded)
    return v1 if readable else None


def _readable(value: object, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and value.isascii() and pattern.fullmatch(value) is not None


GENERIC_TYPES = ("deal.created", "deal.updated", "deal.deleted", "activity.logged")
"""What a system without an adapter (Zapier, Make, a script) may tell us."""


def parse_event(body: bytes) -> tuple[str, list[str]]:
    """A generic event: `{"type": one of GENERIC_TYPES, "data": {"deal_id": ..} or
    {"deal_ids": [..]}}`; returns (type, deal ids) or raises MalformedBody naming the problem."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("body: not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedBody("body: must be a JSON object")
    kind = doc.get("type")
    if kind not in GENERIC_TYPES:
        raise MalformedBody(f"type: must be one of {', '.join(GENERIC_TYPES)}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedBody("data: must be an object")
    ids = data.get("deal_ids", [data["deal_id"]] if "deal_id" in data else None)
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > 100
        or not all(isinstance(i, str | int) and not isinstance(i, bool) and str(i) for i in ids)
    ):
        raise MalformedBody("data: give deal_id, or deal_ids (1 to 100 ids)")
    deal_ids = [str(i) for i in ids]
    if not all(_ID.fullmatch(i) for i in deal_ids):
        raise MalformedBody(
            "data: a deal id is 1 to 255 characters, without control characters or lone "
            "surrogates"
        )
    return kind, deal_ids


_ID = re.compile("[^\x00-\x1f\x7f\ud800-\udfff]{1,255}")
"""A deal id as any CRM writes one: no database stores NUL or lone surrogates, and no CRM
names a record with control characters."""
