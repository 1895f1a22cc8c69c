"""Job: end the held applies whose approval expired."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infracms.db import session_scope
from infracms.services.approvals import expire_due

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext


def expire_approvals(context: JobContext) -> None:
    """Mark expired every apply still waiting for approval past its expiry (audited)."""
    with session_scope(context.engine, write=True) as session:
        expire_due(session)
