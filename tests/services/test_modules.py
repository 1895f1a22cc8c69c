"""Modules: availability, enabling with dependency resolution, disabling, and the registry."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from infracms.db import session_scope
from infracms.errors import Conflict, InvalidInput, PermissionDenied
from infracms.models import Role
from infracms.plugins import Plugins
from infracms.services import definitions, modules
from tests.helpers import ADMIN, audit_size, make_org, member_actor

FAKES = ("tests.services.fake_modules", "tests.dummy_module.infracms_dummy")


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


def make_available(engine: Engine, plugins: Plugins, *names: str) -> None:
    with session_scope(engine, write=True) as session:
        for name in names:
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )


def enable(engine: Engine, plugins: Plugins, name: str, actor=ADMIN) -> list[str]:  # type: ignore[no-untyped-def]
    with session_scope(engine, write=True) as session:
        return modules.enable_module(
            session=session, actor=actor, plugins=plugins, organisation="clinic", name=name
        )


def test_registry_lists_the_fakes_and_the_dummy(plugins: Plugins) -> None:
    assert {"base", "site", "motd", "cycle_a"} <= set(plugins.registry.modules)
    assert plugins.registry.problems == []


def test_enabling_pulls_in_dependencies_in_order(engine: Engine, plugins: Plugins) -> None:
    make_org(engine, "clinic")
    make_available(engine, plugins, "base", "site", "top")
    before = audit_size(engine)
    assert enable(engine, plugins, "top") == ["base", "site", "top"]
    assert audit_size(engine) == before + 3
    assert enable(engine, plugins, "site") == []
    with session_scope(engine) as session:
        listed = modules.list_modules(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic"
        )
    assert {m.name for m in listed if m.enabled} == {"base", "site", "top"}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("haunted", "haunted → ghost: not installed"),
        ("picky", "picky needs base >=2, found 1.0.0"),
        ("cycle_a", "cycle_a → cycle_b → cycle_a"),
    ],
)
def test_bad_dependencies_are_refused_when_made_available_and_nothing_changes(
    engine: Engine, plugins: Plugins, name: str, words: str
) -> None:
    make_available(engine, plugins, "base")
    before = audit_size(engine)
    with pytest.raises(InvalidInput) as caught:
        make_available(engine, plugins, name)
    assert words in caught.value.errors["module"]
    assert audit_size(engine) == before and available_now(engine) == ["base"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("haunted", "haunted → ghost: not installed"),
        ("picky", "picky needs base >=2, found 1.0.0"),
        ("cycle_a", "cycle_a → cycle_b → cycle_a"),
        ("site", "site → base: not made available"),
    ],
)
def test_bad_dependencies_made_available_before_the_check_are_refused_at_enable(
    engine: Engine, plugins: Plugins, name: str, words: str
) -> None:
    """A node whose modules were made available before requirements were checked then."""
    from infracms.models import AvailableModule

    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for listed_name in ("haunted", "picky", "cycle_a", "cycle_b", "site"):
            session.add(AvailableModule(name=listed_name))
        if name != "site":
            session.add(AvailableModule(name="base"))
        session.commit()
    before = audit_size(engine)
    with pytest.raises(InvalidInput) as caught:
        enable(engine, plugins, name)
    assert words in caught.value.errors["module"]
    assert audit_size(engine) == before
    with session_scope(engine) as session:
        listed = modules.list_modules(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic"
        )
    assert not any(m.enabled for m in listed)


def test_only_owners_enable_and_only_admins_make_available(
    engine: Engine, plugins: Plugins
) -> None:
    org_id = make_org(engine, "clinic")
    with session_scope(engine, write=True) as session, pytest.raises(PermissionDenied):
        modules.set_available(
            session=session,
            actor=member_actor(org_id, Role.owner),
            plugins=plugins,
            name="base",
            available=True,
        )
    make_available(engine, plugins, "base")
    with pytest.raises(PermissionDenied):
        enable(engine, plugins, "base", actor=member_actor(org_id, Role.operator))
    assert enable(engine, plugins, "base", actor=member_actor(org_id, Role.owner)) == ["base"]


def test_disabling_is_refused_while_used(engine: Engine, plugins: Plugins) -> None:
    make_org(engine, "clinic")
    make_available(engine, plugins, "base", "site", "motd")
    enable(engine, plugins, "site")
    with session_scope(engine, write=True) as session:
        from infracms.services import inventory

        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web1", "address": "10.0.0.1"},
        )
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation="clinic",
            data={
                "name": "web1-site",
                "module": "site",
                "target": {"host": "web1"},
                "settings": {},
            },
        )
    with session_scope(engine, write=True) as session, pytest.raises(Conflict, match="web1-site"):
        modules.disable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="site"
        )
    with (
        session_scope(engine, write=True) as session,
        pytest.raises(Conflict, match="required by enabled modules: site"),
    ):
        modules.disable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="base"
        )
    with session_scope(engine, write=True) as session:
        definitions.retire_definition(
            session=session, actor=ADMIN, organisation="clinic", name="web1-site"
        )
        modules.disable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="site"
        )


def test_withdrawing_an_enabled_module_is_refused(engine: Engine, plugins: Plugins) -> None:
    make_org(engine, "clinic")
    make_available(engine, plugins, "base")
    enable(engine, plugins, "base")
    with session_scope(engine, write=True) as session, pytest.raises(Conflict):
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=False
        )


def available_now(engine: Engine) -> list[str]:
    from sqlmodel import select

    from infracms.models import AvailableModule

    with session_scope(engine) as session:
        return sorted(session.exec(select(AvailableModule.name)).all())


def test_making_a_module_available_makes_what_it_requires_available(
    engine: Engine, plugins: Plugins
) -> None:
    before = audit_size(engine)
    with session_scope(engine, write=True) as session:
        changed = modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="top", available=True
        )
    assert changed == ["base", "site", "top"]  # requirements first
    assert available_now(engine) == ["base", "site", "top"]
    assert audit_size(engine) == before + 3
    make_org(engine, "clinic")
    assert enable(engine, plugins, "top") == ["base", "site", "top"]


def test_a_module_an_available_one_requires_cannot_be_withdrawn(
    engine: Engine, plugins: Plugins
) -> None:
    make_available(engine, plugins, "site")
    before = audit_size(engine)
    with session_scope(engine, write=True) as session, pytest.raises(Conflict, match="site"):
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=False
        )
    assert available_now(engine) == ["base", "site"] and audit_size(engine) == before


def test_a_module_whose_requirement_is_not_installed_is_refused_whole(
    engine: Engine, plugins: Plugins
) -> None:
    with session_scope(engine, write=True) as session, pytest.raises(InvalidInput):
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="haunted", available=True
        )
    assert available_now(engine) == []
