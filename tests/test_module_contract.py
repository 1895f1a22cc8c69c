"""The module declaration: what is checked, and which settings hold secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from infracms.modules.contract import (
    Dependency,
    Module,
    ModuleDeclarationError,
    ModuleSettings,
    SecretRef,
)
from infracms.plugins import Plugins

ROLE = Path(__file__).parent / "dummy_module" / "infracms_dummy" / "role"


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
