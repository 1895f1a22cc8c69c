"""Who is acting: a user (through a web session), an API token, a peer node or the system."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from infracms.models.user import Role

ActorKind = Literal["user", "token", "peer", "system"]


@dataclass(frozen=True)
class Actor:
    """The identity a change is made by and authorised for."""

    kind: ActorKind
    id: str | None
    name: str
    is_admin: bool = False
    roles: Mapping[uuid.UUID, Role] = field(default_factory=dict)
    user_id: uuid.UUID | None = None
    request_id: str | None = None
    node_scope: bool = False  # a node token: node-level actions only (services/authz.py)

    def role_in(self, organisation_id: uuid.UUID) -> Role | None:
        """The actor's role in an organisation, if any."""
        return self.roles.get(organisation_id)


def system_actor(name: str = "system", *, request_id: str | None = None) -> Actor:
    """The node itself, or its administrator at the command line: allowed everything."""
    return Actor(kind="system", id=None, name=name, is_admin=True, request_id=request_id)
