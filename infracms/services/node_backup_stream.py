"""The encrypted stream a node backup is written in (docs/backup.md has the layout).

    header  = magic "infracms-backup\\n" (16) | version (1) | scrypt log2 N (1) | r (1)
              | p (1) | chunk size (4, big-endian) | salt (16) | nonce prefix (7)
              | HMAC-SHA256(header key, the fields before it) (32)
    chunk i = ChaCha20-Poly1305(payload key, nonce = prefix (7) | i (4, big-endian)
              | 1 if last else 0 (1), plaintext, associated data = header)

scrypt(passphrase, salt) gives 64 bytes: the payload key, then the header key. The
header's MAC tells a wrong passphrase from a changed archive. Every chunk but the last
holds exactly ``chunk size`` bytes of plaintext; the last holds 0 to ``chunk size`` and
is sealed with the last-chunk flag, so an archive cut at any byte, or at a chunk
boundary, does not open (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
Vizár, as age and Tink use it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from infracms.errors import SecretError

MAGIC = b"infracms-backup\n"
VERSION = 1
FIELDS = struct.Struct(">16sBBBBI16s7s")
MAC_BYTES = 32
TAG_BYTES = 16
CHUNK_BYTES = 1 << 20
SCRYPT_LOG2_N = 17  # 128 MiB and about half a second here: RFC 7914's interactive cost x 8
SCRYPT_R = 8
SCRYPT_P = 1
LOG2_N_RANGE = range(10, 21)  # what an archive may ask for: at most 1 GiB of memory
CHUNK_RANGE = range(1 << 10, (1 << 24) + 1)
MAX_CHUNKS = 1 << 32


class ArchiveRefused(SecretError):
    """A backup archive that does not open: wrong passphrase, changed, cut short or not ours."""

    code = "backup-refused"
    title = "Backup archive refused"


class Header:
    """The archive's parameters, and the keys they give with a passphrase."""

    def __init__(
        self,
        *,
        log2_n: int,
        r: int,
        p: int,
        chunk: int,
        salt: bytes,
        prefix: bytes,
    ) -> None:
        self.log2_n, self.r, self.p, self.chunk = log2_n, r, p, chunk
        self.salt, self.prefix = salt, prefix

    @classmethod
    def fresh(cls, *, log2_n: int = SCRYPT_LOG2_N, chunk: int = CHUNK_BYTES) -> Header:
        """New parameters with a random salt and nonce prefix."""
        return cls(
            log2_n=log2_n,
            r=SCRYPT_R,
            p=SCRYPT_P,
            chunk=chunk,
            salt=secrets.token_bytes(16),
            prefix=secrets.token_bytes(7),
        )

    def fields(self) -> bytes:
        """The header's fields, before its MAC."""
        return FIELDS.pack(
            MAGIC, VERSION, self.log2_n, self.r, self.p, self.chunk, self.salt, self.prefix
        )

    def keys(self, passphrase: bytes) -> tuple[bytes, bytes]:
        """The payload key and the header key, from the passphrase (scrypt, RFC 7914)."""
        kdf = Scrypt(salt=self.salt, length=64, n=1 << self.log2_n, r=self.r, p=self.p)
        derived = kdf.derive(passphrase)
        return derived[:32], derived[32:]

    @classmethod
    def read(cls, stream: BinaryIO) -> tuple[Header, bytes]:
        """The header at the start of `stream`, and its MAC (not yet checked)."""
        raw = stream.read(FIELDS.size + MAC_BYTES)
        if len(raw) < FIELDS.size + MAC_BYTES or not raw.startswith(MAGIC):
            raise ArchiveRefused("not an infracms backup archive (no backup header)")
        _, version, log2_n, r, p, chunk, salt, prefix = FIELDS.unpack(raw[: FIELDS.size])
        if version != VERSION:
            raise ArchiveRefused(f"backup format version {version}, expected {VERSION}")
        if log2_n not in LOG2_N_RANGE or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ArchiveRefused(
                f"scrypt parameters N=2^{log2_n}, r={r}, p={p} are out of the range accepted"
            )
        if chunk not in CHUNK_RANGE:
            raise ArchiveRefused(f"chunk size {chunk} is out of the range accepted")
        header = cls(log2_n=log2_n, r=r, p=p, chunk=chunk, salt=salt, prefix=prefix)
        return header, raw[FIELDS.size :]


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= MAX_CHUNKS:
        raise ArchiveRefused("the archive has more chunks than its nonces can count")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A binary file to write plaintext to; it writes the sealed archive to `out`."""

    def __init__(self, out: BinaryIO, passphrase: bytes, header: Header) -> None:
        payload_key, header_key = header.keys(passphrase)
        fields = header.fields()
        self._aad = fields + hmac.new(header_key, fields, hashlib.sha256).digest()
        out.write(self._aad)
        self._out, self._header = out, header
        self._aead = ChaCha20Poly1305(payload_key)
        self._buffer = bytearray()
        self._counter = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer `data`, sealing each full chunk once more follows it."""
        self._buffer += data
        size = self._header.chunk
        while len(self._buffer) > size:
            self._seal(bytes(self._buffer[:size]), last=False)
            del self._buffer[:size]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: a chunk is written once it is complete."""

    def close(self) -> None:
        """Seal what is left as the last chunk (it may be empty)."""
        if not self.closed:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
            self.closed = True

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        nonce = _nonce(self._header.prefix, self._counter, last)
        self._out.write(self._aead.encrypt(nonce, plaintext, self._aad))
        self._counter += 1


class DecryptingReader:
    """A binary file that reads the plaintext of a sealed archive, chunk by chunk.

    Raises ``ArchiveRefused`` for a wrong passphrase (the header's MAC), a chunk that
    does not authenticate (changed, reordered, or cut short), or bytes after the last.
    """

    def __init__(self, source: BinaryIO, passphrase: bytes) -> None:
        header, mac = Header.read(source)
        payload_key, header_key = header.keys(passphrase)
        fields = header.fields()
        if not hmac.compare_digest(mac, hmac.new(header_key, fields, hashlib.sha256).digest()):
            raise ArchiveRefused(
                "wrong passphrase (or a changed header): the archive's header does not authenticate"
            )
        self._source, self._header, self._aad = source, header, fields + mac
        self._aead = ChaCha20Poly1305(payload_key)
        self._sealed = source.read(header.chunk + TAG_BYTES)
        self._plain = bytearray()
        self._counter = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of plaintext (all that is left for -1)."""
        while not self._done and (size < 0 or len(self._plain) < size):
            self._open_next()
        if size < 0:
            size = len(self._plain)
        data = bytes(self._plain[:size])
        del self._plain[:size]
        return data

    def _open_next(self) -> None:
        full = self._header.chunk + TAG_BYTES
        following = self._source.read(full) if len(self._sealed) == full else b""
        last = not following
        nonce = _nonce(self._header.prefix, self._counter, last)
        try:
            self._plain += self._aead.decrypt(nonce, self._sealed, self._aad)
        except InvalidTag:
            raise ArchiveRefused(self._why(last)) from None
        self._counter += 1
        self._sealed = following
        self._done = last

    def _why(self, last: bool) -> str:
        at = f"chunk {self._counter} (at byte {self._counter * self._header.chunk:,})"
        if last and len(self._sealed) == self._header.chunk + TAG_BYTES:
            return f"the archive is truncated: it ends after {at}, which is not its last chunk"
        if len(self._sealed) < TAG_BYTES:
            return f"the archive is truncated at {at}"
        return f"the archive was changed or truncated: {at} does not authenticate"

    def close(self) -> None:
        """Nothing to release: the caller owns the source."""
