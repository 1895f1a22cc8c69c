"""Apply overhead: an apply through infracms against bare ansible-playbook, same hosts.

Starts sshd-mode test hosts (tests/support/hosts.py; needs root), a node on SQLite with
one organisation whose hosts get one `base` definition (time zone Europe/Berlin,
unattended upgrades off: gather facts, then stat, file, copy and template on each host)
and a real ``infracms serve`` with its embedded executor. The infracms side is the
whole path: POST /api/v1/orgs/bench/runs -> executor -> claim -> render ->
ansible-runner -> events stored -> run finished (read from the database every 0.1 s,
not through the server). The bare side is
``ansible-playbook`` on a private data dir rendered by the same code from the same
definitions (same inventory, playbook, roles, pinned known_hosts, ssh options and
pipelining), with the same key given as --private-key and the same forks (ANSIBLE_FORKS
for both), its output to a file. A first bare apply makes the changes; the measured
rounds then rotate which side goes first, and the ratio is the median of the rounds'
paired ratios. ``--with-runner`` adds ansible-runner alone (called as the adapter calls
it, on the same data dir) as a third side, to tell its cost from infracms' own. CPU
seconds are reported too (less sensitive to a loaded machine than wall time): the
bare side's children, and the server process with its reaped children (ansible-playbook,
its forks and their ssh; ssh masters, detached on both sides, are not counted).
Target: <= 1.10x at 50 hosts. Fifty hosts take about 100 s an apply on 2 loaded
cores, so the default is 20 hosts (about 5 minutes in all); ``--hosts 50`` for the
target's figure (about 9 minutes).

    .venv/bin/python bench/run_overhead.py [--hosts 20] [--rounds 3] [--forks 10] [--with-runner]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import Engine

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.keys import load_keyring
from infracms.models.run import Run, RunPublic
from infracms.plugins import Plugins
from infracms.runs.render import render
from infracms.services import auth, credentials, definitions, inventory, modules, organisations
from infracms.services import runs as run_service
from infracms.services.context import system_actor
from infracms.services.run_input import load_run_input
from infracms.services.setup import initialise
from tests.support.hosts import HostPool, TestHost
from tests.support.server import live_server

ORG = "bench"
PASSWORD = "bench-password-long"
ADMIN = system_actor("bench")
BASE_SETTINGS = {"timezone": "Europe/Berlin", "unattended_upgrades": False}
TARGET = 1.10
COMMON: dict[str, Any] = {
    "admin_password": PASSWORD,
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
}


@dataclass
class BenchNode:
    """An initialised node whose organisation `bench` manages the test hosts."""

    settings: Settings
    engine: Engine
    plugins: Plugins
    token: str
    key_path: Path


def make_node(directory: Path, hosts: Sequence[TestHost], key_path: Path) -> BenchNode:
    """A node on SQLite in `directory`: hosts in group `fleet`, a `base` definition on it,
    the pool's root key as the credential, and an owner's API token."""
    settings = Settings(data_dir=directory, **COMMON)
    engine = make_engine(settings)
    initialise(settings, engine)
    plugins = Plugins.load()
    with session_scope(engine, write=True) as session:
        organisations.create_organisation(session=session, actor=ADMIN, data={"name": ORG})
    with session_scope(engine, write=True) as session:
        modules.set_available(
            session=session, actor=ADMIN, plugins=plugins, name="base", available=True
        )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation=ORG, name="base"
        )
    with session_scope(engine, write=True) as session:
        credentials.create_credential(
            session=session,
            actor=ADMIN,
            keyring=load_keyring(settings),
            organisation=ORG,
            data={"name": "pool", "kind": "ssh_key", "secret": key_path.read_text()},
        )
    with session_scope(engine, write=True) as session:
        inventory.create_group(
            session=session, actor=ADMIN, organisation=ORG, data={"name": "fleet"}
        )
    for host in hosts:
        with session_scope(engine, write=True) as session:
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation=ORG,
                data={
                    "name": host.name,
                    "address": host.address,
                    "ssh_user": host.user,
                    "host_key": host.host_key,
                    "credential": "pool",
                    "groups": ["fleet"],
                },
            )
    with session_scope(engine, write=True) as session:
        definitions.create_definition(
            session=session,
            actor=ADMIN,
            plugins=plugins,
            organisation=ORG,
            data={
                "name": "base-fleet",
                "module": "base",
                "target": {"group": "fleet"},
                "settings": BASE_SETTINGS,
            },
        )
    return BenchNode(settings, engine, plugins, owner_token(settings, engine), key_path)


def owner_token(settings: Settings, engine: Engine) -> str:
    """An API token of the admin, as owner of `bench`."""
    with session_scope(engine, write=True) as session:
        result = auth.login(
            session=session, settings=settings, username="admin", password=PASSWORD, client="bench"
        )
        info = auth.session_info(session=session, raw_token=result.token)
        assert info is not None
        issued = auth.issue_token(
            session=session,
            actor=info.actor,
            data={"name": "bench", "role": "owner", "organisation": ORG},
        )
    return issued.token


@contextmanager
def serving(node: BenchNode, forks: int) -> Iterator[httpx.Client]:
    """`infracms serve` for the node (embedded executor); an API client with the token."""
    env = {
        "ANSIBLE_FORKS": str(forks),
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
    }
    with live_server(node.settings, env=env) as base:
        headers = {"Authorization": f"Bearer {node.token}"}
        with httpx.Client(
            base_url=f"{base}/api/v1/orgs/{ORG}", headers=headers, timeout=60, trust_env=False
        ) as client:
            yield client


def apply_via_api(
    client: httpx.Client, engine: Engine, poll: float = 0.1
) -> tuple[float, dict[str, Any]]:
    """POST an apply of everything and wait until the run has ended: (seconds, run).

    The end is read from the database, not through the server, so that watching costs
    the server nothing."""
    start = time.perf_counter()
    response = client.post("/runs", json={"kind": "apply"})
    response.raise_for_status()
    run_id = uuid.UUID(response.json()["id"])
    while True:
        with session_scope(engine) as session:
            run = session.get(Run, run_id)
            assert run is not None
            if run.status.finished:
                took = time.perf_counter() - start
                return took, RunPublic.model_validate(run).model_dump(mode="json")
        time.sleep(poll)


def check_run(run: dict[str, Any], hosts: int) -> None:
    """Fail loudly unless the run succeeded on every host and stored its events."""
    bad = {h: c for h, c in run["recap"].items() if c.get("failed") or c.get("unreachable")}
    if run["status"] != "succeeded" or len(run["recap"]) != hosts or bad:
        sys.exit(f"the infracms apply did not succeed: {run['status']} {run['error']} {bad}")
    if run["event_count"] <= hosts:
        sys.exit(f"the infracms apply stored only {run['event_count']} events")


@dataclass
class BarePlaybook:
    """A private data dir rendered by infracms, run with bare ansible-playbook."""

    directory: Path
    env: dict[str, str]
    key_file: Path
    args: list[str]

    def run(self, log: Path) -> tuple[float, float]:
        """Run it once with fresh ssh control sockets: its wall time and CPU seconds."""
        control = Path(tempfile.mkdtemp(prefix="icms-bare-", dir="/tmp"))
        env = {**self.env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control)}
        command = ["ansible-playbook", "-i", str(self.directory / "inventory")]
        command += ["--private-key", str(self.key_file), *self.args]
        try:
            with log.open("w") as out:
                cpu = children_cpu()
                start = time.perf_counter()
                done = subprocess.run(
                    command,
                    cwd=self.directory / "project",
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
                took = time.perf_counter() - start
                cpu = children_cpu() - cpu
        finally:
            _close_masters(control)
        if done.returncode != 0:
            sys.exit(f"bare ansible-playbook ended with rc {done.returncode}: see {log}")
        return took, cpu


def children_cpu() -> float:
    """CPU seconds of this process's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and its reaped children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def server_pid(client: httpx.Client) -> int:
    """The pid of the `infracms serve` listening on the client's port."""
    port = str(client.base_url.port)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [word.decode(errors="replace") for word in argv]
            if "serve" in words and "--port" in words and port in words:
                return int(entry.name)
    raise RuntimeError(f"no infracms serve process on port {port}")


