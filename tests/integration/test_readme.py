"""Every command of the README, as written, on a fresh node and a real host.

The test reads the README's ``sh`` blocks and runs each line with bash, in order, in an
empty working directory, with what the README says the walkthrough needs: a Debian host
at 198.51.100.10 (a test host, given that address) whose root logs in with the password
in ``web1-root.password``, ``~/.ssh/id_ed25519``, ``olga.password``, and the definition
file of the README's ``yaml`` block, written where its first line says.

What the reader types themselves is given as the README says: ``SHA256:…`` is the
fingerprint read on the host's own console (here: the host's key file, read inside the
host, not over the network). Before ``host rekey`` the host is rebuilt (new host keys),
which is when the README says to run it. ``infracms serve`` runs until it answers
/healthz, then is stopped. ``make`` lines are not run here: ``make lint`` and
``make test`` are what CI runs (this test among them), ``make test-fast`` is a subset of
``make test``, and ``make run`` is ``infracms init`` then ``infracms serve`` (checked
below), both run here. Lines marked ``# on node A`` / ``# on node B`` run on two nodes:
A is the walkthrough's node, served meanwhile, B a second node.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.hosts import TestHost
from tests.support.server import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = REPO_ROOT / "README.md"
BLOCK = re.compile(r"^```(sh|yaml)\n(.*?)^```", re.S | re.M)
HOST_ADDRESS = "198.51.100.10"
TYPED = "SHA256:…"
LINE_TIMEOUT = 600


def readme_blocks() -> list[tuple[str, str]]:
    """The README's ``sh`` and ``yaml`` blocks, in order: (language, text)."""
    return [(lang, text) for lang, text in BLOCK.findall(README.read_text())]


def commands(text: str) -> list[str]:
    """The command lines of an ``sh`` block (comment lines and blank lines left out)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass
class Walkthrough:
    """Where the README's commands run, and what the reader has beside them."""

    work: Path
    env: dict[str, str]
    host: TestHost
    ran: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """The host key's fingerprint, as the host's console shows it."""
        shown = self.host.run(["ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"])
        return shown.stdout.split()[1]

    def run(self, line: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """One README line, with bash, as the reader runs it; exports carry over."""
        typed = line.replace(TYPED, self.fingerprint())
        script = f"{typed}\nexport -p > .exports"
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"set -a; . ./.exports 2>/dev/null; set +a; {script}"],
            cwd=self.work,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT,
        )
        self.ran.append(line)
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"`{line}`:\n{done.stderr[-3000:]}"
        return done


@pytest.fixture(scope="module")
def walkthrough(
    tmp_path_factory: pytest.TempPathFactory, module_hosts: Callable[..., list[TestHost]]
) -> Iterator[Walkthrough]:
    [host] = module_hosts(1)
    root = tmp_path_factory.mktemp("readme")
    work, home = root / "work", root / "home"
    (home / ".ssh").mkdir(parents=True)
    work.mkdir()
    (home / ".ssh" / "id_ed25519").write_bytes(host.key_path.read_bytes())
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    password = f"root-{secrets.token_urlsafe(12)}"
    host.run("rm -f /root/.ssh/authorized_keys", check=True)  # the password is the way in
    host.allow_password_login(password)
    (work / "web1-root.password").write_text(password + "\n")
    (work / "olga.password").write_text("olga-long-password-1\n")
    for lang, text in readme_blocks():
        if lang == "yaml" and text.startswith("# "):
            target = work / text.splitlines()[0].removeprefix("# ").strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")},
        "HOME": str(home),
        "INFRACMS_ARGON2_TIME_COST": "1",
        "INFRACMS_ARGON2_MEMORY_KIB": "1024",
        "INFRACMS_LISTEN_PORT": str(port),
        "INFRACMS_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with _address(host, HOST_ADDRESS):
        yield Walkthrough(work, env, host)


@contextlib.contextmanager
def _address(host: TestHost, address: str) -> Iterator[None]:
    """`host` answers at `address` too (a route to it through the host's bridge address)."""
    subprocess.run(
        ["ip", "netns", "exec", host.name, "ip", "addr", "add", f"{address}/32", "dev", "eth0"],
        check=True,
    )
    subprocess.run(["ip", "route", "replace", f"{address}/32", "via", host.address], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "route", "del", f"{address}/32"], check=False)


@contextlib.contextmanager
def served(line: str, work: Path, env: dict[str, str]) -> Iterator[str]:
    """`line` (an `infracms serve`) run in the background until it answers /healthz."""
    base_url = env["INFRACMS_BASE_URL"]
    process = subprocess.Popen(
        ["bash", "-c", f"set -a; . ./.exports 2>/dev/null; set +a; exec {line}"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"`{line}` exited {process.returncode}"
            assert time.monotonic() < deadline, f"`{line}` did not answer in 90 s"
            with contextlib.suppress(OSError), opener.open(f"{base_url}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
            time.sleep(0.3)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def node_b(walkthrough: Walkthrough) -> Walkthrough:
    """A second node, initialised, working in a directory of its own."""
    work = walkthrough.work.parent / "b"
    work.mkdir()
    env = {
        **walkthrough.env,
        "INFRACMS_DATA_DIR": str(work / "var"),
        "INFRACMS_NODE_NAME": "b.test",
        "INFRACMS_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    b = Walkthrough(work, env, walkthrough.host)
    b.run("infracms init")  # the node exists before the README's lines on it
    b.ran.clear()
    return b


def rebuild_host_keys(host: TestHost) -> None:
    """As a rebuilt machine: new SSH host keys."""
    host.run(
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -t ed25519 -N '' "
        "-f /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh",
        check=True,
    )


def test_make_run_is_init_then_serve() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(r"^run: .*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "no run target"
    steps = [step.strip() for step in recipe.group(1).splitlines()]
    assert steps == ["$(BIN)/infracms init", "$(BIN)/infracms serve"]


def test_every_command_of_the_readme_runs_as_written(walkthrough: Walkthrough) -> None:
    b: Walkthrough | None = None
    a_served: contextlib.ExitStack | None = None
    lines = [line for lang, text in readme_blocks() if lang == "sh" for line in commands(text)]
    skipped = []
    for line in lines:
        if line.startswith("make "):
            skipped.append(line)
        elif line.startswith("infracms serve"):
            with served(line, walkthrough.work, walkthrough.env):
                walkthrough.ran.append(line)
        elif "# on node B" in line or (b is not None and "# on node A" not in line):
            if b is None:
                b = node_b(walkthrough)
                a_served = contextlib.ExitStack()
                a_served.enter_context(served("infracms serve", walkthrough.work, walkthrough.env))
                for carried in walkthrough.work.glob("*.txt"):  # given to B's admin
                    (b.work / carried.name).write_bytes(carried.read_bytes())
            b.run(line)
        else:
            if "host rekey" in line:
                rebuild_host_keys(walkthrough.host)
            walkthrough.run(line)
    if a_served is not None:
        a_served.close()
    ran = walkthrough.ran + (b.ran if b else [])
    assert sorted(ran + skipped) == sorted(lines)
    assert all(line.split()[1] in ("run", "test", "test-fast", "lint") for line in skipped)
    assert b is not None, "the federation block ran on one node only"
