"""This node's catalog: built from the published offerings, versioned, signed, cached.

The signed catalog is kept in one row (``node_catalog``) with its body and ETag, so an
unchanged catalog is served without signing or canonicalising anything. Whenever the
offerings (or the capacity left) differ from what was last signed, the version grows
by one and the catalog is signed again; a new node key re-signs the same version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from federation.catalogs import sign_catalog
from federation.encoding import canonical_json
from federation.models.catalog import Catalog, Offering
from infracms.db import write_engine
from infracms.models.federation import (
    InstanceStatus,
    NodeCatalog,
    PublishedOffering,
    ServiceInstance,
)
from infracms.services.federation.node import FederationContext
from infracms.services.federation.offerings import wire_offering

LIVE = (InstanceStatus.pending, InstanceStatus.provisioning, InstanceStatus.deprovisioning)


@dataclass(frozen=True)
class ServedCatalog:
    """The signed catalog as served: its canonical body, ETag and version."""

    body: bytes
    etag: str
    version: int

    def catalog(self) -> Catalog:
        """The catalog document itself."""
        return Catalog.model_validate(json.loads(self.body)["catalog"])


def offerings(session: Session) -> list[Offering]:
    """The published offerings as the catalog carries them, by id."""
    rows = session.exec(
        select(PublishedOffering)
        .where(col(PublishedOffering.withdrawn_at).is_(None))
        .order_by(col(PublishedOffering.offering_id))
    ).all()
    used = dict(
        session.exec(
            select(ServiceInstance.plan_id, func.count())
            .where(col(ServiceInstance.status).in_(LIVE))
            .group_by(col(ServiceInstance.plan_id))
        ).all()
    )
    return [wire_offering(row, used) for row in rows]


def served_catalog(*, session: Session, ctx: FederationContext) -> ServedCatalog:
    """The current signed catalog, signing a new version first if the offerings changed."""
    content = offerings(session)
    digest = _digest(content)
    state = session.get(NodeCatalog, 1)
    if state is None or state.content_sha256 != digest or state.key_id != ctx.key.key_id:
        state = _resign(session, ctx, digest)
    return ServedCatalog(state.body.encode(), state.etag, state.version)


def _resign(session: Session, ctx: FederationContext, digest: str) -> NodeCatalog:
    """Sign again under the write lock (another process may have done it meanwhile)."""
    engine = write_engine(session.get_bind())  # type: ignore[arg-type]
    with Session(engine, expire_on_commit=False) as writer:
        state = writer.exec(
            select(NodeCatalog).where(NodeCatalog.id == 1).with_for_update()
        ).first()
        state = state or NodeCatalog(id=1)
        content = offerings(writer)
        digest = _digest(content)
        if state.content_sha256 != digest or not state.body:
            state.version += 1
            state.generated_at = ctx.clock().replace(microsecond=0)
        elif state.key_id == ctx.key.key_id:
            return state
        if state.generated_at is None:
            raise RuntimeError("a catalog state without a generation time")
        catalog = Catalog(
            node=ctx.name,
            version=state.version,
            generated_at=state.generated_at,
            offerings=tuple(content),
        )
        signed = sign_catalog(catalog, ctx.key)
        state.content_sha256, state.key_id = digest, ctx.key.key_id
        state.body, state.etag = signed.body.decode(), signed.etag
        writer.add(state)
        writer.commit()
        return state


def _digest(content: list[Offering]) -> str:
    value = [offering.to_json_value() for offering in content]
    return hashlib.sha256(canonical_json(value)).hexdigest()
