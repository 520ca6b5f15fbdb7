"""The values Deal Radar writes into each deal's CRM record, CRM-neutral names.

Adapters map these names to their CRM's properties (a multi-select for `alerts` so list views
can filter on it). `evaluated_at` changes on every evaluation, so it is left out of the
comparison that decides whether a deal needs a write at all (`changed`), and sent along with
the values that did change.
"""

from __future__ import annotations

from typing import Any

from engine.evaluate import Evaluation

SUMMARY_LIMIT = 255
"""The shortest text field among the CRMs (Salesforce's Text(255)) bounds the summary, counted
in UTF-16 units (an emoji in a contact's name is two), as Java-based platforms count a text's
length, so that it fits however the CRM counts."""
VOLATILE = frozenset({"evaluated_at"})


def summary(evaluation: Evaluation) -> str:
    """One line a rep reads on hover: every alert's message, cut to the CRM's limit."""
    text = " · ".join(a.message for a in evaluation.alerts)
    if _utf16_length(text) <= SUMMARY_LIMIT:
        return text
    cut, units = [], 1  # the ellipsis
    for char in text:
        units += 2 if ord(char) > 0xFFFF else 1
        if units > SUMMARY_LIMIT:
            break
        cut.append(char)
    return "".join(cut) + "…"


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def field_values(evaluation: Evaluation, evaluated_at: str) -> dict[str, Any]:
    codes = sorted({a.code for a in evaluation.alerts})
    h = evaluation.health
    return {
        "alerts": codes,
        "alert_count": len(evaluation.alerts),
        "summary": summary(evaluation),
        "health_score": h.score,
        "health_grade": h.grade,
        "health_trend": h.trend or "",
        "days_since_interaction": evaluation.days_since_interaction,
        "evaluated_at": evaluated_at,
    }


def changed(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """The values to write: those that differ from what was last written, plus the volatile ones;
    nothing at all when only volatile values moved."""
    if old is None:
        return dict(new)
    diff = {k: v for k, v in new.items() if k not in VOLATILE and old.get(k) != v}
    if not diff:
        return {}
    diff.update({k: new[k] for k in VOLATILE if k in new})
    return diff
