"""What users type is data: Ansible templates in settings land on the host as the
characters typed, and nothing they ask for runs on the controller."""

from __future__ import annotations

import pytest

from tests.integration.node import on_host
from tests.integration.world import Applied, Planned, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_templates_in_settings_land_as_typed_and_never_run(
    world: World, first_apply: Applied, plan_run: Planned
) -> None:
    web = world.web
    comment = on_host(web, "getent passwd alice").split(":")[4]
    assert comment == world.templates["users.comment"], comment
    excludes = on_host(web, "cat /etc/infracms/backup/excludes").splitlines()
    assert world.templates["backup.exclude"] in excludes, excludes
    for marker in world.markers:  # all four runs (two plans, two applies) had them
        assert not marker.exists(), f"{marker} exists: a lookup ran on the controller"
        assert web.run(["test", "-e", str(marker)]).returncode != 0, f"{marker} on the host"
