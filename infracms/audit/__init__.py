"""The signed, verifiable audit log.

Pure modules (no I/O, no database):

- ``merkle``      RFC 9162 tree hashing, proof generation from stored subtree hashes,
                  incremental integration of new leaves, proof verification;
- ``note``        C2SP signed-note with Ed25519 (the format of Go's sumdb/note);
- ``checkpoint``  C2SP tlog-checkpoint bodies, signed and opened as notes;
- ``entry``       the canonical (RFC 8785) leaf data of one audit entry, redaction;
- ``exportfile``  writing and reading the offline export file;
- ``verifier``    the offline verifier of an export. It shares no code with the
                  writer on purpose (its own hashing and note checking, and its own
                  RFC 9162 consistency proofs against the checkpoints an auditor
                  saved, ``_verifier_trusted``), so a bug cannot hide in both.

Modules that use the database: ``store`` (the stored tree, checkpoints, proofs),
``integrator`` (the background thread that hashes new entries and signs checkpoints),
``selfcheck`` (the node's check of its stored rows against its checkpoints),
``exporter``, ``tiles`` (the C2SP tlog-tiles layout), ``views`` and ``payload``.

This package imports only ``errors`` eagerly, so importing the verifier does not
pull in the writer's code.
"""

from infracms.audit.errors import AuditVerificationError, BadCheckpointError, BadEntryError

__all__ = ["AuditVerificationError", "BadCheckpointError", "BadEntryError"]
