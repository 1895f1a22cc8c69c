"""What a run needs, loaded and decrypted: hosts, credentials, settings with secrets resolved.

Secret references in settings are resolved here, on the worker, and nowhere else:
``{"$credential": NAME}`` is a credential of the run's organisation; ``{"$env": NAME}``
an environment variable of the worker named ``INFRACMS_VAR_*``; ``{"$file": PATH}`` a
file under the node's ``secrets/`` directory. Other variables and files are refused, so
a definition cannot read the node's own keys. Every resolved secret is returned too, so
events can be scrubbed of it.

Before anything is resolved, every reference is checked for every host it would reach:
a credential only goes to the hosts its scope allows (and so does each host's own
connection credential), an ``$env``/``$file`` reference only if a node admin granted
it to the organisation (services/secret_sources). A run that breaks either fails here,
before anything is rendered or sent, naming the definition and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlmodel import Session, select

from infracms.config import Settings
from infracms.errors import InvalidInput
from infracms.keys import Keyring, load_node_ssh_key
from infracms.models.credential import Credential
from infracms.models.host import Host
from infracms.models.organisation import Organisation
from infracms.models.run import Run, RunKind
from infracms.modules.contract import secret_references
from infracms.modules.render import DefinitionRow, HostRow, Shape
from infracms.plugins import Plugins
from infracms.runs.inventory import namespaced
from infracms.runs.render import CredentialInput, HostInput, RenderInput
from infracms.services import rendering
from infracms.services.common import found as found_row
from infracms.services.credential_scope import Scopes
from infracms.services.credentials import reveal
from infracms.services.secret_sources import Grants, grants_of, not_granted, secrets_dir
from infracms.services.targets import refuse_node_targets

NODE_KEY = "__node__"  # hosts without a credential use the node's own SSH key
ENV_RE = re.compile(r"^INFRACMS_VAR_[A-Z0-9_]+$")
REFERENCE_KEYS = frozenset({"$credential", "$env", "$file"})


@dataclass(frozen=True)
class RunInput:
    """The render input and the secret values it contains."""

    render: RenderInput
    secrets: frozenset[str]


def load_run_input(
    session: Session, *, run: Run, settings: Settings, plugins: Plugins, keyring: Keyring
) -> RunInput:
    """Everything the renderer needs for `run`.

    Settings are worked out for the run's hosts only, once per shape (see
    modules.render), and each definition's secret references are resolved once: hosts
    with equal settings share them, which the renderer writes once as group variables."""
    org = found_row(session.get(Organisation, run.organisation_id), "the run's organisation")
    rows = _credential_rows(session, org)
    grants = grants_of(session, organisation_id=org.id)
    hosts = _hosts(session, run)
    refuse_node_targets(((h.name, h.address) for h, _ in hosts), allow=settings.allow_node_target)
    pinned = {d["name"]: int(d["revision"]) for d in run.definitions}
    host_rows = [
        HostRow(host.name, groups, host.variables, host.ssh_user, host.ssh_port)
        for host, groups in hosts
    ]
    parents = rendering.group_parents(session, organisation_id=org.id)
    found = rendering.resolve(
        plugins,
        host_rows,
        parents,
        rendering.definition_rows(session, organisation_id=org.id, pinned=pinned),
    )
    scopes = Scopes(session, org.id, rows, host_rows, parents)
    _check_connections(scopes, [host for host, _ in hosts])
    _check_references(scopes, grants, found)
    credentials = {row.name: (str(row.kind), reveal(keyring, row)) for row in rows}
    credentials[NODE_KEY] = ("ssh_key", load_node_ssh_key(settings)[0])
    resolver = _Resolver(credentials, secrets_dir(settings), grants)
    per_host = rendering.settings_of(plugins, found, prepare=resolver.resolve)
    nothing: dict[str, Any] = {}
    order = _Order(plugins)
    render = RenderInput(
        hosts=tuple(
            HostInput(
                name=host.name,
                address=host.address,
                port=host.ssh_port,
                user=host.ssh_user,
                host_key=host.host_key,
                credential=host.credential or NODE_KEY,
                # an allowlist: settings reach roles by module name, nothing else does
                variables=namespaced(host.variables),
                modules=order(per_host.get(host.name, nothing)),
                settings=per_host.get(host.name, nothing),
            )
            for host, _ in hosts
        ),
        credentials={
            name: CredentialInput(kind=c[0], secret=c[1]) for name, c in credentials.items()
        },
        roles={name: module.role for name, module in plugins.registry.modules.items()},
        check=run.kind is RunKind.plan,
        timeout_seconds=run.timeout_seconds,
    )
    secrets = resolver.used | {secret for _, secret in credentials.values()}
    return RunInput(render=render, secrets=frozenset(secrets))


class _Host(NamedTuple):
    """A host's row: its name, then HOST_COLUMNS."""

    name: str
    variables: dict[str, Any]
    address: str
    ssh_port: int
    ssh_user: str
    host_key: str | None
    credential: str | None


