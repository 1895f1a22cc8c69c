"""Notifications: channels (webhook, email), rules, people's own subscriptions, the outbox.

- ``notification_channel``: where an organisation's notifications go (the node's own,
  for node events, have no organisation); a webhook's HMAC secret is sealed at rest and
  never shown again;
- ``notification_rule``: which kinds of event go to which channel;
- ``notification_subscription``: the kinds of event about their own doings (their runs)
  a person wants by email;
- ``notification_outbox``: one row per (notification, destination), written in the
  transaction of the event it reports, with its idempotency key, attempts, next
  attempt, last error and delivery time (``services/notification_delivery.py``).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationInfo, field_validator, model_validator
from sqlalchemy import Enum, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infracms.models.base import UTCDateTime, created_field, id_field, json_field
from infracms.models.validators import check_name, is_loopback_name, name_field

EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_URL = 2000
MAX_RECIPIENTS = 20


class NotificationKind(enum.StrEnum):
    """What happened: the events a notification can report."""

    run_failed = "run.failed"
    run_succeeded = "run.succeeded"
    drift_found = "drift.found"
    drift_cleared = "drift.cleared"
    approval_requested = "approval.requested"
    approval_granted = "approval.granted"
    approval_refused = "approval.refused"
    approval_expired = "approval.expired"
    break_glass_used = "break_glass.used"
    provision_requested = "provision.requested"
    peer_catalog_stale = "peer.catalog_stale"
    audit_check_failed = "audit.check_failed"
    witness_minimum_unmet = "witness.minimum_unmet"


class ChannelKind(enum.StrEnum):
    """How a channel delivers."""

    webhook = "webhook"
    email = "email"


class BodyFormat(enum.StrEnum):
    """A webhook's body: infracms' JSON document, or a Slack/Mattermost message."""

    json = "json"
    slack = "slack"


class DeliveryState(enum.StrEnum):
    """Where an outbox row is."""

    pending = "pending"  # waiting for its (next) attempt
    delivered = "delivered"
    failed = "failed"  # every attempt failed: given up


def _enum(kind: type[enum.Enum], length: int = 32) -> Enum:
    return Enum(kind, native_enum=False, length=length)


def check_email(value: str) -> str:
    """One email address, on one line."""
    if len(value) > 254 or not EMAIL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def private_target_kind(host: str) -> str | None:
    """Why `host` (a name or an IP address) is not a public target, or None."""
    if is_loopback_name(host):
        return "a loopback name"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped if mapped is not None else address
    for test, what in (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
    ):
        if test:
            return what
    return None


def check_webhook_url(value: str, *, allow_private: bool | None) -> str:
    """An http(s) URL with a host, no credentials and no fragment; a loopback, link-local
    or private target only if `allow_private` (None: decided later, by the service)."""
    if len(value) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValueError(f"must be one URL of at most {MAX_URL} characters, without spaces")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not carry credentials: use the channel's HMAC secret")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    if port == 0:
        raise ValueError("must not use port 0")
    last = parts.hostname.rstrip(".").rsplit(".", 1)[-1]
    if ":" not in parts.hostname and (last.isdigit() or last.startswith("0x")):
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            raise ValueError(f"{parts.hostname} is not a valid IP address") from None
    why = private_target_kind(parts.hostname)
    if why and allow_private is False:
        raise ValueError(
            f"{parts.hostname} is {why}; a node administrator may allow such targets "
            "(INFRACMS_NOTIFY_ALLOW_PRIVATE_TARGETS)"
        )
    return value


class ChannelCreate(SQLModel):
    """A webhook (url, body format, signing) or an email channel (recipients)."""

    name: str = name_field()
    kind: ChannelKind
    url: str | None = Field(default=None, max_length=MAX_URL)
    body_format: BodyFormat = BodyFormat.json
    sign_with_node_key: bool = True
    hmac_secret: SecretStr | None = Field(default=None, min_length=16, max_length=256)
    recipients: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        allow = (info.context or {}).get("allow_private_targets")
        return check_webhook_url(value, allow_private=allow)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [check_email(address) for address in value]

    @model_validator(mode="after")
    def _shape(self) -> ChannelCreate:
        if self.kind is ChannelKind.webhook:
            if self.url is None:
                raise ValueError("a webhook channel needs a url")
            if self.recipients:
                raise ValueError("a webhook channel has no recipients")
        else:
            if not self.recipients:
                raise ValueError("an email channel needs at least one recipient")
            if self.url is not None or self.hmac_secret is not None:
                raise ValueError("an email channel has no url or hmac_secret")
            if self.body_format is not BodyFormat.json:
                raise ValueError("an email channel has no body format")
        return self


class NotificationChannel(SQLModel, table=True):
    """Where notifications go; `hmac_secret_sealed` is sealed with the node's keyring."""

    __tablename__ = "notification_channel"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(max_length=63)
    kind: ChannelKind = Field(sa_type=_enum(ChannelKind, 16))
    url: str | None = Field(default=None, max_length=MAX_URL)
    body_format: BodyFormat = Field(default=BodyFormat.json, sa_type=_enum(BodyFormat, 16))
    sign_with_node_key: bool = True
    hmac_secret_sealed: str | None = Field(default=None, sa_type=Text)
    recipients: list[str] = json_field(list)
    enabled: bool = True
    created_at: datetime = created_field()


