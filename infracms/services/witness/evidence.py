"""Reading what this node witnessed: the peer logs it follows and the checkpoints it refused.

Both are node-level audit data (``Action.audit_read`` without an organisation: node
admins). They hold signed notes and hashes, nothing secret.
"""

from __future__ import annotations

import base64

from sqlmodel import Session, col, func, select

from infracms.models.witness import (
    WitnessConflict,
    WitnessConflictPublic,
    WitnessedLog,
    WitnessedLogPublic,
)
from infracms.services.authz import Action, authorize
from infracms.services.common import Page
from infracms.services.context import Actor


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def list_witnessed_logs(*, session: Session, actor: Actor) -> list[WitnessedLogPublic]:
    """Every peer log this node cosigned, with the latest checkpoint it cosigned."""
    authorize(actor, Action.audit_read, None)
    rows = session.exec(select(WitnessedLog).order_by(col(WitnessedLog.origin))).all()
    return [
        WitnessedLogPublic(
            origin=row.origin,
            size=row.size,
            root=_b64(row.root),
            cosigned_at=row.cosigned_at,
            checkpoint=row.checkpoint,
        )
        for row in rows
    ]


def conflict_public(row: WitnessConflict) -> WitnessConflictPublic:
    """A refused checkpoint as shown, hashes in base64."""
    return WitnessConflictPublic(
        **row.model_dump(exclude={"held_root", "submitted_root", "proof"}),
        held_root=_b64(row.held_root),
        submitted_root=_b64(row.submitted_root),
        proof=row.proof.split(),
    )


def list_conflicts(
    *,
    session: Session,
    actor: Actor,
    origin: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[WitnessConflictPublic]:
    """The checkpoints this node refused as evidence against a log, newest first."""
    authorize(actor, Action.audit_read, None)
    where = [] if origin is None else [col(WitnessConflict.origin) == origin]
    query = select(WitnessConflict).where(*where)
    newest = query.order_by(col(WitnessConflict.received_at).desc()).limit(limit).offset(offset)
    rows = session.exec(newest).all()
    total = session.exec(select(func.count()).select_from(WitnessConflict).where(*where)).one()
    return Page([conflict_public(row) for row in rows], int(total), limit, offset)
