"""SSH key parsing: host keys to pin and private keys to hold, with their fingerprints."""

from __future__ import annotations

import base64
import hashlib

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


def private_key_fingerprint(private_key: str) -> str:
    """The fingerprint of the public half of an OpenSSH or PEM private key.

    Raises ValueError when the text is not an unencrypted private key.
    """
    data = private_key.strip().encode() + b"\n"
    try:
        public = _openssh_public_bytes(data)
    except (ValueError, TypeError) as exc:
        raise ValueError("is not an unencrypted SSH private key (OpenSSH or PEM format)") from exc
    return fingerprint_of_blob(base64.b64decode(public.split()[1]))


def _openssh_public_bytes(data: bytes) -> bytes:
    """The OpenSSH public line of an OpenSSH or PEM private key (each loader types its own)."""
    encoding, public_format = serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    if b"OPENSSH PRIVATE KEY" in data:
        ssh_key = serialization.load_ssh_private_key(data, password=None)
        return ssh_key.public_key().public_bytes(encoding, public_format)
    pem_key = serialization.load_pem_private_key(data, password=None)
    return pem_key.public_key().public_bytes(encoding, public_format)
