"""The integrator: a background thread that keeps the tree and checkpoints up to date.

It wakes when nudged (``notify_appended``, called after a transaction that appended an
entry commits) or every ``interval`` seconds (entries appended by other processes: a
worker, another server), integrates whatever was committed (``store.integrate``) and
signs a checkpoint per batch. After a run it waits ``settle`` seconds before the
next, so a busy node signs a few checkpoints a second, not one per change; an entry
is in a signed checkpoint within ``interval + settle`` seconds plus the work itself.

Running one in each of several processes is safe: ``store.integrate`` serialises them
on the tree row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from infracms.audit import store
from infracms.audit.note import Signer

log = logging.getLogger(__name__)

INTERVAL = 0.5
SETTLE = 0.25
_wake_events: set[threading.Event] = set()
_wake_lock = threading.Lock()


def notify_appended() -> None:
    """Wake every integrator of this process: entries were just committed."""
    with _wake_lock:
        events = list(_wake_events)
    for event in events:
        event.set()


class Integrator:
    """Integrates new entries and signs checkpoints in a daemon thread until stopped."""

    def __init__(
        self,
        engine: Engine,
        signer: Callable[[], Signer],
        *,
        interval: float = INTERVAL,
        settle: float = SETTLE,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.interval = interval
        self.settle = settle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def start(self) -> None:
        """Start the thread (once while it runs; again after a stop: an app's lifespan may
        run more than once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        with _wake_lock:
            _wake_events.add(self._wake)
        self._thread = threading.Thread(target=self._run, name="audit-integrator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, letting a run under way finish."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with _wake_lock:
            _wake_events.discard(self._wake)

    def nudge(self) -> None:
        """Integrate now rather than at the next interval."""
        self._wake.set()

    def run_once(self) -> store.Integrated | None:
        """One integration run; errors are logged (once until they change), not raised."""
        try:
            done = store.integrate(self.engine, self.signer())
        except Exception as exc:  # the thread must outlive a bad row or a lost database
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:
                log.error("audit integration failed: %s", message)
                self._last_error = message
            return None
        self._last_error = ""
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.settle)
            self._wake.wait(self.interval)
            self._wake.clear()
        self.run_once()  # what was committed before shutdown gets signed
