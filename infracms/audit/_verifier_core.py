"""The offline verifier's own hashing, key, note and checkpoint checks.

Written apart from ``merkle``, ``note`` and ``checkpoint`` on purpose, and importing
none of them, so that a bug in the writer's code cannot hide in the verifier too; the
tests hold both to vectors made by Go's sumdb packages.

- RFC 9162 section 2.1.1 hashing, level by level: every complete subtree of a list of
  leaf hashes, and the root of any prefix from those;
- C2SP signed-note: the verifier key string, a note's Ed25519 signature by that key;
- C2SP tlog-checkpoint: the origin, size and root lines of the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIZE = 32
EMPTY_ROOT = hashlib.sha256().digest()
_DASH = "\u2014 "


class CheckFailed(Exception):
    """One check failed; the caller says which checkpoint or line it was about."""


def tree_levels(leaves: bytes) -> list[bytes]:
    """RFC 9162 section 2.1.1: the hashes of all complete subtrees, packed level by level.

    ``levels[l][32 * i : 32 * i + 32]`` is the hash of leaves ``[i * 2**l, (i + 1) * 2**l)``.
    """
    sha256 = hashlib.sha256
    levels = [leaves]
    while len(levels[-1]) >= 2 * SIZE:
        below, level = levels[-1], bytearray()
        extend = level.extend
        for i in range(0, len(below) - 2 * SIZE + 1, 2 * SIZE):
            extend(sha256(b"\x01" + below[i : i + 2 * SIZE]).digest())
        levels.append(bytes(level))
    return levels


def root_at(levels: list[bytes], size: int) -> bytes:
    """RFC 9162 section 2.1.1: the root of the first ``size`` leaves, from :func:`tree_levels`."""
    if size == 0:
        return EMPTY_ROOT
    parts, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            index = start >> level
            parts.append(levels[level][index * SIZE : (index + 1) * SIZE])
            start += 1 << level
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = hashlib.sha256(b"\x01" + left + root).digest()
    return root


def _strict_b64(text: str, what: str) -> bytes:
    """Canonical standard base64 (RFC 4648 section 4) or :class:`CheckFailed`."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckFailed(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise CheckFailed(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class TrustedKey:
    """The verifier key an auditor trusts: name, key id, Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> TrustedKey:
        """C2SP signed-note verifier key ``name+hex8(key id)+base64(0x01 || public key)``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            raise CheckFailed(f"verifier key {vkey!r} is not name+id+key")
        name, hex_id, encoded = parts
        raw = _strict_b64(encoded, "verifier key")
        if len(raw) != 33 or raw[0] != 1:
            raise CheckFailed(f"verifier key holds {len(raw)} bytes, expected 0x01 and 32 bytes")
        key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        if hex_id.lower() != key_id.hex() or len(hex_id) != 8:
            raise CheckFailed(f"verifier key id is {hex_id!r}, expected {key_id.hex()}")
        return cls(name=name, key_id=key_id, public_key=raw[1:])

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def note_text(signed: str) -> tuple[str, list[tuple[str, bytes]]]:
    """C2SP signed-note: the text and the ``(key name, 4-byte id + signature)`` lines."""
    if not signed.endswith("\n") or any(c < " " and c != "\n" for c in signed):
        raise CheckFailed("signed note must end with a newline and hold no control character")
    split = signed.rfind("\n\n")
    if split < 0 or split + 2 == len(signed):
        raise CheckFailed("signed note has no signature block after a blank line")
    signatures = []
    for line in signed[split + 2 : -1].split("\n"):
        name, _, encoded = line.removeprefix(_DASH).partition(" ")
        if not line.startswith(_DASH) or not name:
            raise CheckFailed(f"signature line {line!r} is not '\u2014 name signature'")
        raw = _strict_b64(encoded, f"signature of {name}")
        if len(raw) < 5:
            raise CheckFailed(f"signature of {name} is {len(raw)} bytes, expected 5 or more")
        signatures.append((name, raw))
    return signed[: split + 1], signatures


def open_signed(signed: str, key: TrustedKey) -> str:
    """The note's text, once a signature by ``key`` verifies; unknown keys are ignored."""
    text, signatures = note_text(signed)
    mine = [raw[4:] for name, raw in signatures if name == key.name and raw[:4] == key.key_id]
    if not mine:
        raise CheckFailed(f"no signature by {key.name}+{key.key_id.hex()}")
    if not all(key.verifies(text.encode(), signature) for signature in mine):
        raise CheckFailed(f"the signature by {key.name}+{key.key_id.hex()} does not verify")
    return text


def checkpoint_body(text: str) -> tuple[str, int, bytes]:
    """C2SP tlog-checkpoint: ``(origin, size, root)`` of a body, checked strictly."""
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or not all(lines[3:]):
        raise CheckFailed("checkpoint body needs origin, size, root and non-empty extensions")
    origin, size, root = lines[:3]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size[0] == "0"):
        raise CheckFailed(f"checkpoint size {size!r} is not a decimal without leading zeroes")
    raw = _strict_b64(root, "checkpoint root")
    if len(raw) != SIZE:
        raise CheckFailed(f"checkpoint root is {len(raw)} bytes, expected {SIZE}")
    return origin, int(size), raw
