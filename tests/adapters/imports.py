"""What an adapter module imports, for the tests that prove a module pure."""

from __future__ import annotations

import ast
from pathlib import Path

PURE_SHARED = ("adapters.roles", "adapters.marker", "adapters.coerce")
"""The adapters' shared modules that are pure themselves (tests/adapters/test_shared_pure.py):
named in full; nothing else of the adapters counts as pure."""


def imported_modules(path: str | Path) -> set[str]:
    """Top-level packages a module imports, the pure shared adapter modules in full."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            imported.add(module if module in PURE_SHARED else module.split(".")[0])
    return imported
