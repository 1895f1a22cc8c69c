"""Sample settings for each built-in module, as a user would type them, and their secrets.

`SAMPLES[name]` holds settings that exercise most fields; `SECRETS` maps each secret
reference's target to the value a run would resolve it to.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from infracms.modules.contract import Module


def _key(seed: int) -> str:
    """A WireGuard-shaped key: 32 bytes in base64."""
    return base64.b64encode(bytes((seed + i) % 256 for i in range(32))).decode()


ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq9bUrwv2yv9ViuB2+rs9RtxkX2Y7JbE8RbH8gbRi6J alice@laptop"
)

SECRETS: dict[str, str] = {
    "ALICE_HASH": "$y$j9T$Lr1lGAxkGCmZ3tVxGm0Ax/$1CVjYhD3ZpHdpJ4NQ6C5RyxNcWzYbsKcm7Kk1L7U1W6",
    "site-key": (
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIExample\n-----END PRIVATE KEY-----"
    ),
    "app-db": "correct horse battery staple",
    "restic": "a long restic passphrase with $pecial \"chars\" \\ and 'quotes'",
    "s3-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "wg-private": _key(1),
    "cal-alice": "alice's calendar pass: with 'quotes', \"doubles\" and $dollars",
    "cal-bob": "bob-calendar-password",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "base": {
        "hostname": "web1",
        "timezone": "Europe/Berlin",
        "packages": ["htop", "curl"],
        "unattended_upgrades": True,
    },
    "users": {
        "users": [
            {
                "name": "alice",
                "comment": "Alice Admin",
                "groups": ["adm"],
                "ssh_keys": [ED25519],
                "sudo": "nopassword",
                "password_hash": {"$env": "ALICE_HASH"},
            },
            {"name": "bob", "shell": "/bin/sh", "sudo": "password"},
        ],
        "absent": ["mallory"],
    },
    "ssh_hardening": {
        "port": 22,
        "permit_root_login": "prohibit-password",
        "allow_users": ["root", "alice"],
        "client_alive_interval": 120,
    },
    "firewall": {
        "ssh_sources": ["10.0.0.0/8", "2001:db8::/32", "127.0.0.0/8"],
        "rules": [
            {"ports": [80, 443], "comment": "web"},
            {"proto": "udp", "ports": ["51820", "6000-6010"], "sources": ["192.168.0.0/16"]},
        ],
        "log_dropped": True,
    },
    "nginx_site": {
        "name": "www",
        "server_names": ["www.example.org", "example.org"],
        "proxy_pass": "http://127.0.0.1:8080",
        "tls": True,
        "tls_certificate_path": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
        "tls_key": {"$credential": "site-key"},
        "hsts": True,
    },
    "postgresql": {
        "listen_addresses": ["localhost", "10.0.0.5"],
        "roles": [
            {"name": "app", "password": {"$credential": "app-db"}},
            {"name": "reporting", "login": False},
        ],
        "databases": [{"name": "appdb", "owner": "app"}],
        "hba": [{"type": "hostssl", "database": "appdb", "user": "app", "address": "10.0.0.0/24"}],
    },
    "backup": {
        "repository": "/srv/infracms-test-restic-repository",
        "password": {"$credential": "restic"},
        "paths": ["/etc", "/srv/www"],
        "exclude": ["*.tmp", "/srv/www/cache"],
        "schedule": "*-*-* 02:30:00",
    },
    "calendars": {
        "users": [
            {"name": "alice", "password": {"$credential": "cal-alice"}},
            {"name": "bob", "password": {"$credential": "cal-bob"}},
        ],
        "listen": "network",
        "port": 5232,
        "tls_certificate_path": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
        "tls_key": {"$credential": "site-key"},
    },
    "wireguard": {
        "private_key": {"$credential": "wg-private"},
        "addresses": ["10.8.0.1/24", "fd00:8::1/64"],
        "peers": [
            {"name": "laptop", "public_key": _key(2), "allowed_ips": ["10.8.0.2/32"]},
            {
                "name": "office",
                "public_key": _key(3),
                "allowed_ips": ["10.8.1.0/24", "fd00:8:1::/64"],
                "endpoint": "office.example.org:51820",
                "persistent_keepalive": 25,
            },
        ],
    },
}


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of the sample settings of module `name`."""
    return copy.deepcopy(SAMPLES[name])


def resolve(value: Any) -> Any:
    """`value` with every secret reference replaced by its secret, as a run does."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((kind, target),) = value.items()
            if kind in ("$credential", "$env", "$file"):
                return SECRETS[target]
        return {key: resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item) for item in value]
    return value


def role_variables(module: type[Module], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The variables a run gives the module's role: its validated settings, secrets resolved."""
    data = sample(module.name) if settings is None else settings
    dumped = module.settings.model_validate(data).model_dump(mode="json")
    resolved = resolve(dumped)
    return {module.name: [resolved] if module.multiple else resolved}
