"""Job: deliver the notifications waiting in the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infracms.services import notification_delivery

if TYPE_CHECKING:
    from infracms.orchestration.jobs import JobContext


def deliver_notifications(context: JobContext) -> None:
    """Send what is due (``services.notification_delivery.deliver_due``)."""
    notification_delivery.deliver_due(context.settings, context.engine)
