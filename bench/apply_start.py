"""Apply request to ansible-playbook start, with 10,000 hosts in the inventory.

Builds a node whose organisation has 10,000 hosts (bulk inserted: 40 leaf groups under
4 sites, one SSH key credential, pinned host keys) and 4 built-in modules defined on
the sites, with overrides on a third of the leaf groups (through the definitions
service). Then, in one process, the app (create_app, its embedded executor) gets
``POST /api/v1/orgs/bench/runs {"kind": "apply"}`` through a TestClient; the clock
stops when the ``ansible-playbook`` that ansible-runner starts is exec'd (the adapter's
playbook script is swapped for one that writes the time and exits). The phases are
taken from wrappers around the executor's calls. ``--profile`` then runs the same
phases one after another under cProfile and prints where the time goes; ``--ansible``
also times what ansible-playbook itself then spends loading that inventory
(``--list-hosts`` of a play with no tasks): not part of the target, but it comes
before any task runs. The app's process has its garbage collector set as ``infracms
serve`` sets it once started (``quiet_gc``); ``--default-gc`` leaves Python's defaults.
The size of the inventory written is shown too. Target: <= 1 s.

    .venv/bin/python bench/apply_start.py [--hosts 10000] [--repeat 3] [--database both]
        [--profile] [--ansible] [--default-gc]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert
from sqlmodel import select

from infracms.app import create_app
from infracms.cli.setup import quiet_gc
from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_keyring
from infracms.models import Host, HostGroup, HostGroupLink, Organisation
from infracms.models.base import utcnow
from infracms.models.run import Run, RunStatus
from infracms.orchestration import execute
from infracms.plugins import Plugins
from infracms.runs import adapter
from infracms.runs.render import RunSpec
from infracms.services import auth, credentials, definitions, modules, organisations
from infracms.services import runs as run_service
from infracms.services.context import system_actor
from infracms.services.run_input import load_run_input
from infracms.services.setup import initialise
from tests.support.postgres import create_database, drop_database, postgres_url

ORG = "bench"
PASSWORD = "bench-password-long"
ADMIN = system_actor("bench")
MODULES = {
    "base": {"timezone": "Europe/Berlin", "packages": ["curl", "htop"]},
    "users": {},
    "ssh_hardening": {},
    "firewall": {},
}
SITES, GROUPS = 4, 40
TARGET = 1.0
PHASES = (
    ("API: POST /runs until submitted (create_run)", "posted", "submitted"),
    ("executor picks the run up", "submitted", "claim"),
    ("claim_run (status, host locks, audit)", "claim", "claimed"),
    ("open session, load keyring", "claimed", "load"),
    ("load_run_input (settings, credentials)", "load", "loaded"),
    ("render (private data dir)", "render", "rendered"),
    ("sink, heartbeat, between", "rendered", "runner"),
    ("ansible-runner until ansible-playbook exec", "runner", "exec"),
)


def ssh_key() -> tuple[str, str]:
    """A fresh Ed25519 key: OpenSSH private text, public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def populate(settings: Settings, hosts: int) -> tuple[str, Plugins]:
    """The node, its organisation, hosts, groups and definitions; an owner token."""
    engine = make_engine(settings)
    initialise(settings, engine)
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": ORG})
    with session_scope(engine, write=True) as session:
        for name in MODULES:
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
            modules.enable_module(
                session=session, actor=ADMIN, plugins=plugins, organisation=ORG, name=name
            )
    private, _ = ssh_key()
    with session_scope(engine, write=True) as session:
        credential = credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation=ORG,
            data={"name": "fleet-key", "kind": "ssh_key", "secret": private},
        )
    bulk_inventory(engine, hosts, credential.id)
    with session_scope(engine, write=True) as session:
        for module, values in MODULES.items():
            targets = [f"site{i}" for i in range(SITES)]
            if module == "base":
                targets += [f"group{i}" for i in range(0, GROUPS, 3)]
            for target in targets:
                definitions.add_definition(
                    session,
                    actor=ADMIN,
                    plugins=plugins,
                    organisation=ORG,
                    data={
                        "name": f"{module}-{target}",
                        "module": module,
                        "target": {"group": target},
                        "settings": values,
                    },
                )
        session.commit()
    with session_scope(engine, write=True) as session:
        result = auth.login(
            session=session, settings=settings, username="admin", password=PASSWORD, client="bench"
        )
        info = auth.session_info(session=session, raw_token=result.token)
        assert info is not None
        token = auth.issue_token(
            session=session,
            actor=info.actor,
            data={"name": "bench", "role": "owner", "organisation": ORG},
        ).token
    engine.dispose()
    return token, plugins


