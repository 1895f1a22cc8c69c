"""Job: ask peers to cosign the latest checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infracms.services import witness

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext


def gather_cosignatures(context: JobContext) -> None:
    """Gather peers' cosignatures of the latest checkpoint (``services.witness``)."""
    witness.beat_job(context)
