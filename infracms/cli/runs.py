"""`infracms run plan|apply|list|show|cancel|events|approve|refuse|break-glass`.

Without a broker the command runs the run itself (the embedded executor, in this
process) and `--follow` prints its events as they are stored; with a broker it queues
the run for the workers and `--follow` watches the database.
"""

from __future__ import annotations

import time
import uuid

import typer

from infracms.cli.common import cli_actor, emit, engine, read_session, settings, write_session
from infracms.models.approval import ApprovalPublic, ApprovalRequestPublic
from infracms.models.run import Run, RunEventPublic, RunKind, RunPublic, RunStatus
from infracms.plugins import Plugins
from infracms.services import approvals, execution, runs

run_app = typer.Typer(help="Plan and apply definitions on hosts.", no_args_is_help=True)
POLL_SECONDS = 0.3
MARKS = {"ok": ".", "changed": "~", "failed": "F", "unreachable": "U", "skipped": "-"}


def _start(
    kind: RunKind,
    organisation: str,
    definition: list[str],
    host: list[str],
    group: list[str],
    timeout: int,
    follow: bool,
) -> None:
    plugins = Plugins.load()
    data = {
        "kind": kind,
        "definitions": definition or None,
        "hosts": host or None,
        "groups": group or None,
        "timeout_seconds": timeout,
    }
    with write_session() as session:
        run = runs.create_run(
            session=session,
            actor=cli_actor(),
            plugins=plugins,
            organisation=organisation,
            data=data,
        )
    typer.echo(
        f"{kind} {run.id} on {len(run.hosts)} host(s): {', '.join(run.hosts[:10])}"
        + (" …" if len(run.hosts) > 10 else "")
    )
    if run.status is RunStatus.pending_approval:
        typer.echo(
            f"held for approval: an approval policy covers it (`infracms run approve "
            f"{organisation} {run.id}`)"
        )
        return
    _run_it(plugins, organisation, run.id, follow)


def _run_it(plugins: Plugins, organisation: str, run_id: uuid.UUID, follow: bool) -> None:
    """Send a queued run to the workers, or run it here (no broker), and follow it."""
    worker = execution.dispatch_run(
        settings=settings(),
        engine=engine(),
        plugins=plugins,
        run_id=run_id,
        worker=f"cli@{_host()}",
    )
    if follow or worker is not None:
        final = _follow(organisation, run_id, show_events=follow)
        if worker is not None:
            worker.join()
        raise typer.Exit(0 if final.status == "succeeded" else 1)


def _host() -> str:
    import socket

    return socket.gethostname()


def _follow(organisation: str, run_id: uuid.UUID, *, show_events: bool) -> RunPublic:
    after = 0
    while True:
        with read_session() as session:
            run = RunPublic.model_validate(
                runs.get_run(
                    session=session, actor=cli_actor(), organisation=organisation, run_id=run_id
                )
            )
            events = runs.run_events(
                session=session,
                actor=cli_actor(),
                organisation=organisation,
                run_id=run_id,
                after=after,
                limit=5000,
            )
        for event in events:
            if show_events:
                _print_event(event)
            after = event.seq
        if run.status.finished and not events:
            _print_recap(run)
            return run
        if not events:
            time.sleep(POLL_SECONDS)


def _print_event(event: RunEventPublic) -> None:
    if event.event == "playbook_on_task_start" and event.task:
        typer.echo(f"TASK {event.task}")
    elif event.status and event.host:
        line = f"  {MARKS.get(event.status, '?')} {event.host}: {event.status}"
        message = event.data.get("msg")
        typer.echo(
            line
            + (f" — {message}" if message and event.status in ("failed", "unreachable") else "")
        )


def _print_recap(run: RunPublic) -> None:
    typer.echo(f"run {run.id}: {run.status}" + (f" — {run.error}" if run.error else ""))
    for host, counts in sorted(run.recap.items()):
        typer.echo(f"  {host}: " + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))


DEFINITION = typer.Option([], "--definition", "-d", help="only this definition (repeatable)")
HOST = typer.Option([], "--host", help="only this host (repeatable)")
GROUP = typer.Option([], "--group", help="only hosts in this group (repeatable)")
TIMEOUT = typer.Option(3600, help="stop the run after this many seconds")
FOLLOW = typer.Option(False, "--follow", "-f", help="print events as they happen")


@run_app.command("plan")
def run_plan(
    organisation: str,
    definition: list[str] = DEFINITION,
    host: list[str] = HOST,
    group: list[str] = GROUP,
    timeout: int = TIMEOUT,
    follow: bool = FOLLOW,
) -> None:
    """Show what applying would change (check mode with diffs); changes nothing."""
    _start(RunKind.plan, organisation, definition, host, group, timeout, follow)


