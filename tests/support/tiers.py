"""The fast tier's guard: a test that starts something heavy must say so with a marker.

`make test-fast` sets ``INFRACMS_TEST_TIER=fast`` and deselects the marked tiers; any
test left that still reaches for PostgreSQL, Redis, a served node, a test host or a
browser fails here, naming the marker it lacks, instead of quietly making the fast tier
slow (or failing on a machine without root).
"""

from __future__ import annotations

import os

import pytest

TIER_VARIABLE = "INFRACMS_TEST_TIER"
FAST_TIER_EXPRESSION = "not (integration or postgres or e2e or interop or slow)"


def in_fast_tier() -> bool:
    """Whether this process runs the fast tier."""
    return os.environ.get(TIER_VARIABLE) == "fast"


def needs(what: str, marker: str) -> None:
    """Fail the calling test when it runs in the fast tier: it needs `what`, so `marker`."""
    if in_fast_tier():
        pytest.fail(
            f"this test needs {what}, which the fast tier does not start: "
            f"mark it @pytest.mark.{marker}"
        )
