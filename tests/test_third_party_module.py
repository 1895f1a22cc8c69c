"""A module package installed from the tests tree is found through its entry point,
listed, enabled and used — in a fresh `infracms` process, as a user would see it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent / "dummy_module"
ROOT = Path(__file__).resolve().parents[1]

# Each test runs `infracms` in fresh processes (and pip installs the package once): a
# second process, so outside the fast tier; `make test` runs them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        cwd=build,
    )
    return target


def run(
    site: Path | None, data: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRACMS_")}
    env.update(
        INFRACMS_DATA_DIR=str(data),
        INFRACMS_ARGON2_TIME_COST="1",
        INFRACMS_ARGON2_MEMORY_KIB="1024",
    )
    # this checkout's infracms, whichever one the interpreter has installed
    env["PYTHONPATH"] = os.pathsep.join([*([str(site)] if site else []), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "infracms", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        cwd=data.parent,
    )


def test_installed_module_is_listed_enabled_and_used(site_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "var"
    assert run(site_dir, data, "init").returncode == 0
    without = run(None, data, "module", "list")
    assert "motd" not in without.stdout
    listed = run(site_dir, data, "module", "list")
    assert listed.returncode == 0, listed.stderr
    assert "motd\t0.3.0" in listed.stdout and "needs base >=1.0,<2" in listed.stdout
    for name in ("base", "motd"):
        assert run(site_dir, data, "module", "available", name).returncode == 0
    assert run(site_dir, data, "org", "create", "clinic").returncode == 0
    enabled = run(site_dir, data, "module", "enable", "clinic", "motd")
    assert enabled.returncode == 0, enabled.stderr
    assert "enabled base, motd in clinic" in enabled.stdout
    assert run(site_dir, data, "host", "add", "clinic", "web1", "10.0.0.1").returncode == 0
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    (definitions / "motd-web1.yaml").write_text(
        "module: motd\ntarget: {host: web1}\nsettings: {message: hi}\n"
    )
    imported = run(site_dir, data, "definition", "import", "clinic", str(definitions))
    assert imported.returncode == 0, imported.stderr
    shown = run(site_dir, data, "definition", "show", "clinic", "motd-web1")
    assert '"message": "hi"' in shown.stdout
    refused = run(site_dir, data, "module", "disable", "clinic", "motd")
    assert refused.returncode == 5 and "motd-web1" in refused.stderr
    (definitions / "motd-web1.yaml").write_text(
        "module: motd\ntarget: {host: web1}\nsettings: {message: forbidden}\n"
    )
    invalid = run(site_dir, data, "definition", "import", "clinic", str(definitions))
    assert invalid.returncode != 0 and "may not say 'forbidden' on host web1" in invalid.stderr


def test_installed_module_methods_are_called_for_it(site_dir: Path, tmp_path: Path) -> None:
    """The module's refuse_disable, in a fresh process: `sticky` keeps its motd."""
    data = tmp_path / "var"
    assert run(site_dir, data, "init").returncode == 0
    for name in ("base", "motd"):
        assert run(site_dir, data, "module", "available", name).returncode == 0
    for org in ("sticky", "loose"):
        assert run(site_dir, data, "org", "create", org).returncode == 0
        assert run(site_dir, data, "module", "enable", org, "motd").returncode == 0
    refused = run(site_dir, data, "module", "disable", "sticky", "motd")
    assert refused.returncode == 5 and "sticky organisations keep their motd" in refused.stderr
    assert run(site_dir, data, "module", "disable", "loose", "motd").returncode == 0


def test_a_broken_module_is_reported_and_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "broken_mod-0.1.dist-info").mkdir(parents=True)
    (site / "broken_mod-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-mod\nVersion: 0.1\n"
    )
    (site / "broken_mod-0.1.dist-info" / "entry_points.txt").write_text(
        "[infracms.modules]\nbroken = broken_mod\n"
    )
    (site / "broken_mod.py").write_text("raise RuntimeError('this module is broken')\n")
    data = tmp_path / "var"
    assert run(site, data, "init").returncode == 0
    listed = run(site, data, "module", "list")
    assert listed.returncode == 0
    assert (
        "skipped broken (broken_mod): cannot be imported: RuntimeError: this module is broken"
        in listed.stderr
    )


def test_a_misspelled_hook_fails_start_up(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "typo_mod-0.1.dist-info").mkdir(parents=True)
    (site / "typo_mod-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: typo-mod\nVersion: 0.1\n"
    )
    (site / "typo_mod-0.1.dist-info" / "entry_points.txt").write_text(
        "[infracms.modules]\ntypo = typo_mod\n"
    )
    (site / "typo_mod.py").write_text(
        "from infracms.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_module():\n    return []\n"
    )
    data = tmp_path / "var"
    assert run(site, data, "init").returncode == 0
    listed = run(site, data, "module", "list")
    assert listed.returncode != 0
    assert "register_module" in listed.stderr and "unknown hook" in listed.stderr


def test_a_module_written_for_the_per_module_hooks_stops_start_up(tmp_path: Path) -> None:
    """A plugin of earlier versions (a per-module hook with its name check) is refused
    at start-up with what to write instead, not run without its check."""
    site = tmp_path / "site"
    (site / "old_mod-0.1.dist-info").mkdir(parents=True)
    (site / "old_mod-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: old-mod\nVersion: 0.1\n"
    )
    (site / "old_mod-0.1.dist-info" / "entry_points.txt").write_text(
        "[infracms.modules]\nold = old_mod\n"
    )
    (site / "old_mod.py").write_text(
        "from infracms.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_modules():\n    return []\n\n"
        "@hookimpl\ndef validate_settings(module, settings, target):\n"
        "    if module.name != 'old':\n        return None\n    return {}\n"
    )
    data = tmp_path / "var"
    assert run(site, data, "init").returncode == 0
    listed = run(site, data, "module", "list")
    assert listed.returncode != 0
    assert "old (old_mod) implements the hook `validate_settings`" in listed.stderr
    assert "`validate_settings(cls, settings, target)`, a classmethod" in listed.stderr
    assert "docs/modules.md" in listed.stderr
