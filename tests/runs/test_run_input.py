"""A run's input: settings per host with secrets resolved, shared where they are equal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.keys import load_keyring
from infracms.models import Run
from infracms.plugins import Plugins
from infracms.runs.render import render
from infracms.services import credentials, definitions, inventory, modules, runs
from infracms.services.run_input import NODE_KEY, RunInput, load_run_input
from tests.helpers import ADMIN, make_org
from tests.services.test_modules import FAKES

SIGNATURE = "s3cret-signature"
HOST_KEY = (
    Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
)


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def clinic(engine: Engine, settings: Settings, plugins: Plugins) -> Engine:
    """web1..web4 in group web, db1 alone with a password; base, motd and site defined."""
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "site", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name=name
            )
        for name, secret in (("sig", SIGNATURE), ("db-login", "db-password-1")):
            credentials.create_credential(
                session=session,
                actor=ADMIN,
                keyring=load_keyring(settings),
                organisation="clinic",
                data={"name": name, "kind": "password", "secret": secret},
            )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "web"}
        )
        for n in range(1, 5):
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={
                    "name": f"web{n}",
                    "address": f"198.51.100.{n}",
                    "groups": ["web"],
                    "host_key": HOST_KEY,
                },
            )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={
                "name": "db1",
                "address": "198.51.100.9",
                "credential": "db-login",
                "host_key": HOST_KEY,
            },
        )
    for name, module, target, values in (
        ("base-web", "base", {"group": "web"}, {"size": 2}),
        ("base-db1", "base", {"host": "db1"}, {"size": 3}),
        ("motd-web", "motd", {"group": "web"}, {"signature": {"$credential": "sig"}}),
        ("site-web", "site", {"group": "web"}, {"size": 4}),
        ("site-web1", "site", {"host": "web1"}, {"size": 5}),
    ):
        with session_scope(engine, write=True) as session:
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation="clinic",
                data={"name": name, "module": module, "target": target, "settings": values},
            )
    return engine


def run_input(engine: Engine, settings: Settings, plugins: Plugins, **data: Any) -> RunInput:
    with session_scope(engine, write=True) as session:
        run_id = runs.create_run(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={"kind": "plan", **data},
        ).id
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return load_run_input(
            session, run=run, settings=settings, plugins=plugins, keyring=load_keyring(settings)
        )


def test_each_host_gets_its_settings_with_secrets_resolved(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    loaded = run_input(clinic, settings, plugins)
    hosts = {host.name: host for host in loaded.render.hosts}
    assert list(hosts) == ["db1", "web1", "web2", "web3", "web4"]
    web2, web3 = hosts["web2"], hosts["web3"]
    assert web2.modules == ("base", "motd", "site")  # base first: the others require it
    assert web2.settings["motd"]["signature"] == SIGNATURE
    assert web2.settings["motd"]["greeting"] == "Welcome, web2"  # the dummy's hook, per host
    assert web3.settings["motd"]["greeting"] == "Welcome, web3"
    assert web2.settings["base"] is web3.settings["base"]  # equal: one object
    assert [s["size"] for s in hosts["web1"].settings["site"]] == [4, 5]
    assert [s["size"] for s in web2.settings["site"]] == [4]
    assert hosts["db1"].settings == {"base": {"size": 3}} and hosts["db1"].modules == ("base",)
    assert hosts["db1"].credential == "db-login" and web2.credential == NODE_KEY
    assert SIGNATURE in loaded.secrets and "db-password-1" in loaded.secrets


def test_hosts_with_equal_settings_share_one_inventory_group(
    clinic: Engine, settings: Settings, plugins: Plugins, tmp_path: Path
) -> None:
    loaded = run_input(clinic, settings, plugins, definitions=["base-web", "base-db1"])
    assert [host.name for host in loaded.render.hosts] == ["db1", "web1", "web2", "web3", "web4"]
    spec = render(loaded.render, tmp_path / "run")
    document = json.loads(spec.inventory)
    groups = document["all"]["children"].values()
    assert sorted(sorted(group["hosts"]) for group in groups) == [
        ["db1"],
        ["web1", "web2", "web3", "web4"],
    ]
    web = next(group for group in groups if "web1" in group["hosts"])
    key = web["vars"].pop("ansible_ssh_private_key")["__ansible_unsafe"]  # the node's
    assert "PRIVATE KEY" in key
    assert web["vars"] == {"base": {"size": 2}, "infracms_modules": ["base"]}
    assert web["hosts"]["web3"]["ansible_host"] == {"__ansible_unsafe": "198.51.100.3"}


def test_hooks_see_the_account_and_port_infracms_connects_with(
    engine: Engine, settings: Settings
) -> None:
    """ssh_hardening keeps that account in, and firewall keeps that port open."""
    builtins = Plugins.load(entry_points=False)
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "ssh_hardening", "firewall"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=builtins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=builtins, organisation="clinic", name=name
            )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={
                "name": "gw",
                "address": "198.51.100.7",
                "ssh_port": 2222,
                "ssh_user": "deploy",
                "host_key": HOST_KEY,
            },
        )
    for name in ("base", "ssh_hardening", "firewall"):
        with session_scope(engine, write=True) as session:
            definitions.create_definition(
                session=session,
                actor=ADMIN,
                plugins=builtins,
                organisation="clinic",
                data={"name": name, "module": name, "target": {"host": "gw"}, "settings": {}},
            )
    (gw,) = run_input(engine, settings, builtins).render.hosts
    assert gw.settings["firewall"]["connection_port"] == 2222
    assert gw.settings["ssh_hardening"]["connection_user"] == "deploy"
    assert gw.settings["ssh_hardening"]["connection_port"] == 2222
