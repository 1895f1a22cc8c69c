"""The base module: settings and their defaults."""

from __future__ import annotations

import pytest

from infracms.modules.base.module import BaseSettings
from tests.modules.conftest import refused_field


def test_defaults() -> None:
    settings = BaseSettings.model_validate({})
    assert settings.model_dump() == {
        "hostname": None,
        "timezone": "UTC",
        "packages": [],
        "unattended_upgrades": True,
    }


def test_packages_are_sorted_and_unique() -> None:
    settings = BaseSettings.model_validate({"packages": ["vim", "curl", "vim"]})
    assert settings.packages == ["curl", "vim"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"hostname": "web_1"}, "hostname"),
        ({"hostname": "web1.example.org"}, "hostname"),
        ({"timezone": "europe/berlin"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"packages": ["curl; rm -rf /"]}, "packages"),
        ({"unattended_upgrades": "sometimes"}, "unattended_upgrades"),
        ({"motd": "hello"}, "motd"),
    ],
)
def test_bad_values_are_refused(data: dict[str, object], field: str) -> None:
    assert refused_field(BaseSettings, data) == field
