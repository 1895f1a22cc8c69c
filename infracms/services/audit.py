"""The audit choke point: every change appends its entry here, in the change's transaction.

An entry gets the next index from the single ``audit_head`` row, which the appending
transaction locks (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite writing
transactions are serialised by ``BEGIN IMMEDIATE``), so indexes have no gaps and no
duplicates even with many writer processes. Hashing entries into the Merkle tree and
signing checkpoints happen after commit, in ``audit/``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from infracms.models.audit import AuditEntry, AuditHead
from infracms.models.base import utcnow
from infracms.services.context import Actor


def _plain(value: Any) -> Any:
    """A JSON-ready copy of `value` (UUIDs, times and enums as strings)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    return value


def canonical_payload(payload: Mapping[str, Any]) -> str:
    """The payload as canonical JSON text (sorted keys, no spaces; RFC 8785 for our types)."""
    return json.dumps(_plain(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject: str,
    organisation_id: uuid.UUID | None = None,
    payload: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append the audit entry of a change to the caller's transaction."""
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    entry = AuditEntry(
        index=head.size,
        time=utcnow(),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        organisation_id=organisation_id,
        action=action,
        subject=subject,
        payload=canonical_payload(payload or {}),
        request_id=actor.request_id,
    )
    head.size += 1
    session.add(head)
    session.add(entry)
    return entry


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The before/after of the fields that differ."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {
        "before": {key: before.get(key) for key in keys},
        "after": {key: after.get(key) for key in keys},
    }
