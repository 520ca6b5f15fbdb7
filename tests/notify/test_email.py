"""Email out: .eml files in the outbox folder by default, a real SMTP server with SMTP_URL."""

from __future__ import annotations

import dataclasses
import re
import socket
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote

import pytest

from connector.config import Config, ConfigError
from connector.notify.config import DEFAULT_OUTBOX, NotifyConfig
from connector.notify.email import (
    Mail,
    MailError,
    OutboxMailer,
    SmtpMailer,
    address,
    mailer_for,
)
from tests.smtp_server import smtp_server

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
MAIL = Mail(
    key="digest:2026-11-25:u-claire",
    to=("Claire Martin <claire@vendor.example>",),
    subject="Deal Radar: 2 deals need attention today",
    text="Hello Claire,\n\n1. Acme renewal\n",
    html="<p>Hello Claire,</p><ol><li>Acme renewal</li></ol>",
)


def test_without_smtp_url_mail_lands_in_the_outbox_folder(tmp_path: Path) -> None:
    mailer = mailer_for(NotifyConfig(outbox_dir=str(tmp_path / "out")), "tenant-1")
    assert isinstance(mailer, OutboxMailer)
    where = mailer.send(MAIL, NOW)
    files = list((tmp_path / "out").rglob("*.eml"))
    assert len(files) == 1 and where == f"outbox:{files[0].name}"
    assert files[0].parent.name.startswith("tenant-1")
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "Claire Martin <claire@vendor.example>"
    assert message["Subject"] == MAIL.subject
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == MAIL.text
    assert message.get_body(("html",)).get_content().strip() == MAIL.html
    first_id = message["Message-ID"]
    mailer.send(MAIL, NOW)  # the same key again: the same file, the same Message-ID
    assert [f.name for f in (tmp_path / "out").rglob("*.eml")] == [files[0].name]
    again = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert again["Message-ID"] == first_id
    assert not list((tmp_path / "out").rglob("*.tmp")), "no half-written file left"


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x85", "\x0b", "\x1c"])
def test_a_line_break_in_crm_text_reaches_the_rep_on_one_line(tmp_path: Path, brk: str) -> None:
    """A deal or rep name typed with a line break in the CRM: the mail still goes, its subject
    and the To's display name each on one line (Python's email refuses a header with a break)."""
    mailer = mailer_for(NotifyConfig(outbox_dir=str(tmp_path)), "tenant-1")
    mail = dataclasses.replace(
        MAIL,
        to=(address(f"Claire{brk}Martin", "claire@vendor.example"),),
        subject=f"Deal Radar: New alert on Acme renewal{brk}(2027)",
    )
    mailer.send(mail, NOW)
    (file,) = tmp_path.rglob("*.eml")
    message = message_from_bytes(file.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Deal Radar: New alert on Acme renewal (2027)"
    assert message["To"] == "Claire Martin <claire@vendor.example>"


def test_the_outbox_folder_is_the_embedded_default_and_configurable() -> None:
    assert Config.from_env({"DEALRADAR_SECRET_KEYS": "x"}).notify.outbox_dir == DEFAULT_OUTBOX
    env = {"DEALRADAR_SECRET_KEYS": "x", "DEALRADAR_MAIL_OUTBOX": "/var/mail/dr"}
    assert Config.from_env(env).notify.outbox_dir == "/var/mail/dr"
    with pytest.raises(ConfigError, match="SMTP_URL must look like"):
        Config.from_env({"DEALRADAR_SECRET_KEYS": "x", "SMTP_URL": "http://mail"})


@pytest.mark.parametrize("password", ["Kq#93-xZ!", "Kq/93-xZ!", "4471#Zk", "Kq?93-xZ!"])
def test_a_password_not_percent_encoded_in_smtp_url_is_refused_at_start_unquoted(
    password: str,
) -> None:
    """Accepted, every send failed on it with part of the password in the error (the outbox's
    reason, the log); it is refused at start, saying what to do and quoting none of it."""
    env = {"DEALRADAR_SECRET_KEYS": "x", "SMTP_URL": f"smtp://dr:{password}@mail.example:587"}
    with pytest.raises(ConfigError, match=r"SMTP_URL .*percent-encode") as caught:
        Config.from_env(env)
    for part in re.split(r"[#/?]", password):
        assert part not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    encoded = f"smtp://dr:{quote(password, safe='')}@mail.example:587"
    mailer = mailer_for(Config.from_env({**env, "SMTP_URL": encoded}).notify, "t")
    assert isinstance(mailer, SmtpMailer) and mailer.port == 587


def test_an_unwritable_outbox_is_a_permanent_error_saying_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MailError, match="DEALRADAR_MAIL_OUTBOX") as caught:
        OutboxMailer(blocker, "dr@example.com", "t").send(MAIL, NOW)
    assert not caught.value.transient


