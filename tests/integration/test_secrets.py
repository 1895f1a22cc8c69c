"""Secrets reach the host, and nothing else: after two plans and two applies whose settings
hold credentials and an ``$env`` reference (restic and PostgreSQL passwords, a TLS key,
a WireGuard key, a password hash) and that log in with the node's own key, no secret is
in a stored event, a run's error, an audit entry, the server's output, any file under
the data dir (the database among them) or the runs' temporary directories, nor in the
host's logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infracms.runs import workdir
from tests.integration.node import files_holding_secrets, find_secrets, on_host, secret_forms
from tests.integration.world import Applied, Planned, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_secret_is_left_anywhere_but_on_the_host(
    world: World, first_apply: Applied, plan_run: Planned
) -> None:
    node, secrets = world.node, world.secrets
    # the secrets were used: each arrived where it belongs
    assert on_host(world.web, "cat /etc/infracms/backup/password") == secrets["restic"] + "\n"
    assert secrets["wg-private"] in on_host(world.vpn, "cat /etc/wireguard/wg0.conf")
    runs = node.all_runs()
    assert [r.kind for r in runs] == ["plan", "apply", "apply", "plan"], [r.kind for r in runs]
    leaks: dict[str, list[str]] = {}
    for run in runs:
        leaks[f"run {run.id} error"] = find_secrets(run.error or "", secrets)
        for event in node.events(run.id):
            row = json.dumps([event.stdout, event.data, event.task, event.host, event.event])
            leaks[f"run {run.id} event {event.seq}"] = find_secrets(row, secrets)
    for entry in node.audit():
        text = json.dumps([entry.payload, entry.subject, entry.action, entry.actor_name])
        leaks[f"audit entry {entry.index} ({entry.action})"] = find_secrets(text, secrets)
    server_output = world.server.output()
    logged = "INFO sqlalchemy.engine.Engine: INSERT INTO run_event"
    assert logged in server_output, f"the server log has no {logged!r} lines to search"
    leaks["server output"] = find_secrets(server_output, secrets)
    assert {k: v for k, v in leaks.items() if v} == {}

    data_dir = node.settings.data_dir
    assert any(data_dir.rglob("*.db*")) or any(data_dir.rglob("*.sqlite*")), "no database"
    in_files = files_holding_secrets([data_dir], secrets, skip=[node.private_key_path])
    assert in_files == {}, f"secrets in the node's files: {in_files}"
    server_tmp = world.tmp / "tmp"
    left = sorted(p.name for p in server_tmp.iterdir())
    assert not [name for name in left if name.startswith("infracms-run-")], left
    shared_tmp = [*Path("/tmp").glob("infracms-run-*"), *Path("/tmp").glob("icms-cp-*")]
    shared_tmp.append(workdir.root())  # where run directories live now (in memory)
    in_tmp = files_holding_secrets([server_tmp, *shared_tmp], secrets)
    assert in_tmp == {}, f"secrets in temporary files: {in_tmp}"


def test_no_secret_in_the_hosts_logs(world: World, plan_run: Planned) -> None:
    forms = {form for secret in world.secrets.values() for form in secret_forms(secret)}
    # grep takes one pattern a line: the one-line forms (a key's body lines among them)
    patterns = "\n".join(sorted(form for form in forms if "\n" not in form))
    for host in (world.web, world.vpn):
        found = host.run(
            "grep -rlF -f /dev/stdin /var/log /root /tmp /var/tmp /home 2>/dev/null || true",
            input=patterns + "\n",
        )
        assert found.stdout == "", f"secrets in files on {host.name}: {found.stdout}"
    journal = on_host(world.web, "journalctl --no-pager -o cat")
    assert find_secrets(journal, world.secrets) == [], "secrets in web1's journal"
