"""What alarms are told to, for tests: a real HTTP server recording the webhook's POSTs (in a
thread; it answers 500 as often as told first) and a real SMTP server (aiosmtpd) recording the
e-mails. Both are started and stopped by the test's fixtures (tests/test_alarms.py)."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.monitoring_harness import free_port


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int


@dataclass
class WebhookServer:
    url: str
    posts: list[Post] = field(default_factory=list)
    #: Answer 500 to this many POSTs first.
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, code: int = 200) -> list[Post]:
        with self.lock:
            return [post for post in self.posts if post.answered == code]

    def changes(self) -> list[tuple[str, str, str]]:
        """(alarm, subject, state) of each POST that was taken (answered 200), in order."""
        return [(p.body["alarm"], p.body["subject"], p.body["state"]) for p in self.answered()]


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    port = free_port()
    server_state = WebhookServer(url=f"http://127.0.0.1:{port}/alarms")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with server_state.lock:
                code = 500 if server_state.failures > 0 else 200
                server_state.failures -= 1 if code == 500 else 0
                server_state.posts.append(Post(self.path, dict(self.headers.items()), body, code))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class MailServer:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def changes(self) -> list[tuple[str, str]]:
        """(alarm, state) of each e-mail received, in order."""
        return [
            (str(m["X-Inkasso-Gateway-Alarm"]), str(m["X-Inkasso-Gateway-State"]))
            for m in list(self.messages)
        ]


class _Recorder:
    def __init__(self, mail: MailServer) -> None:
        self.mail = mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mail.messages.append(message)
        return "250 OK"


@contextmanager
def mail_server() -> Iterator[MailServer]:
    mail = MailServer(port=free_port())
    controller = Controller(_Recorder(mail), hostname="127.0.0.1", port=mail.port)
    controller.start()
    try:
        yield mail
    finally:
        controller.stop()


def alarms_config(webhook: WebhookServer, mail: MailServer, *, more: str = "") -> str:
    """The ``[alarms]`` table telling both servers (TOML)."""
    return (
        f'\n[alarms]\nwebhook = "{webhook.url}"\n{more}'
        f'\n[alarms.smtp]\nhost = "127.0.0.1"\nport = {mail.port}\nfrom = "gateway@example.se"\n'
        'to = ["drift@example.se", "jour@example.se"]\n'
    )
