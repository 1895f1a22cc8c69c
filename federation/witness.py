"""Witnessing: C2SP tlog-witness ``add-checkpoint`` and tlog-cosignature v1 with Ed25519.

- https://c2sp.org/tlog-witness: the request body is ``old <size>\\n``, up to 63
  base64 consistency-proof lines, an empty line, then the signed checkpoint; a 200
  answer is one or more note signature lines; a 409 answer is the witness's latest
  size in decimal and a newline, as ``text/x.tlog.size``.
- https://c2sp.org/tlog-cosignature: a cosignature is a note signature line
  ``— <name> base64(key id || u64 timestamp || Ed25519 signature)``, signed over
  ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's note text; the
  key id is ``SHA-256(<name> || 0x0A || 0x04 || public key)[:4]``.

This is written here, not imported from ``infracms.audit``, because federation
imports nothing from infracms. The log's own checkpoint signature and the consistency
proof are checked by the node with ``infracms.audit``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from federation.errors import MalformedMessage, SignatureInvalid
from federation.keys import NodeKey, verify_ed25519

COSIGNATURE_V1 = 0x04
"""The signature type byte of Ed25519 tlog-cosignature v1 in key ids and vkeys."""
SIGNATURE_PREFIX = "\u2014 "
SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_TIMESTAMP = 2**63 - 1


def b64decode_strict(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4)."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedMessage(f"{what} is not valid base64: {exc}") from exc
    if base64.b64encode(raw).decode() != text:
        raise MalformedMessage(f"{what} is not canonical base64")
    return raw


def _check_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedMessage(f"key name {name!r} is empty or holds a space or '+'")
    return name


def cosigner_key_id(name: str, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_V1]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a v1 cosignature signs: header line, time line, then the checkpoint text."""
    if not checkpoint_text.endswith("\n"):
        raise MalformedMessage("checkpoint text must end with a newline")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One cosignature: the cosigner's name and key id, the time, the signature."""

    name: str
    key_id: int
    timestamp: int
    signature: bytes = field(repr=False)

    @property
    def line(self) -> str:
        """The note signature line, with its newline."""
        raw = self.key_id.to_bytes(4, "big") + self.timestamp.to_bytes(8, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"

    @classmethod
    def parse_line(cls, line: str) -> Cosignature:
        """A ``— name base64(...)`` line (without its newline)."""
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedMessage(f"signature line must start with an em dash: {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = b64decode_strict(encoded, f"cosignature of {_check_name(name)}")
        if len(raw) != 4 + 8 + 64:
            raise MalformedMessage(f"cosignature of {name} is {len(raw)} bytes, expected 76")
        timestamp = int.from_bytes(raw[4:12], "big")
        if timestamp > MAX_TIMESTAMP:
            raise MalformedMessage(f"cosignature timestamp {timestamp} exceeds 2^63-1")
        return cls(name, int.from_bytes(raw[:4], "big"), timestamp, raw[12:])


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's name and Ed25519 public key: checks its v1 cosignatures."""

    name: str
    public_key: bytes = field(repr=False)

    @property
    def key_id(self) -> int:
        """The cosignature v1 key id."""
        return cosigner_key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The C2SP verifier key: ``name+<8 hex key id>+base64(0x04 || public key)``."""
        encoded = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a cosignature v1 verifier key, checking its key id."""
        name, _, rest = vkey.partition("+")
        hex_id, _, encoded = rest.partition("+")
        raw = b64decode_strict(encoded, "verifier key")
        if len(raw) != 33 or raw[0] != COSIGNATURE_V1:
            raise MalformedMessage("verifier key must hold 0x04 and a 32-byte Ed25519 key")
        verifier = cls(_check_name(name), raw[1:])
        if hex_id.lower() != f"{verifier.key_id:08x}" or len(hex_id) != 8:
            raise MalformedMessage(f"verifier key id is {hex_id!r}, expected {verifier.key_id:08x}")
        return verifier

    def matches(self, cosignature: Cosignature) -> bool:
        """Whether a cosignature line claims this witness's name and key id."""
        return (cosignature.name, cosignature.key_id) == (self.name, self.key_id)

    def verify(self, checkpoint_text: str, cosignature: Cosignature) -> None:
        """Check a cosignature by this witness over ``checkpoint_text``."""
        if not self.matches(cosignature):
            raise SignatureInvalid(
                f"cosignature is by {cosignature.name}+{cosignature.key_id:08x}, "
                f"expected {self.name}+{self.key_id:08x}"
            )
        message = cosigned_message(checkpoint_text, cosignature.timestamp)
        verify_ed25519(
            self.public_key, cosignature.signature, message, f"cosignature of {self.name}"
        )


@dataclass(frozen=True, eq=False)
class Cosigner:
    """A witness's name and Ed25519 key: makes v1 cosignatures."""

    name: str
    key: NodeKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)

    def verifier(self) -> CosignatureVerifier:
        """The verifier for this cosigner."""
        return CosignatureVerifier(self.name, self.key.public_key)

    def cosign(self, checkpoint_text: str, timestamp: int) -> Cosignature:
        """Cosign a checkpoint's note text at ``timestamp`` (seconds since the epoch)."""
        if not 0 <= timestamp <= MAX_TIMESTAMP:
            raise ValueError(f"timestamp {timestamp} is outside 0..2^63-1")
        signature = self.key.sign(cosigned_message(checkpoint_text, timestamp))
        return Cosignature(self.name, self.verifier().key_id, timestamp, signature)
