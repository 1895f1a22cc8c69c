"""Three nodes, a real host: a service requested across the federation, applied, used, removed.

a.test, b.test and c.test are separate `infracms serve` processes on loopback, each with
its own data directory (SQLite database, keys), name and port, running runs in its own
embedded executor. A and B peer, B and C peer (invitations through the CLI). A's
organisation coop publishes PostgreSQL and offsite backup on pools of real test hosts
(systemd hosts in network namespaces, keys pinned; coop holds the pool's private key as
a credential). B syncs and sees them; C sees B's catalog and not A's: a catalog is a
node's own offerings, never passed on. A user of B requests each; an owner of coop
approves; A's executor applies the instance on A's host; B reads the connection details
and uses them against the host (a PostgreSQL login, a restic repository over SFTP). B
changes each (another plan and no network for the database: unreachable from outside,
the same password inside; another key for the repository: the old one is refused), then
deprovisions it, and on the host what it created is gone (the database and its role; the
account, its key and its directory). Both audit logs hold the cross-referenced entries,
export and verify, and A's checkpoint carries B's cosignature. Last, a peer that revoked
B refuses it, and a peer that is down leaves B with its last good catalog.

B follows a service by asking A (refresh) every second, and its own periodic job may ask
at the same time: every wait here is bounded, none is a sleep.

Each test runs alone, or in any order: the nodes and hosts are shared by the module, and
the PostgreSQL steps (applied, changed, removed) bring B's service to the stage they start
from (``pg_service``) instead of relying on the test before; the revocation test revokes
and stops a peer of its own (d.test), so that c.test stays as every other test finds it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from infracms.models.federation import ConsumerStatus, Peer, PeerCatalog, ServiceInstance
from infracms.models.run import Run, RunStatus
from infracms.services import inventory
from infracms.services.context import system_actor
from tests.federation_node.live import LiveNode, ok, serving, sign_in, wait_for
from tests.support.hosts import HostPool, TestHost, stop_hosts

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APPLY_TIMEOUT = 600.0  # a first apply installs PostgreSQL from the pool's repository
STEP_TIMEOUT = 60.0
PASSWORD = "a long enough password 42"
PG_OFFERING, PG_PLAN = "coop-managed-postgresql", "coop-managed-postgresql.small"
PG_LARGE = "coop-managed-postgresql.large"
BACKUP_OFFERING, BACKUP_PLAN = "coop-offsite-backup", "coop-offsite-backup.small"
NETWORK = "10.231.0.0/24"  # the test hosts' bridge, where this process connects from
TIMINGS: dict[str, float] = {}


@dataclass
class Federation:
    """The three nodes, the provider's hosts, and the people signed in."""

    a: LiveNode
    b: LiveNode
    c: LiveNode
    db_host: TestHost
    store_host: TestHost
    alice: httpx.Client  # owner of coop on a.test
    bob: httpx.Client  # operator of client on b.test
    tmp: Path
    services: dict[str, str] = field(default_factory=dict)  # offering: B's service id
    pg: dict[str, str] = field(default_factory=dict)  # B's live PostgreSQL service: id, stage


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    TIMINGS[step] = time.monotonic() - started


@pytest.fixture(scope="module")
def federation(
    tmp_path_factory: pytest.TempPathFactory, host_pool: HostPool
) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("three-nodes")
    with timed("two hosts up"):
        hosts = host_pool.start_hosts(2)
    try:
        with contextlib.ExitStack() as stack:
            with timed("three nodes initialised and serving"):
                a = stack.enter_context(serving(LiveNode("a.test", root / "a")))
                b = stack.enter_context(serving(LiveNode("b.test", root / "b")))
                c = stack.enter_context(serving(LiveNode("c.test", root / "c")))
            with timed("peering A-B and B-C"):
                b.cli("peer", "accept", a.cli("peer", "invite").stdout.strip())
                c.cli("peer", "accept", b.cli("peer", "invite").stdout.strip())
            alice, bob = _people(a, b)
            stack.callback(alice.close)
            stack.callback(bob.close)
            _provider(a, alice, hosts)
            _consumer_offers(b)
            yield Federation(a, b, c, hosts[0], hosts[1], alice, bob, root)
    finally:
        stop_hosts(hosts)
        print("\nthree nodes, timings:")
        for step, seconds in TIMINGS.items():
            print(f"  {step:55s} {seconds:7.1f} s")


