"""SQLModel tables and their Create/Update/Public shapes, one file per aggregate.

Importing this package registers every table on ``SQLModel.metadata`` (for Alembic).
"""

from infracms.models.audit import AuditEntry, AuditHead
from infracms.models.credential import Credential, CredentialKind
from infracms.models.host import Host, HostGroup, HostGroupLink
from infracms.models.organisation import Organisation
from infracms.models.user import ApiToken, LoginAttempt, Membership, Role, User, WebSession

__all__ = [
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "Credential",
    "CredentialKind",
    "Host",
    "HostGroup",
    "HostGroupLink",
    "LoginAttempt",
    "Membership",
    "Organisation",
    "Role",
    "User",
    "WebSession",
]
