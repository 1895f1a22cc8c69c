"""A shell user sets ``LOGNAME``/``USER`` to another person's name before running the
CLI. The OS user the CLI records (and maps to an infracms account without ``--as``) is
the one the process runs as, read from the kernel's uid, not from the environment: the
change is not credited to the person named in the variables, and acts with no rights
of theirs."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.security._audit_support import Shell, shell_fixture  # noqa: F401
from tests.security.test_audit_trust import entries_of

pytestmark = pytest.mark.security


def test_the_environment_does_not_name_the_person(shell: Shell, tmp_path: Path) -> None:
    real = pwd.getpwuid(os.geteuid()).pw_name
    assert real != "olga"
    shell.env.update({"LOGNAME": "olga", "USER": "olga", "LNAME": "olga", "USERNAME": "olga"})
    shell.ok("host", "add", "clinic", "web1", "198.51.100.1")
    shell.ok("--as", "olga", "host", "add", "clinic", "web2", "198.51.100.2")

    created = [e for e in entries_of(shell, tmp_path) if e["action"] == "host.create"]
    credited = [(e["actor_kind"], e["actor_name"], e["request_id"]) for e in created]
    assert credited == [
        ("system", f"cli:{real}", None),  # not olga's account, nor "typed by olga"
        ("user", "olga", f"cli:{real}"),  # --as names whom; the uid says who typed it
    ]
