"""Settings, read from the environment with the ``INFRACMS_`` prefix.

Nothing is read at import time: call :func:`get_settings` (cached) or build a
:class:`Settings` yourself in tests.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "placeholder", "xxx"}
)
SMTP_FROM_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


class Settings(BaseSettings):
    """Everything a node is configured with."""

    model_config = SettingsConfigDict(env_prefix="INFRACMS_", extra="ignore")

    environment: Literal["development", "production"] = "production"
    data_dir: Path = Path("var")
    database_url: str | None = None
    broker_url: str | None = None
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    identity_key_file: Path | None = None
    admin_password: SecretStr | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8000, ge=1, le=65535)
    node_name: str = "infracms.local"
    base_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    import_max_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="the most bytes a definition import reads, all its files together",
    )
    login_attempts: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    session_hours: int = Field(default=12, ge=1)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    log_level: str = "info"
    run_stale_seconds: int = Field(
        default=60, ge=2, description="a running run with no heartbeat for this long is failed"
    )
    allow_node_target: bool = Field(
        default=False,
        description="allow hosts at loopback, link-local or the node's own addresses",
    )
    min_witnesses: int | None = Field(
        default=None, ge=0, description="peers' cosignatures a checkpoint needs (the audit pages)"
    )
    require_totp_for_admins: bool = Field(
        default=False,
        description="node admins must enrol TOTP before any other page or API call",
    )
    metrics_listen: str | None = Field(
        default=None,
        description="host:port of a separate /metrics listener without auth (else a node token)",
    )
    # What one peer may ask of this node (federation/PROTOCOL.md section 8.1).
    peer_requests_per_minute: int = Field(
        default=120, ge=1, description="signed requests one peer may send a minute (then 429)"
    )
    peer_max_pending: int = Field(
        default=20, ge=1, description="provision requests one client may leave awaiting consent"
    )
    # Notifications (services/notification_delivery.py): webhooks and email over SMTP.
    notify_allow_private_targets: bool = Field(
        default=False, description="allow webhooks to loopback, link-local and private addresses"
    )
    notify_max_attempts: int = Field(default=12, ge=1, description="then a delivery is failed")
    notify_backoff_seconds: float = Field(default=2.0, ge=0, description="the first retry's wait")
    notify_backoff_cap_seconds: float = Field(default=900.0, ge=0, description="the longest wait")
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_ca_file: Path | None = Field(
        default=None, description="CA certificates to trust for the SMTP server (else the system's)"
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.secret_key is None or self.environment == "development":
            return self
        value = self.secret_key.get_secret_value()
        if value.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "INFRACMS_SECRET_KEY is a placeholder: generate one with `infracms init`"
            )
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("INFRACMS_SECRET_KEY must be base64 of 32 random bytes") from exc
        if len(raw) != 32:
            raise ValueError(f"INFRACMS_SECRET_KEY decodes to {len(raw)} bytes, expected 32")
        return self

    @model_validator(mode="after")
    def _metrics_listen_address(self) -> Settings:
        if self.metrics_listen is not None:
            self.metrics_address  # noqa: B018 - raises ValueError if it does not parse
        return self

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``INFRACMS_METRICS_LISTEN`` as (host, port): ``host:port`` or ``[v6]:port``."""
        if not self.metrics_listen:
            return None
        host, sep, port = self.metrics_listen.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"INFRACMS_METRICS_LISTEN is {self.metrics_listen!r}, expected host:port"
            )
        return host, int(port)

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if self.smtp_host is None:
            return self
        if not self.smtp_host.strip() or any(ch.isspace() for ch in self.smtp_host):
            raise ValueError("INFRACMS_SMTP_HOST must be a host name or address")
        if not self.smtp_from or not SMTP_FROM_RE.fullmatch(self.smtp_from):
            raise ValueError("INFRACMS_SMTP_FROM must be the sender's email address")
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("INFRACMS_SMTP_USER and INFRACMS_SMTP_PASSWORD go together")
        if self.smtp_user is not None and self.smtp_security == "none":
            raise ValueError(
                "INFRACMS_SMTP_SECURITY=none would send the SMTP password in clear: "
                "use starttls or tls"
            )
        if self.smtp_ca_file is not None and not self.smtp_ca_file.is_file():
            raise ValueError(f"INFRACMS_SMTP_CA_FILE {self.smtp_ca_file} is not a file")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'infracms.db').resolve()}"

    @property
    def resolved_secret_key_file(self) -> Path:
        """Where the encryption key file lives."""
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def resolved_identity_key_file(self) -> Path:
        """Where the node's Ed25519 identity key lives."""
        return self.identity_key_file or self.data_dir / "node_ed25519.pem"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the Secure flag when the node is served over TLS."""
        return self.base_url.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
