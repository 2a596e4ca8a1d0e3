"""A local fake of the GOV.UK Notify API (issue #22 §8): what the notifications service posts arrives here.

It answers `POST /v2/notifications/{email,sms,letter}` as Notify does (201 with the notification's id), but only
for a request whose bearer JWT is signed (HS256) with the secret of its API key and names the key's service id
as `iss`, issued within the last 30 seconds; anything else is refused 403 as Notify refuses it. Every accepted
message is kept, with the channel it came on, for the test to assert on.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from shared.testing import free_port

SERVICE_ID = str(uuid.UUID("5c0a1d3e-7f2b-4c6d-9e8f-0a1b2c3d4e5f"))
SECRET = str(uuid.UUID("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"))
API_KEY = f"tessera_test-{SERVICE_ID}-{SECRET}"
WRONG_KEY = f"tessera_test-{SERVICE_ID}-{uuid.uuid4()}"
# one Notify template id per message template and channel, as NOTIFY_TEMPLATES names them
TEMPLATES = {key: str(uuid.uuid5(uuid.NAMESPACE_URL, f"notify-template:{key}")) for key in (
    "pwt_waiting_list:email", "pwt_waiting_list:sms", "pwt_waiting_list:letter",
    "pwt_waiting_list_easy_read:email", "pwt_waiting_list_easy_read:sms", "pwt_waiting_list_easy_read:letter",
    "pwt_waiting_list_large_print:letter", "pwt_waiting_list_referrer:email", "pwt_waiting_list_referrer:sms",
)}
TEMPLATE_NAMES = {template_id: key for key, template_id in TEMPLATES.items()}
# what Notify's delivery-status callback carries, as set up in Notify for the service (NOTIFY_CALLBACK_TOKEN)
CALLBACK_TOKEN = "tessera-test-callback-token"
# an address the fake refuses at once, as Notify refuses one it cannot send to (400, ValidationError)
UNSENDABLE_DOMAIN = "@unsendable.invalid"


@dataclass
class Posted:
    """One notification Notify accepted: its channel, our template key, and the JSON we sent."""

    channel: str
    template: str
    body: dict[str, Any]
    notification_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def to(self) -> str | None:
        return self.body.get("email_address") or self.body.get("phone_number")

    @property
    def fields(self) -> dict[str, Any]:
        return dict(self.body.get("personalisation") or {})

    def receipt(self, status: str) -> dict[str, Any]:
        """Notify's delivery receipt of this message, as its callback posts it (the address included)."""
        now = datetime.now(UTC).isoformat()
        return {"id": self.notification_id, "reference": self.body.get("reference"), "to": self.to,
                "status": status, "created_at": now, "completed_at": now, "sent_at": now,
                "notification_type": self.channel, "template_id": self.body.get("template_id"),
                "template_version": 1}


@dataclass
class FakeNotify:
    """The fake's state: what was accepted, and how many requests were refused for their token."""

    port: int = field(default_factory=free_port)
    posted: list[Posted] = field(default_factory=list)
    refused: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[Posted]:
        return [p for p in self.posted if p.to == address]

    def with_reference(self, reference: str) -> list[Posted]:
        return [p for p in self.posted if p.body.get("reference") == reference]


def _authorised(header: str | None) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"],
                            options={"require": ["iss", "iat"]})
    except jwt.PyJWTError:
        return False
    return claims["iss"] == SERVICE_ID and abs(time.time() - int(claims["iat"])) <= 30


def _handler(fake: FakeNotify) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            channel = self.path.removeprefix("/v2/notifications/")
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not _authorised(self.headers.get("Authorization")):
                fake.refused += 1
                self._answer(403, {"status_code": 403, "errors": [
                    {"error": "AuthError", "message": "Invalid token: API key not found"}]})
                return
            template = TEMPLATE_NAMES.get(str(body.get("template_id")))
            if channel not in ("email", "sms", "letter") or template is None:
                self._answer(400, {"status_code": 400, "errors": [
                    {"error": "BadRequestError", "message": "Template not found"}]})
                return
            if str(body.get("email_address", "")).endswith(UNSENDABLE_DOMAIN):
                self._answer(400, {"status_code": 400, "errors": [
                    {"error": "ValidationError", "message": "email_address Not a valid email address"}]})
                return
            posted = Posted(channel, template, body)
            fake.posted.append(posted)
            notification_id = posted.notification_id
            self._answer(201, {"id": notification_id, "reference": body.get("reference"),
                               "content": {"body": "", "subject": ""},
                               "uri": f"{fake.url}/v2/notifications/{notification_id}",
                               "template": {"id": body["template_id"], "version": 1, "uri": ""}})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # what was posted holds personal data: keep it out of the test output

    return Handler


class RunningNotify:
    """The fake served on a free loopback port in a thread, for a `with` block."""

    def __init__(self) -> None:
        self.fake = FakeNotify()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.fake.port), _handler(self.fake))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeNotify:
        self._thread.start()
        return self.fake

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def service_env(fake: FakeNotify) -> dict[str, str]:
    """The notifications service's settings that send everything through this fake."""
    return {"NOTIFY_API_KEY": API_KEY, "NOTIFY_BASE_URL": fake.url, "NOTIFY_TEMPLATES": json.dumps(TEMPLATES),
            "NOTIFY_CALLBACK_TOKEN": CALLBACK_TOKEN}
