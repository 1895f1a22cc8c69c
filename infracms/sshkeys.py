"""SSH key parsing: host keys to pin and private keys to hold, with their fingerprints."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

SUPPORTED_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def fingerprint_of_blob(blob: bytes) -> str:
    """The OpenSSH SHA256 fingerprint of a public key blob, as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def normalise_host_key(value: str) -> str:
    """A host key as `type base64`, checked to be a public key of a supported type.

    Accepts a `known_hosts` line (with host names in front) or a `.pub` line (with a
    comment after).
    """
    words = value.strip().split()
    for position, word in enumerate(words):
        if word in SUPPORTED_HOST_KEY_TYPES and position + 1 < len(words):
            key_type, blob = word, words[position + 1]
            break
    else:
        raise ValueError(
            "is not an SSH public key: expected e.g. 'ssh-ed25519 AAAA...' "
            f"with a type among {', '.join(SUPPORTED_HOST_KEY_TYPES)}"
        )
    try:
        serialization.load_ssh_public_key(f"{key_type} {blob}".encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a valid {key_type} public key") from exc
    return f"{key_type} {blob}"


def host_key_fingerprint(host_key: str) -> str:
    """The SHA256 fingerprint of a normalised host key."""
    return fingerprint_of_blob(base64.b64decode(host_key.split()[1]))


class KeyNeedsPassphrase(ValueError):
    """The private key is encrypted and no passphrase (or a wrong one) was given."""


@dataclass(frozen=True)
class PrivateKey:
    """A private key as it is stored: its text normalised, its public half and fingerprint."""

    text: str = field(repr=False)
    public_key: str | None
    fingerprint: str | None


def normalise_private_key(text: str, passphrase: str | None = None) -> PrivateKey:
    """Parse an OpenSSH or PEM private key as pasted or read from a file.

    Line endings become LF (browsers send a textarea's lines with CRLF, which libcrypto
    refuses), blank edges go and one trailing newline is ensured. An encrypted key is
    opened with `passphrase` and kept decrypted in OpenSSH format: runs hand keys to ssh
    through an agent that nobody can type a passphrase into, and the stored copy is
    sealed under the node's key anyway. Raises ValueError (KeyNeedsPassphrase when the
    key is encrypted and the passphrase is missing or wrong) with what to do.
    """
    data = "\n".join(text.replace("\r\n", "\n").replace("\r", "\n").strip().splitlines()) + "\n"
    raw = data.encode()
    password = passphrase.encode() if passphrase else None
    try:
        key = _load_private(raw, None)
        encrypted = False
    except TypeError:  # "Password was not given but private key is encrypted"
        encrypted = True
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(
            "is not an SSH private key: paste the whole key, from its -----BEGIN line "
            "to its -----END line (OpenSSH or PEM format)"
        ) from exc
    if encrypted:
        if password is None:
            raise KeyNeedsPassphrase("is encrypted: give its passphrase")
        key = _open_encrypted(raw, password)
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return PrivateKey(data, public, fingerprint_of_blob(base64.b64decode(public.split()[1])))


def _load_private(data: bytes, password: bytes | None) -> Any:
    """An OpenSSH or PEM private key (each loader types its own)."""
    if b"OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, password=password)
    return serialization.load_pem_private_key(data, password=password)


def _open_encrypted(data: bytes, password: bytes) -> Any:
    """An encrypted private key opened with its passphrase."""
    try:
        return _load_private(data, password)
    except UnsupportedAlgorithm as exc:  # OpenSSH's own format needs bcrypt's KDF
        raise ValueError(
            "is encrypted in OpenSSH's format, which this node cannot open: remove the "
            "passphrase from a copy (ssh-keygen -p -N '' -f COPY) and paste that; it is "
            "stored encrypted under the node's key"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise KeyNeedsPassphrase("does not open with this passphrase") from exc
