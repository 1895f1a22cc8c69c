"""What a node tells its monitoring: /metrics (Prometheus text format) and /readyz.

Every figure is read from the database when it is scraped (`NodeCollector.collect`), so
that any number of server processes, workers and beats give the same answer: nothing
is counted in a process's memory. One short read session per scrape; each query is an
aggregate over an indexed column or a small table.

Who may scrape: a node administrator (a node token, as ``Authorization: Bearer``), or
anyone who reaches the separate listener ``INFRACMS_METRICS_LISTEN`` (host:port), which
has no authentication and belongs on an address only the monitoring reaches.

Readiness (`readiness`) names each degraded state with its reason: the database does not
answer, the broker does not (when Celery is configured), the audit log's self check
failed, the witness minimum is not met by the latest cosigned checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from infracms.config import Settings
from infracms.db import session_scope
from infracms.errors import PermissionDenied
from infracms.models.audit import AuditCheck, AuditCheckpoint, AuditHead, AuditTree
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerCatalog
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunStatus
from infracms.models.witness import AuditCosignature
from infracms.services.context import Actor

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds: a plan of a few hosts takes tens of seconds here, a big apply tens of minutes
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def check_access(actor: Actor) -> None:
    """Metrics are for node administrators (and node tokens) only."""
    if not (actor.is_admin or actor.node_scope):
        raise PermissionDenied("metrics are for node administrators: use a node token")


def _seconds_between(engine: Engine, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in seconds, in the database's own dialect."""
    if engine.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


