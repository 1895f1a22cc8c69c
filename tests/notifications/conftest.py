"""A node with an organisation `clinic`, its owner, and settings that allow loopback
webhook targets (the receivers run on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from federation.keys import NodeKey, TrustedKey
from infracms import keys
from infracms.config import Settings
from infracms.db import session_scope
from infracms.models import Role
from infracms.services import notification_settings as channels
from tests.helpers import make_org, member_actor
from tests.notifications.receivers import WebhookReceiver


@pytest.fixture
def clinic(engine: Engine) -> Engine:
    """The node, with the organisation `clinic`."""
    make_org(engine, "clinic")
    return engine


@pytest.fixture
def node(settings: Settings) -> Settings:
    """The node's settings with loopback webhook targets allowed and quick retries."""
    return settings.model_copy(
        update={"notify_allow_private_targets": True, "notify_backoff_seconds": 1.0}
    )


@pytest.fixture
def node_key(node: Settings, clinic: Engine) -> TrustedKey:
    """The node's public key, as a receiver pins it."""
    return NodeKey(keys.load_identity(node)).trusted(node.node_name)


@pytest.fixture
def receiver(node_key: TrustedKey) -> Iterator[WebhookReceiver]:
    """A webhook receiver that verifies the node's signature and the HMAC `shared-secret-123456`."""
    server = WebhookReceiver(node_key=node_key, hmac_secret="shared-secret-123456")
    yield server
    server.close()


def add_channel(engine: Engine, settings: Settings, *kinds: str, **fields: Any) -> None:
    """Add a channel to `clinic` as its owner, with rules for `kinds`."""
    owner = owner_of(engine)
    with session_scope(engine, write=True) as session:
        channels.create_channel(
            session=session, actor=owner, settings=settings, organisation="clinic", data=fields
        )
        for kind in kinds:
            channels.add_rule(
                session=session,
                actor=owner,
                organisation="clinic",
                data={"channel": fields["name"], "kind": kind},
            )


def owner_of(engine: Engine) -> Any:
    """An owner of clinic."""
    from sqlmodel import select

    from infracms.models import Organisation

    with session_scope(engine) as session:
        org_id = session.exec(select(Organisation.id).where(Organisation.name == "clinic")).one()
    return member_actor(org_id, Role.owner, "olive")
