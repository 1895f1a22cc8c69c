"""The one function every executor calls with a run id: claim, render, run, record.

State lives in the database: a run is claimed only while queued (so a redelivered task
does nothing), heartbeats renew its host locks while it runs, events are stored in
batches, and its end is recorded and audited whatever happens. The private data dir
lives in memory (runs/workdir.py) and is removed, with the run's ssh masters and agent,
when the run ends.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import InfracmsError
from infracms.keys import load_keyring
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.runs import workdir
from infracms.runs.adapter import RunResult, run_playbook
from infracms.runs.events import EventSink, Redactor
from infracms.runs.render import HostKeyMissing, render
from infracms.services import runs as run_service
from infracms.services.common import found
from infracms.services.run_input import load_run_input
from infracms.sshkeys import host_key_fingerprint

log = logging.getLogger(__name__)
HOST_KEY_CHANGED = "REMOTE HOST IDENTIFICATION HAS CHANGED"
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
HEARTBEAT_SECONDS = 5.0
STATUS_OF = {
    "successful": RunStatus.succeeded,
    "failed": RunStatus.failed,
    "canceled": RunStatus.cancelled,
    "timeout": RunStatus.timed_out,
}


@dataclass(frozen=True)
class RunContext:
    """What executing a run needs from the process it runs in."""

    settings: Settings
    engine: Engine
    plugins: Plugins
    worker: str = f"{socket.gethostname()}"


def execute_run(run_id: uuid.UUID, context: RunContext) -> RunStatus | None:
    """Run `run_id` to its end; None if it was not ours to run (not queued any more)."""
    with session_scope(context.engine, write=True) as session:
        run = run_service.claim_run(
            session, run_id=run_id, worker=context.worker, plugins=context.plugins
        )
    if run is None or run.status is not RunStatus.running:
        return None
    try:
        return _execute(run_id, context)
    except HostKeyMissing as exc:  # expected until a host is scanned and pinned: no traceback
        log.info("run %s: %s", run_id, exc)
        return _finish(context, run_id, RunStatus.failed, None, {}, None, str(exc))
    except Exception as exc:  # the run must end recorded, whatever went wrong
        log.exception("run %s failed in the executor", run_id)
        return _finish(context, run_id, RunStatus.failed, None, {}, None, _describe(exc))


def _execute(run_id: uuid.UUID, context: RunContext) -> RunStatus:
    with session_scope(context.engine) as session:
        run = found(session.get(Run, run_id), f"run {run_id}")
        loaded = load_run_input(
            session,
            run=run,
            settings=context.settings,
            plugins=context.plugins,
            keyring=load_keyring(context.settings),
        )
    directory = workdir.new_run_dir()
    try:
        spec = render(loaded.render, directory)
        heartbeat = _Heartbeat(context, run_id)
        sink = EventSink(run_id, _writer(context), Redactor(loaded.secrets))
        with heartbeat, sink:
            result = run_playbook(spec, on_event=sink, should_cancel=heartbeat.cancel_requested)
    finally:
        workdir.remove(directory)
    status = _status_of(result, heartbeat)
    error = None
    if status is not RunStatus.succeeded:
        pinned = {host.name: host.host_key for host in loaded.render.hosts}
        error = _error_text(result, sink.recap, _host_key_changes(sink.unreachable, pinned))
    return _finish(
        context, run_id, status, result.rc, sink.recap, sink.stdout_hash.hexdigest(), error
    )


def _status_of(result: RunResult, heartbeat: _Heartbeat) -> RunStatus:
    if heartbeat.cancelled:
        return RunStatus.cancelled
    return STATUS_OF.get(result.status, RunStatus.failed)


def _error_text(result: RunResult, recap: dict[str, dict[str, int]], key_changes: list[str]) -> str:
    failed = sorted(h for h, c in recap.items() if c.get("failed"))
    unreachable = sorted(h for h, c in recap.items() if c.get("unreachable"))
    parts = [f"ansible-playbook ended {result.status} (rc {result.rc})"]
    if failed:
        parts.append(f"failed: {', '.join(failed)}")
    if unreachable:
        parts.append(f"unreachable: {', '.join(unreachable)}")
    return "; ".join(parts + key_changes)


def _host_key_changes(unreachable: dict[str, str], pinned: dict[str, str | None]) -> list[str]:
    """What ssh said of hosts whose key is not the pinned one, with both fingerprints."""
    changes = []
    for host, reason in sorted(unreachable.items()):
        if HOST_KEY_CHANGED not in reason or not pinned.get(host):
            continue
        presented = FINGERPRINT.search(reason)
        changes.append(
            f"{host}'s host key changed: pinned {host_key_fingerprint(pinned[host] or '')}, "
            f"presented {presented.group(0) if presented else 'unknown'}; if the host was "
            "rebuilt, check the new key and pin it"
        )
    return changes


def _describe(exc: Exception) -> str:
    if isinstance(exc, InfracmsError | HostKeyMissing):
        return str(exc)
    return f"internal error: {type(exc).__name__}"


def _finish(
    context: RunContext,
    run_id: uuid.UUID,
    status: RunStatus,
    rc: int | None,
    recap: dict[str, dict[str, int]],
    digest: str | None,
    error: str | None,
) -> RunStatus:
    with session_scope(context.engine, write=True) as session:
        run_service.finish_run(
            session,
            run_id=run_id,
            status=status,
            rc=rc,
            recap=recap,
            stdout_sha256=digest,
            error=error,
        )
    return status


def _writer(context: RunContext) -> Any:
    def write(run_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        with session_scope(context.engine, write=True) as session:
            run_service.write_events(session, run_id=run_id, rows=rows)

    return write


class _Heartbeat:
    """Renews the run's heartbeat and locks, and notices cancellation, in the background."""

    def __init__(self, context: RunContext, run_id: uuid.UUID) -> None:
        self.context, self.run_id = context, run_id
        self.cancelled = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def cancel_requested(self) -> bool:
        return self.cancelled

    def _loop(self) -> None:
        while not self.stop.wait(
            HEARTBEAT_SECONDS / 5 if not self.cancelled else HEARTBEAT_SECONDS
        ):
            try:
                with session_scope(self.context.engine, write=True) as session:
                    self.cancelled = (
                        run_service.heartbeat(session, run_id=self.run_id) or self.cancelled
                    )
            except Exception:  # a missed beat is retried; the lock outlives a few
                log.warning("heartbeat for run %s failed", self.run_id, exc_info=True)
