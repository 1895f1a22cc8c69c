"""Every built-in module applied to real hosts, once for the whole package of tests.

Two hosts: `web1` (systemd as init) gets base, users, ssh_hardening, firewall, two
nginx sites, postgresql and backup; `vpn1` gets wireguard. `vpn1` runs sshd as init,
because this machine's kernel has no WireGuard: on a systemd host the role's
``wg-quick@wg0`` start fails there, while without systemd the role writes the
configuration and says that nothing starts it (the closest real thing).

Both hosts log root in with the node's own SSH key only (installed as bootstrapping
would) and have no credential in the inventory. The node is served by the real
``infracms serve`` (embedded executor, debug log in a file); runs are asked for over
the API and followed through their server-sent event stream:

    first_plan -> first_apply -> second_apply -> plan_run (after a settings change)

Each is a package-scoped fixture, so a test file that needs one gets the ones before it.
Settings hold secret references (credentials and an ``$env`` variable) and free-text
fields holding Ansible templates that would touch a marker file if they ever ran.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import NameOID

from tests.integration.node import (
    ApiClient,
    Followed,
    Node,
    Server,
    make_node,
    on_host,
    served,
)
from tests.support.hosts import HostPool, TestHost, stop_hosts, write_known_hosts
from tests.support.hosts_net import NETWORK, PREFIX_LENGTH

SITE_ROOT = "/srv/www"
SITE_PAGE = "hello from infracms\n"
CERT_PATH = "/etc/ssl/infracms-test/secure.pem"
REPOSITORY = "/srv/restic"
CALENDARS_PORT = 5232
ALICE_HASH_VARIABLE = "INFRACMS_VAR_ALICE_HASH"


@dataclass
class Applied:
    """A run asked for over the API and followed to its end, and how long it took."""

    run_id: uuid.UUID
    followed: Followed
    seconds: float


@dataclass
class World:
    """The node, its server, the two hosts and what the tests check against."""

    node: Node
    server: Server
    api: ApiClient
    web: TestHost
    vpn: TestHost
    secrets: dict[str, str]  # name -> value: must reach no event, log or audit entry
    wireguard_public_key: str
    alice_key: Path
    known_hosts: Path
    markers: list[Path]  # files the templates in settings would create on the controller
    templates: dict[str, str]  # field -> template text typed into it
    tmp: Path

    def run_and_follow(self, kind: str) -> Applied:
        """Ask for a run over the API, follow its stream to the end."""
        started = time.monotonic()
        run_id = self.api.start_run(kind)
        followed = self.api.follow(run_id)
        return Applied(run_id, followed, time.monotonic() - started)


def _pem_key_and_certificate() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.example.org")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.example.org")]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem_key, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _wireguard_pair() -> tuple[str, str]:
    key = x25519.X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    private = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def _ssh_key(path: Path, comment: str) -> str:
    """Write an unencrypted Ed25519 key to `path`; its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{public.decode()} {comment}"


