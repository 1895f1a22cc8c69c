"""`infracms audit export|verify|check|key|checkpoint|witness|refusals`.

``verify`` needs no database, no key file and no network: it reads the export and the
keys given (the log's, and the witnesses' of a policy), with ``infracms.audit.verifier``
alone (which shares no code with the writer). The others work on the node's database
and keys; ``witness`` also talks to the node's peers.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import typer

if TYPE_CHECKING:
    from infracms.audit.verifier import VerificationReport

SHOWN_CHECKPOINTS = 10
"""How many of the latest checkpoints ``verify`` lists one by one with their cosignatures."""

audit_app = typer.Typer(help="The signed audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="an export by `infracms audit export`"
    ),
    key: str = typer.Option(..., "--key", help="the trusted verifier key, name+id+key"),
    origin: str = typer.Option(None, help="the log origin expected (default: the key's name)"),
    witness: list[str] = typer.Option(
        None, "--witness", help="a trusted witness key, name+id+key (0x04); repeat for several"
    ),
    min_witnesses: int = typer.Option(
        None,
        "--min-witnesses",
        min=0,
        help="cosignatures required on the latest checkpoint (default: every --witness)",
    ),
    trusted: list[Path] = typer.Option(
        None,
        "--trusted",
        exists=True,
        dir_okay=False,
        readable=True,
        help="a checkpoint you saved earlier (`infracms audit checkpoint > saved.txt`); "
        "the export must extend it. A file may hold several; repeat for several files",
    ),
) -> None:
    """Verify an export offline against a public key; name the first bad entry if any.

    With --witness keys, also count each checkpoint's cosignatures by those witnesses,
    and fail unless the latest checkpoint carries --min-witnesses of them. With
    --trusted checkpoints, prove (RFC 9162 consistency proofs) that the export extends
    each: the node key alone cannot tell a log its holder rewrote and re-signed, or
    rolled back; a checkpoint you saved can.
    """
    from infracms.audit.verifier import WitnessPolicy, WitnessPolicyError, verify_export_file

    if min_witnesses and not witness:
        raise typer.BadParameter("give the witnesses' keys with --witness", param_hint="--witness")
    policy = WitnessPolicy.parse(witness, min_witnesses) if witness else None
    saved = [_saved_checkpoints(path) for path in trusted or ()]
    try:
        report = verify_export_file(file, key.strip(), origin=origin, policy=policy, trusted=saved)
    except WitnessPolicyError as exc:
        _print_report(exc.report)
        raise
    _print_report(report)
    if policy is not None:
        have = len(report.witnessed[-1].cosigners)
        typer.echo(f"witness policy met: the latest checkpoint has {have} of {policy.minimum}")


def _saved_checkpoints(path: Path) -> str:
    """A --trusted file's text; a file that is not text is refused, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(
            f"{path} is not a saved checkpoint (not UTF-8 text: {exc.reason})",
            param_hint="--trusted",
        ) from exc


def _print_report(report: VerificationReport) -> None:
    """What verified, and with a policy, the cosignatures of the latest checkpoints."""
    typer.echo(
        f"verified {report.entries} entries and {report.checkpoints} checkpoints of {report.origin}"
    )
    typer.echo(f"tree size {report.size}, root {report.root_b64}")
    for match in report.trusted:
        typer.echo(
            f"extends your trusted checkpoint of size {match.size}: RFC 9162 consistency "
            f"proof of {match.proof_hashes} hashes verified"
        )
    if report.policy is None:
        return
    names = ", ".join(report.policy.names)
    typer.echo(f"cosignatures by the witnesses trusted ({names}):")
    split = max(0, len(report.witnessed) - SHOWN_CHECKPOINTS)
    earlier, shown = report.witnessed[:split], report.witnessed[split:]
    for checkpoint in reversed(shown):
        by = f" ({', '.join(checkpoint.cosigners)})" if checkpoint.cosigners else ""
        typer.echo(
            f"  checkpoint {checkpoint.number} (size {checkpoint.size}): "
            f"{len(checkpoint.cosigners)}{by}"
        )
    if earlier:
        counts: dict[int, int] = {}
        for checkpoint in earlier:
            counts[len(checkpoint.cosigners)] = counts.get(len(checkpoint.cosigners), 0) + 1
        spread = ", ".join(f"{n} with {k}" for k, n in sorted(counts.items()))
        typer.echo(f"  {len(earlier)} earlier checkpoints: {spread}")


@audit_app.command("check")
def check() -> None:
    """Check the node's stored rows against its signed checkpoints; exit 1 naming the first
    bad entry. While a check fails, the node signs no checkpoint and its health is degraded."""
    from infracms.cli.common import engine, require_current_schema, settings
    from infracms.services import audit

    require_current_schema()
    outcome = audit.self_check(engine=engine(), settings=settings())
    if not outcome.ok:
        typer.echo(f"error: entry {outcome.first_bad}: {outcome.detail}", err=True)
        typer.echo("the node signs no checkpoint until this check passes", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"checked {outcome.size} entries against {outcome.checkpoints} checkpoints: "
        "the stored log matches what the node signed"
    )