class ChannelPublic(SQLModel):
    """A channel as shown: never its secret; the URL's path only to who manages it."""

    name: str
    kind: ChannelKind
    url: str | None
    body_format: BodyFormat
    sign_with_node_key: bool
    has_hmac_secret: bool
    recipients: list[str]
    enabled: bool
    created_at: datetime


class RuleCreate(SQLModel):
    """Send this kind of event to this channel."""

    channel: str = name_field()
    kind: NotificationKind


class NotificationRule(SQLModel, table=True):
    """A kind of event an organisation sends to one of its channels."""

    __tablename__ = "notification_rule"
    __table_args__ = (UniqueConstraint("channel_id", "kind"),)

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    channel_id: uuid.UUID = Field(
        foreign_key="notification_channel.id", index=True, ondelete="CASCADE"
    )
    kind: NotificationKind = Field(sa_type=_enum(NotificationKind))
    created_at: datetime = created_field()


class RulePublic(SQLModel):
    """A rule: this kind goes to that channel."""

    channel: str
    kind: NotificationKind
    created_at: datetime


class SubscriptionCreate(SQLModel):
    """Email me when this happens to something I did (my run failed)."""

    kind: NotificationKind


class NotificationSubscription(SQLModel, table=True):
    """A person's choice to get their own events of one kind by email."""

    __tablename__ = "notification_subscription"
    __table_args__ = (UniqueConstraint("user_id", "organisation_id", "kind"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    kind: NotificationKind = Field(sa_type=_enum(NotificationKind))
    created_at: datetime = created_field()


class SubscriptionPublic(SQLModel):
    """One of my email subscriptions."""

    kind: NotificationKind
    created_at: datetime


class OutboxMessage(SQLModel, table=True):
    """One notification to one destination, delivered at least once under its key."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "state", "next_attempt_at"),)

    id: uuid.UUID = id_field()
    idempotency_key: str = Field(max_length=80, unique=True)
    notification_id: uuid.UUID = Field(index=True)
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    kind: NotificationKind = Field(sa_type=_enum(NotificationKind))
    subject: str = Field(max_length=500)
    channel_id: uuid.UUID | None = Field(
        default=None, foreign_key="notification_channel.id", index=True, ondelete="CASCADE"
    )
    user_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", index=True, ondelete="CASCADE"
    )
    destination: str = Field(max_length=300, description="the channel's name or an address")
    body: dict[str, Any] = json_field()
    state: DeliveryState = Field(default=DeliveryState.pending, sa_type=_enum(DeliveryState, 16))
    attempts: int = 0
    next_attempt_at: datetime = created_field()
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, sa_type=Text)
    attempt_log: list[dict[str, Any]] = json_field(list)
    created_at: datetime = created_field()
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryPublic(SQLModel):
    """A delivery as the deliveries page and API show it."""

    id: uuid.UUID
    idempotency_key: str
    notification_id: uuid.UUID
    kind: NotificationKind
    subject: str
    destination: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    attempt_log: list[dict[str, Any]]
    created_at: datetime
    delivered_at: datetime | None
