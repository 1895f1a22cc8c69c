"""Errors the Open Service Broker API answers with (OSB statuses and ``error`` codes).

They belong to the infracms exception tree, so the service functions raise them like
any other; ``api/peer.PeerRoute`` writes them as ``{"error": code, "description": ...}``.
"""

from __future__ import annotations

from infracms.errors import Conflict, InfracmsError, InvalidInput, NotFound


class BrokerBadRequest(InvalidInput):
    """A request the broker cannot act on: unknown service or plan, invalid parameters."""

    status = 400
    code = "BadRequest"


class PreconditionFailed(InfracmsError):
    """``X-Broker-API-Version`` is missing, or names a version this broker does not speak."""

    status = 412
    code = "PreconditionFailed"
    title = "Precondition failed"


class AsyncRequired(InvalidInput):
    """The request needs ``accepts_incomplete=true``: consent takes time."""

    status = 422
    code = "AsyncRequired"


class UnsupportedChange(InvalidInput):
    """An update the broker does not support, or cannot make in the instance's state."""

    status = 422
    code = "UnsupportedChange"


class MaintenanceInfoConflict(InvalidInput):
    """The request names a maintenance version the catalog does not offer."""

    status = 422
    code = "MaintenanceInfoConflict"


class ConcurrencyError(Conflict):
    """Another operation on the instance is still under way."""

    status = 422
    code = "ConcurrencyError"


class InstanceConflict(Conflict):
    """An instance or binding with this id exists with other attributes."""

    status = 409
    code = "Conflict"


class Gone(NotFound):
    """The instance or binding does not exist (any more)."""

    status = 410
    code = "Gone"


class UnknownInstance(NotFound):
    """No such instance for this client."""

    status = 404
    code = "NotFound"


class TooManyRequests(InvalidInput):
    """A peer sent more signed requests in the last minute than its rate limit allows."""

    status = 429
    code = "TooManyRequests"


class TooManyPending(InvalidInput):
    """A client has as many requests awaiting consent as a node accepts from one client."""

    status = 429
    code = "TooManyPendingRequests"
