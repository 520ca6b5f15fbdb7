"""The values written into the CRM: the summary fits the shortest CRM text field."""

from __future__ import annotations

from types import SimpleNamespace

from engine.fields import SUMMARY_LIMIT, summary


def _evaluation(*messages: str) -> SimpleNamespace:
    return SimpleNamespace(alerts=[SimpleNamespace(message=m) for m in messages])


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_short_summary_is_every_message() -> None:
    assert summary(_evaluation("No meeting scheduled", "Amount is missing")) == (
        "No meeting scheduled · Amount is missing"
    )


def test_a_long_summary_is_cut_with_an_ellipsis() -> None:
    cut = summary(_evaluation(*["No activity for 23 days (threshold 10)"] * 10))
    assert len(cut) == SUMMARY_LIMIT and cut.endswith("…")


def test_emoji_count_twice_so_the_summary_fits_text_255_however_the_crm_counts() -> None:
    """Salesforce's Text(255): an emoji in a contact's name is two UTF-16 units."""
    messages = ["Only Zoë 🚀 Martin engaged for 12 days (threshold 10)"] * 8
    cut = summary(_evaluation(*messages))
    assert _utf16_units(cut) <= SUMMARY_LIMIT < _utf16_units(" · ".join(messages))
    assert len(cut) < SUMMARY_LIMIT and cut.endswith("…")