def web_definitions(world: World, alice_public: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """web1's definitions: name -> (module, settings)."""
    bridge = f"{NETWORK}.0/{PREFIX_LENGTH}"
    secure = {
        "name": "secure",
        "server_names": ["secure.example.org"],
        "root": SITE_ROOT,
        "tls": True,
        "tls_certificate_path": CERT_PATH,
        "tls_key": {"$credential": "site-key"},
        "hsts": True,
    }
    alice = {
        "name": "alice",
        "comment": world.templates["users.comment"],
        "groups": ["adm"],
        "ssh_keys": [alice_public],
        "sudo": "nopassword",
        "password_hash": {"$env": ALICE_HASH_VARIABLE},
    }
    return {
        "base-web1": ("base", base_settings("Europe/Berlin")),
        "users-web1": (
            "users",
            {"users": [alice, {"name": "bob", "shell": "/bin/sh"}], "absent": ["mallory"]},
        ),
        "ssh-web1": (
            "ssh_hardening",
            {"allow_users": ["root", "alice"], "max_auth_tries": 4, "client_alive_interval": 120},
        ),
        "firewall-web1": ("firewall", firewall_settings([80, 443, CALENDARS_PORT])),
        "site-www": (
            "nginx_site",
            {"name": "www", "server_names": ["www.example.org"], "root": SITE_ROOT},
        ),
        "site-secure": ("nginx_site", secure),
        "db-web1": (
            "postgresql",
            {
                "listen_addresses": ["*"],
                "roles": [
                    {"name": "app", "password": {"$credential": "app-db"}},
                    {"name": "reporting", "login": False},
                ],
                "databases": [{"name": "appdb", "owner": "app"}],
                "hba": [{"type": "host", "database": "appdb", "user": "app", "address": bridge}],
            },
        ),
        "calendars-web1": (
            "calendars",
            {
                "users": [
                    {"name": "alice", "password": {"$credential": "cal-alice"}},
                    {"name": "bob", "password": {"$credential": "cal-bob"}},
                ],
                "listen": "network",
                "port": CALENDARS_PORT,
                "tls_certificate_path": CERT_PATH,
                "tls_key": {"$credential": "site-key"},
            },
        ),
        "backup-web1": (
            "backup",
            {
                "repository": REPOSITORY,
                "password": {"$credential": "restic"},
                "paths": ["/etc", SITE_ROOT],
                "exclude": [world.templates["backup.exclude"], "*.tmp"],
                "schedule": "*-*-* 02:30:00",
            },
        ),
    }


def base_settings(timezone: str) -> dict[str, Any]:
    """web1's base settings with `timezone`."""
    return {
        "hostname": "web1",
        "timezone": timezone,
        "packages": ["curl"],
        "unattended_upgrades": True,
    }


def firewall_settings(ports: list[int]) -> dict[str, Any]:
    """web1's firewall: SSH from the test network only, `ports` open to all."""
    return {
        "ssh_sources": [f"{NETWORK}.0/{PREFIX_LENGTH}"],
        "rules": [{"ports": ports, "comment": "web"}],
        "log_dropped": True,
    }


def vpn_settings() -> dict[str, Any]:
    """vpn1's wireguard settings."""
    peers = [_wireguard_pair()[1], _wireguard_pair()[1]]
    return {
        "private_key": {"$credential": "wg-private"},
        "addresses": ["10.8.0.1/24"],
        "peers": [
            {"name": "laptop", "public_key": peers[0], "allowed_ips": ["10.8.0.2/32"]},
            {
                "name": "office",
                "public_key": peers[1],
                "allowed_ips": ["10.8.1.0/24"],
                "endpoint": "office.example.org:51820",
                "persistent_keepalive": 25,
            },
        ],
    }


def _prepare_hosts(node: Node, web: TestHost, vpn: TestHost, certificate: str) -> None:
    """What a sysadmin's machines hold before infracms manages them."""
    for host in (web, vpn):
        # only the node's key logs root in, as after bootstrapping
        on_host(host, "cat > /root/.ssh/authorized_keys", input=node.public_key + "\n")
    on_host(web, f"mkdir -p {SITE_ROOT} && cat > {SITE_ROOT}/index.html", input=SITE_PAGE)
    on_host(web, f"mkdir -p {Path(CERT_PATH).parent} && cat > {CERT_PATH}", input=certificate)
    on_host(web, "useradd --create-home mallory")  # listed as absent: removed


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory, host_pool: HostPool) -> Iterator[World]:
    """The node served, the hosts prepared, every definition saved; no run yet."""
    tmp = tmp_path_factory.mktemp("world")
    node = make_node(tmp / "var")
    [web] = host_pool.start_hosts(1)
    [vpn] = host_pool.start_hosts(1, init="sshd")
    marker_dir = Path(tempfile.mkdtemp(prefix="icms-m-"))  # short: comments are <= 100 chars
    markers = [marker_dir / "comment-ran", marker_dir / "exclude-ran"]
    templates = {
        "users.comment": "{{ lookup('pipe', 'touch " + str(markers[0]) + "') }}",
        "backup.exclude": "{{ lookup('pipe', 'id > " + str(markers[1]) + "') }}",
    }
    pem_key, certificate = _pem_key_and_certificate()
    wg_private, wg_public = _wireguard_pair()
    password = secrets.token_urlsafe(12)
    alice_hash = on_host(web, ["openssl", "passwd", "-6", "-stdin"], input=password).strip()
    world_secrets = {
        "restic": f'restic pass "{secrets.token_hex(12)}" $HOME',
        "app-db": f"pg-{secrets.token_urlsafe(18)}",
        "site-key": pem_key,
        "wg-private": wg_private,
        "alice-hash": alice_hash,
        "node-key": node.private_key_path.read_text(),
        "cal-alice": f"cal 'a' \"{secrets.token_urlsafe(12)}\" $x",
        "cal-bob": secrets.token_urlsafe(16),
    }
    for name in ("restic", "app-db", "site-key", "wg-private", "cal-alice", "cal-bob"):
        node.add_credential(name, world_secrets[name])
    _prepare_hosts(node, web, vpn, certificate)
    node.add_host("web1", web)
    node.add_host("vpn1", vpn)
    node.grant_secret("env", ALICE_HASH_VARIABLE)  # $env references need a node admin's grant
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(served(node, tmp, {ALICE_HASH_VARIABLE: alice_hash}))
        api = ApiClient(node, server)
        stack.callback(api.close)
        built = World(
            node=node,
            server=server,
            api=api,
            web=web,
            vpn=vpn,
            secrets=world_secrets,
            wireguard_public_key=wg_public,
            alice_key=tmp / "alice_ed25519",
            known_hosts=write_known_hosts([web, vpn], tmp / "known_hosts"),
            markers=markers,
            templates=templates,
            tmp=tmp,
        )
        alice_public = _ssh_key(built.alice_key, "alice@laptop")
        for name, (module, settings) in web_definitions(built, alice_public).items():
            node.define(name, module, "web1", settings)
        node.define("vpn-vpn1", "wireguard", "vpn1", vpn_settings())
        yield built
    stop_hosts([web, vpn])
    node.engine.dispose()
    shutil.rmtree(marker_dir, ignore_errors=True)


