"""Deprovisioning removes from the hosts what an instance created (provider side).

The module's offering (``removal_settings``) gives the settings that undo the instance (its
database and role, say, marked ``state: absent``, which the module's role drops). They
are saved as one last revision of the instance's definition, audited like every
revision, and applied to the pool by a run. Once that run succeeded, the definition is
retired and the instance ends (``settle``); a run that failed is tried again when the
requester asks to deprovision again (``retry``). A module with nothing to remove (no
answer, or None), or whose removal cannot even start (its settings refused, no host left
in the pool), has its definition retired at once: the instance ends, and its ``service.end``
entry says that nothing was removed, and why.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from infracms.errors import InfracmsError
from infracms.models.base import utcnow
from infracms.models.definition import Definition
from infracms.models.federation import InstanceStatus, PublishedOffering, ServiceInstance
from infracms.models.run import Run, RunStatus
from infracms.plugins import Plugins
from infracms.services import audit, definitions, runs
from infracms.services.federation import service_hooks
from infracms.services.federation.instance_audit import (
    caller_system,
    cross_reference,
    organisation_name,
    subject,
)


def start(session: Session, *, plugins: Plugins, row: ServiceInstance) -> uuid.UUID | None:
    """Save the instance's removal revision and queue its run; None if the instance ended
    at once. The deprovisioning itself is committed before: it stands whatever happens."""
    try:
        settings = service_hooks.removal_settings(session, plugins=plugins, row=row)
        if settings is None:
            _end(session, row, removed=False, why=f"{row.offering_id} has nothing to remove")
            return None
        definitions.add_revision(
            session,
            actor=caller_system(row),
            plugins=plugins,
            organisation=organisation_name(session, row=row),
            name=row.definition or "",
            data={
                "settings": settings,
                "message": f"remove service instance {row.instance_id} ({row.client})"[:500],
            },
        )
        return _run(session, plugins, row)
    except InfracmsError as exc:
        session.rollback()
        _end(session, row, removed=False, why=f"the removal could not start: {exc.detail}")
        return None


def retry(session: Session, *, plugins: Plugins, row: ServiceInstance) -> uuid.UUID | None:
    """Run the removal revision again (its last run failed); None if the instance ended."""
    try:
        return _run(session, plugins, row)
    except InfracmsError as exc:
        session.rollback()
        _end(session, row, removed=False, why=f"the removal could not start again: {exc.detail}")
        return None


def settle(session: Session, *, row: ServiceInstance) -> bool:
    """End an instance whose removal run succeeded (retiring its definition); whether it did."""
    run = session.get(Run, row.run_id) if row.run_id else None
    if row.status is not InstanceStatus.deprovisioning or run is None:
        return False
    if run.status is not RunStatus.succeeded:
        return False
    _end(session, row, removed=True, why=None)
    return True


def settle_pool(session: Session, *, publication: PublishedOffering) -> None:
    """Settle the instances of an offering whose removal ended, so their definitions no
    longer hold the pool."""
    rows = session.exec(
        select(ServiceInstance).where(
            ServiceInstance.publication_id == publication.id,
            ServiceInstance.status == InstanceStatus.deprovisioning,
        )
    ).all()
    for row in rows:
        settle(session, row=row)


def _run(session: Session, plugins: Plugins, row: ServiceInstance) -> uuid.UUID:
    """An apply of the instance's definition (its removal revision), committed."""
    run = runs.create_run(  # commits the revision (if new) with the run
        session=session,
        actor=caller_system(row),
        plugins=plugins,
        organisation=organisation_name(session, row=row),
        data={"kind": "apply", "definitions": [row.definition]},
    )
    row.run_id = run.id
    session.add(row)
    session.commit()
    return run.id


def _end(session: Session, row: ServiceInstance, *, removed: bool, why: str | None) -> None:
    """The instance has ended: audited, its definition retired (commits)."""
    row.status, row.ended_at = InstanceStatus.ended, utcnow()
    if why:
        row.reason = why[:1000]
    session.add(row)
    audit.record(
        session,
        actor=caller_system(row),
        action="service.end",
        subject=subject(session, instance=row),
        organisation_id=row.organisation_id,
        payload={**cross_reference(row), "removed": removed, "why": why, "run": _text(row.run_id)},
    )
    if _live_definition(session, row):
        definitions.retire_definition(  # commits the end with the retirement
            session=session,
            actor=caller_system(row),
            organisation=organisation_name(session, row=row),
            name=row.definition or "",
        )
    else:
        session.commit()


def _live_definition(session: Session, row: ServiceInstance) -> bool:
    if row.definition is None:
        return False
    found = session.exec(
        select(Definition).where(
            Definition.organisation_id == row.organisation_id, Definition.name == row.definition
        )
    ).first()
    return found is not None and found.retired_at is None


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None
