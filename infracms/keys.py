"""The node's key files: its Ed25519 identity and the keyring that encrypts secrets at rest.

Secrets are sealed with AES-256-GCM (an authenticated cipher). A sealed value reads
``v1.<key id>.<base64 nonce+ciphertext>`` and is bound to what it belongs to through
the associated data, so a ciphertext moved to another row does not open. The keyring
may hold several keys while a rotation is under way; new values use the primary one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infracms.config import Settings
from infracms.errors import ConfigurationError, SecretError

SEALED_PREFIX = "v1"


def key_id(key: bytes) -> str:
    """A short, stable name for a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id, and which one seals new values."""

    primary: str
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def generate(cls) -> Keyring:
        """A keyring with one fresh random key."""
        key = AESGCM.generate_key(bit_length=256)
        return cls(primary=key_id(key), keys={key_id(key): key})

    def with_new_primary(self) -> Keyring:
        """This keyring plus a fresh key that becomes the primary one."""
        key = AESGCM.generate_key(bit_length=256)
        return Keyring(primary=key_id(key), keys={**self.keys, key_id(key): key})

    def only_primary(self) -> Keyring:
        """This keyring without its old keys."""
        return Keyring(primary=self.primary, keys={self.primary: self.keys[self.primary]})

    def seal(self, plaintext: str, *, context: str) -> str:
        """Encrypt `plaintext` for the row named by `context`."""
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.keys[self.primary]).encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return f"{SEALED_PREFIX}.{self.primary}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, context: str) -> str:
        """Decrypt a value sealed for `context`; raises SecretError if it does not open."""
        try:
            version, kid, body = sealed.split(".", 2)
            raw = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise SecretError("sealed value is malformed") from exc
        if version != SEALED_PREFIX:
            raise SecretError(f"sealed value has version {version!r}, expected {SEALED_PREFIX!r}")
        if kid not in self.keys:
            raise SecretError(f"sealed with key {kid}, which is not in the keyring")
        try:
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretError(f"sealed value for {context} does not authenticate") from exc

    def sealed_with_primary(self, sealed: str) -> bool:
        """Whether a sealed value already uses the primary key."""
        return sealed.split(".", 2)[1:2] == [self.primary]

    def to_json(self) -> str:
        """The keyring file's content."""
        keys = {kid: base64.b64encode(key).decode() for kid, key in self.keys.items()}
        return json.dumps({"version": 1, "primary": self.primary, "keys": keys}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse a keyring file's content."""
        try:
            data = json.loads(text)
            keys = {
                kid: base64.b64decode(value, validate=True) for kid, value in data["keys"].items()
            }
            primary = data["primary"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError("the secret key file is not a valid keyring") from exc
        if primary not in keys or any(len(key) != 32 for key in keys.values()):
            raise ConfigurationError("the secret key file names a missing or short key")
        return cls(primary=primary, keys=keys)


def write_private_file(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only, atomically (a crash leaves old or new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_keyring(settings: Settings) -> Keyring:
    """The keyring from INFRACMS_SECRET_KEY, or else from the key file."""
    if settings.secret_key is not None:
        key = base64.b64decode(settings.secret_key.get_secret_value())
        return Keyring(primary=key_id(key), keys={key_id(key): key})
    path = settings.resolved_secret_key_file
    if not path.exists():
        raise ConfigurationError(f"no secret key file at {path}: run `infracms init`")
    return Keyring.from_json(path.read_text())


def save_keyring(settings: Settings, keyring: Keyring) -> None:
    """Replace the key file with `keyring`."""
    if settings.secret_key is not None:
        raise ConfigurationError(
            "the key comes from INFRACMS_SECRET_KEY: use a key file to rotate in place"
        )
    write_private_file(settings.resolved_secret_key_file, keyring.to_json().encode())


def ensure_keyring(settings: Settings) -> bool:
    """Create the key file if there is none (and no key in the environment)."""
    if settings.secret_key is not None or settings.resolved_secret_key_file.exists():
        return False
    save_keyring(settings, Keyring.generate())
    return True


def ensure_identity(settings: Settings) -> bool:
    """Create the node's Ed25519 identity key if there is none."""
    path = settings.resolved_identity_key_file
    if path.exists():
        return False
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem)
    return True


def load_identity(settings: Settings) -> Ed25519PrivateKey:
    """The node's Ed25519 identity key."""
    path = settings.resolved_identity_key_file
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"no identity key at {path}: run `infracms init`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} is not an Ed25519 private key")
    return key


AUDIT_KEY_FILE = "audit-hmac.key"
AUDIT_KEY_BYTES = 32


def audit_key_path(settings: Settings) -> Path:
    """Where the key that HMACs secrets in audit payloads lives."""
    return settings.data_dir / AUDIT_KEY_FILE


def ensure_audit_key(settings: Settings) -> bool:
    """Create the audit HMAC key file if there is none."""
    path = audit_key_path(settings)
    if path.exists():
        return False
    write_private_file(path, base64.b64encode(secrets.token_bytes(AUDIT_KEY_BYTES)) + b"\n")
    return True


def load_audit_key(settings: Settings) -> bytes:
    """The key that replaces secrets in audit payloads by an HMAC (``audit.entry.redact``)."""
    path = audit_key_path(settings)
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"no audit key at {path}: run `infracms init`") from exc
    except binascii.Error as exc:
        raise ConfigurationError(f"{path} is not base64") from exc
    if len(key) != AUDIT_KEY_BYTES:
        raise ConfigurationError(f"{path} holds {len(key)} bytes, expected {AUDIT_KEY_BYTES}")
    return key


def node_ssh_key_path(settings: Settings) -> Path:
    """Where the node's own SSH key (used for hosts without a credential) lives."""
    return settings.data_dir / "node_ssh_ed25519"


def ensure_node_ssh_key(settings: Settings) -> bool:
    """Create the node's SSH key pair if there is none."""
    path = node_ssh_key_path(settings)
    if path.exists():
        return False
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    write_private_file(path, private)
    return True


def load_node_ssh_key(settings: Settings) -> tuple[str, str]:
    """The node's SSH private key (OpenSSH text) and its public key line."""
    path = node_ssh_key_path(settings)
    try:
        private = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigurationError(f"no node SSH key at {path}: run `infracms init`") from exc
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} infracms@{settings.node_name}"
