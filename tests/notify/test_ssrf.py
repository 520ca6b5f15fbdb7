"""The SSRF policy: what outbound URLs may name, checked on resolved addresses, and connections
made only to the addresses checked."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from connector.notify.ssrf import OutboundPolicy, UnsafeUrl
from tests.receiver import Receiver


def resolver(names: dict[str, list[str]]):
    def resolve(host: str, port: int, *_: object) -> list[tuple]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in names[host]
        ]

    return resolve


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.0.0.8/hook", "private"),
        ("https://172.16.3.4/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("https://169.254.10.1/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://100.64.0.1/", "carrier-grade NAT"),
        ("https://224.0.0.251/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::ffff:10.0.0.8]/", "embeds 10.0.0.8"),
        ("https://[64:ff9b::a9fe:a9fe]/", "embeds 169.254.169.254"),
        ("https://[fd12:3456::1]/", "private"),
    ],
)
def test_private_loopback_and_metadata_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        OutboundPolicy().check(url)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("192.0.0.192", "metadata"),  # Oracle Cloud's older metadata service
        ("::ffff:192.0.0.192", "resolves to a cloud metadata address"),
        ("192.0.0.100", "reserved"),
        ("192.88.99.1", "reserved"),
        ("fec0::1", "site-local"),
        ("fec0:0:0:ffff::1", "site-local"),
        ("3fff::1", "documentation"),
        ("64:ff9b:1::a", "NAT64"),
        ("100::1", "discard"),
        ("2001:2::1", "reserved"),
        ("198.51.100.7", "documentation"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_special_purpose_ranges_are_refused_whatever_python_calls_them(
    address: str, why: str
) -> None:
    """Python 3.11.7's ipaddress calls 192.0.0.0/24 and fec0::/10 global: refused by list."""
    policy = OutboundPolicy(resolver=resolver({"hooks.attacker.example": [address]}))
    with pytest.raises(UnsafeUrl, match=why) as refused:
        policy.check("https://hooks.attacker.example/x")
    assert address not in str(refused.value), "a name's address is for our log, not the tenant"


def test_a_hostname_resolving_to_a_private_address_is_refused() -> None:
    policy = OutboundPolicy(
        resolver=resolver(
            {
                "intranet.example.com": ["10.20.30.40"],
                "mixed.example.com": ["93.184.215.14", "192.168.0.7"],
                "metadata.example.com": ["169.254.169.254"],
                "mapped.example.com": ["::ffff:10.1.2.3"],
                "public.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            }
        )
    )
    with pytest.raises(UnsafeUrl, match=r"'intranet\.example\.com' resolves to a private") as e:
        policy.check("https://intranet.example.com/hook")
    assert "10.20.30.40" not in str(e.value), "a tenant may not learn our internal addresses"
    with pytest.raises(UnsafeUrl, match="private") as e:  # one bad address is enough
        policy.check("https://mixed.example.com/hook")
    assert "192.168.0.7" not in str(e.value)
    with pytest.raises(UnsafeUrl, match="resolves to a private address;") as e:
        policy.check("https://mapped.example.com/hook")
    assert "10.1.2.3" not in str(e.value)
    with pytest.raises(UnsafeUrl, match="metadata"):
        policy.check("https://metadata.example.com/")
    assert [str(a) for a in policy.check("https://public.example.com/hook")] == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]
    with pytest.raises(UnsafeUrl, match="cannot be resolved"):
        policy.check("https://nowhere.example.com/")


def test_localhost_is_loopback_after_real_resolution() -> None:
    with pytest.raises(UnsafeUrl, match=r"'localhost' resolves to .*loopback"):
        OutboundPolicy(allow_http=True).check("http://localhost:8080/")
    assert OutboundPolicy(allow_http=True, allow_loopback=True).check("http://localhost:8080/")


def test_https_only_unless_http_is_allowed() -> None:
    public = OutboundPolicy(resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    with pytest.raises(UnsafeUrl, match="only https URLs"):
        public.check("http://hooks.example.com/")
    for bad in (
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "",
        "https://",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com:99999/",
    ):
        with pytest.raises(UnsafeUrl):
            public.check(bad)
    assert public.check("https://hooks.example.com/zap?x=1")


def test_the_loopback_flag_admits_loopback_only() -> None:
    relaxed = OutboundPolicy(allow_http=True, allow_loopback=True)
    assert relaxed.check("http://127.0.0.1:9/")
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[fd00:ec2::254]/"):
        with pytest.raises(UnsafeUrl):
            relaxed.check(url)


def test_the_session_connects_to_allowed_addresses(receiver: Receiver) -> None:
    policy = OutboundPolicy(allow_http=True, allow_loopback=True)
    with policy.session() as s:
        assert s.post(receiver.url, json={"a": 1}, timeout=5).status_code == 200
    assert receiver.received[0].body == b'{"a": 1}'


def test_the_session_refuses_before_sending_a_byte(receiver: Receiver) -> None:
    with OutboundPolicy(allow_http=True).session() as s, pytest.raises(UnsafeUrl, match="loopback"):
        s.post(receiver.url, json={}, timeout=5)
    with OutboundPolicy().session() as s, pytest.raises(UnsafeUrl, match="only https"):
        s.post(receiver.url, json={}, timeout=5)
    assert receiver.answered == []


def test_dns_rebinding_is_caught_at_connect_time(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The name resolved to an allowed address when checked, and to a forbidden one when the
    connection is made: the connection checks again and never reaches it."""
    answers = iter([["127.0.0.1"], ["10.9.8.7"]])

    def rebinding(host: str, port: int, *_: object) -> list[tuple]:
        return resolver({host: next(answers)})(host, port)

    policy = OutboundPolicy(allow_http=True, allow_loopback=True, resolver=rebinding)
    url = f"http://rebind.example.com:{receiver.port}/hook"
    assert policy.check(url)
    with policy.session() as s, pytest.raises(UnsafeUrl, match="resolves to a private"):
        s.post(url, json={}, timeout=5)
    assert receiver.answered == []
    assert "rebind.example.com' resolves to 10.9.8.7" in caplog.text  # for us, not the tenant


def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(receiver: Receiver) -> None:
    """requests would resolve `hooks.test` itself (and fail); the session connects to the
    address the policy resolved and checked, and sends the name as the Host."""
    policy = OutboundPolicy(
        allow_http=True, allow_loopback=True, resolver=resolver({"hooks.test": ["127.0.0.1"]})
    )
    with policy.session() as s:
        response = s.post(f"http://hooks.test:{receiver.port}/x", data=b"hi", timeout=5)
    assert response.status_code == 200
    assert receiver.received[0].headers["host"] == f"hooks.test:{receiver.port}"
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://hooks.test:{receiver.port}/x", timeout=5)


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    """A self-signed certificate for `name` (cert file, key file)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_tls_to_the_pinned_address_still_checks_the_certificate_against_the_name(
    tmp_path,
) -> None:
    import ssl

    receiver = Receiver().start()
    try:
        assert receiver._server is not None
        cert, key = _certificate(tmp_path, "hooks.test")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        receiver._server.socket = context.wrap_socket(receiver._server.socket, server_side=True)
        names = {"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        policy = OutboundPolicy(allow_loopback=True, resolver=resolver(names))
        with policy.session() as s:
            ok = s.post(f"https://hooks.test:{receiver.port}/x", json={}, timeout=5, verify=cert)
            assert ok.status_code == 200
            with pytest.raises(requests.exceptions.SSLError):
                s.post(f"https://other.test:{receiver.port}/x", json={}, timeout=5, verify=cert)
        assert len(receiver.received) == 1
    finally:
        receiver.stop()
