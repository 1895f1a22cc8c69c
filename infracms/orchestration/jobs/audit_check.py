"""Job: rehash the whole stored audit log and check it against the latest checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infracms.services import audit

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext


def self_check(context: JobContext) -> None:
    """The node checks its own log (``services.audit.self_check_job``)."""
    audit.self_check_job(context)
