"""Where an organisation's notifications go: channels, rules, subscriptions; deliveries.

Owners manage channels and rules (``org.update``); every member reads them
(``org.read``) without a webhook's secret: the HMAC secret is sealed at rest and never
shown again, and a webhook URL's path (Slack's and Mattermost's carry their token
there) is shown only to who manages the channel. Each person keeps their own email
subscriptions. The node's own channels (node events: the audit self check, peers'
catalogs, witnesses) have no organisation and are for node administrators
(``organisation=None``).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from infracms import keys
from infracms.config import Settings
from infracms.errors import Conflict, InvalidInput, NotFound
from infracms.models.notification import (
    ChannelCreate,
    ChannelPublic,
    DeliveryState,
    NotificationChannel,
    NotificationKind,
    NotificationRule,
    NotificationSubscription,
    OutboxMessage,
    RuleCreate,
    RulePublic,
    SubscriptionCreate,
)
from infracms.models.organisation import Organisation
from infracms.services import audit
from infracms.services.authz import Action, authorize, is_allowed
from infracms.services.common import Fields, Page, commit, invalid_from, organisation_by_name, parse
from infracms.services.common import page as page_of
from infracms.services.context import Actor


def hmac_context(channel_id: uuid.UUID) -> str:
    """What a channel's sealed HMAC secret is bound to."""
    return f"notification_channel:{channel_id}:hmac_secret"


def _scope(
    session: Session, actor: Actor, organisation: str | None, action: Action
) -> Organisation | None:
    """The organisation (None: the node's own channels, node admins only), authorised."""
    if organisation is None:
        authorize(actor, Action.org_create, None)  # a node-level action: admins only
        return None
    org = organisation_by_name(session, name=organisation)
    authorize(actor, action, org.id)
    return org


def _org_id(org: Organisation | None) -> uuid.UUID | None:
    return org.id if org else None


def _where_org(org: Organisation | None) -> Any:
    column = col(NotificationChannel.organisation_id)
    return column.is_(None) if org is None else column == org.id


def parse_channel(settings: Settings, data: ChannelCreate | Fields) -> ChannelCreate:
    """Validate a channel, with the node's rule on private webhook targets."""
    raw = data.model_dump() if isinstance(data, ChannelCreate) else dict(data)
    if isinstance(data, ChannelCreate) and data.hmac_secret is not None:
        raw["hmac_secret"] = data.hmac_secret.get_secret_value()
    context = {"allow_private_targets": settings.notify_allow_private_targets}
    try:
        return ChannelCreate.model_validate(raw, context=context)
    except ValidationError as exc:
        raise invalid_from(exc) from exc


def create_channel(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    organisation: str | None,
    data: ChannelCreate | Fields,
) -> NotificationChannel:
    """Add a webhook or email channel (owners; the node's: admins)."""
    org = _scope(session, actor, organisation, Action.org_update)
    channel_in = parse_channel(settings, data)
    fields = channel_in.model_dump(exclude={"hmac_secret"})
    channel = NotificationChannel(organisation_id=_org_id(org), **fields)
    if channel_in.hmac_secret is not None:
        secret = channel_in.hmac_secret.get_secret_value()
        channel.hmac_secret_sealed = keys.load_keyring(settings).seal(
            secret, context=hmac_context(channel.id)
        )
    session.add(channel)
    _flush(session, f"a channel called {channel.name!r} exists already")
    _audit(session, actor, org, "notification.channel.create", channel, _described(channel))
    commit(session, conflict=f"a channel called {channel.name!r} exists already")
    return channel


def _flush(session: Session, conflict: str) -> None:
    """Write the new row now, so that a duplicate is a Conflict (nothing written), not a
    failure of the audit append that follows."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(conflict) from exc


def _described(channel: NotificationChannel) -> dict[str, Any]:
    """A channel for the audit log: the URL's origin and digest, never its path or secret."""
    url = channel.url or ""
    return {
        "kind": channel.kind,
        "url_origin": origin_of(url) if url else None,
        "url_sha256": hashlib.sha256(url.encode()).hexdigest() if url else None,
        "body_format": channel.body_format,
        "sign_with_node_key": channel.sign_with_node_key,
        "hmac": channel.hmac_secret_sealed is not None,
        "recipients": channel.recipients,
    }


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, then "/…" if it has more."""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{rest}"


def _audit(
    session: Session,
    actor: Actor,
    org: Organisation | None,
    action: str,
    channel: NotificationChannel,
    payload: dict[str, Any],
) -> None:
    owner = org.name if org else "node"
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"notification-channel:{owner}/{channel.name}",
        organisation_id=_org_id(org),
        payload=payload,
    )


def _channel(session: Session, org: Organisation | None, name: str) -> NotificationChannel:
    query = select(NotificationChannel).where(_where_org(org), NotificationChannel.name == name)
    channel = session.exec(query).first()
    if channel is None:
        raise NotFound(f"no notification channel called {name!r}")
    return channel


def list_channels(
    *, session: Session, actor: Actor, organisation: str | None
) -> list[ChannelPublic]:
    """The channels, as the actor may see them."""
    org = _scope(session, actor, organisation, Action.org_read)
    manager = organisation is None or is_allowed(actor, Action.org_update, _org_id(org))
    query = select(NotificationChannel).where(_where_org(org))
    rows = session.exec(query.order_by(col(NotificationChannel.name))).all()
    return [public_channel(row, manager=manager) for row in rows]


def public_channel(channel: NotificationChannel, *, manager: bool) -> ChannelPublic:
    """A channel without its secret; its URL's path only for a `manager`."""
    url = channel.url if manager or channel.url is None else origin_of(channel.url)
    return ChannelPublic(
        name=channel.name,
        kind=channel.kind,
        url=url,
        body_format=channel.body_format,
        sign_with_node_key=channel.sign_with_node_key,
        has_hmac_secret=channel.hmac_secret_sealed is not None,
        recipients=channel.recipients,
        enabled=channel.enabled,
        created_at=channel.created_at,
    )


