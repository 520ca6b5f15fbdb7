"""HubSpot signatures, from raw bytes: the published vectors, then every way a request fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hubspot.signature import MAX_AGE_MS, verify
from adapters.webhooks import SignatureError
from tests.adapters.hubspot import signing

FIXTURES = Path(__file__).parent / "fixtures"

# The published examples' secret and URI (crm-apis.md 1.6: legacy docs and hubspot-api-client).
DOCS_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOCS_URI = "https://www.example.com/webhook_uri"
CLIENT_BODY = b"{'example_field':'example_value'}"  # hubspot-api-client's, single quotes

SECRET = "c0ffee00-1234-4d2c-9f00-5e5e5e5e5e5e"
URI = "https://hooks.dealradar.example/webhooks/hubspot"
NOW_MS = 1_717_430_401_000
BODY = (FIXTURES / "deal.propertyChange__dealstage.json").read_bytes()


def _check(headers: dict, *, method: str = "POST", uri: str = URI, body: bytes = BODY,
           secret: str = SECRET, now_ms: int = NOW_MS, **options: object) -> str:  # fmt: skip
    return verify(
        headers=headers,
        method=method,
        uri=uri,
        body=body,
        client_secret=secret,
        now_ms=now_ms,
        **options,
    )


def _reason(headers: dict, **kwargs: object) -> str:
    with pytest.raises(SignatureError) as failure:
        _check(headers, **kwargs)
    return failure.value.reason


# -- published vectors --


def test_v2_get_with_empty_body_docs_vector() -> None:
    headers = {
        "X-HubSpot-Signature": "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
        "X-HubSpot-Signature-Version": "v2",
    }
    version = _check(headers, method="GET", uri=DOCS_URI, body=b"", secret=DOCS_SECRET)
    assert version == "v2"


def test_v2_post_with_body_docs_vector() -> None:
    headers = {
        "X-HubSpot-Signature": "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        "X-HubSpot-Signature-Version": "v2",
    }
    body = b'{"example_field":"example_value"}'
    assert _check(headers, uri=DOCS_URI, body=body, secret=DOCS_SECRET) == "v2"


def test_v1_docs_vector_on_its_example_body() -> None:
    headers = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }
    body = (FIXTURES / "contact.creation__docs_v1_example.json").read_bytes()
    assert _check(headers, uri=DOCS_URI, body=body, secret=DOCS_SECRET) == "v1"


CLIENT_V1 = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
CLIENT_V2 = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
CLIENT_V3 = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({"X-HubSpot-Signature": CLIENT_V1, "X-HubSpot-Signature-Version": "v1"}, "v1"),
        ({"X-HubSpot-Signature": CLIENT_V2, "X-HubSpot-Signature-Version": "v2"}, "v2"),
        ({"X-HubSpot-Signature-v3": CLIENT_V3, "X-HubSpot-Request-Timestamp": "1693657560000"},
         "v3"),
    ],
    ids=["v1", "v2", "v3"],
)  # fmt: skip
def test_hubspot_api_client_vectors(headers: dict, version: str) -> None:
    result = _check(
        headers, uri=DOCS_URI, body=CLIENT_BODY, secret=DOCS_SECRET, now_ms=1_693_657_560_000
    )
    assert result == version


def test_v3_example_from_hubspots_validating_requests_page() -> None:
    """HubSpot's own v3 example (its docs, as quoted by several public implementations), on a
    real contact.creation delivery."""
    headers = {
        "X-HubSpot-Signature-v3": "gbj1XPRvUt0noT7i7fXfTzOD4sLzQmf0VT28ZYq0EYg=",
        "X-HubSpot-Request-Timestamp": "1752613922216",
    }
    body = (FIXTURES / "contact.creation__docs_v3_example.json").read_bytes()
    version = _check(
        headers,
        uri="https://webhook.site/335453f5-94b3-49d9-b684-a55354d4b8df",
        body=body,
        secret="cfc68c0b-4b4e-4ef8-b764-95350e4ea479",
        now_ms=1_752_613_922_216 + 1_000,
    )
    assert version == "v3"


def test_the_test_helper_reproduces_the_published_vectors() -> None:
    assert signing.v1(DOCS_SECRET, CLIENT_BODY) == CLIENT_V1
    assert signing.v2(DOCS_SECRET, "POST", DOCS_URI, CLIENT_BODY) == CLIENT_V2
    assert signing.v2(DOCS_SECRET, "GET", DOCS_URI, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )
    assert signing.v3(DOCS_SECRET, "POST", DOCS_URI, CLIENT_BODY, "1693657560000") == CLIENT_V3


# -- v3, signed by the helper --


def test_v3_valid() -> None:
    assert _check(signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS - 2_000)) == "v3"


def test_header_names_are_matched_without_case() -> None:
    headers = {
        k.lower(): v for k, v in signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS).items()
    }
    assert _check(headers) == "v3"


@pytest.mark.parametrize(
    ("signed_uri", "request_uri"),
    [
        (URI, URI),
        (URI + "?portal=62515&source=hubspot", URI + "?portal=62515&source=hubspot"),
        (URI + "?next=https://x.example/a b", URI + "?next=https%3A%2F%2Fx.example%2Fa%20b"),
    ],
    ids=["plain", "query", "percent-escaped query"],
)
def test_v3_uri_is_url_decoded_before_hashing(signed_uri: str, request_uri: str) -> None:
    """HubSpot hashes the decoded URI; we decode what we received the same way."""
    headers = signing.v3_headers(SECRET, "POST", signed_uri, BODY, NOW_MS)
    assert _check(headers, uri=request_uri) == "v3"


@pytest.mark.parametrize(
    "hashed_uri",
    [
        URI + "?next=https://x.example/a b&q=50%",  # every escape decoded
        URI + "?next=https://x.example/a%20b&q=50%25",  # only the escapes HubSpot's docs list
        URI + "?next=https%3A%2F%2Fx.example%2Fa%20b&q=50%25",  # none (hubspot-api-client)
    ],
    ids=["all decoded", "documented escapes decoded", "undecoded"],
)
def test_v3_each_reading_of_an_escaped_uri_verifies_and_a_tampered_body_never(
    hashed_uri: str,
) -> None:
    """Which escapes HubSpot decodes before hashing is unconfirmed: each reading is accepted,
    all of them keyed by the secret."""
    request_uri = URI + "?next=https%3A%2F%2Fx.example%2Fa%20b&q=50%25"
    timestamp = str(NOW_MS)
    mac = signing.v3_as_hashed(SECRET, "POST", hashed_uri, BODY, timestamp)
    headers = {"X-HubSpot-Signature-v3": mac, "X-HubSpot-Request-Timestamp": timestamp}
    assert _check(headers, uri=request_uri) == "v3"
    assert _reason(headers, uri=request_uri, body=BODY + b" ") == "mismatch"


def test_v3_query_order_matters() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI + "?a=1&b=2", BODY, NOW_MS)
    assert _reason(headers, uri=URI + "?b=2&a=1") == "mismatch"


def test_v3_tampered_byte() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    tampered = BODY.replace(b"contractsent", b"closedwon!!!")
    assert len(tampered) == len(BODY)
    assert _reason(headers, body=tampered) == "mismatch"


def test_v3_wrong_secret() -> None:
    headers = signing.v3_headers("someone-elses-secret", "POST", URI, BODY, NOW_MS)
    assert _reason(headers) == "mismatch"


def test_v3_wrong_method() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    assert _reason(headers, method="PUT") == "mismatch"


def test_v3_timestamp_is_signed() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    headers["X-HubSpot-Request-Timestamp"] = str(NOW_MS - 1)
    assert _reason(headers) == "mismatch"


def test_v3_stale_and_the_edge_of_the_window() -> None:
    edge = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS - MAX_AGE_MS)
    assert _check(edge) == "v3"
    stale = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS - MAX_AGE_MS - 1)
    assert _reason(stale) == "stale"


def test_v3_future_timestamp() -> None:
    edge = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS + MAX_AGE_MS)
    assert _check(edge) == "v3"
    future = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS + MAX_AGE_MS + 1)
    assert _reason(future) == "future"


def test_v3_max_age_is_a_parameter() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS - 60_000)
    assert _reason(headers, max_age_ms=30_000) == "stale"


@pytest.mark.parametrize(
    "timestamp",
    ["", "abc", "1717430401000.5", "-1717430401000", " 1717430401000", "١٧١٧", "9" * 40],
)
def test_v3_malformed_timestamp(timestamp: str) -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    headers["X-HubSpot-Request-Timestamp"] = timestamp
    assert _reason(headers) == "malformed"


def test_v3_missing_timestamp() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    del headers["X-HubSpot-Request-Timestamp"]
    assert _reason(headers) == "missing"


def test_v3_non_ascii_signature() -> None:
    headers = signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS)
    headers["X-HubSpot-Signature-v3"] = "é" + headers["X-HubSpot-Signature-v3"][1:]
    assert _reason(headers) == "malformed"


def test_v3_present_is_never_downgraded_to_a_valid_v1() -> None:
    headers = {
        "X-HubSpot-Signature-v3": "bm90IHRoZSBzaWduYXR1cmU=",
        "X-HubSpot-Request-Timestamp": str(NOW_MS),
        "X-HubSpot-Signature": signing.v1(SECRET, BODY),
        "X-HubSpot-Signature-Version": "v1",
    }
    assert _reason(headers) == "mismatch"


# -- v1 and v2 --


def test_v1_valid_with_and_without_version_header() -> None:
    assert _check({"X-HubSpot-Signature": signing.v1(SECRET, BODY)}) == "v1"
    headers = {"X-HubSpot-Signature": signing.v1(SECRET, BODY), "X-HubSpot-Signature-Version": "v1"}
    assert _check(headers) == "v1"


def test_v2_valid_and_uri_not_decoded() -> None:
    uri = URI + "?next=https%3A%2F%2Fx.example"
    headers = {"X-HubSpot-Signature": signing.v2(SECRET, "POST", uri, BODY),
               "X-HubSpot-Signature-Version": "v2"}  # fmt: skip
    assert _check(headers, uri=uri) == "v2"


def _legacy(version: str, secret: str, body: bytes = BODY) -> dict:
    signature = (
        signing.v1(secret, body) if version == "v1" else signing.v2(secret, "POST", URI, body)
    )
    return {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_legacy_tampered_byte(version: str) -> None:
    tampered = BODY.replace(b"contractsent", b"contractSent")
    assert _reason(_legacy(version, SECRET), body=tampered) == "mismatch"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_legacy_wrong_secret(version: str) -> None:
    assert _reason(_legacy(version, "someone-elses-secret")) == "mismatch"


def test_legacy_refused_when_not_allowed() -> None:
    headers = {"X-HubSpot-Signature": signing.v1(SECRET, BODY)}
    assert _reason(headers, allow_legacy=False) == "missing"
    assert _check(signing.v3_headers(SECRET, "POST", URI, BODY, NOW_MS), allow_legacy=False) == "v3"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-HubSpot-Signature": "not-hex"},
        {"X-HubSpot-Signature": "ab" * 31},
        {"X-HubSpot-Signature": "é" * 64},
        {"X-HubSpot-Signature": "ab" * 32, "X-HubSpot-Signature-Version": "v4"},
        {"X-HubSpot-Signature": "ab" * 32, "X-HubSpot-Signature-Version": "vé"},
    ],
    ids=["not hex", "short", "non-ascii", "unknown version", "non-ascii version"],
)
def test_legacy_malformed(headers: dict) -> None:
    assert _reason(headers) == "malformed"


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        _check({"X-HubSpot-Signature": signing.v1("", BODY)}, secret="")


def test_missing_every_header() -> None:
    assert _reason({}) == "missing"
    assert _reason({"Content-Type": "application/json"}) == "missing"


# -- nothing but SignatureError, whatever arrives --

_header_names = st.sampled_from([
    "X-HubSpot-Signature", "X-HubSpot-Signature-Version", "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp", "x-hubspot-signature-v3", "Content-Type",
])  # fmt: skip


@given(
    headers=st.dictionaries(_header_names, st.text(max_size=80), max_size=5),
    body=st.binary(max_size=200),
    uri=st.text(max_size=80),
    now_ms=st.integers(min_value=0, max_value=2**53),
)
def test_arbitrary_requests_fail_only_with_signature_error(
    headers: dict, body: bytes, uri: str, now_ms: int
) -> None:
    try:
        _check(headers, body=body, uri=uri, now_ms=now_ms)
    except SignatureError as error:
        assert error.reason in {"missing", "malformed", "mismatch", "stale", "future"}
