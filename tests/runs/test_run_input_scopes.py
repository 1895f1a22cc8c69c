"""A run's input refuses, before anything is resolved, a credential outside its scope:
scopes name hosts and groups, groups nest, and a host is known by its id, not its name."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InvalidInput
from infracms.plugins import Plugins
from infracms.services import credentials, inventory
from tests.helpers import ADMIN
from tests.runs.test_run_input import HOST_KEY, SIGNATURE, clinic, plugins, run_input

__all__ = ["clinic", "plugins"]  # fixtures used below


def scope(engine: Engine, name: str, value: dict[str, Any] | None) -> None:
    with session_scope(engine, write=True) as session:
        credentials.update_credential(
            session=session, actor=ADMIN, organisation="clinic", name=name, data={"scope": value}
        )


def test_a_scope_of_a_parent_group_reaches_the_hosts_of_nested_groups(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    with session_scope(clinic, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation="clinic", data={"name": "infra"}
        )
        inventory.update_group(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web",
            data={"parent": "infra"},
        )
    scope(clinic, "sig", {"groups": ["infra"]})
    scope(clinic, "db-login", {"hosts": ["db1"]})
    loaded = run_input(clinic, settings, plugins)
    web2 = next(host for host in loaded.render.hosts if host.name == "web2")
    assert web2.settings["motd"]["signature"] == SIGNATURE


def test_a_reference_outside_the_scope_fails_the_run_naming_definition_and_field(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    scope(clinic, "sig", {"hosts": ["db1"], "groups": []})
    with pytest.raises(InvalidInput) as refused:
        run_input(clinic, settings, plugins)
    message = str(refused.value)
    assert (
        "definition motd-web, settings.signature: credential sig may not be sent to host web1"
        in message
    )
    assert SIGNATURE not in message


def test_a_hosts_connection_credential_must_allow_the_host(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    # a scope that leaves db1 out is refused when set; taking db1 out of the scoped group
    # (an editor may) is not, so the run checks the connection credential again
    update = {"groups": ["web"]}
    with session_scope(clinic, write=True) as session:
        inventory.update_host(
            session=session, actor=ADMIN, organisation="clinic", name="db1", data=update
        )
    scope(clinic, "db-login", {"groups": ["web"]})
    with session_scope(clinic, write=True) as session:
        inventory.update_host(
            session=session, actor=ADMIN, organisation="clinic", name="db1", data={"groups": []}
        )
    with pytest.raises(InvalidInput, match="host db1: its credential db-login may not be sent"):
        run_input(clinic, settings, plugins)
    scope(clinic, "db-login", None)  # lifted: any host of the organisation again
    assert run_input(clinic, settings, plugins).render.hosts


def test_a_host_made_again_under_a_scoped_name_is_not_let_in(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    scope(clinic, "sig", {"hosts": ["web1", "web2", "web3", "web4"]})
    with session_scope(clinic, write=True) as session:
        inventory.delete_host(session=session, actor=ADMIN, organisation="clinic", name="web4")
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={
                "name": "web4",
                "address": "198.51.100.99",
                "groups": ["web"],
                "host_key": HOST_KEY,
            },
        )
        shown = credentials.describe(
            session,
            credentials.get_credential(
                session=session, actor=ADMIN, organisation="clinic", name="sig"
            ),
        )
    assert shown.scope is not None and shown.scope.hosts == ["web1", "web2", "web3"]
    with pytest.raises(InvalidInput, match="may not be sent to host web4"):
        run_input(clinic, settings, plugins)
