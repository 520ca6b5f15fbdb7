"""Standard Webhooks signatures: the reference libraries' vector, then every way a message fails."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.standard_webhooks import TOLERANCE_S, sign, verify
from adapters.webhooks import SignatureError

# The vector every reference library tests (standard-webhooks/standard-webhooks, libraries/*).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"deal-radar-test-key-32-bytes-long").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else-entirely-0123456789").decode()
NOW = 1_717_430_400
BODY = b'{"type":"deal.updated","timestamp":"2024-06-03T16:00:00Z","data":{"id":"D-1"}}'


def _hmac_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's algorithm, written apart from the module under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def _headers(*, msg_id: str = "msg_1", timestamp: int = NOW, secret: str = SECRET,
             body: bytes = BODY, signature: str | None = None) -> dict:  # fmt: skip
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature or _hmac_v1(secret, msg_id, timestamp, body),
    }


def _reason(headers: dict, *, body: bytes = BODY, secret: str = SECRET, now_s: int = NOW) -> str:
    with pytest.raises(SignatureError) as failure:
        verify(headers=headers, body=body, secret=secret, now_s=now_s)
    return failure.value.reason


def test_sign_reproduces_the_spec_vector() -> None:
    signature = sign(msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY, secret=SPEC_SECRET)
    assert signature == SPEC_SIGNATURE
    assert _hmac_v1(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_spec_vector_with_and_without_prefix() -> None:
    headers = {"Webhook-Id": SPEC_ID, "Webhook-Timestamp": str(SPEC_TIMESTAMP),
               "Webhook-Signature": SPEC_SIGNATURE}  # fmt: skip
    for secret in (SPEC_SECRET, SPEC_SECRET.removeprefix("whsec_")):
        msg_id = verify(headers=headers, body=SPEC_BODY, secret=secret, now_s=SPEC_TIMESTAMP + 10)
        assert msg_id == SPEC_ID


def test_sign_then_verify() -> None:
    signature = sign(msg_id="msg_2", timestamp=NOW, body=BODY, secret=SECRET)
    headers = _headers(msg_id="msg_2", signature=signature)
    assert verify(headers=headers, body=BODY, secret=SECRET, now_s=NOW) == "msg_2"


def test_tampered_byte() -> None:
    assert _reason(_headers(), body=BODY.replace(b"D-1", b"D-2")) == "mismatch"


def test_id_and_timestamp_are_signed() -> None:
    headers = _headers()
    headers["webhook-id"] = "msg_other"
    assert _reason(headers) == "mismatch"
    headers = _headers()
    headers["webhook-timestamp"] = str(NOW - 1)
    assert _reason(headers) == "mismatch"


def test_wrong_secret() -> None:
    assert _reason(_headers(secret=OTHER_SECRET)) == "mismatch"


def test_stale_and_future_and_the_edges() -> None:
    for offset in (-TOLERANCE_S, TOLERANCE_S):
        timestamp = NOW + offset
        verify(headers=_headers(timestamp=timestamp), body=BODY, secret=SECRET, now_s=NOW)
    assert _reason(_headers(timestamp=NOW - TOLERANCE_S - 1)) == "stale"
    assert _reason(_headers(timestamp=NOW + TOLERANCE_S + 1)) == "future"


def test_tolerance_is_a_parameter() -> None:
    headers = _headers(timestamp=NOW - 60)
    with pytest.raises(SignatureError, match="stale"):
        verify(headers=headers, body=BODY, secret=SECRET, now_s=NOW, tolerance_s=30)


def test_any_of_several_signatures_may_match() -> None:
    """A sender rotating its secret signs with both keys; other schemes (v1a, v2) are skipped."""
    good = _hmac_v1(SECRET, "msg_1", NOW, BODY)
    signatures = " ".join([
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
        good,
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ])  # fmt: skip
    assert verify(headers=_headers(signature=signatures), body=BODY, secret=SECRET, now_s=NOW)
    rotated = f"{_hmac_v1(OTHER_SECRET, 'msg_1', NOW, BODY)} {good}"
    assert verify(headers=_headers(signature=rotated), body=BODY, secret=SECRET, now_s=NOW)


def test_only_other_schemes_is_a_mismatch() -> None:
    signature = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLP"
    assert _reason(_headers(signature=signature + "o3mNl8EM+m7TBAg==")) == "mismatch"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(missing: str) -> None:
    headers = _headers()
    del headers[missing]
    assert _reason(headers) == "missing"
    headers[missing] = ""
    assert _reason(headers) == "missing"


@pytest.mark.parametrize(
    "signature",
    [
        "v1,not base64!",
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc",  # padding missing
        "v1",
        "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1,",
        "v1,é",
        "     ",
    ],
)
def test_malformed_signature(signature: str) -> None:
    assert _reason(_headers(signature=signature)) == "malformed"


def test_malformed_entries_beside_a_good_one_are_skipped() -> None:
    signatures = f"v1,%%% {_hmac_v1(SECRET, 'msg_1', NOW, BODY)}"
    assert verify(headers=_headers(signature=signatures), body=BODY, secret=SECRET, now_s=NOW)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-timestamp", "hello"),
        ("webhook-timestamp", "1717430400.5"),
        ("webhook-timestamp", "-1717430400"),
        ("webhook-timestamp", "1" * 40),
        ("webhook-id", "msg 1"),
        ("webhook-id", "msg_é"),
        ("webhook-id", "m" * 257),
    ],
)
def test_malformed_id_or_timestamp(header: str, value: str) -> None:
    headers = _headers()
    headers[header] = value
    assert _reason(headers) == "malformed"


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "whsec_@@@@"])
def test_a_bad_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(headers=_headers(), body=BODY, secret=secret, now_s=NOW)
    with pytest.raises(ValueError, match="secret"):
        sign(msg_id="msg_1", timestamp=NOW, body=BODY, secret=secret)


@given(
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Id"]),
        st.text(max_size=60),
        max_size=4,
    ),
    body=st.binary(max_size=100),
    now_s=st.integers(min_value=0, max_value=2**40),
)
def test_arbitrary_messages_fail_only_with_signature_error(
    headers: dict, body: bytes, now_s: int
) -> None:
    try:
        verify(headers=headers, body=body, secret=SECRET, now_s=now_s)
    except SignatureError as error:
        assert error.reason in {"missing", "malformed", "mismatch", "stale", "future"}
