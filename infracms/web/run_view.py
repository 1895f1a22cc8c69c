"""How a run reads on its page: the per-host recap, the output lines with the diffs of
changed tasks. Pure: it formats what ``services/runs.py`` returned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infracms.models.run import Run, RunEventPublic, RunStatus
from infracms.web.diffs import task_diff
from infracms.web.templating import plain

RECAP_COLUMNS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
# The worst thing that happened to a host names its outcome.
OUTCOME_ORDER = ("unreachable", "failed", "changed", "ok")
OUTCOME_WORDS = {
    "unreachable": "unreachable",
    "failed": "failed",
    "changed": "changed",
    "ok": "ok, no change",
    "skipped": "only skipped",
    "pending": "no result yet",
    "missed": "not reached",
}
STATUS_WORDS = {
    RunStatus.pending_approval: "awaiting approval",
    RunStatus.queued: "queued",
    RunStatus.running: "running",
    RunStatus.succeeded: "succeeded",
    RunStatus.failed: "failed",
    RunStatus.cancelled: "cancelled",
    RunStatus.timed_out: "timed out",
    RunStatus.refused: "refused",
    RunStatus.expired: "expired",
}


@dataclass(frozen=True)
class RecapRow:
    """One host's counts at the end of a run, and its outcome in a word."""

    host: str
    counts: dict[str, int]
    outcome: str

    @property
    def words(self) -> str:
        """The outcome as the page says it (colour is never the only sign)."""
        return OUTCOME_WORDS[self.outcome]


@dataclass(frozen=True)
class OutputLine:
    """One event as the output shows it."""

    seq: int
    host: str | None
    task: str | None
    status: str | None
    text: str
    diff: list[tuple[str, str]] = field(default_factory=list)


def recap_rows(run: Run) -> list[RecapRow]:
    """Every host of the run, with its counts; hosts without a recap say why."""
    rows = []
    for host in sorted(set(run.hosts) | set(run.recap)):
        counts = {column: int(run.recap.get(host, {}).get(column, 0)) for column in RECAP_COLUMNS}
        rows.append(RecapRow(host, counts, _outcome(run, host, counts)))
    return rows


def _outcome(run: Run, host: str, counts: dict[str, int]) -> str:
    if host not in run.recap:
        return "missed" if run.status.finished else "pending"
    for outcome in OUTCOME_ORDER:
        if counts[outcome]:
            return outcome
    return "skipped"


def outcome_totals(rows: list[RecapRow]) -> dict[str, int]:
    """How many hosts had each outcome, in the order a summary names them."""
    totals = {outcome: 0 for outcome in (*OUTCOME_ORDER, "skipped", "pending", "missed")}
    for row in rows:
        totals[row.outcome] += 1
    return {outcome: count for outcome, count in totals.items() if count}


def output_lines(events: list[RunEventPublic]) -> list[OutputLine]:
    """The events that print something or have a result, oldest first."""
    lines = []
    for event in events:
        text = plain(event.stdout).rstrip()
        if not text and event.status is None:
            continue
        diff = task_diff(event.data.get("diff")) if event.status == "changed" else []
        lines.append(OutputLine(event.seq, event.host, event.task, event.status, text, diff))
    return lines


def duration(run: Run) -> str:
    """How long the run took (or has taken so far), in words."""
    if run.started_at is None:
        return ""
    end = run.finished_at or run.heartbeat_at or run.started_at
    seconds = max(0, int((end - run.started_at).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def table_helpers() -> dict[str, Any]:
    """What the run tables (``_run_table.html``) need to describe a run."""
    return {
        "status_words": STATUS_WORDS,
        "outcome_words": {"missed": "not reached", "pending": "waiting"},  # as the run page says
        "duration": duration,
        "outcomes": lambda run: outcome_totals(recap_rows(run)),
    }
