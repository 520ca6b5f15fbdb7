"""The line between the product and its sandbox (DESIGN.md): the emulators and the generator
import nothing of the product, and the product imports nothing of them. `make run` crosses it
only by running `python -m sandbox.hubspot` as a separate process."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("engine", "adapters", "connector", "jobs")


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_sandbox_imports_nothing_of_the_product() -> None:
    files = sorted((ROOT / "sandbox").rglob("*.py"))
    assert files
    leaks = {str(f.relative_to(ROOT)): _imported(f) & set(PRODUCT) for f in files}
    assert {f: sorted(m) for f, m in leaks.items() if m} == {}


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_imports_nothing_of_the_sandbox(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    assert [str(f.relative_to(ROOT)) for f in files if "sandbox" in _imported(f)] == []
