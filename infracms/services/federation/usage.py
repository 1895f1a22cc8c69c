"""Usage records: who used which plan of which offering, from when to when.

A record starts when an instance is approved and ends when it is deprovisioned; an
export per peer (CSV or JSON) is the basis for settling accounts between co-ops.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from infracms.models.base import utcnow
from infracms.models.federation import ServiceInstance, UsageRecord
from infracms.services.authz import Action, authorize
from infracms.services.context import Actor

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (OWASP: CSV injection)."""
INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
"""Spaces, separators, controls and format characters (zero-width, BOM): not seen."""
COLUMNS = ("client", "organisation", "offering_id", "plan_id", "instance_id", "from", "to")


class UsagePublic(BaseModel):
    """One usage record as exported."""

    client: str
    organisation: str
    offering_id: str
    plan_id: str
    instance_id: str
    started_at: datetime
    ended_at: datetime | None


def start(session: Session, *, instance: ServiceInstance) -> None:
    """Open a usage record for an instance just approved (in the caller's transaction)."""
    context = instance.context
    organisation = str(context.get("organization_name") or context.get("organization") or "")
    session.add(
        UsageRecord(
            instance_id=instance.id,
            client=instance.client,
            organisation=organisation,
            offering_id=instance.offering_id,
            plan_id=instance.plan_id,
            started_at=utcnow(),
        )
    )


def end(session: Session, *, instance: ServiceInstance) -> None:
    """Close an instance's open usage records (in the caller's transaction)."""
    rows = session.exec(
        select(UsageRecord).where(
            UsageRecord.instance_id == instance.id, col(UsageRecord.ended_at).is_(None)
        )
    ).all()
    for row in rows:
        row.ended_at = utcnow()
        session.add(row)


def usage_records(*, session: Session, actor: Actor, peer: str | None = None) -> list[UsagePublic]:
    """Every usage record (or one peer's), oldest first."""
    authorize(actor, Action.usage_read, None)
    query = select(UsageRecord, ServiceInstance.instance_id).join(
        ServiceInstance, col(ServiceInstance.id) == col(UsageRecord.instance_id)
    )
    if peer is not None:
        query = query.where(UsageRecord.client == f"peer:{peer}")
    rows = session.exec(query.order_by(col(UsageRecord.started_at))).all()
    return [
        UsagePublic(
            client=record.client,
            organisation=record.organisation,
            offering_id=record.offering_id,
            plan_id=record.plan_id,
            instance_id=instance_id,
            started_at=record.started_at,
            ended_at=record.ended_at,
        )
        for record, instance_id in rows
    ]


def export(records: list[UsagePublic], fmt: str) -> str:
    """Records as CSV (RFC 4180, one header line) or as a JSON array."""
    if fmt == "json":
        return json.dumps([r.model_dump(mode="json") for r in records], indent=2)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180: a CR in a cell gets quoted
    writer.writerow(COLUMNS)
    for r in records:
        ended = r.ended_at.isoformat() if r.ended_at else ""
        cells = (r.client, r.organisation, r.offering_id, r.plan_id, r.instance_id)
        writer.writerow((*map(neutralised, cells), r.started_at.isoformat(), ended))
    return out.getvalue()


def neutralised(cell: str) -> str:
    """A text cell no spreadsheet evaluates: a leading apostrophe before a formula start,
    also one behind leading blanks or invisible characters (an import that trims spaces
    evaluates `` =1+2``) or written in a compatibility form (fullwidth U+FF1D)."""
    return f"'{cell}" if _lead(cell).startswith(FORMULA_STARTS) else cell


def _lead(cell: str) -> str:
    """The cell from its first visible character on, in compatibility form (NFKC)."""
    for index, char in enumerate(cell):
        if char in FORMULA_STARTS or unicodedata.category(char) not in INVISIBLE:
            return unicodedata.normalize("NFKC", cell[index : index + 2])
    return ""
