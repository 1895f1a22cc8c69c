"""What the node does periodically for federation: sync catalogs, follow requested
services, forget expired nonces. ``infracms beat`` runs ``run_periodic``."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import session_scope
from infracms.services.federation import consumer, sync
from infracms.services.federation.node import FederationContext
from infracms.services.federation.nonces import DatabaseNonceStore

log = logging.getLogger(__name__)


def run_periodic(settings: Settings, engine: Engine) -> None:
    """One round: every active peer's catalog, every service in progress, old nonces."""
    ctx = FederationContext.load(settings)
    with session_scope(engine, write=True) as session:
        for result in sync.sync_all(session, ctx=ctx):
            if result.error:
                log.warning(
                    "catalog of %s: kept version %s: %s", result.peer, result.version, result.error
                )
    with session_scope(engine, write=True) as session:
        consumer.follow_all(session, ctx=ctx)
    DatabaseNonceStore(engine).prune()
