"""Job: sync peers' catalogs, follow requested services, prune the replay cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext


def federation_job(context: JobContext) -> None:
    """Sync peers' catalogs, follow requested services, prune the replay cache."""
    from infracms.services.federation.jobs import run_periodic

    run_periodic(context.settings, context.engine)
