"""HubSpot's signature algorithms, written for the tests apart from the code under test.

Like Stripe's `generate_header`: tests sign with these rather than paste signatures, and the
published vectors check these helpers as much as `adapters.hubspot.signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote


def v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(f"{secret}{method}{uri}".encode() + body).hexdigest()


def v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    return v3_as_hashed(secret, method, unquote(uri), body, timestamp)


def v3_as_hashed(secret: str, method: str, hashed_uri: str, body: bytes, timestamp: str) -> str:
    """v3 over the URI exactly as given (no decoding)."""
    message = f"{method}{hashed_uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def v3_headers(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> dict:
    timestamp = str(timestamp_ms)
    return {
        "X-HubSpot-Signature-v3": v3(secret, method, uri, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
    }