HOST_COLUMNS = (
    Host.variables,
    Host.address,
    Host.ssh_port,
    Host.ssh_user,
    Host.host_key,
    select(Credential.name).where(Credential.id == Host.credential_id).scalar_subquery(),
)


def _hosts(session: Session, run: Run) -> list[tuple[_Host, tuple[str, ...]]]:
    """The run's hosts that still exist, by name, with their groups: one query over the
    organisation's hosts (a filter of 10,000 names costs the database more than it saves)."""
    wanted = set(run.hosts)
    rows = rendering.hosts_with_groups(
        session, organisation_id=run.organisation_id, columns=HOST_COLUMNS
    )
    return [(_Host(*row), groups) for row, groups in rows if row[0] in wanted]


def _credential_rows(session: Session, org: Organisation) -> list[Credential]:
    return list(session.exec(select(Credential).where(Credential.organisation_id == org.id)))


def _check_connections(scopes: Scopes, hosts: list[_Host]) -> None:
    """Each host's own credential must allow that host (checked before any is sent)."""
    for host in hosts:
        if host.credential is not None and not scopes.allows(host.credential, host.name):
            raise InvalidInput(
                f"host {host.name}: its credential {host.credential} may not be sent to it "
                "(the credential's scope does not include it)",
                errors={f"hosts.{host.name}.credential": "not in the credential's scope"},
            )


def _check_references(scopes: Scopes, grants: Grants, found: list[Shape]) -> None:
    """Every secret reference of every definition the run applies, for every host it
    reaches: credentials within their scope, $env/$file sources granted."""
    for shape in found:
        for winner in shape.winners.values():
            for definition in winner if isinstance(winner, tuple) else (winner,):
                _check_definition(scopes, grants, definition, shape.hosts)


def _check_definition(
    scopes: Scopes, grants: Grants, definition: DefinitionRow, hosts: tuple[HostRow, ...]
) -> None:
    for path, kind, target in secret_references(definition.settings):
        where = f"definition {definition.name}, settings.{path}"
        if kind != "$credential":
            if not grants.allows(kind, target):
                raise InvalidInput(f"{where}: {not_granted(kind)}")
            continue
        refused = [host.name for host in hosts if not scopes.allows(target, host.name)]
        if refused and scopes.known(target):
            raise InvalidInput(
                f"{where}: credential {target} may not be sent to host {refused[0]} "
                "(the credential's scope does not include it)"
            )


class _Order:
    """Each settings mapping's modules in dependency order, worked out once per mapping
    (hosts with equal settings share one)."""

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self.known: dict[int, tuple[Mapping[str, Any], tuple[str, ...]]] = {}

    def __call__(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        if id(settings) not in self.known:
            self.known[id(settings)] = (settings, tuple(_ordered(self.plugins, settings)))
        return self.known[id(settings)][1]


def _ordered(plugins: Plugins, settings: Mapping[str, Any]) -> list[str]:
    """The host's modules, each after the modules it requires."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        module = plugins.registry.get(name)
        for dependency in module.requires if module else ():
            if dependency.name in settings:
                visit(dependency.name)
        order.append(name)

    for name in sorted(settings):
        visit(name)
    return order


class _Resolver:
    def __init__(
        self, credentials: Mapping[str, tuple[str, str]], secrets_dir: Path, grants: Grants
    ) -> None:
        self.credentials = credentials
        self.secrets_dir = secrets_dir.resolve()
        self.grants = grants
        self.used: set[str] = set()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if len(value) == 1 and set(value) <= REFERENCE_KEYS:
                ((kind, target),) = value.items()
                secret = self._one(kind, str(target))
                self.used.add(secret)
                return secret
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def _one(self, kind: str, target: str) -> str:
        if kind == "$credential":
            if target not in self.credentials or target == NODE_KEY:
                raise InvalidInput(f"no credential called {target!r} in this organisation")
            return self.credentials[target][1]
        # checked before (_check_references); again here for what hooks may have added
        if not self.grants.allows(kind, target):
            raise InvalidInput(not_granted(kind))
        if kind == "$env":
            if not ENV_RE.fullmatch(target):
                raise InvalidInput(
                    f"$env references must name INFRACMS_VAR_* variables, not {target!r}"
                )
            if target not in os.environ:
                raise InvalidInput(f"the worker has no environment variable {target}")
            return os.environ[target]
        path = Path(target).resolve()
        if not path.is_relative_to(self.secrets_dir) or not self.grants.allows(kind, str(path)):
            raise InvalidInput(not_granted(kind))
        try:
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise InvalidInput(f"cannot read {target}: {exc.strerror}") from exc
