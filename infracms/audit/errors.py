"""Errors raised when audit data does not verify.

    AuditVerificationError      a proof, note, checkpoint or export does not verify
    ├── BadCheckpointError      one checkpoint of an export is bad (``.number``, ``.size``)
    ├── BadEntryError           one entry of an export is bad (``.position``, ``.reason``)
    └── TrustedCheckpointError  the export does not extend a checkpoint the auditor saved
                                (``.trusted_size``, ``.export_size``, ``.agreed_size``)

Every message says what was expected and what came instead. Parsing untrusted input
(a note, a key, a checkpoint, an export line) that is malformed raises
``AuditVerificationError`` too: for a verifier, malformed and forged are both "no".
Programming errors (formatting a checkpoint with a bad origin, a negative index)
raise ``ValueError``.

``AuditVerificationError`` is ``infracms.errors.AuditVerificationError`` subclassed,
so the API answers 422 and the CLI exits with code 7 wherever one escapes.
"""

from __future__ import annotations

from typing import Literal

from infracms import errors

EntryProblem = Literal["malformed", "modified", "deleted", "inserted", "reordered"]


class AuditVerificationError(errors.AuditVerificationError):
    """Audit data (a proof, a signed note, a checkpoint, an export) does not verify."""


class BadCheckpointError(AuditVerificationError):
    """Checkpoint number ``number`` (0-based, in export order) of size ``size`` is bad."""

    def __init__(self, message: str, *, number: int, size: int | None) -> None:
        super().__init__(message)
        self.number = number
        self.size = size


class BadEntryError(AuditVerificationError):
    """The entry at ``position`` of an export is bad, for ``reason``."""

    def __init__(self, message: str, *, position: int, reason: EntryProblem) -> None:
        super().__init__(message)
        self.position = position
        self.reason: EntryProblem = reason


class TrustedCheckpointError(AuditVerificationError):
    """The export does not extend the auditor's checkpoint of ``trusted_size``.

    ``export_size`` is the export's signed size (below ``trusted_size``: a rollback);
    ``agreed_size`` the largest trusted checkpoint it still extends, if any.
    """

    def __init__(
        self, message: str, *, trusted_size: int, export_size: int, agreed_size: int | None
    ) -> None:
        super().__init__(message)
        self.trusted_size = trusted_size
        self.export_size = export_size
        self.agreed_size = agreed_size
