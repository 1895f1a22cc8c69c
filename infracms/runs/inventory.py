"""Writing an Ansible inventory whose user values are data, never templates.

Every string that came from a user is written as ``{"__ansible_unsafe": "…"}`` in a
JSON inventory, which Ansible's JSON decoder turns into an unsafe string: it is never
evaluated as a Jinja template on the controller, so a setting
``{{ lookup('pipe','id') }}`` reaches the host as those characters. (YAML's ``!unsafe``
tag would do the same but re-resolves scalars: ``!unsafe "no"`` arrives as False.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

UNSAFE_KEY = "__ansible_unsafe"


def mark_unsafe(value: Any) -> Any:
    """`value` with every string wrapped as unsafe (keys stay as they are)."""
    if isinstance(value, str):
        return {UNSAFE_KEY: value}
    if isinstance(value, Mapping):
        return {str(key): mark_unsafe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mark_unsafe(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise TypeError(f"cannot write {type(value).__name__} into an inventory")


def inventory_json(
    hosts: Mapping[str, Mapping[str, Any]], trusted: Mapping[str, Mapping[str, Any]]
) -> str:
    """A JSON inventory of `hosts` (user data, unsafe) plus `trusted` variables per host
    (connection settings and module lists that infracms itself computed)."""
    document = {
        "all": {
            "hosts": {
                name: {**mark_unsafe(variables), **trusted.get(name, {})}
                for name, variables in hosts.items()
            }
        }
    }
    return json.dumps(document, separators=(",", ":"))