def _people(a: LiveNode, b: LiveNode) -> tuple[httpx.Client, httpx.Client]:
    a.cli("org", "create", "coop")
    b.cli("org", "create", "client")
    a.add_user("alice", PASSWORD, "coop", "owner")
    b.add_user("bob", PASSWORD, "client", "operator")
    return (
        sign_in(a, "alice", PASSWORD, "coop", "owner"),
        sign_in(b, "bob", PASSWORD, "client", "operator"),
    )


def _provider(a: LiveNode, alice: httpx.Client, hosts: list[TestHost]) -> None:
    """coop: the pool's key as a credential, a pool per offering, both offerings published."""
    for module in ("postgresql", "backup"):
        a.cli("module", "available", module)
        a.cli("module", "enable", "coop", module)
    key = hosts[0].key_path
    a.cli("credential", "add", "coop", "pool-key", "--kind", "ssh_key", "--key-file", str(key))
    for (group, host_name, offering), host in zip(
        (("db-pool", "db1", "managed-postgresql"), ("store-pool", "store1", "offsite-backup")),
        hosts,
        strict=True,
    ):
        ok(alice.post("/api/v1/orgs/coop/groups", json={"name": group}), 201)
        a.cli(
            "host", "add", "coop", host_name, host.address, "--group", group,
            "--credential", "pool-key", "--host-key", host.host_key,
        )  # fmt: skip
        module = "postgresql" if offering == "managed-postgresql" else "backup"
        a.cli(
            "offering", "publish", "coop", module, offering, "--group", group,
            "--plan", "small", "--plan", "large",
        )  # fmt: skip


def _consumer_offers(b: LiveNode) -> None:
    """b.test offers something of its own, so that c.test has a catalog to see."""
    b.cli("module", "available", "backup")
    b.cli("module", "enable", "client", "backup")
    with b.session(write=True) as session:
        inventory.create_group(
            session=session, actor=system_actor("test"), organisation="client", data={"name": "b"}
        )
    b.cli(
        "offering",
        "publish",
        "client",
        "backup",
        "offsite-backup",
        "--group",
        "b",
        "--plan",
        "large",
    )


def search(node: LiveNode) -> list[tuple[str, str]]:
    found = json.loads(node.cli("catalog", "search", "--json").stdout)
    return sorted((o["peer"], o["offering_id"]) for o in found)


def test_catalogs_reach_peers_and_no_further(federation: Federation) -> None:
    f = federation
    with timed("catalog sync on B (A and C) and on C (B)"):
        f.b.cli("catalog", "sync")
        f.c.cli("catalog", "sync")
    assert search(f.b) == [("a.test", PG_OFFERING), ("a.test", BACKUP_OFFERING)]
    assert search(f.c) == [("b.test", "client-offsite-backup")]  # A's are not passed on
    assert "a.test" not in f.c.cli("peer", "list").stdout


# --- PostgreSQL ---------------------------------------------------------------------------


def request(f: Federation, offering: str, plan: str, parameters: dict[str, Any]) -> str:
    f.b.cli("catalog", "sync", "a.test")  # B requests from the catalog it holds
    service = ok(
        f.bob.post(
            "/api/v1/orgs/client/services",
            json={
                "peer": "a.test",
                "offering_id": offering,
                "plan_id": plan,
                "parameters": parameters,
            },
        ),
        201,
    )
    assert service["status"] == ConsumerStatus.in_progress, service
    f.services[offering] = service["id"]
    return str(service["id"])


def approve(f: Federation, service_id: str) -> Run:
    """coop's owner approves the pending request; A's executor applies it."""
    pending = ok(f.alice.get("/api/v1/orgs/coop/provision-requests", params={"status": "pending"}))
    [mine] = [p for p in pending if p["instance_id"] == service_id]
    assert mine["client"] == "peer:b.test" and mine["context"]["requested_by"].startswith("bob ")
    approved = ok(f.alice.post(f"/api/v1/orgs/coop/provision-requests/{mine['id']}/approve"))
    run_id = approved["run_id"]
    run: Run = wait_for(
        f"run {run_id} on a.test",
        lambda: next(
            (r for r in f.a.rows(Run, Run.id == uuid.UUID(run_id)) if r.status.finished), None
        ),
        APPLY_TIMEOUT,
        every=2,
    )
    assert run.status is RunStatus.succeeded, f"the apply run ended {run.status}: {run.error}"
    return run


