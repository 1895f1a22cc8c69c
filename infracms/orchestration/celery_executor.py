"""The web server's side of Celery: send runs to the workers through the broker."""

from __future__ import annotations

import logging
import uuid

from kombu.exceptions import OperationalError

from infracms.orchestration.celery_app import QUEUE, TASK_NAME, check_broker, make_celery
from infracms.orchestration.execute import RunContext

log = logging.getLogger(__name__)


class CeleryExecutor:
    """Sends runs to the workers through the broker."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.app = make_celery(context.settings)

    def start(self) -> None:
        """Check that the broker answers, so that a wrong URL fails at start-up, named."""
        check_broker(self.app)

    def submit(self, run_id: uuid.UUID) -> None:
        """Send `run_id` to a worker; if the broker is down the run stays queued and beat
        sends it again once the broker is back."""
        try:
            self.app.send_task(TASK_NAME, args=[str(run_id)], queue=QUEUE)
        except OperationalError as exc:
            log.warning(
                "could not send run %s to the broker (%s); beat will resend it", run_id, exc
            )

    def shutdown(self) -> None:
        """Close the broker connections."""
        self.app.close()
