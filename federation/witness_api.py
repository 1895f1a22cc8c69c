"""The C2SP tlog-witness ``add-checkpoint`` wire format (https://c2sp.org/tlog-witness).

Request body::

    old <size>\\n
    <base64 consistency-proof hash>\\n     (0 to 63 lines; none when old size is 0)
    \\n
    <checkpoint: note text, blank line, signature lines>

Answers: 200 with cosignature lines; 409 with ``<latest size>\\n`` as
``text/x.tlog.size`` when ``old`` is not the size the witness last cosigned (or the
root differs at equal size); 400 malformed or old > new; 403 no trusted log signature;
404 unknown origin; 422 consistency proof does not verify.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from federation.errors import MalformedMessage
from federation.limits import MAX_WITNESS_BYTES, check_size
from federation.witness import MAX_PROOF_LINES, Cosignature, b64decode_strict

ADD_CHECKPOINT_PATH = "/add-checkpoint"
HASH_SIZE = 32


@dataclass(frozen=True)
class CheckpointBody:
    """The note text of a C2SP tlog-checkpoint: origin, size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        """Parse a checkpoint's note text (ending in a newline)."""
        if not text.endswith("\n"):
            raise MalformedMessage("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not lines[0] or any(not line for line in lines[3:]):
            raise MalformedMessage("checkpoint needs origin, size and root hash lines")
        size = _decimal(lines[1], "checkpoint size")
        root = b64decode_strict(lines[2], "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise MalformedMessage(f"checkpoint root hash is {len(root)} bytes, expected 32")
        return cls(lines[0], size, root, tuple(lines[3:]))


def _decimal(text: str, what: str) -> int:
    """An ASCII decimal with no leading zeroes (``0`` itself allowed)."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedMessage(f"{what} {text!r} is not a decimal without leading zeroes")
    value = int(text)
    if value > 2**63 - 1:
        raise MalformedMessage(f"{what} {value} exceeds 2^63-1")
    return value


def split_note(note: str) -> tuple[str, tuple[str, ...]]:
    """A signed note's text (with its final newline) and its signature lines."""
    if not note.endswith("\n"):
        raise MalformedMessage("signed note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedMessage("signed note has no blank line before its signatures")
    lines = tuple(note[split + 2 : -1].split("\n"))
    if lines == ("",):
        raise MalformedMessage("signed note has no signature lines")
    return note[: split + 1], lines


@dataclass(frozen=True)
class AddCheckpointRequest:
    """The old size the client believes the witness holds, the proof, and the checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str

    def __post_init__(self) -> None:
        if len(self.proof) > MAX_PROOF_LINES:
            raise MalformedMessage(f"proof has {len(self.proof)} hashes, at most 63 allowed")
        if self.old_size == 0 and self.proof:
            raise MalformedMessage("proof must be empty when the old size is 0")

    @property
    def checkpoint_text(self) -> str:
        """The checkpoint's note text, which cosignatures sign."""
        return split_note(self.checkpoint)[0]

    def to_bytes(self) -> bytes:
        """The request body."""
        proof = "".join(base64.b64encode(h).decode() + "\n" for h in self.proof)
        return f"old {self.old_size}\n{proof}\n{self.checkpoint}".encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body; the checkpoint's signatures are for the node to check."""
        check_size(body, MAX_WITNESS_BYTES, "add-checkpoint body")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage("add-checkpoint body is not UTF-8") from exc
        head, sep, checkpoint = text.partition("\n\n")
        if not sep or not head.startswith("old "):
            raise MalformedMessage(
                "add-checkpoint body must start with 'old <size>' and a blank line"
            )
        first, *proof_lines = head.split("\n")
        old_size = _decimal(first[4:], "old size")
        proof = tuple(b64decode_strict(line, "proof hash") for line in proof_lines)
        if any(len(h) != HASH_SIZE for h in proof):
            raise MalformedMessage("every proof hash must be 32 bytes")
        split_note(checkpoint)
        return cls(old_size, proof, checkpoint)


def format_cosignatures(cosignatures: tuple[Cosignature, ...] | list[Cosignature]) -> bytes:
    """A 200 answer body: one signature line per cosignature."""
    if not cosignatures:
        raise ValueError("an add-checkpoint answer needs at least one cosignature")
    return "".join(c.line for c in cosignatures).encode()


def parse_cosignatures(body: bytes) -> tuple[Cosignature, ...]:
    """The cosignatures of a 200 answer body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage("add-checkpoint answer is not UTF-8") from exc
    if not text.endswith("\n") or text == "\n":
        raise MalformedMessage("add-checkpoint answer must be signature lines ending in a newline")
    return tuple(Cosignature.parse_line(line) for line in text[:-1].split("\n"))


def format_size_conflict(size: int) -> bytes:
    """A 409 answer body: the witness's latest cosigned size and a newline."""
    return f"{size}\n".encode()


def parse_size_conflict(body: bytes) -> int:
    """The size in a 409 ``text/x.tlog.size`` answer."""
    text = body.decode("ascii", errors="replace")
    if not text.endswith("\n"):
        raise MalformedMessage("size answer must end with a newline")
    return _decimal(text[:-1], "latest size")
