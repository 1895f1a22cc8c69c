"""Sending one notification: a webhook POST (signed) or an email over SMTP.

A webhook request carries the notification as JSON (or a Slack/Mattermost ``{"text"}``
body), an ``Idempotency-Key`` the receiver can deduplicate on, and, as the channel
says, an RFC 9421 signature with the node's Ed25519 key (the federation's signing code:
``@method``, ``@target-uri``, ``@authority``, ``content-digest``, ``content-type``; the
receiver verifies it with the key the node publishes at ``/federation/v1/identity``)
and ``X-Infracms-Signature-256: sha256=<hex>``, the HMAC-SHA256 of
``<X-Infracms-Timestamp>.<body>`` under the channel's shared secret. Redirects are not
followed, and the target's addresses are checked again when it is sent (a name can
resolve to a private address) unless the node allows private targets.

An email carries ``Message-ID: <idempotency key@node>`` so that a resent one is known.
Every failure raises ``DeliveryFailed`` with what the other side answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx

from federation.encoding import utc_now
from federation.httpsig import new_nonce, sign_request
from federation.keys import NodeKey
from federation.messages import HttpRequest
from infracms.config import Settings
from infracms.models.notification import BodyFormat, private_target_kind

USER_AGENT = "infracms-notify/1"
EXCERPT = 300


class DeliveryFailed(Exception):
    """An attempt failed; the message says what the receiver or the network answered."""


@dataclass(frozen=True)
class Webhook:
    """What a webhook delivery needs of its channel."""

    url: str
    body_format: BodyFormat
    sign_with_node_key: bool
    hmac_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Email:
    """Who an email goes to."""

    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Outgoing:
    """One notification to one destination, as claimed from the outbox."""

    id: Any
    idempotency_key: str
    document: dict[str, Any]
    target: Webhook | Email


def webhook_body(outgoing: Outgoing, target: Webhook, node: str) -> bytes:
    """The request body: the notification document, or a Slack/Mattermost message."""
    document = {**outgoing.document, "node": node, "idempotency_key": outgoing.idempotency_key}
    if target.body_format is BodyFormat.slack:
        where = document["organisation"] or node
        document = {"text": f"[{where}] {document['kind']}: {document['subject']}"}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``<timestamp>.<body>`` under `secret`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def webhook_request(outgoing: Outgoing, target: Webhook, node: str, key: NodeKey) -> HttpRequest:
    """The signed request a webhook delivery sends."""
    body = webhook_body(outgoing, target, node)
    headers = [
        ("Content-Type", "application/json"),
        ("User-Agent", USER_AGENT),
        ("Idempotency-Key", outgoing.idempotency_key),
        ("X-Infracms-Event", outgoing.document["kind"]),
    ]
    if target.hmac_secret is not None:
        timestamp = str(int(time.time()))
        headers.append(("X-Infracms-Timestamp", timestamp))
        signature = hmac_signature(target.hmac_secret, timestamp, body)
        headers.append(("X-Infracms-Signature-256", signature))
    request = HttpRequest.build("POST", target.url, headers, body)
    if target.sign_with_node_key:
        request = sign_request(request, key=key, created=utc_now(), nonce=new_nonce()).request
    return request


def check_resolved_target(url: str) -> None:
    """Refuse a webhook whose host resolves to a loopback, link-local or private address."""
    host = urlsplit(url).hostname or ""
    why = private_target_kind(host)
    if why is None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise DeliveryFailed(f"{host} does not resolve: {exc}") from exc
        kinds = (private_target_kind(str(info[4][0])) for info in infos)
        why = next((kind for kind in kinds if kind), None)
    if why is not None:
        raise DeliveryFailed(f"{host} is {why}; private targets are not allowed on this node")


def send_webhook(
    client: httpx.Client, settings: Settings, key: NodeKey, outgoing: Outgoing, target: Webhook
) -> None:
    """POST the notification; any answer but 2xx is a failure."""
    if not settings.notify_allow_private_targets:
        check_resolved_target(target.url)
    request = webhook_request(outgoing, target, settings.node_name, key)
    try:
        answer = client.post(target.url, headers=list(request.headers), content=request.body)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"POST {target.url} failed: {exc!r}") from exc
    if not 200 <= answer.status_code < 300:
        excerpt = answer.text[:EXCERPT]
        raise DeliveryFailed(f"answered {answer.status_code} {answer.reason_phrase}: {excerpt}")


def email_message(settings: Settings, outgoing: Outgoing, target: Email) -> EmailMessage:
    """The email of one notification."""
    document = outgoing.document
    message = EmailMessage()
    message["From"] = settings.smtp_from or ""
    message["To"] = ", ".join(target.recipients)
    where = document["organisation"] or settings.node_name
    message["Subject"] = f"[{where}] {document['subject']}"
    message["Message-ID"] = f"<{outgoing.idempotency_key}@{settings.node_name}>"
    message["Date"] = formatdate(localtime=False)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Infracms-Event"] = document["kind"]
    details = json.dumps(document["data"], indent=2, sort_keys=True)
    message.set_content(
        f"{document['subject']}\n\nEvent: {document['kind']}\nOrganisation: {where}\n"
        f"Time: {document['occurred_at']}\nNotification: {document['id']}\n\n{details}\n"
    )
    return message


class Mailer:
    """One SMTP connection, opened at the first email and reused for the batch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, outgoing: Outgoing, target: Email) -> None:
        """Send one email; a refusal raises DeliveryFailed with the server's answer."""
        message = email_message(self.settings, outgoing, target)
        try:
            refused = self._connection().send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(
                f"SMTP refused every recipient: {_answers(exc.recipients)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raw = exc.smtp_error
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            raise DeliveryFailed(f"SMTP answered {exc.smtp_code} {text}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryFailed(f"SMTP failed: {exc!r}") from exc
        if refused:
            raise DeliveryFailed(f"SMTP refused some recipients: {_answers(refused)}")

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = open_smtp(self.settings)
        return self._smtp

    def close(self) -> None:
        """Say QUIT (or just drop a broken connection)."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _answers(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{who}: {code} {text.decode(errors='replace')}" for who, (code, text) in refused.items()
    )


def open_smtp(settings: Settings) -> smtplib.SMTP:
    """A connected, secured and logged-in SMTP session, as the node's settings say."""
    if settings.smtp_host is None:
        raise DeliveryFailed("no SMTP server is configured (INFRACMS_SMTP_HOST)")
    context = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    )
    timeout = settings.notify_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user is not None and settings.smtp_password is not None:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
    except BaseException:
        smtp.close()
        raise
    return smtp
