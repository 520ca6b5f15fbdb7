"""The deployment's outbound settings: where mail goes and which URLs may be called."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from connector.notify.ssrf import OutboundPolicy

DEFAULT_OUTBOX = str(Path("instance") / "outbox")
"""Embedded default: with no SMTP_URL, mail is written as .eml files under ./instance/outbox/."""
DEFAULT_FROM = "Deal Radar <dealradar@localhost>"
SMTP_SCHEMES = ("smtp", "smtps")
SMTP_URL_UNREADABLE = (
    "SMTP_URL cannot be read as smtp://user:password@host:port (its port is not a number, or "
    "it has a path, query or fragment): percent-encode the user name and password (# as %23, "
    "/ as %2F, ? as %3F, @ as %40, : as %3A, % as %25)"
)
"""Said of a malformed SMTP_URL without quoting it: the value holds the password."""


class NotifyConfigError(ValueError):
    """An outbound setting is unusable; the message names it (never its secret part)."""


@dataclass(frozen=True)
class NotifyConfig:
    smtp_url: str = field(default="", repr=False)
    """SMTP_URL: smtp://[user:password@]host[:port] (STARTTLS when offered, required with a
    password) or smtps://... (TLS from the start); empty: write .eml files to `outbox_dir`."""
    outbox_dir: str = DEFAULT_OUTBOX
    """DEALRADAR_MAIL_OUTBOX: the folder of .eml files when no SMTP_URL is set."""
    mail_from: str = DEFAULT_FROM
    """DEALRADAR_MAIL_FROM: the From of every message."""
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    """DEALRADAR_OUTBOUND_ALLOW_HTTP / DEALRADAR_OUTBOUND_ALLOW_LOOPBACK (tests, `make run`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotifyConfig:
        """Built by connector.config.Config.from_env, the one reader of the environment."""
        smtp_url = (env.get("SMTP_URL") or "").strip()
        if smtp_url:
            _check_smtp_url(smtp_url)
        return cls(
            smtp_url=smtp_url,
            outbox_dir=env.get("DEALRADAR_MAIL_OUTBOX") or DEFAULT_OUTBOX,
            mail_from=env.get("DEALRADAR_MAIL_FROM") or DEFAULT_FROM,
            outbound=OutboundPolicy(
                allow_http=_flag(env, "DEALRADAR_OUTBOUND_ALLOW_HTTP"),
                allow_loopback=_flag(env, "DEALRADAR_OUTBOUND_ALLOW_LOOPBACK"),
            ),
        )


def _check_smtp_url(url: str) -> None:
    """Refuse at start an SMTP_URL every send would fail on. A '#', '?' or '/' left as is in
    the password ends the URL's address part early: the port, or a path, query or fragment,
    then holds the rest of the password. The refusals never quote the URL (it holds it)."""
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise NotifyConfigError(
            "SMTP_URL must look like smtp://user:password@mail.example.com:587 or "
            f"smtps://...:465 (scheme {parts.scheme!r} given); unset it to write .eml "
            "files to the outbox folder instead"
        )
    try:
        _ = parts.port  # read for its ValueError: a port that is no number, or out of range
    except ValueError:
        raise NotifyConfigError(SMTP_URL_UNREADABLE) from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise NotifyConfigError(SMTP_URL_UNREADABLE)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise NotifyConfigError(f"{name} must be 1 or 0, got {raw!r}")
