"""Writing an Ansible inventory whose user values are data, never templates.

Every string that came from a user is written as ``{"__ansible_unsafe": "…"}`` in a
JSON inventory, which Ansible's JSON decoder turns into an unsafe string: it is never
evaluated as a Jinja template on the controller, so a setting
``{{ lookup('pipe','id') }}`` reaches the host as those characters. (YAML's ``!unsafe``
tag would do the same but re-resolves scalars: ``!unsafe "no"`` arrives as False.)

Each host is in exactly one group of the inventory (besides ``all``), whose variables
its hosts share; no other group carries variables. Ansible lets a host's own variables
win over its group's, so a host's user value of a name its group sets is left out: the
group's value is the one that counts, whatever the precedence.

Free-form host variables never become variables of their own: a host variable named
like a role's constant (``postgresql_psql``) or like one of Ansible's
(``_ansible_ansiballz_pydevd_config``) would change what a role does. They travel as
one mapping, `HOST_VARIABLES`, marked unsafe, which no built-in role reads: the only
variables a role gets are the ones infracms names (a module's settings under the
module's name, connection facts, `infracms_modules`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNSAFE_KEY = "__ansible_unsafe"
HOST_VARIABLES = "infracms_host_vars"


@dataclass(frozen=True)
class Variables:
    """Variables of a host or a group: `user` values are written unsafe, `trusted` ones
    (that infracms computed itself) as they are, and win over a user value of their name."""

    user: Mapping[str, Any] = field(default_factory=dict)
    trusted: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """Hosts that share variables, and each host's own."""

    variables: Variables
    hosts: Mapping[str, Variables]


def mark_unsafe(value: Any, memo: dict[int, tuple[Any, Any]] | None = None) -> Any:
    """`value` with every string wrapped as unsafe (keys stay as they are). With `memo`,
    a mapping or list met again (the very object) is marked once: settings that several
    groups share. The memo keeps what it saw, so that no identity is reused meanwhile."""
    kind = type(value)
    if kind is str:
        return {UNSAFE_KEY: value}
    if value is None or kind is bool or kind is int or kind is float:
        return value
    if memo is not None and id(value) in memo:
        return memo[id(value)][1]
    if isinstance(value, Mapping):
        marked: Any = {
            str(key): {UNSAFE_KEY: item} if type(item) is str else mark_unsafe(item, memo)
            for key, item in value.items()
        }
    elif isinstance(value, list | tuple):
        marked = [mark_unsafe(item, memo) for item in value]
    elif isinstance(value, str):  # a subclass
        return {UNSAFE_KEY: str(value)}
    elif isinstance(value, bool | int | float):
        return value
    else:
        raise TypeError(f"cannot write {type(value).__name__} into an inventory")
    if memo is not None:
        memo[id(value)] = (value, marked)
    return marked


def namespaced(free_form: Mapping[str, Any]) -> dict[str, Any]:
    """A host's free-form variables as the one variable they may reach Ansible as."""
    return {HOST_VARIABLES: dict(free_form)} if free_form else {}


def inventory_json(groups: Mapping[str, Group]) -> str:
    """A JSON inventory of `groups` (names Ansible accepts: letters, digits, '_')."""
    memo: dict[int, tuple[Any, Any]] = {}
    children = {}
    for name, group in groups.items():
        shared = {**mark_unsafe(group.variables.user, memo), **group.variables.trusted}
        hosts = {}
        for host, own in group.hosts.items():
            user = {k: v for k, v in own.user.items() if k not in shared}
            hosts[host] = {**mark_unsafe(user), **own.trusted}
        children[name] = {"vars": shared, "hosts": hosts}
    return json.dumps({"all": {"children": children}}, separators=(",", ":"))
