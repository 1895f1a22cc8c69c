"""The signed, verifiable audit log: pure Merkle, note, checkpoint and entry code.

Modules (none does I/O or touches a database):

- ``merkle``      RFC 9162 tree hashing, proof generation from stored subtree hashes,
                  incremental integration of new leaves, proof verification;
- ``note``        C2SP signed-note with Ed25519 (the format of Go's sumdb/note);
- ``checkpoint``  C2SP tlog-checkpoint bodies, signed and opened as notes;
- ``entry``       the canonical (RFC 8785) leaf data of one audit entry, redaction;
- ``exportfile``  writing and reading the offline export file;
- ``verifier``    the offline verifier of an export. It shares no code with the
                  writer on purpose (its own hashing and note checking), so a bug
                  cannot hide in both.

This package imports only ``errors`` eagerly, so importing the verifier does not
pull in the writer's code.
"""

from infracms.audit.errors import AuditVerificationError, BadCheckpointError, BadEntryError

__all__ = ["AuditVerificationError", "BadCheckpointError", "BadEntryError"]
