"""The ssh_hardening module: settings, the refusing hook, the role's lockout guard, sshd -t."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from infracms.modules.ssh_hardening.module import SshHardening, SshHardeningSettings
from infracms.modules.targets import HostFacts, Target
from infracms.plugins import Registry
from tests.modules.ansible import render, role_play, run_playbook
from tests.modules.conftest import refused_field
from tests.modules.samples import role_variables, sample

ROLE = Path(SshHardening.role)
TARGET = Target(kind="host", name="web1", organisation="coop")


def problems(registry: Registry, **data: Any) -> dict[str, str] | None:
    settings = SshHardeningSettings.model_validate(data)
    module = registry.modules["ssh_hardening"]
    return module.validate_settings(settings=settings, target=TARGET) or None


def test_defaults_are_hardened() -> None:
    settings = SshHardeningSettings.model_validate({})
    assert settings.port == 22
    assert settings.permit_root_login == "prohibit-password"
    assert settings.password_authentication is False
    assert settings.ciphers[0] == "chacha20-poly1305@openssh.com"
    assert "diffie-hellman-group14-sha256" not in settings.kex_algorithms


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"permit_root_login": "without-password"}, "permit_root_login"),
        ({"ciphers": ["3des-cbc"]}, "ciphers"),
        ({"ciphers": []}, "ciphers"),
        ({"macs": ["hmac-md5"]}, "macs"),
        ({"kex_algorithms": ["curve25519-sha256", "curve25519-sha256"]}, "kex_algorithms"),
        ({"allow_users": ["alice", "alice"]}, "allow_users"),
        ({"allow_groups": ["ssh users"]}, "allow_groups"),
        ({"max_auth_tries": 11}, "max_auth_tries"),
        ({"banner": "hello"}, "banner"),
    ],
)
def test_bad_values_are_refused(data: dict[str, Any], field: str) -> None:
    assert refused_field(SshHardeningSettings, data) == field


def test_hook_accepts_the_defaults(registry: Registry) -> None:
    assert problems(registry) is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"permit_root_login": "yes", "password_authentication": True, "allow_users": ["root"]},
            "permit_root_login",
        ),
        ({"allow_users": ["alice"]}, "allow_users"),
        ({"password_authentication": True}, "password_authentication"),
    ],
)
def test_hook_refuses_unsafe_combinations(
    registry: Registry, data: dict[str, Any], field: str
) -> None:
    found = problems(registry, **data)
    assert found is not None and field in found, found


def test_hook_accepts_root_keys_only_with_allowed_users(
    registry: Registry,
) -> None:
    assert problems(registry, permit_root_login="no", allow_users=["alice"]) is None
    assert problems(registry, permit_root_login="yes") is None  # keys only: passwords off


def test_extra_variables_name_the_connection(registry: Registry) -> None:
    settings = SshHardeningSettings().model_dump(mode="json")
    host = HostFacts(name="web1", ssh_user="admin", ssh_port=2222)
    found = registry.modules["ssh_hardening"].extra_variables(settings=settings, host=host)
    assert found == {"connection_user": "admin", "connection_port": 2222}


def test_config_lists_the_settings(tmp_path: Path) -> None:
    text = render(ROLE, "sshd_config.j2", role_variables(SshHardening), tmp_path)
    lines = text.splitlines()
    assert "PermitRootLogin prohibit-password" in lines
    assert "PasswordAuthentication no" in lines
    assert "AllowUsers root alice" in lines
    assert lines[-1] == "Include /etc/ssh/sshd_config.d/*.conf"


@pytest.mark.slow
def test_config_passes_sshd_t(tmp_path: Path) -> None:
    settings = sample("ssh_hardening") | {"port": 2222, "allow_groups": ["adm"], "use_pam": False}
    config = tmp_path / "sshd_config"
    config.write_text(
        render(ROLE, "sshd_config.j2", role_variables(SshHardening, settings), tmp_path)
    )
    # sshd -t wants /run/sshd: give it one in a private mount namespace.
    script = f"mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -t -f {config}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_role_refuses_to_shut_out_the_connecting_account(tmp_path: Path) -> None:
    variables = role_variables(SshHardening, {"permit_root_login": "no"})
    variables["ssh_hardening"] |= {"connection_user": "root", "connection_port": 22}
    run = run_playbook(role_play(ROLE), variables, tmp_path, "--check")
    assert run.returncode != 0
    assert "infracms connects to this host as root" in run.output