@dataclass(eq=False)  # hashed by identity: the registry keys its collectors
class NodeCollector(Collector):
    """A prometheus_client collector reading the node's database at each scrape."""

    engine: Engine
    settings: Settings

    def collect(self) -> Iterator[Metric]:
        """Every family, from one read session."""
        now = utcnow()
        with session_scope(self.engine) as session:
            yield from self._runs(session)
            yield self._durations(session)
            yield from self._workers(session, now)
            yield from self._audit(session, now)
            yield from self._catalogs(session, now)
            yield from self._witness(session, now)
        up = GaugeMetricFamily("infracms_up", "1: the node answered this scrape from its database")
        up.add_metric([], 1)
        yield up

    def _runs(self, session: Session) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "infracms_runs",
            "Runs held, by status, kind and organisation",
            labels=["status", "kind", "organisation"],
        )
        rows = session.exec(
            select(Organisation.name, Run.kind, Run.status, func.count())
            .join(Organisation, col(Organisation.id) == col(Run.organisation_id))
            .group_by(Organisation.name, Run.kind, Run.status)
        ).all()
        queued = 0
        for organisation, kind, status, count in rows:
            runs.add_metric([str(status), str(kind), organisation], count)
            queued += count if status == RunStatus.queued else 0
        yield runs
        depth = GaugeMetricFamily("infracms_queue_depth", "Runs queued, waiting for an executor")
        depth.add_metric([], queued)
        yield depth
        events = CounterMetricFamily(
            "infracms_run_events", "Run events ingested and stored (over the runs held)"
        )
        events.add_metric(
            [], session.exec(select(func.coalesce(func.sum(Run.event_count), 0))).one()
        )
        yield events

    def _durations(self, session: Session) -> Metric:
        finished = [s for s in RunStatus if s.finished]
        # each duration computed once (a materialised CTE), then compared to each bound
        durations = (
            select(
                col(Run.kind).label("kind"),
                _seconds_between(self.engine, Run.started_at, Run.finished_at).label("seconds"),
            )
            .where(col(Run.status).in_(finished))
            .where(col(Run.started_at).is_not(None), col(Run.finished_at).is_not(None))
            .cte("durations")
            .prefix_with("MATERIALIZED")
        )
        seconds = durations.c.seconds
        buckets = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
        query = select(
            durations.c.kind, func.count(), func.coalesce(func.sum(seconds), 0.0), *buckets
        ).group_by(durations.c.kind)
        family = HistogramMetricFamily(
            "infracms_run_duration_seconds",
            "How long finished runs ran, from start to end",
            labels=["kind"],
            unit="seconds",
        )
        for kind, count, total, *cumulative in session.execute(query).all():
            counts = zip(DURATION_BUCKETS, cumulative, strict=True)
            pairs = [(_bound(bound), float(n or 0)) for bound, n in counts]
            family.add_metric([str(kind)], [*pairs, ("+Inf", float(count))], float(total or 0))
        return family

    def _workers(self, session: Session, now: datetime) -> Iterator[Metric]:
        rows = session.exec(
            select(Run.worker, func.max(Run.heartbeat_at), func.count())
            .where(Run.status == RunStatus.running)
            .group_by(Run.worker)
        ).all()
        age = GaugeMetricFamily(
            "infracms_worker_heartbeat_age_seconds",
            "Since the freshest heartbeat of a worker's running runs",
            labels=["worker"],
        )
        stale = 0
        for worker, beat, count in rows:
            seconds = _age(now, _aware(beat))
            if seconds is None or seconds > self.settings.run_stale_seconds:
                stale += count
            age.add_metric([worker or "unknown"], seconds if seconds is not None else float("nan"))
        yield age
        lost = GaugeMetricFamily(
            "infracms_runs_stale",
            "Running runs with no heartbeat for INFRACMS_RUN_STALE_SECONDS (a lost worker)",
        )
        lost.add_metric([], stale)
        yield lost

    def _audit(self, session: Session, now: datetime) -> Iterator[Metric]:
        head = session.get(AuditHead, 1)
        tree = session.get(AuditTree, 1)
        size = head.size if head else 0
        entries = GaugeMetricFamily("infracms_audit_entries", "Entries in the audit log")
        entries.add_metric([], size)
        yield entries
        lag = GaugeMetricFamily(
            "infracms_audit_integration_lag_entries",
            "Entries appended but not yet integrated into the Merkle tree",
        )
        lag.add_metric([], max(0, size - (tree.size if tree else 0)))
        yield lag
        checkpoint = session.exec(
            select(AuditCheckpoint).order_by(col(AuditCheckpoint.size).desc()).limit(1)
        ).first()
        if checkpoint is not None:
            signed = GaugeMetricFamily(
                "infracms_audit_checkpoint_age_seconds", "Since the latest checkpoint was signed"
            )
            signed.add_metric([], _age(now, checkpoint.signed_at) or 0.0)
            yield signed
        yield from self._self_check(session)

    def _self_check(self, session: Session) -> Iterator[Metric]:
        check = session.get(AuditCheck, 1)
        if check is None:
            return
        ok = GaugeMetricFamily(
            "infracms_audit_self_check_ok", "1 if the last self check of the stored log held"
        )
        ok.add_metric([], 1 if check.ok else 0)
        at = GaugeMetricFamily(
            "infracms_audit_self_check_timestamp_seconds", "When the log was last self-checked"
        )
        at.add_metric([], check.checked_at.timestamp())
        yield ok
        yield at

    def _catalogs(self, session: Session, now: datetime) -> Iterator[Metric]:
        rows = session.exec(
            select(Peer.name, PeerCatalog.synced_at, PeerCatalog.outcome).join(
                PeerCatalog, col(PeerCatalog.peer_id) == col(Peer.id)
            )
        ).all()
        age = GaugeMetricFamily(
            "infracms_catalog_sync_age_seconds",
            "Since a peer's catalog last synced (a new version or unchanged)",
            labels=["peer"],
        )
        failing = GaugeMetricFamily(
            "infracms_catalog_sync_failed",
            "1 if a peer's last catalog sync failed",
            labels=["peer"],
        )
        for name, synced, outcome in rows:
            seconds = _age(now, synced)
            age.add_metric([name], seconds if seconds is not None else float("nan"))
            failing.add_metric([name], 1 if outcome == "failed" else 0)
        yield age
        yield failing

    def _witness(self, session: Session, now: datetime) -> Iterator[Metric]:
        total = session.exec(select(func.count()).select_from(AuditCosignature)).one()
        cosignatures = GaugeMetricFamily(
            "infracms_witness_cosignatures", "Peers' cosignatures held, over all checkpoints"
        )
        cosignatures.add_metric([], total)
        yield cosignatures
        latest = latest_cosigned(session)
        if latest is not None:
            size, peers, received = latest
            held = GaugeMetricFamily(
                "infracms_witness_latest_cosigned_size", "Size of the latest cosigned checkpoint"
            )
            held.add_metric([], size)
            by = GaugeMetricFamily(
                "infracms_witness_latest_cosigners", "Peers that cosigned that checkpoint"
            )
            by.add_metric([], peers)
            age = GaugeMetricFamily(
                "infracms_witness_latest_cosignature_age_seconds", "Since it was cosigned"
            )
            age.add_metric([], _age(now, received) or 0.0)
            yield from (held, by, age)
        if self.settings.min_witnesses is not None:
            minimum = GaugeMetricFamily(
                "infracms_witness_minimum",
                "Cosignatures a checkpoint needs (INFRACMS_MIN_WITNESSES)",
            )
            minimum.add_metric([], self.settings.min_witnesses)
            yield minimum


