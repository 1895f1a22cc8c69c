"""The secrets a module generates for a service instance: taken out, sealed, resolved.

A plain string in a secret field of the settings a module's offering (``instance_settings``)
returns (a password it generated) is replaced by a reference to a credential
``svc-<instance>-<n>`` of the providing organisation: ``take_secrets`` makes the
references, ``store_secrets`` creates the credentials, sealed, in the approval's
transaction, so a definition's revisions never hold the secret. ``resolved_settings``
gives ``connection_details`` the instance's settings with those credentials (and no
other reference) resolved; ``forget_secrets`` deletes them when the instance is
deprovisioned, so the settings that remove it must not refer to them (``own_references``).
"""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from infracms.keys import Keyring
from infracms.models.credential import Credential, CredentialKind
from infracms.models.definition import Definition, Revision
from infracms.models.federation import ServiceInstance
from infracms.models.organisation import Organisation
from infracms.modules.contract import Module
from infracms.services import audit
from infracms.services.common import snapshot
from infracms.services.context import Actor
from infracms.services.credentials import FIELDS, reveal, sealing_context

PATH_TOKEN = re.compile(r"\[\]|[^.\[\]]+")


def credential_prefix(instance: ServiceInstance) -> str:
    """The names of an instance's generated credentials start with this."""
    return f"svc-{instance.id.hex[:12]}-"


@dataclass(frozen=True)
class InstanceSettings:
    """An instance's settings (secrets as references) and the secrets generated for them."""

    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


def store_secrets(
    session: Session,
    *,
    keyring: Keyring,
    actor: Actor,
    organisation: Organisation,
    generated: InstanceSettings,
    why: str,
    pool: uuid.UUID,
) -> None:
    """Create the generated secrets as sealed credentials (added to the session, audited),
    each scoped to the instance's pool (the group its definition targets): a reference
    to one from another definition of the organisation cannot send it anywhere else."""
    for name, secret in generated.secrets.items():
        credential = Credential(
            name=name,
            kind=CredentialKind.password,
            description=why[:500],
            organisation_id=organisation.id,
            ciphertext="",
            scope={"hosts": [], "groups": [str(pool)]},
        )
        credential.ciphertext = keyring.seal(secret, context=sealing_context(credential))
        session.add(credential)
        audit.record(
            session,
            actor=actor,
            action="credential.create",
            subject=f"credential:{organisation.name}/{name}",
            organisation_id=organisation.id,
            payload={"after": snapshot(credential, FIELDS)},
        )


def forget_secrets(session: Session, *, actor: Actor, row: ServiceInstance) -> None:
    """Delete the credentials generated for an instance that ended (audited)."""
    org = session.get(Organisation, row.organisation_id)
    for credential in _generated(session, row):
        audit.record(
            session,
            actor=actor,
            action="credential.delete",
            subject=f"credential:{org.name if org else '?'}/{credential.name}",
            organisation_id=row.organisation_id,
            payload={"before": snapshot(credential, FIELDS)},
        )
        session.delete(credential)


def take_secrets(
    module: type[Module],
    settings: dict[str, Any],
    prefix: str,
    taken: frozenset[str] = frozenset(),
) -> InstanceSettings:
    """Replace plain secrets in `settings` by references to credentials named `prefix<n>`
    (skipping the names in `taken`, the instance's credentials from before)."""
    secrets: dict[str, str] = {}
    numbers = itertools.count(1)

    def reference(secret: str) -> dict[str, str]:
        name = next((n for n, s in secrets.items() if s == secret), None)
        if name is None:
            name = next(
                f"{prefix}{n}" for n in numbers if f"{prefix}{n}" not in taken | set(secrets)
            )
            secrets[name] = secret
        return {"$credential": name}

    for path in sorted(module.secret_fields()):
        _replace(settings, PATH_TOKEN.findall(path), reference)
    return InstanceSettings(settings=settings, secrets=secrets)


def _replace(value: Any, tokens: list[str], reference: Callable[[str], dict[str, str]]) -> Any:
    """`value` with the plain strings at the path `tokens` replaced by references."""
    if not tokens:
        return reference(value) if isinstance(value, str) and value else value
    head, rest = tokens[0], tokens[1:]
    if head == "[]":
        return (
            [_replace(item, rest, reference) for item in value]
            if isinstance(value, list)
            else value
        )
    if isinstance(value, dict) and head in value:
        value[head] = _replace(value[head], rest, reference)
    return value


def _generated(session: Session, row: ServiceInstance) -> list[Credential]:
    return list(
        session.exec(
            select(Credential).where(
                Credential.organisation_id == row.organisation_id,
                col(Credential.name).startswith(credential_prefix(row)),
            )
        ).all()
    )


def generated_names(session: Session, *, row: ServiceInstance) -> frozenset[str]:
    """The names of the credentials generated for an instance."""
    return frozenset(c.name for c in _generated(session, row))


def published_settings(session: Session, *, row: ServiceInstance) -> dict[str, Any]:
    """The instance's published settings as stored (secrets as references); {} if none."""
    definition = session.exec(
        select(Definition).where(
            Definition.organisation_id == row.organisation_id, Definition.name == row.definition
        )
    ).first()
    revision = session.exec(
        select(Revision).where(
            Revision.definition_id == (definition.id if definition else None),
            Revision.number == (definition.published if definition else None),
        )
    ).first()
    return copy.deepcopy(revision.settings) if revision is not None else {}


def own_references(settings: Any, row: ServiceInstance) -> set[str]:
    """The credentials generated for `row` that `settings` still refer to."""
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            name = value.get("$credential") if len(value) == 1 else None
            if isinstance(name, str) and name.startswith(credential_prefix(row)):
                found.add(name)
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(settings)
    return found


def resolved_settings(
    session: Session, *, keyring: Keyring, row: ServiceInstance
) -> dict[str, Any]:
    """The instance's published settings, its own credentials resolved (no other secret)."""
    settings = published_settings(session, row=row)
    if not settings:
        return {}
    own = {c.name: c for c in _generated(session, row)}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            name = value.get("$credential") if len(value) == 1 else None
            if isinstance(name, str) and name in own:
                return reveal(keyring, own[name])
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    resolved: dict[str, Any] = resolve(settings)
    return resolved
