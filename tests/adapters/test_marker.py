"""The reference in Deal Radar's own tasks and notes: stable per outbox key, never empty."""

from __future__ import annotations

import pytest

import adapters.marker as marker_module
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


def test_it_is_pure() -> None:
    assert imported_modules(marker_module.__file__) <= {"__future__", "hashlib"}
