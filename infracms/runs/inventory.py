"""Writing an Ansible inventory whose user values are data, never templates.

Every string that came from a user is written with YAML's ``!unsafe`` tag, so Ansible
never evaluates it as a Jinja template on the controller: a setting
``{{ lookup('pipe','id') }}`` reaches the host as those characters. The emitter writes
YAML flow style (JSON with tags) directly, which is fast for large inventories.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

UNSAFE = "!unsafe "


def unsafe_yaml(value: Any) -> str:
    """`value` as flow-style YAML with every string tagged ``!unsafe``."""
    parts: list[str] = []
    _emit(value, parts)
    return "".join(parts)


def _emit(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(UNSAFE)
        out.append(json.dumps(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for position, (key, item) in enumerate(value.items()):
            if position:
                out.append(", ")
            out.append(json.dumps(str(key)))
            out.append(": ")
            _emit(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(", ")
            _emit(item, out)
        out.append("]")
    elif value is None or isinstance(value, bool | int | float):
        out.append(json.dumps(value))
    else:
        raise TypeError(f"cannot write {type(value).__name__} into an inventory")


def inventory_yaml(
    hosts: Mapping[str, Mapping[str, Any]], trusted: Mapping[str, Mapping[str, Any]]
) -> str:
    """An inventory of `hosts` (user data, unsafe) plus `trusted` variables per host
    (connection settings and module lists that infracms itself computed)."""
    lines = ["all:", "  hosts:"]
    for name in hosts:
        lines.append(f"    {json.dumps(name)}:")
        for key, item in trusted.get(name, {}).items():
            lines.append(f"      {json.dumps(key)}: {json.dumps(item)}")
        for key, item in hosts[name].items():
            lines.append(f"      {json.dumps(key)}: {unsafe_yaml(item)}")
    return "\n".join(lines) + "\n"