def follow(
    f: Federation, service_id: str, status: str, timeout: float = STEP_TIMEOUT
) -> dict[str, Any]:
    """B asks A how the service goes until it reaches `status` (failing at once on failed)."""

    def reached() -> dict[str, Any] | None:
        shown: dict[str, Any] = ok(f.bob.post(f"/api/v1/orgs/client/services/{service_id}/refresh"))
        assert shown["status"] != "failed" or status == "failed", shown
        return shown if shown["status"] == status else None

    return wait_for(f"service {service_id} {status} on b.test", reached, timeout, every=1)


def change(f: Federation, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """B asks A to change the service; A applies it on its host; B binds again."""
    asked: dict[str, Any] = ok(f.bob.patch(f"/api/v1/orgs/client/services/{service_id}", json=body))
    assert asked["status"] in ("updating", "succeeded"), asked
    shown = follow(f, service_id, ConsumerStatus.succeeded, APPLY_TIMEOUT)
    assert shown["has_credentials"], shown
    return shown


def deprovision(f: Federation, service_id: str) -> None:
    """B asks A to remove the service; A's removal run ends it."""
    ok(f.bob.post(f"/api/v1/orgs/client/services/{service_id}/deprovision"))
    follow(f, service_id, ConsumerStatus.ended, APPLY_TIMEOUT)
    [row] = f.a.rows(ServiceInstance, ServiceInstance.instance_id == service_id)
    assert row.status == "ended" and row.ended_at is not None, row
    [end] = [p for a, p in f.a.audit() if a == "service.end" and p["instance_id"] == service_id]
    assert end["removed"] is True, end


def psql(host: TestHost, query: str) -> str:
    """What `query` answers on the host's server, as postgres over the socket."""
    done = host.run(["runuser", "-u", "postgres", "--", "psql", "-XAtc", query], check=True)
    return done.stdout.strip()


PG_STAGES = ("applied", "changed")


def pg_service(f: Federation, stage: str) -> str:
    """B's PostgreSQL service at `stage` ("applied" or "changed"), made so if need be.

    A live service past that stage is removed first (the database name is the same),
    so that each PostgreSQL test starts from the state it names, whatever ran before.
    """
    if f.pg and PG_STAGES.index(f.pg["stage"]) > PG_STAGES.index(stage):
        end_pg(f)
    if not f.pg:
        service_id = request(
            f, PG_OFFERING, PG_PLAN, {"database": "shop", "allowed_networks": [NETWORK]}
        )
        approve(f, service_id)
        follow(f, service_id, ConsumerStatus.succeeded)
        details = ok(f.bob.get(f"/api/v1/orgs/client/services/{service_id}/credentials"))
        f.pg.update(id=service_id, stage="applied", password=details["password"])
    if f.pg["stage"] != stage:
        change(f, f.pg["id"], PG_CHANGE)
        f.pg["stage"] = "changed"
    return f.pg["id"]


def end_pg(f: Federation) -> None:
    """Remove B's live PostgreSQL service (A's removal run ends it)."""
    deprovision(f, f.pg["id"])
    f.pg.clear()


PG_CHANGE: dict[str, Any] = {"plan_id": PG_LARGE, "parameters": {"allowed_networks": []}}


def test_postgresql_requested_approved_applied_used(federation: Federation) -> None:
    f = federation
    if f.pg:
        end_pg(f)  # a service left by another test: this one requests its own
    with timed("postgresql: request from B (signed, to A)"):
        service_id = request(
            f, PG_OFFERING, PG_PLAN, {"database": "shop", "allowed_networks": [NETWORK]}
        )
    with timed("postgresql: approval and apply run on A's host"):
        run = approve(f, service_id)
    assert run.started_at is not None and run.finished_at is not None
    TIMINGS["postgresql: the apply run itself"] = (run.finished_at - run.started_at).total_seconds()
    with timed("postgresql: B follows, binds, reads the details"):
        shown = follow(f, service_id, ConsumerStatus.succeeded)
        assert shown["has_credentials"], shown
        details = ok(f.bob.get(f"/api/v1/orgs/client/services/{service_id}/credentials"))
    assert (details["host"], details["port"], details["database"], details["user"]) == (
        f.db_host.address, 5432, "shop", "shop",
    )  # fmt: skip
    password = details["password"]
    # on the host: the database exists, and the role logs in with the password handed over
    listed = f.db_host.run(
        ["runuser", "-u", "postgres", "--", "psql", "-XAtc",
         "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'"],
        check=True,
    )  # fmt: skip
    assert listed.stdout.strip() == "shop|shop"
    login = f.db_host.run(
        ["env", f"PGPASSWORD={password}", "psql", "-XAt", "-h", "127.0.0.1", "-U", "shop",
         "-d", "shop", "-c", "SELECT current_user"],
    )  # fmt: skip
    assert login.returncode == 0 and login.stdout.strip() == "shop", login.stderr
    # and from B's side of the network, over TLS, with the URI as handed over
    with psycopg.connect(details["uri"], connect_timeout=10) as connection:
        ssl = connection.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert ssl.fetchone() == (True,)
    refused = f.db_host.run(
        ["env", "PGPASSWORD=wrong", "psql", "-XAt", "-h", "127.0.0.1", "-U", "shop", "-d", "shop",
         "-c", "SELECT 1"],
    )  # fmt: skip
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    # the password is sealed wherever it is kept: no file of either node holds it in clear
    # (databases, logs, run directories), and no audit entry or run output carries it
    for node in (f.a, f.b):
        assert node.files_holding(password) == [], node.name
        assert password not in json.dumps(node.audit())
    f.pg.update(id=service_id, stage="applied", password=password)


def test_postgresql_changed_plan_and_networks(federation: Federation) -> None:
    f = federation
    service_id = pg_service(f, "applied")
    with timed("postgresql: change applied on A, bound again"):
        shown = change(f, service_id, PG_CHANGE)
    f.pg["stage"] = "changed"
    assert shown["plan_id"] == PG_LARGE
    assert shown["parameters"] == {"database": "shop", "allowed_networks": []}
    [row] = f.a.rows(ServiceInstance, ServiceInstance.instance_id == service_id)
    assert (row.plan_id, row.parameters["allowed_networks"]) == (PG_LARGE, [])
    details = ok(f.bob.get(f"/api/v1/orgs/client/services/{service_id}/credentials"))
    assert details["password"] == f.pg["password"]  # the same role, the same password
    # no network may reach it any more: the server listens on localhost only ...
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(details["uri"], connect_timeout=10).close()
    assert psql(f.db_host, "SHOW listen_addresses") == "localhost"
    # ... where the role still logs in with the password handed over
    login = f.db_host.run(
        ["env", f"PGPASSWORD={details['password']}", "psql", "-XAt", "-h", "127.0.0.1", "-U",
         "shop", "-d", "shop", "-c", "SELECT current_user"],
    )  # fmt: skip
    assert login.returncode == 0 and login.stdout.strip() == "shop", login.stderr
    asked = next(
        p for a, p in f.b.audit() if a == "service.update" and p.get("instance_id") == service_id
    )
    applied = next(
        p for a, p in f.a.audit() if a == "service.update" and p.get("instance_id") == service_id
    )
    assert asked["operation"] == applied["operation"] and applied["previous"]["plan"] == PG_PLAN


def test_postgresql_deprovisioned(federation: Federation) -> None:
    f = federation
    service_id = pg_service(f, "changed")
    deleted = [a for a, _ in f.a.audit()].count("credential.delete")
    with timed("postgresql: deprovision, removal run on A, ended"):
        end_pg(f)
    # on the host: the database and its role are gone, and so are its client rules
    assert psql(f.db_host, "SELECT count(*) FROM pg_database WHERE datname = 'shop'") == "0"
    assert psql(f.db_host, "SELECT count(*) FROM pg_roles WHERE rolname = 'shop'") == "0"
    hba = f.db_host.run(["cat", "/etc/postgresql/15/main/pg_hba.conf"], check=True).stdout
    assert " shop " not in hba, hba
    provider = [(a, p) for a, p in f.a.audit() if p.get("instance_id") == service_id]
    consumer = [(a, p) for a, p in f.b.audit() if p.get("instance_id") == service_id]
    provided = [action for action, _ in provider]
    assert provided[:2] == ["service.request", "service.approve"], provided
    assert {"service.bind", "service.unbind", "service.update", "service.deprovision"} <= set(
        provided
    ), provided
    assert provided[-1] == "service.end", provided
    assert {p["client"] for _, p in provider} == {"peer:b.test"}
    consumed = [action for action, _ in consumer]
    assert consumed[:2] == ["service.request", "service.requested"], consumed
    assert {"service.succeeded", "service.update", "service.deprovision", "service.ended"} <= set(
        consumed
    ), consumed
    # the same operations and bindings on both sides, each binding made once
    requested = next(p for a, p in consumer if a == "service.requested")
    approved = next(p for a, p in provider if a == "service.approve")
    assert requested["operation"] == approved["operation"]
    bound = [p["binding_id"] for a, p in consumer if a == "service.succeeded"]
    assert bound == [p["binding_id"] for a, p in provider if a == "service.bind"], (
        bound,
        provider,
    )
    assert len(bound) == 2  # bound when provisioned, and again after the change
    gone = next(p for a, p in consumer if a == "service.deprovision")
    removed = next(p for a, p in provider if a == "service.deprovision")
    assert gone["operation"] == removed["operation"]
    # the credential generated for the instance is gone with it
    assert [a for a, _ in f.a.audit()].count("credential.delete") == deleted + 1


# --- offsite backup -----------------------------------------------------------------------


def test_backup_repository_used_by_restic_over_sftp(federation: Federation) -> None:
    f = federation
    key = f.tmp / "id_backup"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    with timed("backup: request, approval, apply, bind"):
        service_id = request(
            f, BACKUP_OFFERING, BACKUP_PLAN, {"name": "web1", "ssh_public_key": public}
        )
        approve(f, service_id)
        follow(f, service_id, ConsumerStatus.succeeded)
        details = ok(f.bob.get(f"/api/v1/orgs/client/services/{service_id}/credentials"))
    assert details["repository"] == f"sftp:restic-web1@{f.store_host.address}:/repo"
    assert "password" not in details
    known_hosts = f.tmp / "known_hosts"
    known_hosts.write_text(details["known_hosts"] + "\n")
    ssh = [
        "ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    ]  # fmt: skip
    data = f.tmp / "data"
    data.mkdir()
    (data / "notes.txt").write_text("backed up across the federation\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(f.tmp), "RESTIC_PASSWORD": "only b knows",
           "RESTIC_CACHE_DIR": str(f.tmp / "restic-cache")}  # fmt: skip
    command = " ".join([*ssh, f"{details['username']}@{details['host']}", "-s", "sftp"])

    def restic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["restic", "-r", details["repository"], "-o", f"sftp.command={command}", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    with timed("backup: restic init + backup + ls over SFTP"):
        for args in (("init",), ("backup", str(data)), ("ls", "latest")):
            done = restic(*args)
            assert done.returncode == 0, f"restic {args[0]}: {done.stderr}"
    assert str(data / "notes.txt") in done.stdout
    # the account is jailed and has no shell: the repository is all it sees
    assert f.store_host.run(["test", "-f", "/srv/restic/web1/repo/config"]).returncode == 0
    shell = subprocess.run(
        [*ssh, f"{details['username']}@{details['host']}", "cat /etc/passwd"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "root:" not in shell.stdout
    # another key: the repository keeps its data, the old key no longer logs in
    new_key = f.tmp / "id_backup_new"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(new_key)], check=True)
    with timed("backup: key change applied on A, bound again"):
        shown = change(
            f,
            service_id,
            {"parameters": {"ssh_public_key": new_key.with_suffix(".pub").read_text().strip()}},
        )
    assert shown["parameters"]["name"] == "web1"
    refused = restic("ls", "latest")
    assert refused.returncode != 0, refused.stdout
    command = command.replace(str(key), str(new_key))
    done = restic("ls", "latest")
    assert done.returncode == 0 and str(data / "notes.txt") in done.stdout, done.stderr
    with timed("backup: deprovision, removal run on A, ended"):
        deprovision(f, service_id)
    # on the host: the account, its key and its directory (with the repository) are gone
    assert f.store_host.run(["id", "restic-web1"]).returncode != 0
    for path in ("/srv/restic/web1", "/etc/infracms/sftp-keys/restic-web1",
                 "/etc/ssh/sshd_config.d/infracms-backup-serve.conf"):  # fmt: skip
        assert f.store_host.run(["test", "-e", path]).returncode != 0, f"{path} is still there"


# --- logs, witnesses, peers that go away ------------------------------------------------------


def test_audit_logs_export_and_verify_with_bs_cosignature(federation: Federation) -> None:
    f = federation
    wkey = f.b.cli("audit", "key", "--witness").stdout.strip()
    for node in (f.a, f.b):
        export = f.tmp / f"{node.name}.jsonl"
        key = node.cli("audit", "key").stdout.strip()
        if node is f.a:
            # cosigned by b.test, then exported: a newer checkpoint (entries appended in
            # between by A's own jobs) would not be, hence a few tries
            def cosigned() -> bool:
                f.a.cli("audit", "witness")
                f.a.cli("audit", "export", str(export))
                done = f.a.cli(
                    "audit", "verify", str(export), "--key", key, "--witness", wkey, check=False
                )
                return done.returncode == 0 and "witness policy met" in done.stdout

            with timed("audit: A cosigned by B, exported, verified"):
                wait_for("a.test's latest checkpoint cosigned by b.test", cosigned, STEP_TIMEOUT)
        else:
            node.cli("audit", "export", str(export))
            verified = node.cli("audit", "verify", str(export), "--key", key)
            assert verified.returncode == 0, verified.stdout
    note = httpx.get(f"{f.a.base_url}/api/v1/audit/checkpoint", trust_env=False).text
    assert "\u2014 b.test/witness " in note, note


@pytest.fixture
def d_peer(federation: Federation) -> Iterator[tuple[LiveNode, contextlib.ExitStack]]:
    """d.test, served and peered with b.test, whose catalog b.test holds: revoked and
    stopped by the test that takes it (c.test stays up and peered for the others)."""
    f = federation
    with contextlib.ExitStack() as stop_d:
        d = stop_d.enter_context(serving(LiveNode("d.test", f.tmp / "d")))
        d.cli("peer", "accept", f.b.cli("peer", "invite").stdout.strip())
        f.b.cli("catalog", "sync")  # d.test's catalog, and a.test's (unchanged from now on)
        yield d, stop_d
    # b.test stops following d.test, so the other tests' syncs of every peer ask no dead node
    f.b.cli("peer", "revoke", "d.test")


def test_revoked_peer_refused_and_down_peer_keeps_last_good(
    federation: Federation, d_peer: tuple[LiveNode, contextlib.ExitStack]
) -> None:
    f = federation
    d, stop_d = d_peer
    [d_row] = f.b.rows(Peer, Peer.name == "d.test")

    def held() -> PeerCatalog:
        rows: list[PeerCatalog] = f.b.rows(PeerCatalog, PeerCatalog.peer_id == d_row.id)
        return rows[0]

    good = held()
    assert good.body is not None and good.error is None
    # d.test revokes b.test: b.test's signed requests are refused, nothing changes on d.test
    d.cli("peer", "revoke", "b.test")
    size = len(d.audit())
    refused = f.b.cli("catalog", "sync", "d.test", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"d.test: kept version {good.version}" in refused.stderr and "401" in refused.stderr
    assert len(d.audit()) == size
    kept = held()
    assert (kept.body, kept.version) == (good.body, good.version) and kept.error
    # d.test goes down: b.test keeps its last good copy and says why
    stop_d.close()
    down = f.b.cli("catalog", "sync", "d.test", check=False)
    assert down.returncode == 1 and "PeerUnreachable" in down.stderr, down.stderr
    kept = held()
    assert (kept.body, kept.version) == (good.body, good.version)
    assert kept.error is not None and "PeerUnreachable" in kept.error
    # a.test, still up, still syncs
    assert "a.test: unchanged" in f.b.cli("catalog", "sync", "a.test").stdout