def _bound(value: float) -> str:
    return repr(float(value))


def _aware(value: Any) -> datetime | None:
    """A timestamp from an aggregate (SQLite hands back text, without the column's type)."""
    if value is None or isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def latest_cosigned(session: Session) -> tuple[int, int, datetime | None] | None:
    """The latest checkpoint with a cosignature: its size, how many distinct peers
    cosigned it, and when the last of them did; None if none is cosigned."""
    size = session.exec(select(func.max(AuditCosignature.checkpoint_size))).one()
    if size is None:
        return None
    peers, received = session.exec(
        select(
            func.count(func.distinct(AuditCosignature.peer)), func.max(AuditCosignature.received_at)
        ).where(AuditCosignature.checkpoint_size == size)
    ).one()
    return int(size), int(peers), _aware(received)


def registry(*, engine: Engine, settings: Settings) -> CollectorRegistry:
    """A registry holding only the node's collector (no process metrics: they would
    describe one process among several)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(NodeCollector(engine=engine, settings=settings))
    return found


def scrape(*, engine: Engine, settings: Settings, actor: Actor) -> bytes:
    """The metrics in the Prometheus text format, for a node administrator."""
    check_access(actor)
    return generate_latest(registry(engine=engine, settings=settings))


def serve_separately(*, engine: Engine, settings: Settings) -> tuple[str, int] | None:
    """Serve the metrics without authentication on ``INFRACMS_METRICS_LISTEN``, in a
    thread of this process (prometheus_client's server); where it listens, or None."""
    address = settings.metrics_address
    if address is None:
        return None
    server, _ = start_http_server(
        address[1], addr=address[0], registry=registry(engine=engine, settings=settings)
    )
    host, port = server.server_address[:2]
    return str(host), int(port)


# --- readiness -------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """Ready, or the degraded states each with its reason."""

    problems: dict[str, str]

    @property
    def ready(self) -> bool:
        """Whether nothing is degraded."""
        return not self.problems

    def body(self) -> dict[str, Any]:
        """The JSON answer of /readyz."""
        return {"status": "ready" if self.ready else "degraded", "problems": self.problems}


def readiness(*, engine: Engine, settings: Settings) -> Readiness:
    """What keeps this node from serving well, each with its reason (empty when ready)."""
    problems: dict[str, str] = {}
    try:
        with session_scope(engine) as session:
            session.execute(text("SELECT 1"))
            _audit_problems(session, settings, problems)
    except Exception:  # any failure to answer is the problem reported (details: the log)
        log.warning("readiness: the database does not answer", exc_info=True)
        problems["database"] = "the database does not answer"
    broker = _broker_problem(settings)
    if broker:
        problems["broker"] = broker
    return Readiness(problems=problems)


def _audit_problems(session: Session, settings: Settings, problems: dict[str, str]) -> None:
    check = session.get(AuditCheck, 1)
    if check is not None and not check.ok:
        # which entry, and why, is for the node's log and `infracms audit check`
        problems["audit"] = "the audit log's self check failed: run infracms audit check"
    minimum = settings.min_witnesses
    if minimum:
        latest = latest_cosigned(session)
        peers = latest[1] if latest else 0
        if peers < minimum:
            where = f"checkpoint of size {latest[0]}" if latest else "no checkpoint"
            problems["witness"] = (
                f"the latest cosigned checkpoint has {peers} cosignature(s) "
                f"({where}); INFRACMS_MIN_WITNESSES asks for {minimum}"
            )


def _broker_problem(settings: Settings) -> str | None:
    """Why the broker does not answer, or None (also when no broker is configured)."""
    url = settings.broker_url
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None  # a broker this node does not know how to ask: not claimed either way
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError:
        log.warning("readiness: the broker does not answer", exc_info=True)
        return "the broker does not answer"
    return None
