"""/api/v1/orgs/{org}/notifications: channels, rules, my subscriptions, deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from infracms.api.deps import ActorDep, SessionDep, SettingsDep
from infracms.models.notification import (
    ChannelCreate,
    ChannelPublic,
    DeliveryPublic,
    DeliveryState,
    NotificationKind,
    RuleCreate,
    RulePublic,
    SubscriptionCreate,
    SubscriptionPublic,
)
from infracms.services import notification_settings as service

router = APIRouter(prefix="/orgs/{org}/notifications", tags=["notifications"])


class DeliveryPage(BaseModel):
    """A page of deliveries, newest first."""

    items: list[DeliveryPublic]
    total: int
    limit: int
    offset: int


@router.get("/channels", response_model=list[ChannelPublic])
def list_channels(org: str, session: SessionDep, actor: ActorDep) -> list[ChannelPublic]:
    """The organisation's channels (never their secrets)."""
    return service.list_channels(session=session, actor=actor, organisation=org)


@router.post("/channels", response_model=ChannelPublic, status_code=status.HTTP_201_CREATED)
def create_channel(
    org: str, body: ChannelCreate, session: SessionDep, actor: ActorDep, settings: SettingsDep
) -> ChannelPublic:
    """Add a webhook or email channel (owners)."""
    row = service.create_channel(
        session=session, actor=actor, settings=settings, organisation=org, data=body
    )
    return service.public_channel(row, manager=True)


@router.delete("/channels/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(org: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    """Remove a channel with its rules and deliveries (owners)."""
    service.delete_channel(session=session, actor=actor, organisation=org, name=name)


@router.get("/rules", response_model=list[RulePublic])
def list_rules(org: str, session: SessionDep, actor: ActorDep) -> list[RulePublic]:
    """Which kinds of event go to which channel."""
    return service.list_rules(session=session, actor=actor, organisation=org)


@router.post("/rules", response_model=RulePublic, status_code=status.HTTP_201_CREATED)
def add_rule(org: str, body: RuleCreate, session: SessionDep, actor: ActorDep) -> RulePublic:
    """Send a kind of event to a channel (owners)."""
    return service.add_rule(session=session, actor=actor, organisation=org, data=body)


@router.delete("/rules", status_code=status.HTTP_204_NO_CONTENT)
def remove_rule(
    org: str, channel: str, kind: NotificationKind, session: SessionDep, actor: ActorDep
) -> None:
    """Stop sending a kind of event to a channel (owners): `?channel=ops&kind=run.failed`."""
    service.remove_rule(session=session, actor=actor, organisation=org, channel=channel, kind=kind)


@router.get("/subscriptions", response_model=list[SubscriptionPublic])
def my_subscriptions(org: str, session: SessionDep, actor: ActorDep) -> list[SubscriptionPublic]:
    """The kinds of my own events I get by email."""
    rows = service.my_subscriptions(session=session, actor=actor, organisation=org)
    return [SubscriptionPublic.model_validate(row) for row in rows]


@router.post(
    "/subscriptions", response_model=SubscriptionPublic, status_code=status.HTTP_201_CREATED
)
def subscribe(
    org: str, body: SubscriptionCreate, session: SessionDep, actor: ActorDep
) -> SubscriptionPublic:
    """Email me this kind of my own events."""
    row = service.subscribe(session=session, actor=actor, organisation=org, data=body)
    return SubscriptionPublic.model_validate(row)


@router.delete("/subscriptions", status_code=status.HTTP_204_NO_CONTENT)
def unsubscribe(org: str, kind: NotificationKind, session: SessionDep, actor: ActorDep) -> None:
    """Stop emailing me this kind: `?kind=run.failed`."""
    service.unsubscribe(session=session, actor=actor, organisation=org, kind=kind)


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    org: str,
    session: SessionDep,
    actor: ActorDep,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> DeliveryPage:
    """Every delivery, newest first: its state, attempts and last error."""
    found = service.list_deliveries(
        session=session, actor=actor, organisation=org, state=state, limit=limit, offset=offset
    )
    items = [DeliveryPublic.model_validate(row) for row in found.items]
    return DeliveryPage(items=items, total=found.total, limit=found.limit, offset=found.offset)
