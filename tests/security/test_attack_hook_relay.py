"""An editor sets a host variable to ``{"$credential": "db-login"}``; a module's
``extra_variables`` passes that variable on to its role. The reference was
resolved with no scope check (hooks' additions were trusted), so the run sent the
db-login password, scoped to db1, to web1. A reference that a hook adds is refused:
secrets reach settings only from definitions, whose references are checked."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InvalidInput
from infracms.plugins import Plugins
from infracms.services import credentials, inventory
from tests.helpers import ADMIN
from tests.runs.test_run_input import clinic, run_input

__all__ = ["clinic"]
pytestmark = pytest.mark.security


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(
        builtins=("tests.services.fake_modules", "tests.security._attack_relay_plugin"),
        entry_points=False,
    )


def test_a_hook_cannot_relay_a_host_variables_reference(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    with session_scope(clinic, write=True) as session:
        credentials.update_credential(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="db-login",
            data={"scope": {"hosts": ["db1"]}},
        )
        inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web1",
            data={"variables": {"motd_banner": {"$credential": "db-login"}}},
        )
    with pytest.raises(InvalidInput) as refused:
        loaded = run_input(clinic, settings, plugins)
        web1 = next(host for host in loaded.render.hosts if host.name == "web1")
        assert "db-password-1" not in repr(web1.settings)  # what the run would have sent
    assert "extra_variables" in str(refused.value) and "motd" in str(refused.value)
    assert "db-password-1" not in str(refused.value)


def test_a_hook_adding_plain_values_still_works(
    clinic: Engine, settings: Settings, plugins: Plugins
) -> None:
    with session_scope(clinic, write=True) as session:
        inventory.update_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            name="web1",
            data={"variables": {"motd_banner": "hello"}},
        )
    loaded = run_input(clinic, settings, plugins)
    web1 = next(host for host in loaded.render.hosts if host.name == "web1")
    assert web1.settings["motd"]["banner"] == "hello"
