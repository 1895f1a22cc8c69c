"""The Celery app's delivery settings, the executor's broker check, and the worker's
private temporary directory."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

from infracms.config import Settings
from infracms.errors import ConfigurationError
from infracms.models.run import RunCreate
from infracms.orchestration import celery_app
from infracms.orchestration.celery_app import (
    CONSUMER,
    QUEUE,
    TASK_NAME,
    make_celery,
    visibility_timeout,
)
from infracms.orchestration.celery_executor import CeleryExecutor
from infracms.orchestration.execute import RunContext
from infracms.orchestration.executors import make_executor
from infracms.orchestration.worker import use_private_tempdir


def test_delivery_settings_follow_the_field_notes(tmp_path: Path) -> None:
    app = make_celery(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0"))
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == QUEUE
    assert conf.broker_connection_max_retries is None, "a worker must wait for its broker"
    assert conf.worker_consumer == CONSUMER, "the consumer that survives a lost connection"
    assert TASK_NAME in app.tasks
    longest = RunCreate.model_fields["timeout_seconds"].metadata[1].le
    assert conf.broker_transport_options["visibility_timeout"] == visibility_timeout()
    assert visibility_timeout() > longest, (
        f"visibility timeout {visibility_timeout()} s, expected above the longest run {longest} s"
    )


def test_no_broker_url_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="INFRACMS_BROKER_URL is not set"):
        make_celery(Settings(data_dir=tmp_path))


def test_a_broker_other_than_redis_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must be a Redis URL") as caught:
        make_celery(Settings(data_dir=tmp_path, broker_url="amqp://guest:s3cret@mq//"))
    assert "s3cret" not in str(caught.value)


def test_executor_names_a_broker_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        settings = Settings(data_dir=tmp_path, broker_url=f"redis://:hunter2@127.0.0.1:{port}/0")
        executor = make_executor(RunContext(settings, None, None, "test"))  # type: ignore[arg-type]
        assert isinstance(executor, CeleryExecutor)
        with pytest.raises(ConfigurationError) as caught:
            executor.start()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "does not answer" in message
    assert "hunter2" not in message, f"the broker password leaked into {message!r}"


def test_private_tempdir_removes_only_dead_workers_dirs(tmp_path: Path) -> None:
    prefix = f"infracms-worker-{socket.gethostname()}-"
    dead = tmp_path / f"{prefix}{_dead_pid()}-abc"
    alive = tmp_path / f"{prefix}1-abc"  # pid 1 always runs
    other_host = tmp_path / f"infracms-worker-elsewhere.example-{_dead_pid()}-abc"
    for path in (dead, alive, other_host):
        (path / "run").mkdir(parents=True)
    before = tempfile.tempdir
    try:
        mine = use_private_tempdir(tmp_path)
        assert tempfile.gettempdir() == str(mine)
        assert mine.name.startswith(f"{prefix}{os.getpid()}-")
    finally:
        tempfile.tempdir = before
    assert not dead.exists(), "the directory of a dead worker was kept"
    assert alive.exists() and other_host.exists(), (
        "a live or foreign worker's directory was removed"
    )


def test_module_app_is_built_on_first_access() -> None:
    assert "app" not in vars(celery_app), "an app was built at import time"
    with pytest.raises(AttributeError):
        celery_app.no_such_thing


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