def bulk_inventory(engine: Engine, hosts: int, credential_id: uuid.UUID) -> None:
    """Insert the groups, hosts and memberships in bulk (not through the service)."""
    with session_scope(engine, write=True) as session:
        org = session.exec(select(Organisation).where(Organisation.name == ORG)).one()
        sites = [HostGroup(name=f"site{i}", organisation_id=org.id) for i in range(SITES)]
        session.add_all(sites)
        session.flush()
        leaves = [
            HostGroup(name=f"group{i}", organisation_id=org.id, parent_id=sites[i % SITES].id)
            for i in range(GROUPS)
        ]
        session.add_all(leaves)
        session.flush()
        _, public = ssh_key()
        now = utcnow()
        host_rows, links = [], []
        for i in range(hosts):
            host_id = uuid.uuid4()
            host_rows.append(
                {
                    "id": host_id,
                    "organisation_id": org.id,
                    "name": f"host-{i:05d}",
                    "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256 + 1}",
                    "ssh_port": 22,
                    "ssh_user": "root",
                    "host_key": public,
                    "credential_id": credential_id,
                    "variables": {"rack": i % 40},
                    "created_at": now,
                }
            )
            links.append({"host_id": host_id, "group_id": leaves[i % GROUPS].id})
        session.execute(insert(Host.__table__), host_rows)  # type: ignore[attr-defined]
        session.execute(insert(HostGroupLink.__table__), links)  # type: ignore[attr-defined]
        session.commit()


