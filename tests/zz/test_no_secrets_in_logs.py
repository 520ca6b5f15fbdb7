"""Runs last (tests/zz): no secret, token or key used anywhere in the suite reached a log line.

The whole suite logs at DEBUG into one handler (tests/conftest.py, `all_logs`); this test reads
what it gathered. Secrets are recognised by their formats (API keys, webhook secrets, Fernet
keys) and by the fixed test values the suite uses.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import AllLogs
from tests.web.conftest import SECRET_KEY

PATTERNS = {
    "API key": re.compile(r"drk_[A-Za-z0-9_-]{20,}"),
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    # Not \b: a key may begin with "-" or "_", where \b does not match after a space.
    "Fernet key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9])"),
    # Salesforce's access tokens open with the org id and "!"; its refresh tokens with "5Aep".
    "Salesforce access token": re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{20,}"),
    "Salesforce refresh token": re.compile(r"5Aep[A-Za-z0-9._-]{30,}"),
}
FIXED = ["hs-test-secret", SECRET_KEY, "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"]


def test_no_secret_reached_the_logs(all_logs: AllLogs, request: pytest.FixtureRequest) -> None:
    if request.session.testscollected < 50:
        pytest.skip("meaningful only after the whole suite has run and logged")
    assert len(all_logs.lines) > 100, "the suite's logs were gathered"
    found = []
    for line in all_logs.lines:
        found += [f"{name}: {line[:120]}" for name, rx in PATTERNS.items() if rx.search(line)]
        found += [f"fixed secret: {line[:120]}" for secret in FIXED if secret in line]
    assert found == []


def test_the_check_recognises_secrets() -> None:
    assert PATTERNS["API key"].search("key drk_" + "a" * 40)
    assert PATTERNS["webhook secret"].search("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert PATTERNS["Fernet key"].search(f"key {SECRET_KEY} used")
    assert PATTERNS["Salesforce access token"].search("Bearer 00DDx0023j4OAE5!AQ" + "x" * 60)
    assert PATTERNS["Salesforce refresh token"].search("5Aep" + "y" * 50)
    for first in "-_aZ9":
        assert PATTERNS["Fernet key"].search(f"key {first}{'k' * 42}= used"), first
