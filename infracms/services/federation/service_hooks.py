"""What a module's offering hooks make of a service instance: its settings, its connection details.

``instance_settings`` asks the module's ``offering_settings`` hook for the settings that
provision a plan with the requester's parameters; for a module without the hook, the
offering's base settings with the parameters merged over them. A secret the module put
in plain in a secret field (a password it generated) is taken out and replaced by a
reference to a credential ``svc-<instance>-<n>`` of the providing organisation, which
``store_secrets`` creates, sealed, in the approval's transaction: a definition's
revisions never hold the secret. ``connection_details`` asks ``offering_credentials``
what the requester gets at bind, with the instance's credentials resolved; a module
without the hook hands over where the instance runs, and nothing secret.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from infracms.keys import Keyring
from infracms.models.credential import Credential, CredentialKind
from infracms.models.definition import Definition, Revision, TargetRef
from infracms.models.federation import PublishedOffering, ServiceInstance
from infracms.models.host import Host, HostGroup
from infracms.models.organisation import Organisation
from infracms.modules.contract import Module, Plan, ProvidedOffering, ServiceHost
from infracms.plugins import Plugins
from infracms.services import audit, definitions
from infracms.services.common import snapshot
from infracms.services.context import Actor
from infracms.services.credentials import FIELDS, reveal, sealing_context
from infracms.services.federation.broker_errors import BrokerBadRequest
from infracms.services.federation.offerings import module_offerings
from infracms.services.modules import module_or_404

PATH_TOKEN = re.compile(r"\[\]|[^.\[\]]+")


@dataclass(frozen=True)
class InstanceSettings:
    """An instance's settings (secrets as references) and the secrets generated for them."""

    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


def credential_prefix(instance: ServiceInstance) -> str:
    """The names of an instance's generated credentials start with this."""
    return f"svc-{instance.id.hex[:12]}-"


def provided(session: Session, publication: PublishedOffering) -> ProvidedOffering:
    """A publication as the offering hooks see it."""
    org = session.get(Organisation, publication.organisation_id)
    return ProvidedOffering(
        id=publication.offering_id,
        name=publication.offering,
        organisation=org.name if org else "?",
        settings=copy.deepcopy(publication.settings),
    )


def declared_plan(plugins: Plugins, publication: PublishedOffering, plan: dict[str, Any]) -> Plan:
    """The module's own declaration of a published plan (or one rebuilt from what is stored)."""
    for offering in module_offerings(plugins).get(publication.module, []):
        if offering.name == publication.offering:
            for declared in offering.plans:
                if declared.name == plan.get("plan"):
                    return declared
    return Plan(
        name=str(plan.get("plan", "")),
        title=str(plan.get("title", "")),
        parameters=dict(plan.get("parameters") or {}),
    )


def instance_settings(
    session: Session,
    plugins: Plugins,
    publication: PublishedOffering,
    plan: dict[str, Any],
    parameters: dict[str, Any],
    *,
    prefix: str,
) -> InstanceSettings:
    """The settings that provision `plan` with `parameters`, checked by the module's model."""
    module = module_or_404(plugins, publication.module)
    offering = provided(session, publication)
    try:
        answer = plugins.hook.offering_settings(
            module=module,
            offering=offering,
            plan=declared_plan(plugins, publication, plan),
            parameters=copy.deepcopy(parameters),
        )
    except ValueError as exc:  # the module's way to refuse parameters
        raise BrokerBadRequest(f"parameters refused by {module.name}: {exc}") from exc
    if answer is None:
        answer = _merge(copy.deepcopy(publication.settings), parameters)
    generated = _take_secrets(module, copy.deepcopy(answer), prefix)
    _validate(module, generated.settings)
    return generated


def store_secrets(
    session: Session,
    keyring: Keyring,
    actor: Actor,
    organisation: Organisation,
    generated: InstanceSettings,
    why: str,
) -> None:
    """Create the generated secrets as sealed credentials (added to the session, audited)."""
    for name, secret in generated.secrets.items():
        credential = Credential(
            name=name,
            kind=CredentialKind.password,
            description=why[:500],
            organisation_id=organisation.id,
            ciphertext="",
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


def forget_secrets(session: Session, actor: Actor, row: ServiceInstance) -> None:
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


def connection_details(
    session: Session, keyring: Keyring, plugins: Plugins, row: ServiceInstance
) -> dict[str, Any]:
    """What the requester gets at bind: the module's answer, or where the instance runs."""
    publication = session.get(PublishedOffering, row.publication_id)
    assert publication is not None
    hosts = pool_hosts(session, publication)
    plan = next((p for p in publication.plans if p["id"] == row.plan_id), {"plan": row.plan_id})
    answer = plugins.hook.offering_credentials(
        module=module_or_404(plugins, publication.module),
        offering=provided(session, publication),
        plan=declared_plan(plugins, publication, plan),
        settings=_resolved(session, keyring, row),
        hosts=hosts,
    )
    details: dict[str, Any] = dict(answer or {"hosts": [host.address for host in hosts]})
    details.update(instance_id=row.instance_id, offering=row.offering_id, plan=row.plan_id)
    return details


def pool_hosts(session: Session, publication: PublishedOffering) -> list[ServiceHost]:
    """The hosts an offering's instances go on (the pool group and the groups in it)."""
    org = session.get(Organisation, publication.organisation_id)
    group = session.get(HostGroup, publication.group_id)
    if org is None or group is None:
        return []
    names = definitions._hosts_of(session, org, TargetRef(group=group.name))
    rows = session.exec(
        select(Host).where(Host.organisation_id == org.id, col(Host.name).in_(names))
    ).all()
    return [
        ServiceHost(name=h.name, address=h.address, ssh_port=h.ssh_port, host_key=h.host_key)
        for h in sorted(rows, key=lambda h: h.name)
    ]


def definitions_on_pool(
    session: Session, plugins: Plugins, publication: PublishedOffering
) -> list[str]:
    """Definitions of a single-definition module that already apply to the pool's hosts."""
    module = plugins.registry.get(publication.module)
    org = session.get(Organisation, publication.organisation_id)
    if module is None or module.multiple or org is None:
        return []
    pool = {host.name for host in pool_hosts(session, publication)}
    found = session.exec(
        select(Definition).where(
            Definition.organisation_id == org.id,
            Definition.module == module.name,
            col(Definition.retired_at).is_(None),
        )
    ).all()
    return sorted(
        d.name
        for d in found
        if pool & set(definitions._hosts_of(session, org, definitions.target_of(session, d)))
    )


def _take_secrets(module: type[Module], settings: dict[str, Any], prefix: str) -> InstanceSettings:
    secrets: dict[str, str] = {}

    def reference(secret: str) -> dict[str, str]:
        name = next((n for n, s in secrets.items() if s == secret), None)
        if name is None:
            name = f"{prefix}{len(secrets) + 1}"
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


def _validate(module: type[Module], settings: dict[str, Any]) -> None:
    try:
        module.settings.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise BrokerBadRequest(
            f"parameters do not make valid {module.name} settings: {problems}"
        ) from exc


def _generated(session: Session, row: ServiceInstance) -> list[Credential]:
    return list(
        session.exec(
            select(Credential).where(
                Credential.organisation_id == row.organisation_id,
                col(Credential.name).startswith(credential_prefix(row)),
            )
        ).all()
    )


def _resolved(session: Session, keyring: Keyring, row: ServiceInstance) -> dict[str, Any]:
    """The instance's published settings, its own credentials resolved (no other secret)."""
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
    if revision is None:
        return {}
    settings = copy.deepcopy(revision.settings)
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


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base
