"""The engine is pure: no I/O libraries, no environment, no clock. This test proves it."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).parent.parent / "engine"

FORBIDDEN_MODULES = {
    "flask", "rq", "redis", "requests", "sqlalchemy", "alembic", "hubspot", "simple_salesforce",
    "os", "sys", "time", "socket", "subprocess", "urllib", "http", "random", "logging",
    "connector", "adapters", "jobs", "sandbox", "pathlib", "io", "shutil", "tempfile",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "open", "getenv"}


def _sources() -> list[Path]:
    files = sorted(ENGINE.glob("*.py"))
    assert len(files) >= 8, "the engine's modules are where this test expects them"
    return files


def _impure_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    return found


def _clock_or_environment(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FORBIDDEN_CALLS:
                found.append(f"{node.lineno}: {name}()")
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append(f"{node.lineno}: environ")
    return found


def test_engine_imports_nothing_with_io() -> None:
    assert {p.name: _impure_imports(p.read_text()) for p in _sources()} == {
        p.name: [] for p in _sources()
    }


def test_engine_reads_neither_clock_nor_environment() -> None:
    assert {p.name: _clock_or_environment(p.read_text()) for p in _sources()} == {
        p.name: [] for p in _sources()
    }


def test_the_checks_catch_a_module_that_cheats() -> None:
    cheat = (
        "import os\nfrom redis import Redis\nfrom datetime import datetime\nx = datetime.now()\n"
    )
    assert _impure_imports(cheat) == ["os", "redis"]
    assert _clock_or_environment(cheat) == ["4: now()"]
    assert _clock_or_environment("import os\nos.environ.get('X')\n") == ["2: environ"]


def test_nothing_outside_jobs_imports_jobs() -> None:
    """DESIGN.md: dependencies point one way, and nothing imports `jobs` (work is enqueued by
    the job's dotted name)."""
    root = ENGINE.parent
    found = {}
    for package in ("connector", "adapters", "engine"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [
                n.module for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
            ]  # fmt: skip
            if bad := [n for n in names if n.split(".")[0] == "jobs"]:
                found[str(path.relative_to(root))] = bad
    assert found == {}
