"""The witness's checks (C2SP tlog-witness order), pure: cosign, or refuse and why."""

from __future__ import annotations

import pytest

from infracms.audit.checkpoint import Checkpoint
from infracms.audit.merkle import EMPTY_ROOT
from infracms.models.witness import ConflictKind
from infracms.services.witness.decision import Submission, judge
from tests.witness.logs import ORIGIN, Tree


def test_a_first_checkpoint_from_zero_is_cosigned() -> None:
    assert judge(None, Tree(7).submission(0)) is None


def test_a_consistent_larger_checkpoint_is_cosigned() -> None:
    assert judge(Tree(7).held(), Tree(20).submission(7)) is None


def test_the_same_checkpoint_again_is_cosigned_again() -> None:
    assert judge(Tree(7).held(), Tree(7).submission(7)) is None


def test_an_inconsistent_checkpoint_is_refused_as_evidence() -> None:
    """The log rewrote entry 3: its tree of 20 does not extend the cosigned tree of 7."""
    rewritten = Tree(20, tag="x")
    refusal = judge(Tree(7).held(), rewritten.submission(7))
    assert refusal is not None
    assert (refusal.status, refusal.evidence) == (422, ConflictKind.inconsistent)
    assert "consistency proof" in refusal.detail and "gives old root" in refusal.detail


def test_a_proof_of_the_wrong_length_is_refused_as_evidence() -> None:
    refusal = judge(Tree(7).held(), Tree(20).submission(7, proof=()))
    assert refusal is not None and refusal.status == 422
    assert refusal.evidence is ConflictKind.inconsistent
    assert "has 0 hashes, expected" in refusal.detail


def test_another_root_at_the_cosigned_size_is_a_fork() -> None:
    refusal = judge(Tree(7).held(), Tree(7, tag="x").submission(7))
    assert refusal is not None
    assert (refusal.status, refusal.latest_size, refusal.evidence) == (409, 7, ConflictKind.fork)


@pytest.mark.parametrize("old", [0, 3, 7])
def test_a_fork_is_evidence_whatever_old_size_is_claimed(old: int) -> None:
    forked = Tree(7, tag="x")
    refusal = judge(Tree(7).held(), forked.submission(old, proof=()))
    assert refusal is not None and refusal.evidence is ConflictKind.fork


def test_a_smaller_checkpoint_is_answered_409_with_the_held_size_and_is_no_evidence() -> None:
    """Sent with the old size the log last knew: a stale submission, not proof of anything."""
    refusal = judge(Tree(20).held(), Tree(7).submission(3))
    assert refusal is not None
    assert (refusal.status, refusal.latest_size, refusal.evidence) == (409, 20, None)


def test_a_smaller_checkpoint_sent_as_the_latest_is_a_rollback() -> None:
    """``old`` is the cosigned size and the checkpoint is below it: 400 (spec), evidence."""
    refusal = judge(Tree(20).held(), Submission(20, (), Tree(7).checkpoint(), "note"))
    assert refusal is not None
    assert (refusal.status, refusal.evidence) == (400, ConflictKind.rollback)
    assert "below old size 20" in refusal.detail


def test_a_wrong_old_size_is_answered_409_with_the_held_size() -> None:
    refusal = judge(Tree(7).held(), Tree(20).submission(5))
    assert refusal is not None
    assert (refusal.status, refusal.latest_size, refusal.evidence) == (409, 7, None)
    first = judge(None, Tree(20).submission(5))
    assert first is not None and (first.status, first.latest_size) == (409, 0)


def test_a_replayed_submission_after_the_witness_moved_on_changes_nothing() -> None:
    """The request that took the witness from 7 to 20, sent again once it holds 30."""
    replay = Tree(20).submission(7)
    refusal = judge(Tree(30).held(), replay)
    assert refusal is not None
    assert (refusal.status, refusal.latest_size, refusal.evidence) == (409, 30, None)


def test_an_empty_tree_must_have_the_empty_root() -> None:
    assert judge(None, Submission(0, (), Checkpoint(ORIGIN, 0, EMPTY_ROOT), "note")) is None
    bad = judge(None, Submission(0, (), Checkpoint(ORIGIN, 0, Tree(1).root), "note"))
    assert bad is not None and bad.status == 422
