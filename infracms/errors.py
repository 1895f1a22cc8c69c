"""The one exception tree of infracms.

    InfracmsError                       every error this package raises on purpose
    ├── ConfigurationError              the node is not set up right (exit 78)
    ├── InvalidInput                    a request's values are wrong (400/422), with field errors
    │   └── PayloadTooLarge             a body over the limit (413)
    ├── AuthenticationFailed            no or bad credentials, session or token (401)
    │   └── RateLimited                 too many attempts (429)
    ├── PermissionDenied                authenticated, but not allowed (403)
    ├── NotFound                        the thing does not exist, or is not visible to you (404)
    ├── Conflict                        a duplicate name, or a state that forbids the change (409)
    ├── SecretError                     a secret cannot be decrypted or a key is wrong
    ├── AuditUnavailable                the audit log cannot be written: change refused (503)
    └── AuditVerificationError          the audit log or a proof does not verify

Each class carries its HTTP status and a short problem type; the API maps them to
RFC 9457 problem documents in one handler (``api/problems.py``) and the CLI to exit
codes in one place (``cli/__init__.py``, ``main``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class InfracmsError(Exception):
    """Base of every error infracms raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    exit_code: ClassVar[int] = 1

    def __init__(self, detail: str, *, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: dict[str, str] = dict(errors or {})

    def problem(self) -> dict[str, Any]:
        """This error as an RFC 9457 problem document."""
        body: dict[str, Any] = {
            "type": f"https://infracms.org/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [
                {"field": field, "message": message} for field, message in self.errors.items()
            ]
        return body


class ConfigurationError(InfracmsError):
    """The node is not set up right."""

    code = "configuration"
    title = "Configuration error"
    exit_code = 78


class InvalidInput(InfracmsError):
    """A request's values are wrong; ``errors`` maps each field to what is wrong."""

    status = 422
    code = "invalid-input"
    title = "Invalid input"
    exit_code = 2


class PayloadTooLarge(InvalidInput):
    """A request body is over the configured limit."""

    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class AuthenticationFailed(InfracmsError):
    """No credentials, or wrong ones."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"
    exit_code = 3


class RateLimited(AuthenticationFailed):
    """Too many attempts in the window."""

    status = 429
    code = "rate-limited"
    title = "Too many attempts"


class PermissionDenied(InfracmsError):
    """The actor may not do this here."""

    status = 403
    code = "forbidden"
    title = "Forbidden"
    exit_code = 3


class NotFound(InfracmsError):
    """The thing does not exist, or is not visible to the actor."""

    status = 404
    code = "not-found"
    title = "Not found"
    exit_code = 4


class Conflict(InfracmsError):
    """A duplicate name, or a state that forbids the change."""

    status = 409
    code = "conflict"
    title = "Conflict"
    exit_code = 5


class SecretError(InfracmsError):
    """A secret cannot be decrypted, or a key file is wrong."""

    code = "secret"
    title = "Secret error"
    exit_code = 6


class AuditUnavailable(InfracmsError):
    """The change's audit entry cannot be written, so the change is refused and rolled back.

    Whatever the cause (the entry's index taken, the head row locked, a database or
    disk error), the caller is told the log is unavailable, never that a name exists.
    """

    status = 503
    code = "audit-unavailable"
    title = "Audit log unavailable"
    exit_code = 75  # sysexits EX_TEMPFAIL: try again once the log is repaired


class AuditVerificationError(InfracmsError):
    """The audit log, a checkpoint or a proof does not verify."""

    status = 422
    code = "audit-verification"
    title = "Audit verification failed"
    exit_code = 7