def delete_channel(*, session: Session, actor: Actor, organisation: str | None, name: str) -> None:
    """Remove a channel, its rules and its deliveries."""
    org = _scope(session, actor, organisation, Action.org_update)
    channel = _channel(session, org, name)
    _audit(session, actor, org, "notification.channel.delete", channel, _described(channel))
    session.delete(channel)
    commit(session)


def add_rule(
    *, session: Session, actor: Actor, organisation: str | None, data: RuleCreate | Fields
) -> RulePublic:
    """Send one kind of event to one channel."""
    org = _scope(session, actor, organisation, Action.org_update)
    rule_in = parse(RuleCreate, data)
    channel = _channel(session, org, rule_in.channel)
    rule = NotificationRule(organisation_id=_org_id(org), channel_id=channel.id, kind=rule_in.kind)
    session.add(rule)
    _flush(session, f"{rule.kind} already goes to {channel.name!r}")
    payload = {"kind": rule.kind}
    _audit(session, actor, org, "notification.rule.create", channel, payload)
    commit(session, conflict=f"{rule.kind} already goes to {channel.name!r}")
    return RulePublic(channel=channel.name, kind=rule.kind, created_at=rule.created_at)


def remove_rule(
    *,
    session: Session,
    actor: Actor,
    organisation: str | None,
    channel: str,
    kind: NotificationKind,
) -> None:
    """Stop sending one kind of event to one channel."""
    org = _scope(session, actor, organisation, Action.org_update)
    target = _channel(session, org, channel)
    rule = session.exec(
        select(NotificationRule).where(
            NotificationRule.channel_id == target.id, NotificationRule.kind == kind
        )
    ).first()
    if rule is None:
        raise NotFound(f"{kind} does not go to {channel!r}")
    session.delete(rule)
    _audit(session, actor, org, "notification.rule.delete", target, {"kind": kind})
    commit(session)


def list_rules(*, session: Session, actor: Actor, organisation: str | None) -> list[RulePublic]:
    """Which kinds go to which channel."""
    org = _scope(session, actor, organisation, Action.org_read)
    query = (
        select(NotificationRule, NotificationChannel.name)
        .join(NotificationChannel, col(NotificationChannel.id) == NotificationRule.channel_id)
        .where(_where_org(org))
        .order_by(col(NotificationChannel.name), col(NotificationRule.kind))
    )
    return [
        RulePublic(channel=name, kind=rule.kind, created_at=rule.created_at)
        for rule, name in session.exec(query)
    ]


def subscribe(
    *, session: Session, actor: Actor, organisation: str, data: SubscriptionCreate | Fields
) -> NotificationSubscription:
    """Email me this kind of event about my own doings in the organisation."""
    org = _member_of(session, actor, organisation)
    user_id = _person(actor)
    kind = parse(SubscriptionCreate, data).kind
    row = NotificationSubscription(user_id=user_id, organisation_id=org.id, kind=kind)
    session.add(row)
    _flush(session, f"you are already subscribed to {kind}")
    _audit_subscription(session, actor, org, "notification.subscribe", kind)
    commit(session, conflict=f"you are already subscribed to {kind}")
    return row


def unsubscribe(
    *, session: Session, actor: Actor, organisation: str, kind: NotificationKind
) -> None:
    """Stop emailing me this kind of event."""
    org = _member_of(session, actor, organisation)
    row = session.exec(
        select(NotificationSubscription).where(
            NotificationSubscription.user_id == _person(actor),
            NotificationSubscription.organisation_id == org.id,
            NotificationSubscription.kind == kind,
        )
    ).first()
    if row is None:
        raise NotFound(f"you are not subscribed to {kind}")
    session.delete(row)
    _audit_subscription(session, actor, org, "notification.unsubscribe", kind)
    commit(session)


def my_subscriptions(
    *, session: Session, actor: Actor, organisation: str
) -> list[NotificationSubscription]:
    """The kinds of my own events I get by email in the organisation."""
    org = _member_of(session, actor, organisation)
    query = select(NotificationSubscription).where(
        NotificationSubscription.user_id == _person(actor),
        NotificationSubscription.organisation_id == org.id,
    )
    return list(session.exec(query.order_by(col(NotificationSubscription.kind))))


def _audit_subscription(
    session: Session, actor: Actor, org: Organisation, action: str, kind: NotificationKind
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"notification-subscription:{org.name}/{actor.name}",
        organisation_id=org.id,
        payload={"kind": kind},
    )


def _member_of(session: Session, actor: Actor, organisation: str) -> Organisation:
    org = organisation_by_name(session, name=organisation)
    authorize(actor, Action.org_read, org.id)
    return org


def _person(actor: Actor) -> uuid.UUID:
    if actor.user_id is None:
        raise InvalidInput(
            "only a person has email subscriptions", errors={"actor": "sign in as a person"}
        )
    return actor.user_id


def list_deliveries(
    *,
    session: Session,
    actor: Actor,
    organisation: str | None,
    state: DeliveryState | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[OutboxMessage]:
    """The outbox's rows, newest first: state, attempts, last error."""
    org = _scope(session, actor, organisation, Action.org_read)
    column = col(OutboxMessage.organisation_id)
    where = [column.is_(None) if org is None else column == org.id]
    if state is not None:
        where.append(col(OutboxMessage.state) == state)
    return page_of(
        session,
        table=OutboxMessage,
        where=where,
        order_by=col(OutboxMessage.created_at).desc(),
        limit=limit,
        offset=offset,
    )
