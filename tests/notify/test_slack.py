"""Slack incoming webhooks: a real POST to a loopback receiver, and Slack's answers sorted
into retry-later and give-up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from connector.notify.slack import SlackError, post
from connector.notify.ssrf import OutboundPolicy
from tests.receiver import Receiver

LOOPBACK = OutboundPolicy(allow_http=True, allow_loopback=True)


@pytest.fixture
def slack() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def test_the_message_reaches_the_webhook(slack: Receiver) -> None:
    post(LOOPBACK, slack.url, {"text": "New alert on Acme renewal: No meeting scheduled"})
    (got,) = slack.received
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == {"text": "New alert on Acme renewal: No meeting scheduled"}


@pytest.mark.parametrize(
    ("status", "transient"),
    [(404, False), (410, False), (403, False), (400, False), (429, True), (503, True)],
)
def test_slack_answers_decide_retry_or_give_up(
    slack: Receiver, status: int, transient: bool
) -> None:
    slack.status = status
    with pytest.raises(SlackError, match=str(status)) as caught:
        post(LOOPBACK, slack.url, {"text": "x"})
    assert caught.value.transient is transient


def test_a_webhook_that_is_down_is_retried_later(slack: Receiver) -> None:
    url = slack.url
    slack.stop()
    with pytest.raises(SlackError, match="cannot reach") as caught:
        post(LOOPBACK, url, {"text": "x"})
    assert caught.value.transient


def test_loopback_and_private_webhooks_are_refused_in_production(slack: Receiver) -> None:
    for url in (slack.url, "https://10.0.0.3/services/T/B/x", "https://169.254.169.254/"):
        with pytest.raises(SlackError, match="refused") as caught:
            post(OutboundPolicy(), url, {"text": "x"})
        assert not caught.value.transient
    assert slack.answered == []
