"""The offline verifier's witness policy: C2SP tlog-cosignature v1 lines on checkpoints.

Written for the verifier alone, like ``_verifier_core``: it imports neither the
writer's audit code nor ``federation`` (which made the cosignatures), so a bug in
either cannot hide here too. The tests hold it to the C2SP spec's example and to
cosignatures made by ``federation.witness``.

- A witness key is ``<name>+<8 hex key id>+base64(0x04 || Ed25519 public key)``, its
  key id ``SHA-256(<name> || 0x0A || 0x04 || public key)[:4]``.
- A cosignature is a note signature line by that name whose bytes are the key id,
  an 8-byte big-endian timestamp and an Ed25519 signature of
  ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's note text.

A line that names a policy witness (name and key id) but does not verify fails the
checkpoint, as a signed note's bad signature by a known key does; lines by other
keys are ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infracms.audit._verifier_core import CheckFailed, _strict_b64
from infracms.audit.errors import AuditVerificationError

COSIGNATURE_V1 = 0x04
_KEY_ID, _TIME, _SIGNATURE = 4, 8, 64
MAX_TIMESTAMP = 2**63 - 1


@dataclass(frozen=True)
class WitnessKey:
    """A witness an auditor trusts: its name, cosignature key id and Ed25519 key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        """C2SP tlog-cosignature v1 verifier key ``name+hex8(key id)+base64(0x04 || key)``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            raise CheckFailed(f"witness key {vkey!r} is not name+id+key")
        name, hex_id, encoded = parts
        raw = _strict_b64(encoded, "witness key")
        if len(raw) != 33 or raw[0] != COSIGNATURE_V1:
            kind = "a log key (0x01), not a witness key" if raw[:1] == b"\x01" else "no 0x04 key"
            raise CheckFailed(f"witness key {name} holds {kind}: expected 0x04 and 32 bytes")
        key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        if hex_id.lower() != key_id.hex() or len(hex_id) != 8:
            raise CheckFailed(f"witness key id is {hex_id!r}, expected {key_id.hex()}")
        return cls(name=name, key_id=key_id, public_key=raw[1:])

    def cosigned(self, text: str, raw: bytes) -> bool:
        """Whether ``raw`` (key id, timestamp, signature) is this witness's cosignature."""
        if len(raw) != _KEY_ID + _TIME + _SIGNATURE:
            return False
        timestamp = int.from_bytes(raw[_KEY_ID : _KEY_ID + _TIME], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                raw[_KEY_ID + _TIME :], message
            )
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class WitnessPolicy:
    """The witnesses an auditor trusts, and how many must cosign the latest checkpoint."""

    witnesses: tuple[WitnessKey, ...]
    minimum: int

    @classmethod
    def parse(cls, vkeys: Sequence[str], minimum: int | None = None) -> WitnessPolicy:
        """A policy from witness keys; ``minimum`` defaults to every witness named."""
        try:
            witnesses = tuple(WitnessKey.parse(vkey.strip()) for vkey in vkeys)
        except CheckFailed as exc:
            raise AuditVerificationError(f"the witness policy is unusable: {exc}") from exc
        names = {witness.name for witness in witnesses}
        minimum = len(names) if minimum is None else minimum
        if not 0 <= minimum <= len(names):
            raise AuditVerificationError(
                f"the policy asks for {minimum} cosignatures, but names {len(names)} "
                f"witness{'es' if len(names) != 1 else ''}: it can never be met"
            )
        return cls(witnesses=witnesses, minimum=minimum)

    @property
    def names(self) -> tuple[str, ...]:
        """The witnesses' names, each once, in the order given."""
        return tuple(dict.fromkeys(witness.name for witness in self.witnesses))

    def cosigners(self, text: str, signatures: Sequence[tuple[str, bytes]]) -> tuple[str, ...]:
        """The policy witnesses whose cosignature of ``text`` is among ``signatures``.

        Raises ``CheckFailed`` for a line that claims a policy witness and does not verify.
        """
        found: dict[str, None] = {}
        for name, raw in signatures:
            for witness in self.witnesses:
                if (name, raw[:_KEY_ID]) != (witness.name, witness.key_id):
                    continue
                if not witness.cosigned(text, raw):
                    raise CheckFailed(
                        f"the cosignature by {name}+{witness.key_id.hex()} does not verify"
                    )
                found[name] = None
        return tuple(found)