@run_app.command("apply")
def run_apply(
    organisation: str,
    definition: list[str] = DEFINITION,
    host: list[str] = HOST,
    group: list[str] = GROUP,
    timeout: int = TIMEOUT,
    follow: bool = FOLLOW,
) -> None:
    """Apply definitions to hosts."""
    _start(RunKind.apply, organisation, definition, host, group, timeout, follow)


@run_app.command("list")
def run_list(organisation: str, limit: int = typer.Option(20, help="how many")) -> None:
    """The latest runs of ORGANISATION."""
    with read_session() as session:
        found = runs.list_runs(
            session=session, actor=cli_actor(), organisation=organisation, limit=limit
        )
    for run in found.items:
        when = f"{run.created_at:%Y-%m-%d %H:%M}"
        hosts = f"{len(run.hosts)} host(s)"
        typer.echo(f"{run.id}\t{run.kind}\t{run.status}\t{when}\t{run.requested_by}\t{hosts}")


@run_app.command("show")
def run_show(organisation: str, run_id: uuid.UUID) -> None:
    """One run, with its recap and applied revisions."""
    with read_session() as session:
        found: Run = runs.get_run(
            session=session, actor=cli_actor(), organisation=organisation, run_id=run_id
        )
    emit(RunPublic.model_validate(found), as_json=True)


@run_app.command("events")
def run_events(
    organisation: str,
    run_id: uuid.UUID,
    after: int = typer.Option(0, help="after this sequence number"),
    limit: int = typer.Option(500, help="how many"),
) -> None:
    """A run's output, page by page."""
    with read_session() as session:
        found = runs.run_events(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            run_id=run_id,
            after=after,
            limit=limit,
        )
    for event in found:
        if event.stdout:
            typer.echo(event.stdout)


@run_app.command("cancel")
def run_cancel(organisation: str, run_id: uuid.UUID) -> None:
    """Ask a run to stop."""
    with write_session() as session:
        runs.cancel_run(
            session=session, actor=cli_actor(), organisation=organisation, run_id=run_id
        )
    typer.echo(f"asked run {run_id} to stop")


@run_app.command("approval")
def run_approval(organisation: str, run_id: uuid.UUID) -> None:
    """A held apply's plan, its digest, what it needs, and the decisions so far (JSON)."""
    with read_session() as session:
        request, decisions = approvals.approval_of(
            session=session, actor=cli_actor(), organisation=organisation, run_id=run_id
        )
        shown = {
            "request": ApprovalRequestPublic.model_validate(request).model_dump(mode="json")
            if request
            else None,
            "decisions": [
                ApprovalPublic.model_validate(d).model_dump(mode="json") for d in decisions
            ],
        }
    emit(shown, as_json=True)


COMMENT = typer.Option("", "--comment", "-m", help="why (a refusal needs one)")


DIGEST = typer.Option(None, "--digest", help="the plan digest you reviewed (`run approval`)")


def _decide(
    organisation: str,
    run_id: uuid.UUID,
    decision: str,
    comment: str,
    follow: bool,
    digest: str | None = None,
) -> None:
    plugins = Plugins.load()
    with write_session() as session:
        run = approvals.decide(
            session=session,
            actor=cli_actor(),
            plugins=plugins,
            organisation=organisation,
            run_id=run_id,
            data={"decision": decision, "comment": comment, "digest": digest},
        )
    typer.echo(
        f"run {run.id}: {decision}d; the run is {run.status}"
        + (f" — {run.error}" if run.error else "")
    )
    if run.status is RunStatus.queued:
        _run_it(plugins, organisation, run.id, follow)


@run_app.command("approve")
def run_approve(
    organisation: str,
    run_id: uuid.UUID,
    comment: str = COMMENT,
    digest: str | None = DIGEST,
    follow: bool = FOLLOW,
) -> None:
    """Approve a held apply's plan; the last approval needed starts it."""
    _decide(organisation, run_id, "approve", comment, follow, digest)


@run_app.command("refuse")
def run_refuse(organisation: str, run_id: uuid.UUID, comment: str = COMMENT) -> None:
    """Refuse a held apply, saying why: the run ends."""
    _decide(organisation, run_id, "refuse", comment, False)


@run_app.command("break-glass")
def run_break_glass(
    organisation: str,
    run_id: uuid.UUID,
    reason: str = typer.Option(..., "--reason", help="why the approvals are skipped"),
    follow: bool = FOLLOW,
) -> None:
    """Start a held apply without its approvals (owners): flagged in the audit log."""
    with write_session() as session:
        run = approvals.break_glass(
            session=session,
            actor=cli_actor(),
            organisation=organisation,
            run_id=run_id,
            data={"reason": reason},
        )
    typer.echo(f"run {run.id}: released without approvals (break-glass)")
    _run_it(Plugins.load(), organisation, run.id, follow)
