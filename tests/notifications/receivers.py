"""Real receivers for notification tests: an HTTP server in a thread that verifies each
webhook's RFC 9421 signature with the node's published key and its HMAC, and an SMTP
server (aiosmtpd) that keeps what it was sent, with STARTTLS on request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.encoding import utc_now
from federation.errors import VerificationError
from federation.httpsig import verify_request
from federation.keys import StaticKeyResolver, TrustedKey
from federation.messages import HttpRequest
from federation.nonces import MemoryNonceStore


def free_port() -> int:
    """A loopback TCP port nobody listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One request the webhook receiver accepted, and what its checks found."""

    key: str
    body: dict[str, Any]
    headers: dict[str, str]
    signed_by: str | None  # the key owner whose RFC 9421 signature verified
    hmac_ok: bool | None  # None: no HMAC header


@dataclass
class WebhookReceiver:
    """An HTTP server on loopback; `answer` is the status it gives (200 unless told)."""

    node_key: TrustedKey | None = None
    hmac_secret: str | None = None
    port: int = 0
    answer: int = 200
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    hold: bool = False  # keep each request unanswered (it is still noted in `seen`)
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._nonces = MemoryNonceStore()
        self.arrived = threading.Event()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to send."""
        return f"http://127.0.0.1:{self.port}/hook"

    def keys(self) -> list[str]:
        """The idempotency keys of what arrived, in order."""
        return [item.key for item in self.received]

    def close(self) -> None:
        """Stop serving."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _check(self, request: HttpRequest) -> tuple[str | None, bool | None]:
        signed_by = None
        if self.node_key is not None and request.header("signature") is not None:
            verified = verify_request(
                request,
                keys=StaticKeyResolver([self.node_key]),
                nonces=self._nonces,
                now=utc_now(),
            )
            signed_by = verified.peer
        mac_ok = None
        given = request.header("x-infracms-signature-256")
        if given is not None and self.hmac_secret is not None:
            timestamp = request.header("x-infracms-timestamp") or ""
            mac = hmac.new(
                self.hmac_secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
            ).hexdigest()
            mac_ok = hmac.compare_digest(given, f"sha256={mac}")
        return signed_by, mac_ok

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                url = f"http://{self.headers['host']}{self.path}"
                request = HttpRequest.build("POST", url, self.headers.items(), body)
                try:
                    signed_by, mac_ok = receiver._check(request)
                except VerificationError as exc:
                    receiver.refused.append(str(exc))
                    self._reply(401)
                    return
                receiver.seen.append(self.headers.get("idempotency-key", ""))
                receiver.arrived.set()
                if receiver.hold:
                    receiver._release.wait(60)
                    return
                if receiver.answer == 200:
                    receiver.received.append(
                        Received(
                            key=self.headers.get("idempotency-key", ""),
                            body=json.loads(body),
                            headers={k.lower(): v for k, v in self.headers.items()},
                            signed_by=signed_by,
                            hmac_ok=mac_ok,
                        )
                    )
                self._reply(receiver.answer)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class Mailbox:
    """aiosmtpd handler: keeps every message; refuses DATA with `refusal` while it is set."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refusal: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusal is not None:
            return self.refusal
        content = envelope.original_content or b""
        message = message_from_bytes(content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def smtp_server(mailbox: Mailbox, *, tls: tuple[Path, Path] | None = None) -> Controller:
    """A started aiosmtpd server on a free loopback port (STARTTLS required with `tls`)."""
    extra: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        extra = {"tls_context": context, "require_starttls": True}
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    return controller
