"""The backup module: settings, offerings, and the files its role writes, used by real restic."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infracms.modules.backup.module import Backup, BackupSettings
from infracms.plugins import Registry
from tests.modules.ansible import render_all
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import SECRETS, role_variables, sample

ROLE = Path(Backup.role)


def backup(**fields: Any) -> dict[str, Any]:
    return {
        "repository": "sftp:backup@store.example:/srv/restic/web1",
        "password": {"$credential": "restic"},
    } | fields


def test_defaults() -> None:
    settings = BackupSettings.model_validate(backup())
    assert settings.schedule == "daily" and settings.paths[0] == "/etc"
    assert (
        settings.keep_daily,
        settings.keep_weekly,
        settings.keep_monthly,
        settings.keep_yearly,
    ) == (7, 4, 6, 0)
    assert Backup.secret_fields() >= {"password"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"repository": "ftp://files.example/backup"}, "repository"),
        ({"repository": "/srv/my backups"}, "repository"),
        ({"repository": "s3:host/bucket$(reboot)"}, "repository"),
        ({"password": "hunter2"}, "password"),
        ({"password": {"$vault": "x"}}, "password"),
        ({"s3_access_key_id": "AKIAEXAMPLE1"}, "s3_secret_access_key"),
        ({"s3_secret_access_key": {"$credential": "s3"}}, "s3_secret_access_key"),
        (
            {"s3_access_key_id": "short", "s3_secret_access_key": {"$credential": "s3"}},
            "s3_access_key_id",
        ),
        ({"paths": []}, "paths"),
        ({"paths": ["relative/dir"]}, "paths"),
        ({"paths": ["/etc", "/etc"]}, "paths"),
        ({"exclude": ["a\nb"]}, "exclude"),
        ({"schedule": "daily; reboot"}, "schedule"),
        ({"schedule": "%H"}, "schedule"),
        ({"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, "keep_yearly"),
        ({"keep_daily": -1}, "keep_daily"),
        ({"randomized_delay_minutes": 2000}, "randomized_delay_minutes"),
    ],
)
def test_bad_values_are_refused(fields: dict[str, Any], field: str) -> None:
    assert refused_field(BackupSettings, backup(**fields)) == field, errors_of(
        BackupSettings, backup(**fields)
    )


def test_offerings(registry: Registry) -> None:
    (offering,) = registry.modules["backup"].offerings
    assert offering.name == "offsite-backup"
    assert [
        (plan.name, plan.parameters["properties"]["quota_gb"]["const"]) for plan in offering.plans
    ] == [
        ("small", 100),
        ("large", 1000),
    ]
    for plan in offering.plans:
        assert plan.parameters["required"] == ["name", "ssh_public_key"]


def _files(tmp_path: Path, settings: dict[str, Any], directory: Path) -> dict[str, str]:
    variables = role_variables(Backup, settings) | {"backup_dir": str(directory)}
    names = ("env", "paths", "excludes", "backup.service", "backup.timer")
    rendered = render_all(ROLE, [f"{name}.j2" for name in names], variables, tmp_path)
    return {name: rendered[f"{name}.j2"] for name in names}


def test_env_file_keeps_secrets_exact(tmp_path: Path) -> None:
    """Quotes, backslashes and dollars in secrets survive systemd's EnvironmentFile quoting."""
    settings = sample("backup") | {
        "repository": "s3:s3.example.org/bucket",
        "s3_access_key_id": "AKIAEXAMPLE1",
        "s3_secret_access_key": {"$credential": "restic"},
    }
    env = _files(tmp_path, settings, Path("/etc/infracms/backup"))["env"]
    # The escapes used (\\ \" \$ \`) mean the same in sh as in systemd's EnvironmentFile.
    script = f"set -a; . /dev/stdin <<'END'\n{env}\nEND\nprintf %s \"$AWS_SECRET_ACCESS_KEY\""
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == SECRETS["restic"]
    assert 'RESTIC_REPOSITORY="s3:s3.example.org/bucket"' in env.splitlines()


def test_units(tmp_path: Path) -> None:
    files = _files(tmp_path, sample("backup") | {"keep_yearly": 2}, Path("/etc/infracms/backup"))
    service = files["backup.service"]
    assert (
        "ExecStartPost=/usr/bin/restic forget --prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --keep-yearly 2"
        in service
    )
    assert "OnCalendar=*-*-* 02:30:00" in files["backup.timer"]
    assert files["paths"].splitlines() == ["/etc", "/srv/www"]


@pytest.mark.slow
def test_units_pass_systemd_analyze(tmp_path: Path) -> None:
    files = _files(tmp_path, sample("backup"), Path("/etc/infracms/backup"))
    units = tmp_path / "units"
    units.mkdir()
    for kind in ("service", "timer"):
        (units / f"infracms-backup.{kind}").write_text(files[f"backup.{kind}"])
    done = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(units / "infracms-backup.service"),
            str(units / "infracms-backup.timer"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_service_commands_back_up_with_real_restic(tmp_path: Path) -> None:
    """The service's ExecStart and ExecStartPost lines, run as written, back up and prune."""
    data = tmp_path / "data"
    (data / "keep").mkdir(parents=True)
    (data / "keep/file.txt").write_text("kept")
    (data / "scratch.tmp").write_text("left out")
    directory = tmp_path / "etc"
    directory.mkdir()
    settings = sample("backup") | {"repository": str(tmp_path / "repo"), "paths": [str(data)]}
    files = _files(tmp_path, settings, directory)
    for name in ("env", "paths", "excludes"):
        (directory / name).write_text(files[name])
    (directory / "password").write_text(SECRETS["restic"] + "\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for line in files["env"].splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = shlex.split(value)[0]
    env["RESTIC_CACHE_DIR"] = str(tmp_path / "cache")
    subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
    for line in files["backup.service"].splitlines():
        if line.startswith(("ExecStart=", "ExecStartPost=")):
            command = shlex.split(line.split("=", 1)[1])
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{command}: {done.stderr}"
    listing = subprocess.run(
        ["restic", "ls", "latest"], env=env, capture_output=True, text=True, check=True
    )
    assert str(data / "keep/file.txt") in listing.stdout
    assert "scratch.tmp" not in listing.stdout