def test_with_smtp_url_a_real_smtp_server_receives_it() -> None:
    with smtp_server() as (url, inbox):
        config = Config.from_env(
            {
                "DEALRADAR_SECRET_KEYS": "x",
                "SMTP_URL": url,
                "DEALRADAR_MAIL_FROM": "Deal Radar <radar@vendor.example>",
            }
        )
        mailer = mailer_for(config.notify, "tenant-1")
        assert isinstance(mailer, SmtpMailer)
        assert mailer.send(MAIL, NOW) == "smtp:127.0.0.1"
    assert inbox.envelopes == [("radar@vendor.example", ["claire@vendor.example"])]
    received = inbox.messages[0]
    assert received["Subject"] == MAIL.subject
    assert received.get_body(("plain",)).get_content().replace("\r\n", "\n") == MAIL.text
    assert "Acme renewal" in received.get_body(("html",)).get_content()
    assert received["Message-ID"].endswith("@vendor.example>")


def test_smtp_refusals_and_outages_say_whether_to_retry() -> None:
    with smtp_server() as (url, inbox):
        inbox.refuse_with = "550 5.7.1 Message rejected"
        with pytest.raises(MailError, match="answered 550") as refused:
            SmtpMailer(url, "dr@example.com").send(MAIL, NOW)
        assert not refused.value.transient
        inbox.refuse_with = "451 4.3.0 Try again later"
        with pytest.raises(MailError, match="answered 451") as later:
            SmtpMailer(url, "dr@example.com").send(MAIL, NOW)
        assert later.value.transient
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(MailError, match="cannot reach the SMTP server") as down:
        SmtpMailer(f"smtp://127.0.0.1:{closed}", "dr@example.com").send(MAIL, NOW)
    assert down.value.transient


def test_a_connection_lost_after_the_message_went_is_not_sent_again() -> None:
    """The server took the message and the line dropped before its answer: a retry would put the
    same mail in the rep's inbox twice; a connection lost before DATA is still retried."""
    with smtp_server() as (url, inbox):
        inbox.hang_up_after_data = True
        with pytest.raises(MailError, match="may have been delivered") as lost:
            SmtpMailer(url, "dr@example.com").send(MAIL, NOW)
        assert not lost.value.transient
        assert len(inbox.messages) == 1


@pytest.mark.parametrize("reply", ["421 Service shutting down", "554 Transaction failed"])
def test_an_odd_answer_to_quit_after_the_message_was_taken_is_not_a_failure(reply: str) -> None:
    """The server took the message (250), then answered QUIT with something other than 221: the
    mail is delivered, so a retry (421) would put it in the rep's inbox twice, and a failure
    (554) would report a delivered mail as lost."""
    with smtp_server() as (url, inbox):
        inbox.quit_reply = reply
        assert SmtpMailer(url, "dr@example.com").send(MAIL, NOW) == "smtp:127.0.0.1"
        assert len(inbox.messages) == 1


def test_a_password_is_never_sent_without_tls() -> None:
    with smtp_server() as (url, inbox):
        with pytest.raises(MailError, match="no STARTTLS") as caught:
            SmtpMailer(url.replace("smtp://", "smtp://user:s3cret@"), "dr@x.example").send(
                MAIL, NOW
            )
        assert not caught.value.transient
        assert inbox.messages == []
    assert "s3cret" not in repr(SmtpMailer("smtp://u:s3cret@mail.example", "dr@x.example"))
