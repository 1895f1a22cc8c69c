"""A provider's organisation as the federation tests set it up, in one place.

Organisation ``coop`` with the postgresql and backup modules available and enabled, and
two pools of one host each: ``db`` (h1, 198.51.100.10) and ``store`` (h2,
198.51.100.20), both hosts with a pinned key. The in-process provider of the offering
hooks' tests (``tests/federation_node``) and the provider the peer attacks are made to
(``tests/security/_peers_support.py``) both start from it.
"""

from __future__ import annotations

from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.plugins import Plugins
from infracms.services import inventory, modules, organisations
from infracms.services.context import system_actor

ADMIN = system_actor("test-setup")
ORGANISATION = "coop"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE9b6Y0f7l6mB2lA5j1ZJ3v6d1v1t0dJ0mCq2xj3xQ8A"
MODULES = ("postgresql", "backup")
POOLS = (("db", "h1", "198.51.100.10"), ("store", "h2", "198.51.100.20"))


def set_up_provider(engine: Engine, plugins: Plugins) -> None:
    """Organisation coop with postgresql and backup enabled, pools db (h1) and store (h2)."""
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": ORGANISATION})
        for name in MODULES:
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation=ORGANISATION, name=name
            )
        for group, host, address in POOLS:
            inventory.create_group(
                session=session, actor=ADMIN, organisation=ORGANISATION, data={"name": group}
            )
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation=ORGANISATION,
                data={"name": host, "address": address, "groups": [group], "host_key": HOST_KEY},
            )
