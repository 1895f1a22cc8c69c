"""The Celery worker's consumer, with a lost Redis connection torn down without crashing.

Celery 5.7 tears a lost broker connection down in two steps
(``Consumer.on_connection_error_after_connected``): ``connection.collect()``, which
detaches the transport (its ``client`` becomes None) but keeps the connection's default
channel, then ``connection.close()``, which closes that channel; with a message still
unacknowledged (a run in progress: tasks are acknowledged late) the Redis channel tries
to restore it through a new client built from the detached transport, and fails with
``AttributeError: 'NoneType' object has no attribute 'hostname'``. That error is not a
connection error, so the worker ended ("Unrecoverable error") and every later run
stayed queued (issue 12).

Here the default channel is forgotten once its transport is detached. Its
unacknowledged message stays in Redis's unacked index: Redis hands it out again after
the visibility timeout, and a redelivered run that already started does nothing
(``claim_run``); with a Redis that lost its data, the message is gone and beat resends
what is still queued.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer, whose teardown of a lost connection does not touch its channel."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Forget the default channel once ``collect()`` has detached its transport."""
        if self.connection is not None:
            _forget_default_channel_after_collect(self.connection)
        super().on_connection_error_after_connected(exc)


def _forget_default_channel_after_collect(connection: Any) -> None:
    collect = connection.collect

    def collect_then_forget(*args: Any, **kwargs: Any) -> None:
        collect(*args, **kwargs)
        if connection._default_channel is not None:
            log.warning(
                "broker connection lost: unacknowledged messages, if any, are left to the "
                "broker's visibility timeout (a redelivered run that started does nothing)"
            )
            connection._default_channel = None

    connection.collect = collect_then_forget
