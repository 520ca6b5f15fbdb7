"""Text as every store takes it: what a CRM may send that no database stores, replaced."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with NUL (PostgreSQL refuses it in text) and lone surrogates (a truncated emoji, as
    JSON may escape it; no database nor orjson takes them) replaced by U+FFFD. Left in, one such
    character would have a whole batch refused, again at every retry, and the good records in
    it lost with it."""
    return _UNSTORABLE.sub("\ufffd", text) if _UNSTORABLE.search(text) else text
