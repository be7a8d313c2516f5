"""Where an alarm's change is told: a webhook (a JSON POST) and e-mail (SMTP), standard library only.

Each channel sends one :class:`AlarmMessage` or raises :class:`ChannelError`; it keeps nothing:
the outbox in the store retries (the daemon's :mod:`gateway.service.alarms`). Both carry the
change's idempotency key (the ``Idempotency-Key`` header; the e-mail's ``Message-ID``), so that a
message sent again after a crash is known for the same one. Timeouts are short: a channel that
does not answer is tried again later, never waited for.
"""

from __future__ import annotations

import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

#: How long one attempt may take.
SEND_TIMEOUT_SECONDS = 10.0


class ChannelError(Exception):
    """The message was not (known to be) delivered: try again later."""


@dataclass(frozen=True, slots=True)
class AlarmMessage:
    alarm: str
    state: str  # firing | resolved
    subject: str
    since: str  # ISO 8601
    message_sv: str
    message_en: str
    node: str
    gateway_version: str
    idempotency_key: str


class AlarmChannel(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, message: AlarmMessage) -> None: ...


class WebhookChannel:
    """POSTs the message as JSON; any 2xx answer is success."""

    name = "webhook"

    def __init__(self, *, url: str, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, message: AlarmMessage) -> None:
        body = {key: value for key, value in asdict(message).items() if key != "idempotency_key"}
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": message.idempotency_key,
                "User-Agent": f"inkasso-gateway/{message.gateway_version}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            raise ChannelError(f"{self.url} answered {error.code} {error.reason}") from error
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            # HTTPException: a server that answers something other than HTTP (a bad status line,
            # a body cut short) is the channel failing, not the sender.
            reason = getattr(error, "reason", None) or error
            raise ChannelError(f"{self.url}: {reason}") from error


class SmtpChannel:
    """One e-mail per message, Swedish text first; STARTTLS and a login when configured."""

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        to: tuple[str, ...],
        starttls: bool = False,
        username: str | None = None,
        password_file: Path | None = None,
        timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls, self.username, self.password_file = starttls, username, password_file
        self.timeout = timeout

    def email(self, message: AlarmMessage) -> EmailMessage:
        email = EmailMessage()
        word = {"firing": "LARM / ALARM", "resolved": "ÅTGÄRDAT / RESOLVED"}.get(message.state, message.state)
        email["Subject"] = f"[inkasso-gateway] {word}: {message.alarm} {message.subject}"
        email["From"] = self.sender
        email["To"] = ", ".join(self.to)
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<{message.idempotency_key}@inkasso-gateway>"
        email["X-Inkasso-Gateway-Alarm"] = message.alarm
        email["X-Inkasso-Gateway-State"] = message.state
        email.set_content(
            f"{message.message_sv}\n\n{message.message_en}\n\n"
            f"alarm: {message.alarm}\nstate: {message.state}\nsubject: {message.subject}\n"
            f"since: {message.since}\nnode: {message.node}\ngateway: {message.gateway_version}\n"
        )
        return email

    def send(self, message: AlarmMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and self.password_file is not None:
                    password = self.password_file.read_text(encoding="utf-8").strip()
                    smtp.login(self.username, password)
                smtp.send_message(self.email(message))
        except (smtplib.SMTPException, OSError, UnicodeDecodeError) as error:
            raise ChannelError(f"smtp {self.host}:{self.port}: {error}") from error
