"""The encrypted stream of a backup: round trips, and every way of cutting or changing it."""

from __future__ import annotations

import io

import pytest

from infracms.services.node_backup_stream import (
    FIELDS,
    MAC_BYTES,
    TAG_BYTES,
    ArchiveRefused,
    DecryptingReader,
    EncryptingWriter,
    Header,
)

PASSPHRASE = b"a passphrase of some length"
CHUNK = 1024
HEADER = FIELDS.size + MAC_BYTES


def seal(plaintext: bytes, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, PASSPHRASE, Header.fresh(log2_n=10, chunk=chunk))
    for start in range(0, len(plaintext), 700):  # writes that straddle chunk boundaries
        writer.write(plaintext[start : start + 700])
    writer.close()
    return out.getvalue()


def unseal(sealed: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    reader = DecryptingReader(io.BytesIO(sealed), passphrase)
    parts = []
    while part := reader.read(333):
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256 + 1)
    sealed = seal(plaintext[:size])
    chunks = max(1, -(-size // CHUNK))
    assert len(sealed) == HEADER + size + chunks * TAG_BYTES
    assert unseal(sealed) == plaintext[:size]


def test_same_plaintext_seals_differently() -> None:
    assert seal(b"x" * 3000) != seal(b"x" * 3000)  # a fresh salt and nonce prefix each time


@pytest.mark.security
def test_every_cut_is_refused() -> None:
    sealed = seal(b"y" * (3 * CHUNK))
    full = CHUNK + TAG_BYTES
    boundaries = [HEADER + full * n for n in (1, 2)]
    for cut in [*boundaries, HEADER, HEADER + 1, HEADER + full - 1, len(sealed) - 1]:
        with pytest.raises(ArchiveRefused, match=r"truncated|no backup header"):
            unseal(sealed[:cut])
    for cut in (0, 10, HEADER - 1):
        with pytest.raises(ArchiveRefused, match="no backup header"):
            unseal(sealed[:cut])


@pytest.mark.security
def test_appended_reordered_or_changed_chunks_are_refused() -> None:
    sealed = seal(b"z" * (3 * CHUNK + 10))
    full = CHUNK + TAG_BYTES
    body = sealed[HEADER:]
    chunks = [body[i : i + full] for i in range(0, len(body), full)]
    swapped = sealed[:HEADER] + chunks[1] + chunks[0] + b"".join(chunks[2:])
    for bad in (sealed + b"\x00", sealed + chunks[-1], swapped):
        with pytest.raises(ArchiveRefused, match="changed or truncated"):
            unseal(bad)
    other = seal(b"z" * (3 * CHUNK + 10))  # a chunk of another archive, same passphrase
    spliced = sealed[:HEADER] + other[HEADER : HEADER + full] + sealed[HEADER + full :]
    with pytest.raises(ArchiveRefused, match="does not authenticate"):
        unseal(spliced)


@pytest.mark.security
def test_wrong_passphrase_and_changed_header_are_refused_before_any_chunk() -> None:
    sealed = seal(b"secret" * 100)
    with pytest.raises(ArchiveRefused, match="wrong passphrase"):
        unseal(sealed, b"another passphrase!")
    cheaper = bytearray(sealed)
    cheaper[17] = 10 if cheaper[17] != 10 else 11  # scrypt's N: the MAC covers it
    with pytest.raises(ArchiveRefused, match="wrong passphrase"):
        unseal(bytes(cheaper))


@pytest.mark.security
@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(16, 2, "version 2"), (17, 30, "out of the range"), (17, 5, "out of the range")],
)
def test_header_parameters_out_of_range_are_refused_before_the_kdf(
    offset: int, value: int, message: str
) -> None:
    sealed = bytearray(seal(b"data"))
    sealed[offset] = value  # N = 2^30 would ask for 128 GiB
    with pytest.raises(ArchiveRefused, match=message):
        unseal(bytes(sealed))
