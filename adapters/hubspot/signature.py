"""HubSpot request signatures (v3, and the legacy v2 and v1), checked on the raw request.

- v3 (`X-HubSpot-Signature-v3`): base64(HMAC-SHA256(key=client secret,
  msg=METHOD + URI + body + X-HubSpot-Request-Timestamp)), the timestamp in milliseconds and
  within `max_age_ms` of `now_ms` either way.
- v2 (`X-HubSpot-Signature`, `X-HubSpot-Signature-Version: v2`):
  hex(SHA-256(client secret + METHOD + URI + body)), the URI exactly as HubSpot called it.
- v1 (`X-HubSpot-Signature`, version header `v1` or absent): hex(SHA-256(client secret + body)).
  CRM webhooks from the Webhooks API are signed this way.

When the v3 header is present it alone decides: a request is never downgraded to v1 or v2
because its v3 signature failed. The legacy versions carry no timestamp, so a captured request
can be replayed; `allow_legacy=False` refuses them once every sender is known to sign with v3.

Every failure is one `SignatureError` whose reason is "missing" (no usable signature header),
"malformed" (a header we cannot read), "mismatch" (wrong signature: tampered body, wrong
secret or URI), "stale" (an authentic v3 request older than `max_age_ms`) or "future" (an
authentic v3 request dated more than `max_age_ms` ahead: a clock problem to look at). An empty
`client_secret` is a configuration error, raised as ValueError. Nothing here does I/O or reads
the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote

from adapters.webhooks import SignatureError

MAX_AGE_MS = 300_000
"""How far a v3 timestamp may be from now, either way (HubSpot says reject after 5 minutes)."""

HEADERS = (
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-Version",
)
"""Every header `verify` reads: a caller may hand it these alone rather than all of them."""

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def verify(
    *,
    headers: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes,
    client_secret: str,
    now_ms: int,
    max_age_ms: int = MAX_AGE_MS,
    allow_legacy: bool = True,
) -> str:
    """Check the request's HubSpot signature and return the version used: "v3", "v2" or "v1".

    `headers` may be any mapping; names are matched without regard to case. `uri` is the full
    public URL HubSpot called (scheme, host, path and query, as behind any proxy); `body` the
    raw bytes. For v3 the URI is URL-decoded before hashing, as HubSpot's docs ask: which
    escapes HubSpot decodes is UNCONFIRMED (its docs list a handful, a public C# sample decodes
    the whole URL, hubspot-api-client hashes the URI undecoded), so a URI with percent-escapes
    is checked in each of those three readings (all keyed by the secret: no reading helps a
    forger); one without, the usual case, reads the same in all three.
    """
    if not client_secret:
        raise ValueError("the HubSpot client secret is empty: every v1 signature would match")
    found = {name.lower(): value for name, value in headers.items()}
    if "x-hubspot-signature-v3" in found:
        _verify_v3(found, method, uri, body, client_secret, now_ms, max_age_ms)
        return "v3"
    signature = found.get("x-hubspot-signature")
    if not allow_legacy or signature is None:
        raise SignatureError("missing")
    version = _ascii(found.get("x-hubspot-signature-version", "v1")).strip().lower()
    digest = _LEGACY.get(version)
    if digest is None or not _HEX_DIGEST.fullmatch(_ascii(signature)):
        raise SignatureError("malformed")
    expected = digest(client_secret, method, uri, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise SignatureError("mismatch")
    return version


def _verify_v3(
    found: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes,
    client_secret: str,
    now_ms: int,
    max_age_ms: int,
) -> None:
    signature = _ascii(found["x-hubspot-signature-v3"])
    timestamp = found.get("x-hubspot-request-timestamp")
    if timestamp is None:
        raise SignatureError("missing")
    if not signature or not _TIMESTAMP.fullmatch(_ascii(timestamp)):
        raise SignatureError("malformed")
    for reading in _uri_readings(uri):
        message = b"".join((method.upper().encode(), reading.encode(), body, timestamp.encode()))
        mac = hmac.digest(client_secret.encode(), message, "sha256")
        if hmac.compare_digest(base64.b64encode(mac).decode(), signature):
            break
    else:
        raise SignatureError("mismatch")
    age_ms = now_ms - int(timestamp)
    if age_ms > max_age_ms:
        raise SignatureError("stale")
    if -age_ms > max_age_ms:
        raise SignatureError("future")


_DOCUMENTED_ESCAPES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
"""The escapes HubSpot's v3 documentation lists as decoded before hashing."""
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")


def _uri_readings(uri: str) -> list[str]:
    """The URI fully decoded (first: the reading the tests' vectors use), with only the
    documented escapes decoded, and as it is."""
    if "%" not in uri:
        return [uri]
    documented = _ESCAPE.sub(lambda m: _DOCUMENTED_ESCAPES.get(m[0].upper(), m[0]), uri)
    return list(dict.fromkeys((unquote(uri), documented, uri)))


def _v1(client_secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(client_secret.encode() + body).hexdigest()


def _v2(client_secret: str, method: str, uri: str, body: bytes) -> str:
    source = (client_secret + method.upper() + uri).encode() + body
    return hashlib.sha256(source).hexdigest()


_LEGACY: dict[str, Callable[[str, str, str, bytes], str]] = {"v1": _v1, "v2": _v2}


def _ascii(value: object) -> str:
    """The header value if it is an ASCII string; anything else is a malformed header."""
    if not isinstance(value, str) or not value.isascii():
        raise SignatureError("malformed")
    return value
