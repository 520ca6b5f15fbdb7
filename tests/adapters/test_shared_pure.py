"""The adapters' shared pure modules: the reference in Deal Radar's own tasks and notes (stable
per outbox key, never empty) and the reading of loosely typed CRM values."""

from __future__ import annotations

import pytest

import adapters.coerce as coerce_module
import adapters.marker as marker_module
from adapters.coerce import as_number, as_text
from adapters.marker import OWN_MARKER, marked, ref_token
from tests.adapters.imports import imported_modules


def test_a_retry_of_the_same_effect_writes_the_same_reference() -> None:
    assert ref_token("outbox:t1:task:42") == ref_token("outbox:t1:task:42")
    assert ref_token("outbox:t1:task:42") != ref_token("outbox:t1:task:43")
    assert len(ref_token("k")) == 26 and ref_token("k").startswith("dr")


def test_the_reference_follows_the_body_on_its_own_line() -> None:
    body = marked("Call the buyer\nabout pricing", "outbox:t1:task:42")
    assert body == f"Call the buyer\nabout pricing\n\n{OWN_MARKER}{ref_token('outbox:t1:task:42')}"


def test_an_effect_without_its_outbox_key_is_refused() -> None:
    with pytest.raises(ValueError, match="outbox key"):
        ref_token("")


def test_crm_numbers_read_from_numbers_and_text_and_odd_values_read_as_missing() -> None:
    assert as_number("1200.50") == 1200.5 and as_number(" 7 ") == 7.0 and as_number(3) == 3.0
    for odd in (None, "", "n/a", True, "inf", "NaN", {"value": 1}):
        assert as_number(odd) is None, odd


def test_crm_text_is_stripped_and_none_is_empty() -> None:
    assert as_text("  Acme ") == "Acme" and as_text(None) == "" and as_text(42) == "42"


def test_crm_text_no_database_stores_is_replaced() -> None:
    assert as_text("Renewal \ud83d") == "Renewal \ufffd" and as_text("a\x00b") == "a\ufffdb"
    assert as_text("Café 🚀") == "Café 🚀"


def test_they_are_pure() -> None:
    assert imported_modules(marker_module.__file__) <= {"__future__", "hashlib"}
    # engine is pure too (tests/test_engine_purity.py)
    assert imported_modules(coerce_module.__file__) <= {"__future__", "math", "typing", "engine"}
