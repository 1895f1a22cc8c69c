"""Settings: environment prefix, defaults, and the refusal of placeholder secrets."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from infracms.config import Settings


def test_reads_the_infracms_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRACMS_LISTEN_PORT", "8123")
    monkeypatch.setenv("INFRACMS_DATABASE_URL", "postgresql+psycopg://db/infracms")
    settings = Settings()
    assert settings.listen_port == 8123
    assert settings.resolved_database_url == "postgresql+psycopg://db/infracms"
    assert not settings.is_sqlite


def test_defaults_to_sqlite_in_the_data_dir() -> None:
    settings = Settings(data_dir="somewhere")  # type: ignore[arg-type]
    assert settings.resolved_database_url.endswith("somewhere/infracms.db")
    assert settings.is_sqlite and not settings.secure_cookies


@pytest.mark.parametrize("value", ["changeme", "", "secret", "c2hvcnQ=", "not base64!"])
def test_placeholder_or_malformed_secret_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key=value)  # type: ignore[arg-type]


def test_placeholder_is_allowed_in_development() -> None:
    assert Settings(secret_key="changeme", environment="development").secret_key  # type: ignore[arg-type]


def test_real_secret_is_accepted() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    assert Settings(secret_key=key).secret_key is not None  # type: ignore[arg-type]


def test_bad_port_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(listen_port=70000)


def test_user_names_emails_and_reserved_names_are_checked() -> None:
    from infracms.models.host import HostCreate
    from infracms.models.user import UserCreate

    with pytest.raises(ValidationError, match="lower-case"):
        UserCreate(username="Bad Name", password="a-long-password-1")
    with pytest.raises(ValidationError, match="email"):
        UserCreate(username="olga", password="a-long-password-1", email="nope")
    assert UserCreate(username="olga", password="a-long-password-1", email="").email is None
    with pytest.raises(ValidationError, match="reserved"):
        HostCreate(name="new", address="10.0.0.1")