def _close_masters(control: Path) -> None:
    """Stop the ssh masters of a bare run (infracms' wrapper does it for its runs)."""
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "bench"],
            capture_output=True,
            check=False,
            timeout=10,
        )
    shutil.rmtree(control, ignore_errors=True)


def bare_playbook(node: BenchNode, directory: Path, forks: int) -> BarePlaybook:
    """Render the data dir of an apply of everything, as the executor would, for bare use.

    The run is created through the service (pinning the same revisions), rendered, and
    cancelled while still queued so that the server never runs it."""
    with session_scope(node.engine, write=True) as session:
        run = run_service.create_run(
            session=session,
            actor=ADMIN,
            plugins=node.plugins,
            organisation=ORG,
            data={"kind": "apply"},
        )
    with session_scope(node.engine) as session:
        stored = session.get(Run, run.id)
        assert stored is not None
        loaded = load_run_input(
            session,
            run=stored,
            settings=node.settings,
            plugins=node.plugins,
            keyring=load_keyring(node.settings),
        )
    with session_scope(node.engine, write=True) as session:
        run_service.cancel_run(session=session, actor=ADMIN, organisation=ORG, run_id=run.id)
    spec = render(loaded.render, directory / "run")
    spec.cleanup()  # the bare runs make their own control directories
    key_file = directory / "key"
    key_file.write_text(spec.ssh_key or node.key_path.read_text())
    key_file.chmod(0o600)
    envvars = json.loads((spec.private_data_dir / "env" / "envvars").read_text())
    cmdline = (spec.private_data_dir / "env" / "cmdline").read_text().split()
    venv_bin = os.path.dirname(sys.executable)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "INFRACMS_"))},
        **envvars,
        "ANSIBLE_FORKS": str(forks),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return BarePlaybook(spec.private_data_dir, env, key_file, cmdline)


