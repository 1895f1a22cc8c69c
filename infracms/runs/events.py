"""From ansible-runner events to stored run events: redacted, batched, with the recap.

Events arrive one by one from the playbook; writing each in its own transaction costs
more than the event (47 to 124 ms a commit on SQLite under load), so they are buffered
and written in batches, by a flusher thread every ``interval`` seconds or when
``batch`` events wait. A stored event's time is when Ansible made it (ansible-runner's
``created``), not when it was stored, so the live view's lag can be read off it
(bench/live_lag.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from infracms.models.base import utcnow

MASK = "********"
MAX_STDOUT = 16_384
MAX_DATA = 16_384
STATUS_BY_EVENT = {
    "runner_on_ok": "ok",
    "runner_item_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_item_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_item_on_skipped": "skipped",
    "runner_on_async_failed": "failed",
}
RECAP_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}

Writer = Callable[[uuid.UUID, list[dict[str, Any]]], None]


class Redactor:
    """Replaces known secret values wherever they appear."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """`value` with every secret masked."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value


class EventSink:
    """Collects a run's events and writes them through `writer` in batches."""

    def __init__(
        self,
        run_id: uuid.UUID,
        writer: Writer,
        redactor: Redactor,
        *,
        batch: int = 500,
        interval: float = 0.2,
    ) -> None:
        self.run_id = run_id
        self.writer = writer
        self.redactor = redactor
        self.batch = batch
        self.interval = interval
        self.pending: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.seq = 0
        self.recap: dict[str, dict[str, int]] = {}
        self.unreachable: dict[str, str] = {}  # host: the first reason it could not be reached
        self.stdout_hash = hashlib.sha256()
        self.thread = threading.Thread(
            target=self._flush_loop, name=f"events-{run_id}", daemon=True
        )

    def __enter__(self) -> EventSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.wake.set()
        self.thread.join(timeout=30)
        self.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        """Take one ansible-runner event."""
        row = self._row(event)
        with self.lock:
            self.pending.append(row)
            full = len(self.pending) >= self.batch
        if full:
            self.wake.set()

    def flush(self) -> None:
        """Write what is pending."""
        with self.lock:
            rows, self.pending = self.pending, []
        if rows:
            self.writer(self.run_id, rows)

    def _flush_loop(self) -> None:
        while not self.stopped.is_set():
            self.wake.wait(self.interval)
            self.wake.clear()
            self.flush()

    def _row(self, event: dict[str, Any]) -> dict[str, Any]:
        found = event.get("event_data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        name = str(event.get("event", "unknown"))
        stdout = self.redactor.text(str(event.get("stdout") or ""))[:MAX_STDOUT]
        self.stdout_hash.update(stdout.encode() + b"\n")
        if name == "playbook_on_stats":
            self._take_recap(data)
        res = data.get("res")
        result: dict[str, Any] = res if isinstance(res, dict) else {}
        status = STATUS_BY_EVENT.get(name)
        changed = status == "ok" and _changed(result, stdout)
        if status == "ok" and changed:
            status = "changed"
        if status == "unreachable" and data.get("host"):
            reason = self.redactor.text(str(result.get("msg") or stdout))
            self.unreachable.setdefault(str(data["host"]), reason)
        self.seq += 1
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "event": name[:64],
            "host": (str(data["host"])[:63] if data.get("host") else None),
            "task": (str(data["task"])[:500] if data.get("task") else None),
            "status": status,
            "changed": changed,
            "stdout": stdout,
            "data": self._data(data, result),
            "created_at": _created(event.get("created")),
        }

    def _data(self, data: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        kept = {
            "action": data.get("task_action"),
            "play": data.get("play"),
            "role": data.get("role"),  # the module a task belongs to (drift per definition)
            "duration": data.get("duration"),
            "msg": result.get("msg"),
            "diff": result.get("diff"),
            "rc": result.get("rc"),
        }
        kept = {k: v for k, v in kept.items() if v not in (None, "", [], {})}
        text = self.redactor.text(json.dumps(kept, default=str))
        if len(text) > MAX_DATA:
            return {"truncated": True, "action": kept.get("action"), "size": len(text)}
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def _take_recap(self, data: dict[str, Any]) -> None:
        for source, target in RECAP_KEYS.items():
            for host, count in (data.get(source) or {}).items():
                self.recap.setdefault(str(host), {})[target] = int(count)


def _changed(result: dict[str, Any], stdout: str) -> bool:
    """Whether an ok result changed something.

    ansible-runner replaces a ``no_log`` task's whole result with ``{"censored": ...}``,
    dropping ``changed``; Ansible's own line for the task ("changed: [host]") still says.
    """
    if "censored" in result and "changed" not in result:
        return stdout.lstrip().startswith("changed:")
    return bool(result.get("changed"))


def _created(value: Any) -> datetime:
    """When Ansible made the event (ansible-runner's ``created``, UTC), else now."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return utcnow()
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return utcnow()
