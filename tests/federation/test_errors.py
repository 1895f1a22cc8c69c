"""The error tree drawn in federation/errors.py's docstring is the real one."""

from __future__ import annotations

import re

import pytest

from federation import errors
from federation.errors import (
    DigestMismatch,
    FederationError,
    MalformedMessage,
    NonceReused,
    PeerTimeout,
    UnsupportedVersion,
    error_body,
    http_status,
)


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the docstring, with the class drawn as its parent."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.search(r"([A-Z][A-Za-z]+)\b", line)
        if not match or match.group(1) not in vars(errors) or not line.startswith("    "):
            continue
        depth = match.start(1) // 4
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(1)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(1)))
    return parents


def test_docstring_draws_every_error_class_under_its_real_parent() -> None:
    drawn = _drawn_tree()
    actual = {
        name: cls.__base__.__name__ if cls is not FederationError else None
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, FederationError)
    }
    assert drawn == actual


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MalformedMessage("x"), 400),
        (UnsupportedVersion("x"), 400),
        (DigestMismatch("x"), 401),
        (NonceReused("x"), 401),
        (PeerTimeout("x"), 502),
    ],
)
def test_http_status_and_body(error: FederationError, status: int) -> None:
    assert http_status(error) == status
    assert error_body(error) == {"error": type(error).__name__, "description": "x"}
