"""SQLModel tables and their Create/Update/Public shapes, one file per aggregate.

Importing this package registers every table on ``SQLModel.metadata`` (for Alembic).
"""

from infracms.models.approval import Approval, ApprovalPolicy, ApprovalRequest
from infracms.models.audit import AuditEntry, AuditHead
from infracms.models.credential import Credential, CredentialKind
from infracms.models.definition import AvailableModule, Definition, EnabledModule, Revision
from infracms.models.federation import (
    BrokerClient,
    ConsumerService,
    NodeCatalog,
    Peer,
    PeerCatalog,
    PeerInvitation,
    PeerKey,
    PeerNonce,
    PublishedOffering,
    ServiceBinding,
    ServiceInstance,
    UsageRecord,
)
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.notification import (
    NotificationChannel,
    NotificationRule,
    NotificationSubscription,
    OutboxMessage,
)
from infracms.models.organisation import Organisation, SecretGrant
from infracms.models.run import (
    HostLock,
    HostOutcome,
    HostRunState,
    Run,
    RunEvent,
    RunKind,
    RunStatus,
)
from infracms.models.schedule import HostDrift, Schedule
from infracms.models.user import ApiToken, LoginAttempt, Membership, Role, User, WebSession
from infracms.models.witness import AuditCosignature, WitnessConflict, WitnessedLog

__all__ = [
    "ApiToken",
    "Approval",
    "ApprovalPolicy",
    "ApprovalRequest",
    "AuditCosignature",
    "AuditEntry",
    "AuditHead",
    "AvailableModule",
    "BrokerClient",
    "ConsumerService",
    "Credential",
    "CredentialKind",
    "Definition",
    "EnabledModule",
    "Host",
    "HostDrift",
    "HostGroup",
    "HostGroupLink",
    "HostLock",
    "HostOutcome",
    "HostRunState",
    "LoginAttempt",
    "Membership",
    "NodeCatalog",
    "NotificationChannel",
    "NotificationRule",
    "NotificationSubscription",
    "Organisation",
    "OutboxMessage",
    "Peer",
    "PeerCatalog",
    "PeerInvitation",
    "PeerKey",
    "PeerNonce",
    "PublishedOffering",
    "Revision",
    "Role",
    "Run",
    "RunEvent",
    "RunKind",
    "RunStatus",
    "Schedule",
    "SecretGrant",
    "ServiceBinding",
    "ServiceInstance",
    "UsageRecord",
    "User",
    "WebSession",
    "WitnessConflict",
    "WitnessedLog",
]