@audit_app.command("export")
def export(
    file: Path = typer.Argument(..., help="where to write the export ('-' for stdout)"),
) -> None:
    """Check the stored log, integrate new entries, sign a checkpoint, and write the whole log.

    If the self check fails, nothing is signed: the log is written as it stands (the
    evidence, up to the last checkpoint) and the command exits 1 naming the first bad entry.
    """
    from infracms.cli.common import cli_actor, engine, read_session, require_current_schema
    from infracms.cli.common import settings as load_settings
    from infracms.services import audit

    require_current_schema()
    current = load_settings()
    outcome = audit.self_check(engine=engine(), settings=current)
    if outcome.ok:
        signed_size = audit.sign_checkpoint(engine=engine(), settings=current).size
    with read_session() as session, _output(file) as out:
        for line in audit.export_lines(session=session, actor=cli_actor(), settings=current):
            out.write(line)
    if not outcome.ok:
        typer.echo(f"error: entry {outcome.first_bad}: {outcome.detail}", err=True)
        typer.echo("nothing was signed; the export shows the log as it stands", err=True)
        raise typer.Exit(1)
    if str(file) != "-":
        typer.echo(f"wrote {signed_size} entries and their checkpoints to {file}")
        typer.echo(f"verify with: infracms audit verify {file} --key {audit.verifier_key(current)}")


@contextlib.contextmanager
def _output(file: Path) -> Iterator[BinaryIO]:
    """The file to write (atomically: a failed export leaves nothing), or stdout for '-'."""
    if str(file) == "-":
        yield sys.stdout.buffer
        return
    partial = file.with_name(f".{file.name}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)


@audit_app.command("key")
def key(
    witness: bool = typer.Option(
        False, "--witness", help="print this node's witness key (its cosignatures) instead"
    ),
) -> None:
    """Print the verifier key auditors and peers check checkpoints with."""
    from infracms.cli.common import settings
    from infracms.services import audit

    if witness:
        from infracms.services.federation.node import FederationContext
        from infracms.services.witness import cosigner

        ctx = FederationContext.load(settings())
        typer.echo(cosigner(ctx.name, ctx.key).verifier().vkey)
        return
    typer.echo(audit.verifier_key(settings()))


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Integrate new entries and print the latest signed checkpoint.

    Auditors keep it as their trust anchor: `infracms audit checkpoint >> saved.txt`,
    later `infracms audit verify EXPORT --key KEY --trusted saved.txt`.
    """
    from infracms.cli.common import engine, require_current_schema, settings
    from infracms.services import audit

    require_current_schema()
    typer.echo(audit.sign_checkpoint(engine=engine(), settings=settings()).note, nl=False)


@audit_app.command("witness")
def witness() -> None:
    """Ask every active peer to cosign the latest checkpoint now, and keep what they sign."""
    from infracms.cli.common import engine, require_current_schema, settings
    from infracms.services.federation.node import FederationContext
    from infracms.services.witness import gather_cosignatures

    require_current_schema()
    outcomes = gather_cosignatures(engine=engine(), ctx=FederationContext.load(settings()))
    if not outcomes:
        typer.echo("no active peer to ask: peer with another node first")
    for outcome in outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        line = f"{outcome.peer}: {outcome.status}, checkpoint of size {outcome.size}{detail}"
        typer.echo(line, err=not outcome.ok)
    minimum, held = settings().min_witnesses, sum(outcome.ok for outcome in outcomes)
    if minimum and held < minimum:
        typer.echo(
            f"the checkpoint has {held} cosignature(s); INFRACMS_MIN_WITNESSES asks for {minimum}",
            err=True,
        )
    if not all(outcome.ok for outcome in outcomes) or (minimum and held < minimum):
        raise typer.Exit(1)


@audit_app.command("refusals")
def refusals(
    origin: str = typer.Option(None, help="only checkpoints of this peer's log"),
    as_json: bool = typer.Option(False, "--json", help="print the evidence as JSON"),
) -> None:
    """List the peers' checkpoints this node refused as a witness: the evidence kept."""
    from infracms.cli.common import cli_actor, emit, read_session
    from infracms.services.witness import list_conflicts

    with read_session() as session:
        page = list_conflicts(session=session, actor=cli_actor(), origin=origin, limit=500)
    if as_json:
        emit(page.items, as_json=True)
        return
    for item in page.items:
        typer.echo(
            f"{item.received_at:%Y-%m-%d %H:%M:%S} {item.origin} {item.kind}: held size "
            f"{item.held_size}, got size {item.submitted_size} (old {item.old_size}): "
            f"{item.detail}"
        )
