"""C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 signatures.

A signed note is a UTF-8 text ending in a newline, a blank line, and one or more
signature lines ``— <key name> <base64(4-byte key id || signature)>``. The key id is
``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``, read big-endian.

Keys are written as Go's ``golang.org/x/mod/sumdb/note`` writes them, so either side
can use the other's keys:

- verifier key: ``<name>+<8 hex digits of the key id>+<base64(0x01 || public key)>``;
- signer key: ``PRIVATE+KEY+<name>+<8 hex digits of the key id>+<base64(0x01 || seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infracms.audit.errors import AuditVerificationError

ED25519 = 0x01
"""The signature type byte of Ed25519 in C2SP signed-note."""
SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash (U+2014) and a space."""
MAX_SIGNATURES = 100
"""Go's note.Open refuses notes with more signatures; the spec asks for at least 16."""
_GO_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


def is_valid_key_name(name: str) -> bool:
    """C2SP signed-note: a key name is non-empty, with no Unicode space and no ``+``."""
    return bool(name) and "+" not in name and not any(_is_space(char) for char in name)


def _is_space(char: str) -> bool:
    """Go's ``unicode.IsSpace``: Latin-1 spaces, and the Z categories elsewhere."""
    return char in _GO_SPACES or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def key_id(name: str, public_key: bytes) -> int:
    """C2SP signed-note: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` as a uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4), refusing anything non-canonical."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditVerificationError(f"{what} is not valid base64: {exc}") from exc
    if base64.b64encode(raw).decode() != text:
        raise AuditVerificationError(f"{what} is not canonical base64")
    return raw


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key (RFC 8032)."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """One Ed25519 public key with its name: checks signatures made by a :class:`Signer`."""

    name: str
    public_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(f"key name {self.name!r} is empty or has a space or '+'")
        if len(self.public_key) != 32:
            raise ValueError(f"Ed25519 public key is {len(self.public_key)} bytes, expected 32")

    @property
    def key_id(self) -> int:
        """The C2SP key id of this key."""
        return key_id(self.name, self.public_key)

    @property
    def key_string(self) -> str:
        """The verifier key string, ``name+hex8id+base64(0x01||pubkey)``, as Go writes it."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    @classmethod
    def from_key_string(cls, vkey: str) -> Verifier:
        """Parse a verifier key string (Go's ``note.NewVerifier``)."""
        name, _, rest = vkey.partition("+")
        hex_id, _, encoded = rest.partition("+")
        if len(hex_id) != 8 or not all(c in "0123456789abcdefABCDEF" for c in hex_id):
            raise AuditVerificationError(f"verifier key id {hex_id!r} is not 8 hex digits")
        if not is_valid_key_name(name):
            raise AuditVerificationError(f"verifier key name {name!r} is not a valid key name")
        raw = _b64decode(encoded, "verifier key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise AuditVerificationError(
                f"verifier key must be 0x01 and a 32-byte Ed25519 key, got {len(raw)} bytes "
                f"of type {raw[:1].hex() or 'none'}"
            )
        verifier = cls(name=name, public_key=raw[1:])
        if verifier.key_id != int(hex_id, 16):
            raise AuditVerificationError(
                f"verifier key id is {hex_id}, expected {verifier.key_id:08x} for that key"
            )
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message`` (RFC 8032)."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, eq=False)
class Signer:
    """One Ed25519 private key with its name: signs notes. Compared by identity."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(f"key name {self.name!r} is empty or has a space or '+'")

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a fresh random key (Go's ``note.GenerateKey``)."""
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, skey: str) -> Signer:
        """Parse a signer key string ``PRIVATE+KEY+name+hex8id+base64(0x01||seed)``."""
        prefix = "PRIVATE+KEY+"
        if not skey.startswith(prefix):
            raise ValueError(f"signer key must start with {prefix}")
        name, _, rest = skey[len(prefix) :].partition("+")
        hex_id, _, encoded = rest.partition("+")
        try:
            raw = _b64decode(encoded, "signer key")
        except AuditVerificationError as exc:
            raise ValueError(str(exc)) from exc
        if len(raw) != 33 or raw[0] != ED25519:
            raise ValueError("signer key must hold 0x01 and a 32-byte Ed25519 seed")
        signer = cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(raw[1:]))
        want = f"{signer.verifier().key_id:08x}"
        if hex_id.lower() != want or len(hex_id) != 8:
            raise ValueError(f"signer key id is {hex_id!r}, expected {want} for that key")
        return signer

    @property
    def key_string(self) -> str:
        """The signer key string, as Go's ``note.GenerateKey`` writes it. Keep it secret."""
        seed = self.private_key.private_bytes_raw()
        encoded = base64.b64encode(bytes([ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id:08x}+{encoded}"

    def verifier(self) -> Verifier:
        """The verifier for this signer's public key."""
        return Verifier(name=self.name, public_key=_public_bytes(self.private_key.public_key()))

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (RFC 8032)."""
        return self.private_key.sign(message)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, key id, and the raw signature bytes."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line, ``— name base64(key id || signature)``, with its newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A note: its text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: tuple[Signature, ...] = ()


def _check_text(text: str) -> None:
    """C2SP signed-note: UTF-8 text ending in a newline, no control characters but newline."""
    if not text.endswith("\n"):
        raise AuditVerificationError("note text must end with a newline")
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise AuditVerificationError(f"note holds control character U+{ord(bad):04X}")


def format_note(note: Note) -> str:
    """C2SP signed-note: the text, a blank line, then one line per signature."""
    _check_text(note.text)
    if not note.signatures:
        raise ValueError("a signed note needs at least one signature")
    return note.text + "\n" + "".join(sig.line for sig in note.signatures)


def _parse_signature_line(line: str) -> Signature:
    """One ``— name base64`` line (C2SP signed-note section Signatures)."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise AuditVerificationError(f"signature line must start with an em dash: {line!r}")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not is_valid_key_name(name):
        raise AuditVerificationError(f"signature key name {name!r} is not a valid key name")
    raw = _b64decode(encoded, f"signature of {name}")
    if len(raw) < 5:
        raise AuditVerificationError(f"signature of {name} is {len(raw)} bytes, expected 5 or more")
    return Signature(name=name, key_id=int.from_bytes(raw[:4], "big"), signature=raw[4:])


def parse_note(message: str | bytes) -> Note:
    """C2SP signed-note: split a signed note at its last blank line, parse its signatures.

    Checks the syntax only; :func:`open_note` also checks the signatures.
    """
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AuditVerificationError("note is not valid UTF-8") from exc
    _check_text(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise AuditVerificationError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block:
        raise AuditVerificationError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise AuditVerificationError(
            f"note has {len(lines)} signatures, expected at most {MAX_SIGNATURES}"
        )
    return Note(text=text, signatures=tuple(_parse_signature_line(line) for line in lines))


def sign_note(note: Note | str, *signers: Signer) -> str:
    """Sign a note's text and return the signed note (Go's ``note.Sign``).

    Existing signatures are kept, except those by the same key as a new one.
    """
    if isinstance(note, str):
        note = Note(text=note)
    _check_text(note.text)
    message = note.text.encode()
    new = tuple(
        Signature(name=s.name, key_id=s.verifier().key_id, signature=s.sign(message))
        for s in signers
    )
    replaced = {(sig.name, sig.key_id) for sig in new}
    kept = tuple(s for s in note.signatures if (s.name, s.key_id) not in replaced)
    return format_note(Note(text=note.text, signatures=kept + new))


def open_note(message: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """C2SP signed-note: parse and verify, returning the note with its verified signatures.

    Signatures by unknown keys are ignored; one by a known key that does not verify
    rejects the note; so does a note with no verified signature.
    """
    note = parse_note(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    message_bytes = note.text.encode()
    verified: dict[tuple[str, int], Signature] = {}
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in verified:
            continue
        if not verifier.verify(message_bytes, sig.signature):
            raise AuditVerificationError(
                f"signature by {sig.name}+{sig.key_id:08x} does not verify over the note text"
            )
        verified[(sig.name, sig.key_id)] = sig
    if not verified:
        names = ", ".join(f"{k[0]}+{k[1]:08x}" for k in known) or "no key"
        raise AuditVerificationError(f"note has no signature by a known key (expected {names})")
    return Note(text=note.text, signatures=tuple(verified.values()))
