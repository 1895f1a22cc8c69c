"""What federation needs of this node: its key and identity, its keyring, peer clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from federation.client import Peer as ClientPeer
from federation.client import PeerClient
from federation.encoding import utc_now
from federation.keys import NodeKey, StaticKeyResolver, TrustedKey
from federation.models.peering import NodeIdentity
from federation.urls import is_loopback
from infracms import keys
from infracms.config import Settings
from infracms.errors import ConfigurationError
from infracms.keys import Keyring


@dataclass(frozen=True)
class FederationContext:
    """This node as federation sees it; ``transport`` is a seam for tests."""

    settings: Settings
    key: NodeKey = field(repr=False)
    keyring: Keyring = field(repr=False)
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def load(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> FederationContext:
        """The context from the node's key files."""
        return cls(
            settings=settings,
            key=NodeKey(keys.load_identity(settings)),
            keyring=keys.load_keyring(settings),
            transport=transport,
        )

    @property
    def name(self) -> str:
        """This node's name."""
        return self.settings.node_name

    @property
    def identity(self) -> NodeIdentity:
        """This node's identity document."""
        return own_identity(self.settings, self.key)

    @property
    def allow_loopback_http(self) -> bool:
        """Plain http to loopback peers only when this node itself is served so (tests)."""
        parts = urlsplit(self.settings.base_url)
        return parts.scheme == "http" and is_loopback(parts.hostname or "")

    def client(self, name: str, base_url: str, peer_keys: list[TrustedKey]) -> PeerClient:
        """A client for one pinned peer, trusting only that peer's keys."""
        return PeerClient(
            peer=ClientPeer(name, base_url, StaticKeyResolver(peer_keys)),
            key=self.key,
            transport=self.transport,
            allow_loopback_http=self.allow_loopback_http,
            clock=self.clock,
        )


def own_identity(settings: Settings, key: NodeKey) -> NodeIdentity:
    """The identity document this node serves."""
    try:
        return NodeIdentity(
            name=settings.node_name,
            base_url=settings.base_url.rstrip("/"),
            public_key=key.public_key_b64,
            key_id=key.key_id,
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"node name {settings.node_name!r} or base URL {settings.base_url!r} cannot "
            f"name a federation node: {exc}"
        ) from exc
