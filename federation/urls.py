"""Which peer URLs may be contacted, and the paths the protocol serves (PROTOCOL.md section 1).

Only ``https`` is contacted; ``http`` only for a loopback host (``127.0.0.0/8``,
``::1``, ``localhost``) and only when the caller allows it, for tests. URLs carry no
credentials. Redirects are never followed (the client refuses them).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from federation.errors import SchemeRefused, URLRefused

FEDERATION_PREFIX = "/federation/v1"
IDENTITY_PATH = f"{FEDERATION_PREFIX}/identity"
PEERING_PATH = f"{FEDERATION_PREFIX}/peering"
KEY_ROTATION_PATH = f"{FEDERATION_PREFIX}/key-rotation"
CATALOG_PATH = f"{FEDERATION_PREFIX}/catalog"
WITNESS_PREFIX = f"{FEDERATION_PREFIX}/witness"
ADD_CHECKPOINT_PATH = f"{WITNESS_PREFIX}/add-checkpoint"
OSB_CATALOG_PATH = "/v2/catalog"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_peer_url(url: str, *, allow_loopback_http: bool = False) -> None:
    """Raise ``URLRefused``/``SchemeRefused`` unless this node may contact ``url``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise URLRefused(f"peer URL {url!r} does not parse: {exc}") from exc
    if not host:
        raise URLRefused(f"peer URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise URLRefused(f"peer URL {url!r} carries credentials")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_loopback_http and is_loopback(host):
        return
    allowed = "https, or http to a loopback host when allowed" if allow_loopback_http else "https"
    raise SchemeRefused(f"peer URL {url!r} has scheme {parts.scheme!r}, expected {allowed}")
