"""`infracms worker`'s supervisor starts a Celery worker again when one ends in error,
and stops on SIGTERM between two of them (a real Celery app: its worker refuses an
unknown pool at once, with no broker needed)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infracms.config import Settings
from infracms.orchestration import worker
from infracms.orchestration.celery_app import make_celery


def test_a_failed_worker_is_started_again_until_sigterm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0")
    made: list[Any] = []

    def make_app() -> Any:
        made.append(make_celery(settings))
        return made[-1]

    def stop_after_a_restart() -> None:
        deadline = time.monotonic() + 60
        while len(made) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stopper = threading.Thread(target=stop_after_a_restart, daemon=True)
    caplog.set_level(logging.ERROR, logger=worker.__name__)
    try:
        stopper.start()
        worker.supervise(make_app, ["worker", "--pool=no-such-pool"])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stopper.join(timeout=60)
    assert len(made) >= 2, f"the worker was made {len(made)} time(s), expected a restart"
    restarts = [r.getMessage() for r in caplog.records if "starting again" in r.getMessage()]
    assert restarts and "exit code" in restarts[0], caplog.text
