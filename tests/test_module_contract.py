"""The module declaration: what is checked, which settings hold secrets, the methods a
module may override, and a plugin written for the per-module hooks of earlier versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from infracms.errors import ConfigurationError
from infracms.modules.contract import (
    MODULE_METHODS,
    Dependency,
    Module,
    ModuleDeclarationError,
    ModuleSettings,
    Offering,
    Plan,
    SecretRef,
    settings_as,
)
from infracms.modules.targets import HostFacts, Target
from infracms.plugins import Plugins
from tests.dummy_module.infracms_dummy import CALLS, Motd, MotdSettings

ROLE = Path(__file__).parent / "dummy_module" / "infracms_dummy" / "role"
OFFER = Offering(name="x", title="X", description="x", plans=(Plan(name="p", title="P"),))


class Role_(BaseModel):
    name: str
    password: SecretRef | None = None


class Nested(ModuleSettings):
    key: SecretRef
    optional: SecretRef | None = None
    roles: list[Role_] = []
    plain: dict[str, str] = {}


def declare(**attributes: object) -> type[Module]:
    base: dict[str, object] = {
        "name": "probe",
        "version": "1.0.0",
        "title": "Probe",
        "description": "d",
        "settings": Nested,
        "role": ROLE,
    }
    base.update(attributes)
    return type("Probe", (Module,), base)


def test_secret_fields_are_found_nested_and_optional() -> None:
    assert declare().secret_fields() == {"key", "optional", "roles[].password"}


def test_builtin_secret_fields() -> None:
    modules = Plugins.load(entry_points=False).registry.modules
    assert modules["postgresql"].secret_fields() == {"roles[].password"}
    assert modules["backup"].secret_fields() == {"password", "s3_secret_access_key"}


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({"name": "Bad-Name"}, "expected 2-40 of a-z"),
        ({"version": "one"}, "not a PEP 440 version"),
        ({"settings": dict}, "expected a ModuleSettings subclass"),
        ({"role": Path("/nonexistent")}, "expected a role with tasks/main.yml"),
        ({"requires": (Dependency("base", "!!"),)}, "is not a version range"),
        ({"requires": ("base",)}, "expected Dependency"),
    ],
)
def test_wrong_declarations_are_named(attributes: dict[str, object], words: str) -> None:
    with pytest.raises(ModuleDeclarationError, match=words):
        declare(**attributes).check_declaration()


def test_missing_attribute_is_named() -> None:
    broken = type("Broken", (Module,), {"name": "broken"})
    with pytest.raises(ModuleDeclarationError, match="declares no `version`"):
        broken.check_declaration()


def test_secret_reference_shapes() -> None:
    class One(ModuleSettings):
        secret: SecretRef

    assert One(secret={"$env": "INFRACMS_VAR_X"}).secret == {"$env": "INFRACMS_VAR_X"}
    for bad in (
        "plain",
        {"$file": "relative"},
        {"$credential": ""},
        {"$other": "x"},
        {"$env": "A", "$file": "/b"},
    ):
        with pytest.raises(ValueError):
            One(secret=bad)  # type: ignore[arg-type]


def test_a_plugin_of_the_per_module_hooks_stops_start_up() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Plugins.load(builtins=("tests.modules.retired_hooks_plugin",), entry_points=False)
    message = str(refused.value)
    assert "tests.modules.retired_hooks_plugin implements the hook `validate_settings`" in message
    assert "`validate_settings(cls, settings, target)`, a classmethod of your Module" in message
    assert "implements the hook `offering_settings`" in message
    assert "`instance_settings(self, *, provided, plan, parameters)`, a method of an" in message


def test_a_method_that_is_not_a_classmethod_is_named() -> None:
    def validate_settings(self: object, settings: object, target: object) -> dict[str, str]:
        return {}

    with pytest.raises(ModuleDeclarationError, match=r"validate_settings: expected a classmethod"):
        declare(validate_settings=validate_settings).check_declaration()


@pytest.mark.parametrize(
    ("offerings", "words"),
    [
        ([], "expected a tuple of Offering"),
        (("motd",), "expected a tuple of Offering"),
        ((OFFER, OFFER), "two offerings share a name"),
    ],
)
def test_wrong_offerings_are_named(offerings: object, words: str) -> None:
    with pytest.raises(ModuleDeclarationError, match=words):
        declare(offerings=offerings).check_declaration()


def test_settings_as_narrows_or_says_what_it_got() -> None:
    settings = Nested(key={"$env": "INFRACMS_VAR_X"})
    assert settings_as(Nested, settings) is settings
    with pytest.raises(TypeError, match="expected MotdSettings settings, got Nested"):
        settings_as(MotdSettings, settings)


def test_defaults_say_nothing_and_derive_nothing() -> None:
    probe = declare()
    target = Target(kind="host", name="web1", organisation="coop")
    assert probe.validate_settings(settings=Nested(key={"$env": "X"}), target=target) == {}
    assert probe.extra_variables(settings={}, host=HostFacts(name="web1")) == {}
    assert probe.refuse_disable(organisation="coop", definitions=[]) is None
    assert not probe.derives_variables() and probe.offerings == ()


def test_the_test_package_uses_every_module_method() -> None:
    """The test package's motd overrides every method a module has, and its methods are
    the ones called: each records its call."""
    assert {name for name in MODULE_METHODS if name in vars(Motd)} == set(MODULE_METHODS)
    assert Motd.derives_variables() and Motd.offerings
    CALLS.clear()
    target = Target(kind="group", name="web", organisation="coop")
    problems = Motd.validate_settings(settings=MotdSettings(message="forbidden"), target=target)
    assert problems == {"message": "may not say 'forbidden' on group web"}
    extra = Motd.extra_variables(settings={"message": "hi"}, host=HostFacts(name="web1"))
    assert extra == {"greeting": "hi, web1"}
    assert Motd.refuse_disable(organisation="sticky", definitions=[])
    assert CALLS == ["validate_settings", "extra_variables", "refuse_disable"]
