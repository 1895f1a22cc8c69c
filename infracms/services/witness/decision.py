"""C2SP tlog-witness ``add-checkpoint``: cosign, or refuse and say why (pure, no I/O).

Once the witness knows the origin and the log's signature verifies, it checks, in the
order of https://c2sp.org/tlog-witness:

1. ``old`` is the size it last cosigned for the log (0 if none), else 409 with that size;
2. the checkpoint's size is at least ``old``, else 400;
3. at equal sizes the root hashes are equal, else 409;
4. the RFC 9162 consistency proof from ``old`` (with the cosigned root) to the new
   checkpoint verifies, else 422.

A refusal is **evidence** against the log when the log signed a checkpoint that
contradicts one the witness cosigned, whatever ``old`` says:

- ``fork``: the cosigned size with another root (two signed trees of one size);
- ``rollback``: smaller than the cosigned size while claiming to know that size
  (``old`` is the cosigned size), i.e. presented as the log's latest;
- ``inconsistent``: the consistency proof from the cosigned checkpoint fails.

A smaller checkpoint sent with another ``old`` is answered 409 but is no evidence: an
honest log sends stale ones when two of its processes race, and learns the size from
the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from infracms.audit.checkpoint import Checkpoint
from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import EMPTY_ROOT, Hash, RootHash, verify_consistency
from infracms.models.witness import ConflictKind


@dataclass(frozen=True)
class Held:
    """What the witness last cosigned for a log: size, root and the log-signed note."""

    size: int
    root: RootHash
    checkpoint: str


@dataclass(frozen=True)
class Submission:
    """An add-checkpoint request whose log signature verified."""

    old_size: int
    proof: tuple[Hash, ...]
    checkpoint: Checkpoint
    signed: str


@dataclass(frozen=True)
class Refusal:
    """How to refuse: the status, why, the size to answer a 409 with, and any evidence."""

    status: int
    detail: str
    latest_size: int | None = None
    evidence: ConflictKind | None = None


def judge(held: Held | None, submission: Submission) -> Refusal | None:
    """None to cosign ``submission``, else the refusal (C2SP tlog-witness, in its order)."""
    new = submission.checkpoint
    have = held.size if held is not None else 0
    contradiction = _contradiction(held, submission)
    if contradiction is not None:
        return contradiction
    if submission.old_size != have:
        return Refusal(409, f"old size is {submission.old_size}, expected {have}", have)
    if new.size < submission.old_size:
        return Refusal(400, f"checkpoint size {new.size} is below old size {submission.old_size}")
    if new.size == 0 and new.root != EMPTY_ROOT:
        return Refusal(422, "a checkpoint of size 0 must have the empty tree's root")
    return _check_proof(held, submission)


def _contradiction(held: Held | None, submission: Submission) -> Refusal | None:
    """A fork or rollback against the cosigned checkpoint, whatever ``old`` is."""
    new = submission.checkpoint
    if held is None or new.size > held.size:
        return None
    if new.size == held.size and new.root != held.root:
        return Refusal(
            409,
            f"checkpoint of size {new.size} has root {new.root.hex()}, but this witness "
            f"cosigned root {held.root.hex()} for that size",
            held.size,
            ConflictKind.fork,
        )
    if new.size < held.size and submission.old_size == held.size:
        return Refusal(
            400,
            f"checkpoint size {new.size} is below old size {held.size}, the size this "
            "witness cosigned: the log went back",
            evidence=ConflictKind.rollback,
        )
    if new.size < held.size:
        return Refusal(
            409,
            f"checkpoint size {new.size} is below {held.size}, the size this witness cosigned",
            held.size,
        )
    return None


def _check_proof(held: Held | None, submission: Submission) -> Refusal | None:
    """Step 4: the consistency proof from the cosigned checkpoint to the new one."""
    old_root = held.root if held is not None else EMPTY_ROOT
    new = submission.checkpoint
    try:
        verify_consistency(submission.old_size, new.size, old_root, new.root, submission.proof)
    except AuditVerificationError as exc:
        grew = held is not None and 0 < held.size < new.size
        evidence = ConflictKind.inconsistent if grew else None
        return Refusal(422, f"consistency proof does not verify: {exc}", evidence=evidence)
    return None
