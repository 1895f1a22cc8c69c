"""infracms asks the offering a publication names, and only it: the test package's
`motd` module offers `motd`, which answers nothing (infracms' defaults), and
`motd-banner`, which answers every offering method."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infracms.db import session_scope
from infracms.models.federation import PublishedOffering
from infracms.modules.contract import Plan, ProvidedOffering, ServiceHost
from infracms.modules.offerings import OFFERING_METHODS, Offering
from infracms.plugins import Plugins
from infracms.services import inventory, modules
from infracms.services.federation import offerings, service_hooks
from tests.dummy_module.infracms_dummy import CALLS, Banner, Motd
from tests.helpers import ADMIN, make_org

FAKES = ("tests.services.fake_modules", "tests.dummy_module.infracms_dummy")
PLAN = Plan(name="standard", title="Standard")
BANNER = ProvidedOffering(
    id="coop-motd-banner", name="motd-banner", organisation="coop", settings={"lines": 2}
)


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.load(builtins=FAKES, entry_points=False)


@pytest.fixture
def pool(engine: Engine, plugins: Plugins) -> Engine:
    """Organisation coop with motd enabled and a pool group with one host."""
    make_org(engine, "coop")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="coop", name="motd"
        )
        inventory.create_group(
            session=session, actor=ADMIN, organisation="coop", data={"name": "pool"}
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="coop",
            data={"name": "h1", "address": "198.51.100.10", "groups": ["pool"]},
        )
    return engine


@pytest.fixture
def session(pool: Engine) -> Iterator[Session]:
    with session_scope(pool, write=True) as session:
        yield session


def publication(session: Session, plugins: Plugins, offering: str) -> PublishedOffering:
    published = offerings.publish_offering(
        session=session,
        actor=ADMIN,
        plugins=plugins,
        organisation="coop",
        data={
            "module": "motd",
            "offering": offering,
            "group": "pool",
            "plans": [{"name": "standard"}],
            "settings": {"lines": 2},
        },
    )
    return session.exec(
        select(PublishedOffering).where(PublishedOffering.offering_id == published.offering_id)
    ).one()


def settings_for(
    session: Session, plugins: Plugins, offering: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    published = publication(session, plugins, offering)
    made = service_hooks.instance_settings(
        session,
        plugins=plugins,
        publication=published,
        plan=published.plans[0],
        parameters=parameters,
        prefix="svc-x-",
    )
    assert made.secrets == ({"svc-x-1": "s3cret"} if offering == "motd-banner" else {})
    return made.settings


def test_the_banner_offering_is_asked(session: Session, plugins: Plugins) -> None:
    CALLS.clear()
    made = settings_for(session, plugins, "motd-banner", {"text": "hello"})
    assert CALLS == ["instance_settings"]
    assert (made["message"], made["lines"]) == ("hello", 2)
    assert made["signature"] == {"$credential": "svc-x-1"}  # the secret it generated, taken


def test_the_plain_offering_gets_the_defaults(session: Session, plugins: Plugins) -> None:
    CALLS.clear()
    made = settings_for(session, plugins, "motd", {"message": "hi"})
    assert CALLS == []
    assert (made["message"], made["lines"]) == ("hi", 2)  # the parameters over the base


def test_the_test_package_answers_every_offering_method() -> None:
    """The test package's banner overrides every method an offering has."""
    overridden = {name for name in OFFERING_METHODS if name in vars(Banner)}
    assert overridden == set(OFFERING_METHODS)
    assert [type(o) for o in Motd.offerings] == [Offering, Banner]


def test_banner_connection_details_update_and_removal() -> None:
    banner = Motd.offering("motd-banner")
    assert isinstance(banner, Banner)
    settings = {"message": "hello", "lines": 2, "signature": "s3cret"}
    hosts = [ServiceHost(name="h1", address="198.51.100.10")]
    details = banner.connection_details(provided=BANNER, plan=PLAN, settings=settings, hosts=hosts)
    assert details == {"hosts": ["198.51.100.10"], "signature": "s3cret"}
    updated = banner.updated_settings(
        provided=BANNER,
        plan=PLAN,
        settings=settings,
        parameters={"text": "bye"},
        previous={"text": "hello"},
    )
    assert updated == settings | {"message": "bye"}
    with pytest.raises(ValueError, match="keeps its number of lines"):
        banner.updated_settings(
            provided=BANNER,
            plan=PLAN,
            settings=settings,
            parameters={"text": "bye", "lines": 3},
            previous={"text": "hello"},
        )
    removal = banner.removal_settings(
        provided=BANNER, plan=PLAN, settings=settings, parameters={"text": "bye"}
    )
    assert removal == settings | {"message": "Welcome"}
