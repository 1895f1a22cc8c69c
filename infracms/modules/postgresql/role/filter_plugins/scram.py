"""Jinja filters for the postgresql role: SCRAM-SHA-256 password verifiers.

The role hashes passwords on the controller, as psql's ``\\password`` does, so the
server (and its statement log) never sees them, and compares a password with the
verifier the server holds so that a second apply changes nothing. The verifier format
is PostgreSQL's (``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, from
RFC 5802 and RFC 7677), with the password prepared by SASLprep (RFC 4013) the way
PostgreSQL's ``pg_saslprep`` does: left as it is when it is ASCII or would be refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable
from typing import Any

ITERATIONS = 4096
SALT_BYTES = 16
PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def saslprep(password: str) -> str:
    """The password as PostgreSQL prepares it before hashing."""
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not prepared or any(table(c) for c in prepared for table in PROHIBITED):
        return password
    if any(stringprep.in_table_d1(c) for c in prepared) and (
        any(stringprep.in_table_d2(c) for c in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        return password
    return prepared


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """A new SCRAM-SHA-256 verifier for `password` (a fresh random salt unless given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(str(password), salt, iterations)
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def scram_matches(password: str, verifier: str | None) -> bool:
    """Whether `verifier` (as in pg_authid.rolpassword) was made from `password`."""
    try:
        method, rest = str(verifier or "").split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        expected = (base64.b64decode(stored_key, validate=True), base64.b64decode(server_key))
        salt_bytes = base64.b64decode(salt, validate=True)
        rounds = int(iterations)
    except ValueError:
        return False
    if method != "SCRAM-SHA-256" or not 1 <= rounds <= 10_000_000:
        return False
    got = _keys(str(password), salt_bytes, rounds)
    return hmac.compare_digest(got[0], expected[0]) and hmac.compare_digest(got[1], expected[1])


class FilterModule:
    """The filters this file provides."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Name each filter."""
        return {
            "infracms_scram_verifier": scram_verifier,
            "infracms_scram_matches": scram_matches,
        }
