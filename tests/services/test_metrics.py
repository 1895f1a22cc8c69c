"""/metrics' collector reads the database at each scrape; /readyz names what is degraded."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from infracms.config import Settings
from infracms.models.audit import AuditCheck, AuditCheckpoint
from infracms.models.base import utcnow
from infracms.models.federation import Peer, PeerCatalog, SyncOutcome
from infracms.models.run import Run, RunKind, RunStatus
from infracms.models.witness import AuditCosignature
from infracms.services import metrics
from tests.helpers import make_org

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scraped(engine: Engine, settings: Settings) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    text = metrics.generate_latest(metrics.registry(engine=engine, settings=settings)).decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def add_run(
    engine: Engine, org: uuid.UUID, status: RunStatus, seconds: float | None = None, **extra: object
) -> None:
    now = utcnow()
    started = now - timedelta(seconds=seconds) if seconds is not None else None
    with Session(engine) as session:
        session.add(
            Run(
                organisation_id=org,
                kind=RunKind.apply,
                status=status,
                requested_by="test",
                started_at=started,
                finished_at=now if status.finished and seconds is not None else None,
                **extra,  # type: ignore[arg-type]
            )
        )
        session.commit()


def test_runs_queue_and_durations_are_read_at_scrape_time(
    any_engine: Engine, any_db_settings: Settings
) -> None:
    engine, settings = any_engine, any_db_settings
    acme, beta = make_org(engine, "acme"), make_org(engine, "beta")
    before = scraped(engine, settings)
    assert before[("infracms_queue_depth", ())] == 0
    add_run(engine, acme, RunStatus.queued)
    add_run(engine, acme, RunStatus.queued)
    add_run(engine, beta, RunStatus.succeeded, seconds=10, event_count=40)
    add_run(engine, beta, RunStatus.failed, seconds=100, event_count=2)
    found = scraped(engine, settings)
    runs = (("kind", "apply"), ("organisation", "acme"), ("status", "queued"))
    assert found[("infracms_runs", runs)] == 2
    assert found[("infracms_queue_depth", ())] == 2
    assert found[("infracms_run_events_total", ())] == 42
    kind = (("kind", "apply"),)
    assert found[("infracms_run_duration_seconds_count", kind)] == 2
    assert 109 < found[("infracms_run_duration_seconds_sum", kind)] < 111
    assert found[("infracms_run_duration_seconds_bucket", (*kind, ("le", "15.0")))] == 1
    assert found[("infracms_run_duration_seconds_bucket", (*kind, ("le", "120.0")))] == 2
    assert found[("infracms_run_duration_seconds_bucket", (*kind, ("le", "+Inf")))] == 2


def test_a_worker_whose_heartbeat_stopped_is_counted_stale(
    any_engine: Engine, any_db_settings: Settings
) -> None:
    engine, settings = any_engine, any_db_settings
    acme = make_org(engine, "acme")
    add_run(engine, acme, RunStatus.running, 5, worker="w1", heartbeat_at=utcnow())
    old = utcnow() - timedelta(seconds=settings.run_stale_seconds + 30)
    add_run(engine, acme, RunStatus.running, 500, worker="w2", heartbeat_at=old)
    found = scraped(engine, settings)
    assert found[("infracms_worker_heartbeat_age_seconds", (("worker", "w1"),))] < 30
    assert found[("infracms_worker_heartbeat_age_seconds", (("worker", "w2"),))] > 60
    assert found[("infracms_runs_stale", ())] == 1


def test_audit_catalog_and_witness_figures(engine: Engine, settings: Settings) -> None:
    found = scraped(engine, settings)
    entries = found[("infracms_audit_entries", ())]
    assert entries > 0  # initialise records itself
    assert ("infracms_audit_self_check_ok", ()) not in found  # never checked yet
    make_org(engine, "acme")
    now = utcnow()
    with Session(engine) as session:
        session.add(AuditCheck(checked_at=now, size=3, ok=True, detail="ok"))
        peer = Peer(name="peer.example", base_url="https://peer.example", invited_by_us=True)
        session.add(peer)
        session.flush()
        session.add(
            PeerCatalog(
                peer_id=peer.id, synced_at=now - timedelta(seconds=120), outcome=SyncOutcome.failed
            )
        )
        session.add(AuditCheckpoint(size=10**9, root=b"r", note="n", signed_at=now))
        session.flush()
        for name in ("a", "b"):
            session.add(
                AuditCosignature(
                    checkpoint_size=10**9, witness=name, key_id=1, timestamp=1, line="x", peer=name
                )
            )
        session.commit()
    found = scraped(engine, settings)
    assert found[("infracms_audit_entries", ())] > entries  # the organisation's entry
    assert found[("infracms_audit_self_check_ok", ())] == 1
    assert abs(found[("infracms_audit_self_check_timestamp_seconds", ())] - now.timestamp()) < 1
    peer_label = (("peer", "peer.example"),)
    assert 119 < found[("infracms_catalog_sync_age_seconds", peer_label)] < 200
    assert found[("infracms_catalog_sync_failed", peer_label)] == 1
    assert found[("infracms_witness_cosignatures", ())] == 2
    assert found[("infracms_witness_latest_cosigned_size", ())] == 10**9
    assert found[("infracms_witness_latest_cosigners", ())] == 2


def test_readyz_is_ready_on_a_fresh_node(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "problems": {}}


def test_readyz_names_a_failed_self_check_and_an_unmet_witness_minimum(
    engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"min_witnesses": 2})
    with Session(engine) as session:
        session.add(AuditCheck(checked_at=utcnow(), size=3, ok=False, first_bad=2, detail="bad"))
        session.commit()
    found = metrics.readiness(engine=engine, settings=settings)
    assert not found.ready
    assert set(found.problems) == {"audit", "witness"}, found.problems
    assert "self check failed" in found.problems["audit"]
    assert "has 0 cosignature(s)" in found.problems["witness"]
    assert "asks for 2" in found.problems["witness"]


def test_readyz_names_an_unreachable_database_and_broker(settings: Settings) -> None:
    gone = create_engine("sqlite:////nonexistent-dir/for-sure/infracms.db")
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    found = metrics.readiness(engine=gone, settings=broken)
    assert found.problems == {
        "database": "the database does not answer",
        "broker": "the broker does not answer",
    }
    assert found.body()["status"] == "degraded"
