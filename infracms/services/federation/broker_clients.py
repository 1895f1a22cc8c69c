"""OSB platforms' credentials for ``/v2``: issued by a node admin, stored hashed.

A platform authenticates with ``Authorization: Bearer <token>`` or with HTTP basic
auth (its name and the token). The raw token is shown once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from infracms.errors import AuthenticationFailed, Conflict, InvalidInput
from infracms.models.base import utcnow
from infracms.models.federation import BrokerClient
from infracms.models.validators import check_name
from infracms.services import audit
from infracms.services.authz import Action, authorize
from infracms.services.common import commit
from infracms.services.context import Actor
from infracms.services.federation.provisioning import BrokerCaller

TOKEN_PREFIX = "osb_"


class BrokerClientPublic(BaseModel):
    """A platform credential's metadata (never the token)."""

    id: uuid.UUID
    name: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedBrokerClient:
    """A new platform credential: the token is shown once."""

    client: BrokerClientPublic
    token: str


def issue(*, session: Session, actor: Actor, name: str) -> IssuedBrokerClient:
    """Issue a credential an OSB platform calls ``/v2`` with."""
    authorize(actor, Action.broker_manage, None)
    try:
        check_name(name)
    except ValueError as exc:
        raise InvalidInput("bad name", errors={"name": str(exc)}) from exc
    if session.exec(select(BrokerClient.id).where(BrokerClient.name == name)).first():
        raise Conflict(f"a broker client called {name!r} exists already")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = BrokerClient(name=name, secret_hash=_hash(token), created_by=actor.name)
    session.add(row)
    audit.record(
        session, actor=actor, action="broker_client.issue", subject=f"broker-client:{name}"
    )
    commit(session)
    return IssuedBrokerClient(BrokerClientPublic.model_validate(row, from_attributes=True), token)


def revoke(*, session: Session, actor: Actor, name: str) -> None:
    """Revoke a platform credential."""
    authorize(actor, Action.broker_manage, None)
    row = session.exec(select(BrokerClient).where(BrokerClient.name == name)).first()
    if row is None or row.revoked_at is not None:
        raise InvalidInput(f"no active broker client called {name!r}")
    row.revoked_at = utcnow()
    session.add(row)
    audit.record(
        session, actor=actor, action="broker_client.revoke", subject=f"broker-client:{name}"
    )
    commit(session)


def list_clients(*, session: Session, actor: Actor) -> list[BrokerClientPublic]:
    """Every platform credential."""
    authorize(actor, Action.broker_manage, None)
    rows = session.exec(select(BrokerClient).order_by(col(BrokerClient.name))).all()
    return [BrokerClientPublic.model_validate(row, from_attributes=True) for row in rows]


def authenticate(session: Session, *, authorization: str | None) -> BrokerCaller:
    """The platform behind an Authorization header, or AuthenticationFailed."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    name, token = None, value.strip()
    if scheme.lower() == "basic":
        try:
            name, _, token = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationFailed("basic credentials do not decode") from exc
    elif scheme.lower() != "bearer":
        raise AuthenticationFailed("sign the request as a peer, or send platform credentials")
    row = session.exec(select(BrokerClient).where(BrokerClient.secret_hash == _hash(token))).first()
    if row is None or row.revoked_at is not None or (name is not None and name != row.name):
        raise AuthenticationFailed("unknown or revoked broker credentials")
    return BrokerCaller(kind="platform", name=row.name)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


__all__ = ["authenticate", "issue", "list_clients", "revoke"]