class Marks:
    """Wall-clock marks of one run's way to ansible-playbook, set from any thread."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.stamp = Path(tempfile.mkdtemp(prefix="bench-start-")) / "exec"
        self.done = threading.Event()
        self.inventory_bytes = 0

    def mark(self, name: str) -> None:
        self.times[name] = time.time()

    def phases(self) -> dict[str, float]:
        self.times["exec"] = float(self.stamp.read_text())
        return {label: self.times[b] - self.times[a] for label, a, b in PHASES}

    def total(self) -> float:
        return self.times["exec"] - self.times["posted"]


def instrument(marks: Marks) -> None:
    """Wrap the executor's steps to mark when each starts and ends, and swap the
    playbook script for one that writes the time it was exec'd and exits."""

    def around(target: Any, name: str, before: str, after: str) -> None:
        original = getattr(target, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            marks.mark(before)
            try:
                return original(*args, **kwargs)
            finally:
                if after:
                    marks.mark(after)

        setattr(target, name, wrapper)

    around(run_service, "claim_run", "claim", "claimed")
    around(execute, "load_run_input", "load", "loaded")
    around(execute, "render", "render", "rendered")
    around(execute, "run_playbook", "runner", "")

    def stamp_script(spec: RunSpec) -> Path:
        marks.inventory_bytes = len(spec.inventory)  # served from memory through a pipe
        path = spec.private_data_dir / "ansible-playbook"
        path.write_text(f"#!/bin/sh\ndate +%s.%N > {marks.stamp}\n")
        path.chmod(0o700)
        return path

    adapter._wrapper = stamp_script  # type: ignore[assignment]


def through_api(
    settings: Settings, token: str, repeat: int, hosts: int, *, default_gc: bool
) -> list[Marks]:
    """POST applies to the app in this process; each run's marks."""
    app = create_app(settings)
    results = []
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        if not default_gc:
            quiet_gc()  # as infracms serve does once the app is built
        executor = app.state.executor
        submit = executor.submit
        for _ in range(repeat):
            marks = Marks()
            instrument(marks)

            def submitted(run_id: uuid.UUID, marks: Marks = marks) -> None:
                marks.mark("submitted")
                submit(run_id)

            executor.submit = submitted
            marks.mark("posted")
            response = client.post(
                f"/api/v1/orgs/{ORG}/runs", json={"kind": "apply"}, headers=headers
            )
            marks.mark("answered")
            assert response.status_code == 202, response.text
            run_id = response.json()["id"]
            app.state.executor.wait(uuid.UUID(run_id), timeout=300)
            run = client.get(f"/api/v1/orgs/{ORG}/runs/{run_id}", headers=headers).json()
            assert run["status"] == "succeeded", run
            assert len(run["hosts"]) == hosts, len(run["hosts"])
            marks.phases()
            results.append(marks)
            _restore()
    app.state.engine.dispose()
    return results


_ORIGINALS = {
    (run_service, "claim_run"): run_service.claim_run,
    (execute, "load_run_input"): execute.load_run_input,
    (execute, "render"): execute.render,
    (execute, "run_playbook"): execute.run_playbook,
    (adapter, "_wrapper"): adapter._wrapper,
}


def _restore() -> None:
    for (target, name), original in _ORIGINALS.items():
        setattr(target, name, original)


def ansible_inventory_load(spec: RunSpec) -> float:
    """Seconds ansible-playbook takes to load the rendered inventory and list its hosts."""
    directory = spec.private_data_dir
    (directory / "project" / "noop.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks: []\n"
    )
    (directory / "inventory" / "hosts.json").write_text(spec.inventory)  # a bench: a file
    env = {**os.environ, **spec.envvars}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    command = ["ansible-playbook", "-i", str(directory / "inventory"), "--list-hosts", "noop.yml"]
    began = time.perf_counter()
    subprocess.run(command, cwd=directory / "project", env=env, capture_output=True, check=True)
    return time.perf_counter() - began


def profile(settings: Settings, plugins: Plugins, *, show: bool, with_ansible: bool) -> None:
    """The same steps one after another, each under cProfile (the top functions shown
    with `show`); then, `with_ansible`, ansible-playbook's own inventory load."""
    engine = make_engine(settings)
    marks = Marks()
    steps: list[tuple[str, Callable[[], Any]]] = []
    state: dict[str, Any] = {}

    def create() -> None:
        with session_scope(engine, write=True) as session:
            state["run"] = run_service.create_run(
                session=session,
                actor=ADMIN,
                plugins=plugins,
                organisation=ORG,
                data={"kind": "apply"},
            )

    def claim() -> None:
        with session_scope(engine, write=True) as session:
            assert (
                run_service.claim_run(session, run_id=state["run"].id, worker="bench") is not None
            )

    def load() -> None:
        with session_scope(engine) as session:
            run = session.get(Run, state["run"].id)
            state["input"] = load_run_input(
                session, run=run, settings=settings, plugins=plugins, keyring=load_keyring(settings)
            )

    def do_render() -> None:
        state["spec"] = execute.render(state["input"].render, Path(tempfile.mkdtemp()) / "run")

    def start() -> None:
        adapter._wrapper = _stamp_writer(marks)  # type: ignore[assignment]
        try:
            adapter.run_playbook(
                state["spec"], on_event=lambda e: None, should_cancel=lambda: False
            )
        finally:
            _restore()

    steps = [("create_run", create), ("claim_run", claim), ("load_run_input", load)]
    steps += [("render", do_render), ("ansible-runner start", start)]
    for name, step in steps:
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.runcall(step)
        took = time.perf_counter() - began
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(18)
        if show:
            print(f"\n=== {name}: {took:.3f} s under cProfile ===")
            print("\n".join(out.getvalue().splitlines()[6:]))
    with session_scope(engine, write=True) as session:
        run_service.finish_run(
            session,
            run_id=state["run"].id,
            status=RunStatus.succeeded,
            rc=0,
            recap={},
            stdout_sha256=None,
        )
    engine.dispose()
    if with_ansible:
        size = len(state["spec"].inventory)
        took = ansible_inventory_load(state["spec"])
        print(f"\nansible-playbook loads the {size / 1e6:.1f} MB inventory in {took:.1f} s")


def _stamp_writer(marks: Marks) -> Callable[[RunSpec], Path]:
    def write(spec: RunSpec) -> Path:
        path = spec.private_data_dir / "ansible-playbook"
        path.write_text(f"#!/bin/sh\ndate +%s.%N > {marks.stamp}\n")
        path.chmod(0o700)
        return path

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile each phase after")
    parser.add_argument("--ansible", action="store_true", help="time ansible's inventory load")
    parser.add_argument(
        "--default-gc", action="store_true", help="leave the GC as Python sets it, not as served"
    )
    args = parser.parse_args()
    columns: dict[str, list[Marks]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        common: dict[str, Any] = {"admin_password": PASSWORD}
        common |= {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
        cases: list[tuple[str, str | None]] = []
        if args.database in ("sqlite", "both"):
            cases.append(("sqlite", None))
        if args.database in ("postgresql", "both"):
            cases.append(("postgresql", create_database(postgres_url())))
        try:
            for name, url in cases:
                settings = Settings(data_dir=Path(tmp) / name, database_url=url, **common)
                began = time.perf_counter()
                token, plugins = populate(settings, args.hosts)
                print(f"{name}: {args.hosts} hosts stored in {time.perf_counter() - began:.1f} s")
                columns[name] = through_api(
                    settings, token, args.repeat, args.hosts, default_gc=args.default_gc
                )
                if args.profile or args.ansible:
                    profile(settings, plugins, show=args.profile, with_ansible=args.ansible)
        finally:
            for _, url in cases:
                if url:
                    drop_database(url)
    names = list(columns)
    header = ["phase (median s)", *names]
    rows = []
    for label, _, _ in PHASES:
        rows.append(
            [
                label,
                *(f"{statistics.median(m.phases()[label] for m in columns[n]):.3f}" for n in names),
            ]
        )
    totals = {n: statistics.median(m.total() for m in columns[n]) for n in names}
    rows.append(["total: request to ansible-playbook exec", *(f"{totals[n]:.3f}" for n in names)])
    rows.append(["target <= 1 s", *("ok" if totals[n] <= TARGET else "MISSED" for n in names)])
    sizes = {n: statistics.median(m.inventory_bytes for m in columns[n]) for n in names}
    rows.append(["inventory written (MB)", *(f"{sizes[n] / 1e6:.2f}" for n in names)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"\n{args.hosts} hosts, {len(MODULES)} modules, median of {args.repeat} applies; "
        f"in-process API (TestClient), embedded executor; "
        f"{'default GC' if args.default_gc else 'GC as served (quiet_gc)'}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
