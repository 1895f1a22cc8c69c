"""`ssh_hardening`: an OpenSSH server configuration that resists guessing and downgrades.

Writes the whole ``/etc/ssh/sshd_config``, checked with ``sshd -t`` before it replaces
the old one. The role refuses, before touching anything, a configuration that would
shut out the account infracms connects as.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from infracms.hookspecs import hookimpl
from infracms.modules.contract import Module, ModuleSettings, settings_as
from infracms.modules.fields import Port, UnixName, refuse_duplicates
from infracms.modules.targets import HostFacts, Plain, PlainMapping, Target

# What OpenSSH 9.2 (Debian 12) accepts; the defaults are the modern subset.
CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
KEX_ALGORITHMS = (
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
)
MACS = (
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
    "umac-128@openssh.com",
)


def _known(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    refuse_duplicates(values, what)
    return values


class SshHardeningSettings(ModuleSettings):
    """Settings of the `ssh_hardening` module."""

    port: Port = Field(default=22, description="the port sshd listens on")
    permit_root_login: Literal["no", "prohibit-password", "yes"] = Field(
        default="prohibit-password",
        description="root logins: no, with keys only (prohibit-password), or yes",
    )
    password_authentication: bool = Field(
        default=False, description="allow logins with a password (keys are always allowed)"
    )
    allow_users: list[UnixName] = Field(
        default_factory=list, max_length=100, description="only these users may log in (empty: any)"
    )
    allow_groups: list[UnixName] = Field(
        default_factory=list,
        max_length=100,
        description="only members of these groups may log in (empty: any)",
    )
    max_auth_tries: int = Field(default=3, ge=1, le=10, description="attempts per connection")
    login_grace_time: int = Field(
        default=30, ge=10, le=600, description="seconds to log in before the server hangs up"
    )
    client_alive_interval: int = Field(
        default=300, ge=0, le=3600, description="seconds between keep-alive probes (0: none)"
    )
    x11_forwarding: bool = Field(default=False, description="allow X11 forwarding")
    tcp_forwarding: bool = Field(default=False, description="allow TCP port forwarding")
    agent_forwarding: bool = Field(default=False, description="allow SSH agent forwarding")
    use_pam: bool = Field(
        default=True, description="use PAM for account and session checks (Debian's default)"
    )
    ciphers: list[str] = Field(
        default_factory=lambda: list(CIPHERS), min_length=1, description="ciphers, preferred first"
    )
    kex_algorithms: list[str] = Field(
        default_factory=lambda: list(KEX_ALGORITHMS[:6]),
        min_length=1,
        description="key exchange algorithms, preferred first",
    )
    macs: list[str] = Field(
        default_factory=lambda: list(MACS[:3]),
        min_length=1,
        description="message authentication codes, preferred first",
    )

    @field_validator("ciphers")
    @classmethod
    def _ciphers(cls, value: list[str]) -> list[str]:
        return _known(value, CIPHERS, "ciphers")

    @field_validator("kex_algorithms")
    @classmethod
    def _kex(cls, value: list[str]) -> list[str]:
        return _known(value, KEX_ALGORITHMS, "key exchange algorithms")

    @field_validator("macs")
    @classmethod
    def _macs(cls, value: list[str]) -> list[str]:
        return _known(value, MACS, "MACs")

    @field_validator("allow_users", "allow_groups")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        refuse_duplicates(value, "names")
        return value


class SshHardening(Module):
    """A hardened sshd configuration."""

    name = "ssh_hardening"
    version = "1.0.0"
    title = "SSH hardening"
    description = (
        "sshd without root password logins, with optional password authentication, "
        "allowed users and groups, a chosen port and modern ciphers."
    )
    settings = SshHardeningSettings
    role = Path(__file__).parent / "role"

    @classmethod
    def validate_settings(cls, settings: ModuleSettings, target: Target) -> dict[str, str]:
        """Refuse combinations that let root in with a password or contradict each other."""
        return refused_combinations(settings_as(SshHardeningSettings, settings))

    @classmethod
    def extra_variables(cls, settings: PlainMapping, host: HostFacts) -> dict[str, Plain]:
        """Tell the role whom infracms connects as, so that it refuses to shut that
        account out."""
        return {"connection_user": host.ssh_user or "root", "connection_port": host.ssh_port or 22}


def refused_combinations(settings: SshHardeningSettings) -> dict[str, str]:
    """The settings that together would leave the server open or shut: {field: why}."""
    problems: dict[str, str] = {}
    if settings.permit_root_login == "yes" and settings.password_authentication:
        problems["permit_root_login"] = (
            "root could log in with a password: choose prohibit-password (keys only) or no, "
            "or turn password_authentication off"
        )
    if (
        settings.allow_users
        and settings.permit_root_login != "no"
        and "root" not in (settings.allow_users)
    ):
        problems["allow_users"] = (
            "root may log in by permit_root_login but is not in allow_users: "
            "add root, or set permit_root_login to no"
        )
    if settings.password_authentication and not (settings.allow_users or settings.allow_groups):
        problems["password_authentication"] = (
            "password logins open to every account invite guessing: "
            "name the allow_users or allow_groups that may use them"
        )
    return problems


@hookimpl
def register_modules() -> list[type[Module]]:
    """Return the Module classes this package provides."""
    return [SshHardening]
