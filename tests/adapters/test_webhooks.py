"""The shared webhook vocabulary, and proof that the webhook halves are pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from adapters.webhooks import Hint, MalformedBody, SignatureError, WebhookError

ADAPTERS = Path(__file__).parent.parent.parent / "adapters"
WEBHOOK_HALVES = [
    ADAPTERS / "webhooks.py",
    ADAPTERS / "standard_webhooks.py",
    ADAPTERS / "hubspot" / "signature.py",
    ADAPTERS / "hubspot" / "schemas.py",
    ADAPTERS / "hubspot" / "events.py",
    ADAPTERS / "salesforce" / "schemas.py",
    ADAPTERS / "salesforce" / "events.py",
]
FORBIDDEN_MODULES = {
    "flask", "rq", "redis", "requests", "sqlalchemy", "hubspot", "simple_salesforce", "os",
    "sys", "time", "socket", "subprocess", "http", "random", "connector", "jobs", "pathlib",
    "urllib.request", "xml.dom", "lxml",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "open", "getenv"}


def test_errors_carry_their_reason() -> None:
    for error_class in (SignatureError, MalformedBody):
        error = error_class("stale")
        assert isinstance(error, WebhookError)
        assert (error.reason, str(error)) == ("stale", "stale")


def test_hint_kinds_are_closed() -> None:
    assert Hint("deal", "1") == Hint("deal", "1")
    with pytest.raises(ValueError, match="ticket"):
        Hint("ticket", "1")


@pytest.mark.parametrize("module", WEBHOOK_HALVES, ids=lambda p: str(p.relative_to(ADAPTERS)))
def test_webhook_halves_do_no_io_and_read_no_clock(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
    assert [
        name for name in imported
        if name in FORBIDDEN_MODULES or name.split(".")[0] in FORBIDDEN_MODULES
    ] == []  # fmt: skip
    calls = [
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    ]
    assert sorted(set(calls) & FORBIDDEN_CALLS) == []
