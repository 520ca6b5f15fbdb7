"""Email out: through SMTP when SMTP_URL is set, else as .eml files in the outbox folder.

A `Mail` carries its outbox key; the Message-ID is made from it, and so is the .eml file's
name, so a message written twice is one file and a receiving system can tell a repeat.

Error policy: `send` raises `MailError` with `transient=True` for what a later try may cure
(the server unreachable, a 4xx answer, a timeout) and `transient=False` for what it will not
(5xx: recipients refused, message rejected, authentication refused; an unwritable folder) and
for a connection lost once the message itself was on its way (DATA): the server may have taken
it, and sending it again could deliver it twice (at most once).
Passwords in SMTP_URL are never logged nor put in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from connector.notify.config import SMTP_URL_UNREADABLE, NotifyConfig

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30.0
"""Seconds for the SMTP conversation's each step; a hung server is retried later."""


class MailError(Exception):
    """A message was not sent; `transient` says whether trying later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Mail:
    key: str
    """The outbox key it is sent under: Message-ID and file name derive from it."""
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    locale: str = "en"


class Mailer(Protocol):
    def send(self, mail: Mail, now: datetime) -> str:
        """Send the mail; where it went (for the outbox result)."""
        ...


def build(mail: Mail, mail_from: str, now: datetime) -> EmailMessage:
    """The MIME message: text/plain, with an HTML alternative when there is one."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(mail.to)
    message["Subject"] = one_line(mail.subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(mail.key, mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    message["Content-Language"] = mail.locale  # after the content: set_content drops Content-*
    return message


def one_line(text: str) -> str:
    """`text` with each run of whitespace as one space. A subject is made of CRM text (a deal's
    name), which may hold a line break (\\n, \\r, U+2028...); Python's email refuses a header
    holding one, and every str.splitlines() break is whitespace to str.split()."""
    return " ".join(text.split())


def message_id(key: str, mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "dealradar.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class OutboxMailer:
    """The embedded default: each message a .eml file in `folder/<tenant>/`."""

    def __init__(self, folder: str | Path, mail_from: str, tenant_id: str) -> None:
        self.folder = Path(folder) / _safe(tenant_id)
        self.mail_from = mail_from

    def send(self, mail: Mail, now: datetime) -> str:
        target = self.folder / f"{_safe(mail.key)}.eml"
        data = bytes(build(mail, self.mail_from, now))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written aside, then renamed: a reader never sees half a message.
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise MailError(
                f"cannot write to the outbox folder {self.folder} ({exc.strerror}); make it "
                "writable or set DEALRADAR_MAIL_OUTBOX",
                transient=False,
            ) from None
        return f"outbox:{target.name}"


class SmtpMailer:
    """SMTP from SMTP_URL: smtps:// is TLS from the start; smtp:// upgrades with STARTTLS when
    the server offers it, and must offer it before a password is sent."""

    def __init__(self, url: str, mail_from: str) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or ""
        try:
            self.port = parts.port or (465 if self.tls else 25)
        except ValueError:  # its text would quote the password: SMTP_URL_UNREADABLE says why
            raise MailError(SMTP_URL_UNREADABLE, transient=False) from None
        self.user = unquote(parts.username or "")
        self._password = unquote(parts.password or "")
        self.mail_from = mail_from

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port}, tls={self.tls})"

    def send(self, mail: Mail, now: datetime) -> str:
        message = build(mail, self.mail_from, now)
        context = ssl.create_default_context()
        client: _TrackedSmtp | None = None
        try:
            if self.tls:
                client = _TrackedSmtpSsl(
                    self.host, self.port, timeout=SMTP_TIMEOUT, context=context
                )
            else:
                client = _TrackedSmtp(self.host, self.port, timeout=SMTP_TIMEOUT)
            # Closed, not QUIT, on the way out: once the message is taken, what QUIT answers
            # changes nothing (smtplib's own exit would raise on a reply other than 221, and a
            # delivered mail would be retried or reported lost).
            with contextlib.closing(client):
                client.ehlo()
                if not self.tls and client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                if self.user:
                    if not isinstance(client.sock, ssl.SSLSocket):
                        raise MailError(
                            f"the SMTP server {self.host} offers no STARTTLS: the password is "
                            "not sent in clear; use smtps:// or a server with STARTTLS",
                            transient=False,
                        )
                    client.login(self.user, self._password)
                refused = client.send_message(message)
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    client.quit()
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            raise MailError(
                f"the SMTP server {self.host} answered {exc.smtp_code}", transient=transient
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(
                f"the SMTP server {self.host} refused every recipient ({codes})",
                transient=all(400 <= c < 500 for c in codes),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None and client.data_begun:
                raise MailError(
                    f"the connection to the SMTP server {self.host} was lost once the message "
                    f"was on its way ({type(exc).__name__}): it may have been delivered, so it "
                    "is not sent again",
                    transient=False,
                ) from None
            raise MailError(
                f"cannot reach the SMTP server {self.host}:{self.port} ({type(exc).__name__})",
                transient=True,
            ) from None
        if refused:
            log.warning("SMTP server %s refused %d of the recipients", self.host, len(refused))
        return f"smtp:{self.host}"


class _TrackedSmtp(smtplib.SMTP):
    """smtplib's client, noting when the message itself starts to go (DATA): a connection lost
    after that may have delivered it."""

    data_begun = False

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self.data_begun = True
        return super().data(msg)


class _TrackedSmtpSsl(_TrackedSmtp, smtplib.SMTP_SSL):
    pass


def mailer_for(config: NotifyConfig, tenant_id: str) -> Mailer:
    if config.smtp_url:
        return SmtpMailer(config.smtp_url, config.mail_from)
    return OutboxMailer(config.outbox_dir, config.mail_from, tenant_id)


def address(name: str, email: str) -> str:
    """A display name and address as one header value, quoted as need be."""
    try:
        return str(Address(display_name=one_line(name or ""), addr_spec=email))
    except (ValueError, IndexError):
        return email


def _safe(name: str) -> str:
    """A file name from a key: keys hold ':' and ids, nothing else is needed to tell them apart."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[:150]}-{digest}"
