"""Delivering notices by SMTP. A notice counts as sent only when the server accepted it.

Configured by one URL (`--smtp`, or the `smtp_url` setting: `ANSIM_SMTP_URL`):
    smtp://HOST:PORT                 plain (a local relay)
    smtp+starttls://USER@HOST:587
    smtps://USER@HOST:465
The password never comes from the command line: `ANSIM_SMTP_PASSWORD`, or a 0600 file
named by `ANSIM_SMTP_PASSWORD_FILE` (a URL on the command line with a password in it is
refused). Credentials over plain `smtp://` are refused unless the server is on loopback.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
import stat
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from ansim.settings import Settings

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class DeliveryError(RuntimeError):
    """The server did not take the message; nothing may be marked sent."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0

    @classmethod
    def from_url(
        cls, url: str, timeout_s: float = 30.0, password_in_url: bool = True
    ) -> SmtpSettings:
        """`password_in_url=False` for a URL from the command line (argv is readable by
        every user of the machine): the password then comes only from `password_source`."""
        parts = urlsplit(url)
        if parts.password and not password_in_url:
            raise ValueError(
                "no password in a command-line SMTP URL: set ANSIM_SMTP_PASSWORD or "
                "ANSIM_SMTP_PASSWORD_FILE (a 0600 file) instead"
            )
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"bad SMTP URL {parts.scheme}://{parts.hostname or ''}: use smtp://HOST:PORT, "
                "smtp+starttls://USER:PASS@HOST:587 or smtps://USER:PASS@HOST:465"
            )
        security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "ssl"}[parts.scheme]
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else password_source()
        if username and security == "none" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"credentials over plain smtp:// to {parts.hostname} would cross the network "
                "unencrypted: use smtp+starttls:// or smtps://"
            )
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            security=security,
            username=username,
            password=password if username else None,
            timeout_s=timeout_s,
        )

    @classmethod
    def configured(cls, url: str | None) -> SmtpSettings:
        """From the URL the user configured (refused when there is none)."""
        if not url:
            raise ValueError("no SMTP server configured: pass --smtp or set ANSIM_SMTP_URL")
        return cls.from_url(url)


def password_source(settings: Settings | None = None) -> str | None:
    """The SMTP password from the settings (the environment's by default), or from the
    file they name, which only its owner may read."""
    settings = settings or Settings.from_environment()
    if settings.smtp_password:
        return settings.smtp_password
    path = settings.smtp_password_file
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ValueError(f"cannot read the SMTP password file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ValueError(
            f"the SMTP password file {path} is readable by others (mode {mode:o}): chmod 600 it"
        )
    return path.read_text(encoding="utf-8").strip()


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address (no name resolution)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def deliver(message: EmailMessage, settings: SmtpSettings) -> None:
    """Send one message; returns only once the server has accepted it.

    Raises DeliveryError for every failure: refused connection, timeout, TLS, login,
    rejected sender or recipient, rejected content.
    """
    destination = f"{settings.host}:{settings.port}"
    try:
        with _connect(settings) as client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            refused = client.send_message(message)
            if refused:
                # Notices go to one recipient, so any refusal means it was not delivered.
                raise DeliveryError(f"{destination} refused recipients: {sorted(refused)}")
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{destination} refused the recipient: {_reasons(exc)}") from exc
    except smtplib.SMTPResponseException as exc:
        reason = exc.smtp_error.decode(errors="replace") if exc.smtp_error else ""
        raise DeliveryError(f"{destination} answered {exc.smtp_code} {reason}".strip()) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"cannot deliver via {destination}: {exc}") from exc


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout_s,
            context=ssl.create_default_context(),
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)


def _reasons(exc: smtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(
        f"{address}: {code} {reason.decode(errors='replace')}"
        for address, (code, reason) in exc.recipients.items()
    )