@contextmanager
def test_hosts(count: int) -> Iterator[tuple[list[TestHost], Path]]:
    """`count` sshd-mode hosts and the key that logs in as root on them."""
    with HostPool() as pool:
        started = time.perf_counter()
        hosts = pool.start_hosts(count, init="sshd")
        print(f"{count} sshd hosts up in {time.perf_counter() - started:.1f} s", flush=True)
        yield hosts, pool.key_path


def table(header: list[str], rows: list[list[str]]) -> None:
    """Print rows under a header, columns aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


RUNNER_SCRIPT = """
import sys, ansible_runner
directory, key, binary, control, forks, path = sys.argv[1:7]
runner = ansible_runner.run(
    private_data_dir=directory, playbook="apply.yml", binary=binary,
    ssh_key=open(key).read(), quiet=True, event_handler=lambda event: False,
    envvars={"PATH": path, "ANSIBLE_FORKS": forks, "ANSIBLE_SSH_CONTROL_PATH_DIR": control},
)
sys.exit(0 if runner.status == "successful" else 1)
"""


def runner_alone(bare: BarePlaybook, forks: int) -> tuple[float, float]:
    """ansible-runner alone (a Python process calling ansible_runner.run as infracms'
    adapter does) on the same data dir: wall and CPU seconds."""
    control = Path(tempfile.mkdtemp(prefix="icms-runner-", dir="/tmp"))
    binary = str(Path(sys.executable).with_name("ansible-playbook"))
    argv = [sys.executable, "-c", RUNNER_SCRIPT, str(bare.directory), str(bare.key_file)]
    argv += [binary, str(control), str(forks), bare.env["PATH"]]
    env = {k: v for k, v in bare.env.items() if not k.startswith("ANSIBLE_")}
    try:
        cpu = children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        took = time.perf_counter() - start
        cpu = children_cpu() - cpu
    finally:
        _close_masters(control)
    if done.returncode != 0:
        sys.exit(f"ansible-runner alone failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took, cpu


def _row(
    label: str,
    order: str,
    times: dict[str, list[float]],
    cpus: dict[str, list[float]],
    ratio: Callable[[dict[str, list[float]], str], float],
) -> list[str]:
    cells = [label, order]
    for values in (times, cpus):
        cells += [f"{statistics.median(v):.1f}" for v in values.values()]
        cells += [f"{ratio(values, side):.3f}x" for side in values if side != "bare"]
    return cells


def _last(values: dict[str, list[float]], side: str) -> float:
    return values[side][-1] / values["bare"][-1]


def _paired(values: dict[str, list[float]], side: str) -> float:
    """The median of the rounds' ratios (each pair ran back to back)."""
    return statistics.median(a / b for a, b in zip(values[side], values["bare"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="measured applies of each side")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument(
        "--with-runner", action="store_true", help="also ansible-runner alone, as a third side"
    )
    args = parser.parse_args()
    sides = ["bare", "infracms", *(["runner"] if args.with_runner else [])]
    times: dict[str, list[float]] = {side: [] for side in sides}
    cpus: dict[str, list[float]] = {side: [] for side in sides}
    rounds: list[list[str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        test_hosts(args.hosts) as (hosts, key_path),
    ):
        node = make_node(Path(tmp) / "node", hosts, key_path)
        bare = bare_playbook(node, Path(tmp) / "bare", args.forks)
        log = Path(tmp) / "bare.log"
        warm, _ = bare.run(log)
        print(f"warm-up bare apply (makes the changes): {warm:.1f} s", flush=True)
        with serving(node, args.forks) as client:
            pid = server_pid(client)
            for number in range(args.rounds):
                order = sides[number % len(sides) :] + sides[: number % len(sides)]
                for side in order:
                    if side == "bare":
                        took, cpu = bare.run(log)
                    elif side == "runner":
                        took, cpu = runner_alone(bare, args.forks)
                    else:
                        cpu = process_cpu(pid)
                        took, run = apply_via_api(client, node.engine)
                        cpu = process_cpu(pid) - cpu
                        check_run(run, args.hosts)
                    times[side].append(took)
                    cpus[side].append(cpu)
                    print(f"round {number + 1}: {side} {took:.1f} s, {cpu:.1f} CPU-s", flush=True)
                last = {side: [values[-1]] for side, values in times.items()}
                last_cpu = {side: [values[-1]] for side, values in cpus.items()}
                rounds.append(_row(str(number + 1), ", ".join(order), last, last_cpu, _last))
        node.engine.dispose()
    rounds.append(_row("median", "", times, cpus, _paired))
    others = [side for side in sides if side != "bare"]
    header = ["round", "order", *(f"{side} s" for side in sides)]
    header += [f"{side}/bare" for side in others]
    header += [f"{side} CPU-s" for side in sides] + [f"{side}/bare CPU" for side in others]
    print()
    table(header, rounds)
    ratio = _paired(times, "infracms")
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(
        f"\n{args.hosts} sshd-mode hosts, forks {args.forks}, SQLite, embedded executor; "
        f"ratios: median of the rounds' paired ratios; target infracms/bare <= {TARGET:.2f}x: "
        f"{verdict}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end"
    )


if __name__ == "__main__":
    main()
