"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for mail tests."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_with: str | None = None
    """An SMTP reply ("550 ...") to give to DATA instead of accepting."""
    hang_up_after_data: bool = False
    """Keep the message, then close the connection without answering DATA (a server or a
    network failing at the worst moment)."""
    quit_reply: str | None = None
    """An SMTP reply ("421 ...") to give to QUIT instead of 221."""
    on_data: Callable[[], None] | None = None
    """Called as DATA arrives, once: the world moving on while a message is being sent."""

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        return self.quit_reply or "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.on_data is not None:
            meanwhile, self.on_data = self.on_data, None
            meanwhile()
        if self.refuse_with:
            return self.refuse_with
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed: Any = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(parsed)
        if self.hang_up_after_data:
            server.transport.close()
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """(SMTP_URL, inbox) of a server on a free loopback port, stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()
