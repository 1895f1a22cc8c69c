"""OSB helpers: the API version check, the originating identity header, the paths."""

from __future__ import annotations

import pytest

from federation.broker import (
    binding_path,
    check_api_version,
    instance_path,
    originating_identity,
    parse_originating_identity,
)
from federation.errors import MalformedMessage, UnsupportedVersion


@pytest.mark.parametrize(
    ("value", "want"), [("2.17", (2, 17)), ("2.13", (2, 13)), (" 2.20 ", (2, 20))]
)
def test_supported_api_versions(value: str, want: tuple[int, int]) -> None:
    assert check_api_version(value) == want


@pytest.mark.parametrize("value", [None, "", "2", "2.12", "3.0", "1.99", "two.17", "2.x"])
def test_unsupported_api_versions_are_refused(value: str | None) -> None:
    with pytest.raises(UnsupportedVersion, match="X-Broker-API-Version"):
        check_api_version(value)


def test_originating_identity_round_trip() -> None:
    header = originating_identity("infracms", {"user": "alice", "organization": "org-1"})
    assert header.startswith("infracms ")
    assert parse_originating_identity(header) == (
        "infracms",
        {"user": "alice", "organization": "org-1"},
    )


@pytest.mark.parametrize("header", ["infracms", "infracms !!!", "infracms WzFd", " e30="])
def test_malformed_originating_identity_is_refused(header: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_originating_identity(header)


def test_paths_quote_ids() -> None:
    assert instance_path("3f6c") == "/v2/service_instances/3f6c"
    assert binding_path("a/b", "c d") == "/v2/service_instances/a%2Fb/service_bindings/c%20d"