# Everything a plan must leave as it was: files' checksums, packages, accounts.
STATE_COMMAND = (
    "find /etc /home /root /srv /usr/local -xdev -type f -print0 | sort -z"
    " | xargs -0 sha256sum; dpkg-query -W -f '${Package} ${Version} ${Status}\\n'; getent passwd"
)


@dataclass
class Planned:
    """A plan, and each host's state (STATE_COMMAND) before and after it."""

    applied: Applied
    before: dict[str, str]
    after: dict[str, str]


def _plan(world: World) -> Planned:
    hosts = {"web1": world.web, "vpn1": world.vpn}
    before = {name: on_host(host, STATE_COMMAND) for name, host in hosts.items()}
    applied = world.run_and_follow("plan")
    after = {name: on_host(host, STATE_COMMAND) for name, host in hosts.items()}
    return Planned(applied, before, after)


@pytest.fixture(scope="package")
def first_plan(world: World) -> Planned:
    """A plan of every definition on the new hosts, before anything was applied."""
    planned = _plan(world)
    print(f"first plan: {planned.applied.seconds:.1f} s")
    return planned


@pytest.fixture(scope="package")
def first_apply(world: World, first_plan: Planned) -> Applied:
    """The first apply of every definition, over the API (after the first plan)."""
    applied = world.run_and_follow("apply")
    print(f"first apply: {applied.seconds:.1f} s")
    return applied


@pytest.fixture(scope="package")
def second_apply(world: World, first_apply: Applied) -> Applied:
    """The same definitions applied again, nothing changed in between."""
    applied = world.run_and_follow("apply")
    print(f"second apply: {applied.seconds:.1f} s")
    return applied


PLAN_TIMEZONE = "Europe/Paris"
PLAN_PORT = 8080
PLAN_SERVER_NAME = "web.example.org"


@pytest.fixture(scope="package")
def plan_run(world: World, second_apply: Applied) -> Planned:
    """A plan after three settings changes (time zone, a firewall port, a server name)."""
    world.node.revise("base-web1", base_settings(PLAN_TIMEZONE))
    world.node.revise("firewall-web1", firewall_settings([80, 443, CALENDARS_PORT, PLAN_PORT]))
    world.node.revise(
        "site-www",
        {"name": "www", "server_names": ["www.example.org", PLAN_SERVER_NAME], "root": SITE_ROOT},
    )
    planned = _plan(world)
    print(f"plan after a change: {planned.applied.seconds:.1f} s")
    return planned
