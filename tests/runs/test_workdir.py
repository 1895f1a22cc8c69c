"""Run directories: in a 0700 directory of the user's, swept when their process is gone;
ansible-playbook's environment; the inventory handed over through a named pipe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from infracms.runs import workdir
from infracms.runs.adapter import InventoryPipe, minimal_env


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def _holding(path: Path) -> subprocess.Popen[bytes]:
    """A process whose command line names `path`, as an ssh master's does."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(path)])


def test_run_dirs_live_in_a_private_directory_in_memory() -> None:
    root = workdir.root()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700 and root.stat().st_uid == os.geteuid()
    if Path("/dev/shm").is_dir() and not os.environ.get("XDG_RUNTIME_DIR"):
        assert root.parent == Path("/dev/shm")
    directory = workdir.new_run_dir()
    assert directory.parent == root and not directory.exists()
    assert directory.name.startswith(f"{os.getpid()}.")
    assert len(str(directory / "cp" / "0123456789.XXXXXXXXXXXXXXXX")) < 108  # ssh's limit


def test_sweep_removes_dead_runs_and_ends_their_processes() -> None:
    root = workdir.root()
    dead = root / f"{_dead_pid()}.12345-abcdef"
    (dead / "cp").mkdir(parents=True)
    (dead / "secret").write_text("left by a killed run")
    mine = workdir.new_run_dir()
    (mine / "cp").mkdir(parents=True)
    master = _holding(dead / "cp" / "socket")
    alive = _holding(mine / "cp" / "socket")
    try:
        assert workdir.sweep() >= 1
        assert master.wait(timeout=10) is not None
        assert not dead.exists()
        assert mine.exists() and alive.poll() is None  # this process's run is left alone
    finally:
        for process in (alive, master):
            process.kill()
            process.wait()
        workdir.remove(mine)
    assert not mine.exists()


def test_a_reused_pid_does_not_keep_a_dead_run() -> None:
    stale = workdir.root() / f"{os.getpid()}.1-abcdef"  # this pid, another process's start
    stale.mkdir()
    workdir.sweep()
    assert not stale.exists()


def test_ansible_gets_nothing_of_the_servers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRACMS_SECRET_KEY", "the-key-to-everything")
    monkeypatch.setenv("SOME_MARKER", "marker-value")
    prepared = {**os.environ, "RUNNER_OMIT_EVENTS": "False", "ANSIBLE_STDOUT_CALLBACK": "x"}
    env = minimal_env(prepared, {"ANSIBLE_PIPELINING": "True", "PATH": "/usr/bin"})
    assert "INFRACMS_SECRET_KEY" not in env and "SOME_MARKER" not in env
    assert "the-key-to-everything" not in repr(env) and "marker-value" not in repr(env)
    assert env["ANSIBLE_PIPELINING"] == "True" and env["PATH"] == "/usr/bin"
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display" and env["RUNNER_OMIT_EVENTS"] == "False"
    assert set(env) <= {*os.environ.keys() & {"HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ"},
                        "LANG", "ANSIBLE_PIPELINING", "PATH", "ANSIBLE_STDOUT_CALLBACK",
                        "ANSIBLE_CALLBACK_PLUGINS", "RUNNER_OMIT_EVENTS"}  # fmt: skip


def test_the_inventory_is_read_from_memory_once(tmp_path: Path) -> None:
    path = tmp_path / "hosts.json"
    data = b"x" * 300_000  # more than a pipe holds
    with InventoryPipe(path, data):
        assert stat.S_ISFIFO(path.stat().st_mode)
        assert path.read_bytes() == data
        second: list[bytes] = []
        reader = threading.Thread(target=lambda: second.append(path.read_bytes()), daemon=True)
        reader.start()
        reader.join(timeout=0.5)
        assert reader.is_alive()  # handed out once; nobody else gets it
    reader.join(timeout=5)
    assert second == [b""] and not path.exists()


def test_an_unread_inventory_pipe_does_not_hang(tmp_path: Path) -> None:
    with InventoryPipe(tmp_path / "hosts.json", b"{}") as pipe:
        pass
    assert not pipe.thread.is_alive()
