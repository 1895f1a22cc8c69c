"""Each role runs through in check mode with --diff on this machine, and hides its secrets.

Check mode changes nothing; the few tasks that run anyway only read (id, printenv,
systemd-analyze, pg_lsclusters, SELECTs on the machine's PostgreSQL), and the postgresql
and backup changes run only in an apply: in a plan, debug tasks say what would change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infracms.plugins import Registry
from tests.modules.ansible import role_play, run_playbook
from tests.modules.samples import SAMPLES, SECRETS, role_variables

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_role_runs_in_check_mode(registry: Registry, name: str, tmp_path: Path) -> None:
    module = registry.modules[name]
    run = run_playbook(
        role_play(Path(module.role)), role_variables(module), tmp_path, "--check", "--diff", "-vvv"
    ).check()
    assert run.recap()["failed"] == 0
    leaked = [key for key, secret in SECRETS.items() if secret in run.output]
    assert leaked == [], f"secrets in the output of {name}: {leaked}"
