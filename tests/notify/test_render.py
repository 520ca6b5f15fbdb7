"""What instant notifications say, in English and French, and what they never carry."""

from __future__ import annotations

from connector.notify import render

DEAL = {"id": "d-1", "name": "Acme <renewal> & co", "url": "https://crm.example/deals/d-1"}
STARTED = {
    "key": "alert.started:7",
    "type": "alert.started",
    "deal_id": "d-1",
    "code": "no_activity",
    "message": "No activity for 14 days (threshold 10)",
    "facts": {"days": 14, "threshold": 10, "last_interaction_at": "2026-11-11T10:00:00+01:00"},
}
GRADE = {
    "key": "g",
    "type": "health.grade_changed",
    "deal_id": "d-1",
    "from": "good",
    "to": "poor",
    "health": {"score": 31},
}


def test_an_alert_in_each_locale() -> None:
    en = render.event(STARTED, DEAL, "en")
    assert en.subject == (
        "Deal Radar: New alert on Acme <renewal> & co: No activity for 14 days (threshold 10)"
    )
    assert en.text.endswith("Open in the CRM: https://crm.example/deals/d-1\n")
    assert "Acme &lt;renewal&gt; &amp; co" in (en.html or "")
    fr = render.event(STARTED, DEAL, "fr")
    assert fr.subject.startswith("Deal Radar : Nouvelle alerte"), "as the French digest writes it"
    slack = render.slack_message(fr, DEAL["url"], "fr")
    assert slack["text"].startswith("Nouvelle alerte sur Acme"), "the prefix left out, as in en"
    assert fr.text.startswith(
        "Nouvelle alerte sur Acme <renewal> & co : Aucune activité depuis 14 jours (seuil 10)"
    )
    assert "Ouvrir dans le CRM" in fr.text
    ended = render.event({**STARTED, "type": "alert.ended"}, DEAL, "fr")
    assert ended.text.startswith("Alerte levée sur")


def test_a_grade_change_in_each_locale() -> None:
    assert render.event(GRADE, DEAL, "en").text.startswith(
        "Health of Acme <renewal> & co went from good to poor (score 31)"
    )
    assert "de bonne à faible (score 31)" in render.event(GRADE, DEAL, "fr").text


def test_only_http_links_are_shown_and_slack_text_is_escaped() -> None:
    sneaky = {**DEAL, "url": "javascript:alert(1)"}
    rendered = render.event(STARTED, sneaky, "en")
    assert "javascript" not in rendered.text and "javascript" not in (rendered.html or "")
    slack = render.slack_message(render.event(STARTED, DEAL, "en"), DEAL["url"], "en")
    assert slack["text"].startswith("New alert on Acme &lt;renewal&gt; &amp; co:")
    assert slack["text"].endswith("<https://crm.example/deals/d-1|Open in the CRM>")
    unnamed = render.event(STARTED, {"id": "d-9"}, "fr")
    assert "Affaire d-9" in unnamed.text


def _digest_deal(deal_id: str) -> render.DigestDeal:
    alert = {"code": "amount_missing", "message": "No amount", "facts": {}}
    return render.DigestDeal.from_row({"id": deal_id, "name": f"Deal {deal_id}"}, [alert])


def _more_line(rendered: render.Rendered) -> str:
    return next(line for line in rendered.text.splitlines() if line.startswith("..."))


def test_counts_of_one_read_in_the_singular_in_each_locale() -> None:
    one = [render.Section("Claire", [_digest_deal("d-1")])]
    assert render.digest("Sam", one, "en", team=True).subject == (
        "Deal Radar: 1 deal of your team with alerts today"
    )
    assert render.digest("Sam", one, "fr", team=True).subject == (
        "Deal Radar : 1 affaire de votre équipe en alerte aujourd'hui"
    )
    two = [render.Section("Claire", [_digest_deal("d-1"), _digest_deal("d-2")])]
    assert render.digest("Sam", two, "en", team=True).subject == (
        "Deal Radar: your team's 2 deals with alerts today"
    )
    left_out_one = [render.Section(None, [_digest_deal("d-1")], more=1)]
    assert _more_line(render.digest("Claire", left_out_one, "en")) == (
        "... and 1 more deal with alerts."
    )
    assert _more_line(render.digest("Claire", left_out_one, "fr")) == (
        "... et 1 autre affaire en alerte."
    )
    left_out_two = [render.Section(None, [_digest_deal("d-1")], more=2)]
    assert _more_line(render.digest("Claire", left_out_two, "fr")) == (
        "... et 2 autres affaires en alerte."
    )
