"""Slack incoming webhooks: a real POST to a loopback receiver, and Slack's answers sorted
into retry-later and give-up."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from connector.notify import slack as slack_module
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


def test_a_late_answer_is_not_retried_the_message_may_be_posted(
    slack: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack took the post but answered after the read timeout: posting again would show the
    rep the same alert twice (README: at most once per channel)."""
    monkeypatch.setattr(slack_module, "TIMEOUT", (5.0, 0.2))
    slack.check = lambda headers, body: time.sleep(0.5)
    with pytest.raises(SlackError, match="may have been delivered") as caught:
        post(LOOPBACK, slack.url, {"text": "x"})
    assert not caught.value.transient
    time.sleep(0.5)
    assert len(slack.received) == 1


def test_a_connection_dropped_after_the_post_is_not_retried() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:

        def take_and_hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)  # the whole request, then no answer

        thread = threading.Thread(target=take_and_hang_up, daemon=True)
        thread.start()
        port = server.getsockname()[1]
        with pytest.raises(SlackError, match="may have been delivered") as caught:
            post(LOOPBACK, f"http://127.0.0.1:{port}/hook", {"text": "x"})
        thread.join(5)
    assert not caught.value.transient
