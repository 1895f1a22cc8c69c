"""Every built-in module, applied over the API through the embedded executor, is real on
the host: checked inside the host (not through infracms) and from outside over the
network where a service answers."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.integration.node import assert_succeeded, on_host, ssh_as
from tests.integration.world import (
    CALENDARS_PORT,
    CERT_PATH,
    REPOSITORY,
    SITE_PAGE,
    Applied,
    World,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_first_apply_succeeds_on_both_hosts(world: World, first_apply: Applied) -> None:
    run = world.node.run(first_apply.run_id)
    assert_succeeded(world.node, run)
    assert sorted(run.recap) == ["vpn1", "web1"], run.recap
    for host, counts in run.recap.items():
        assert counts.get("changed", 0) > 0, f"{host} changed nothing: {run.recap}"
        assert not counts.get("failed") and not counts.get("unreachable"), run.recap
    assert {d["name"]: d["revision"] for d in run.definitions} == {
        name: 1 for name in (d["name"] for d in run.definitions)
    }, run.definitions
    assert len(run.definitions) == 10, run.definitions
    actions = [e.action for e in world.node.audit() if e.subject.endswith(str(run.id))]
    assert actions == ["run.apply", "run.start", "run.finish"], actions


def test_base(world: World, first_apply: Applied) -> None:
    web = world.web
    assert on_host(web, "hostname").strip() == "web1"
    assert on_host(web, "cat /etc/timezone") == "Europe/Berlin\n"
    assert on_host(web, "readlink /etc/localtime").strip() == "/usr/share/zoneinfo/Europe/Berlin"
    for package in ("curl", "unattended-upgrades"):
        status = on_host(web, ["dpkg-query", "-W", "-f=${Status}", package])
        assert status == "install ok installed", f"{package}: {status}"
    upgrades = on_host(web, "cat /etc/apt/apt.conf.d/20auto-upgrades")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in upgrades, upgrades
    assert "127.0.1.1\tweb1" in on_host(web, "cat /etc/hosts")


def test_users(world: World, first_apply: Applied) -> None:
    web = world.web
    assert "(adm)" in on_host(web, "id alice"), on_host(web, "id alice")
    home_keys = on_host(web, "cat /home/alice/.ssh/authorized_keys")
    assert "alice@laptop" in home_keys, home_keys
    assert on_host(web, "stat -c '%U %a' /home/alice/.ssh/authorized_keys") == "alice 600\n"
    sudo = on_host(web, "sudo -l -U alice")
    assert "NOPASSWD: ALL" in sudo, sudo
    shadow = on_host(web, "getent shadow alice").split(":")
    assert shadow[1] == world.secrets["alice-hash"], "alice's password hash was not set"
    assert on_host(web, "getent passwd bob").strip().endswith(":/bin/sh")
    assert web.run("id mallory").returncode != 0, "mallory was not removed"
    assert web.run("test -e /home/mallory").returncode != 0, "mallory's home was kept"
    login = ssh_as(web, "alice", world.alice_key, "id -un", world.known_hosts)
    assert login.returncode == 0 and login.stdout == "alice\n", login.stderr


def test_ssh_hardening_keeps_the_node_key_working(world: World, first_apply: Applied) -> None:
    web = world.web
    config = on_host(web, "/usr/sbin/sshd -T")
    for line in (
        "maxauthtries 4",
        "clientaliveinterval 120",
        "passwordauthentication no",
        "permitrootlogin without-password",
        "allowusers root",
        "allowusers alice",
        "x11forwarding no",
    ):
        assert line in config.splitlines(), f"sshd -T lacks {line!r}:\n{config}"
    assert "Managed by infracms (module ssh_hardening)" in on_host(web, "cat /etc/ssh/sshd_config")
    assert on_host(web, "systemctl is-active ssh").strip() == "active"
    login = ssh_as(web, "root", world.node.private_key_path, "true", world.known_hosts)
    assert login.returncode == 0, f"the node's key no longer logs in: {login.stderr}"


def test_firewall_lets_the_web_in_and_keeps_postgresql_out(
    world: World, first_apply: Applied
) -> None:
    web = world.web
    ruleset = on_host(web, "nft list ruleset")
    assert "policy drop" in ruleset, ruleset
    assert 'tcp dport { 80, 443, 5232 } accept comment "web"' in ruleset, ruleset
    assert "tcp dport 22 accept" in ruleset, ruleset
    assert on_host(web, "systemctl is-enabled nftables").strip() == "enabled"
    assert "0.0.0.0:5432" in on_host(web, "ss -ltn"), "postgresql does not listen everywhere"
    with pytest.raises(TimeoutError):  # dropped, not refused: the port is open inside
        socket.create_connection((web.address, 5432), timeout=3).close()


def test_nginx_sites_answer_over_http_and_https(world: World, first_apply: Applied) -> None:
    web = world.web
    with httpx.Client(trust_env=False, timeout=10, verify=False) as client:
        plain = client.get(f"http://{web.address}/", headers={"Host": "www.example.org"})
        assert plain.status_code == 200 and plain.text == SITE_PAGE, plain.text
        moved = client.get(f"http://{web.address}/x", headers={"Host": "secure.example.org"})
        assert moved.status_code == 301, moved.text
        assert moved.headers["location"] == "https://secure.example.org/x"
        secure = client.get(f"https://{web.address}/", headers={"Host": "secure.example.org"})
        assert secure.status_code == 200 and secure.text == SITE_PAGE, secure.text
        assert secure.headers["strict-transport-security"] == "max-age=31536000"
    presented = on_host(
        web,
        "openssl s_client -connect 127.0.0.1:443 -servername secure.example.org </dev/null"
        " 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
    )
    expected = on_host(web, f"openssl x509 -noout -fingerprint -sha256 -in {CERT_PATH}")
    assert presented == expected, "nginx does not serve the configured certificate"
    assert on_host(web, "stat -c '%a' /etc/nginx/infracms-keys/infracms-secure.key") == "600\n"


def test_postgresql_answers(world: World, first_apply: Applied) -> None:
    web = world.web
    assert on_host(web, "runuser -u postgres -- psql -XAtc 'select 1'") == "1\n"
    owner = "select pg_get_userbyid(datdba) from pg_database where datname = 'appdb'"
    assert on_host(web, f'runuser -u postgres -- psql -XAtc "{owner}"') == "app\n"
    login = "select rolcanlogin from pg_roles where rolname = 'reporting'"
    assert on_host(web, f'runuser -u postgres -- psql -XAtc "{login}"') == "f\n"
    # the role's password works over TCP on the host's address (the hba rule in the settings)
    over_tcp = web.run(
        ["psql", "-XAtw", "-h", web.address, "-U", "app", "-d", "appdb", "-c", "select 1"]
    )
    assert over_tcp.returncode != 0, "psql logged in without the password"
    with_password = web.run(
        f"PGPASSWORD=\"$(cat)\" psql -XAtw -h {web.address} -U app -d appdb -c 'select 1'",
        input=world.secrets["app-db"],
    )
    assert with_password.stdout == "1\n", with_password.stderr


def test_backup_timer_and_repository(world: World, first_apply: Applied) -> None:
    web = world.web
    env = on_host(web, "cat /etc/infracms/backup/env")
    assert f'RESTIC_REPOSITORY="{REPOSITORY}"' in env, env
    assert 'RESTIC_PASSWORD_FILE="/etc/infracms/backup/password"' in env, env
    assert on_host(web, "stat -c '%a %U' /etc/infracms/backup/password") == "600 root\n"
    assert on_host(web, "cat /etc/infracms/backup/password") == world.secrets["restic"] + "\n"
    assert on_host(web, "systemctl is-enabled infracms-backup.timer").strip() == "enabled"
    assert on_host(web, "systemctl is-active infracms-backup.timer").strip() == "active"
    timer = on_host(web, "systemctl show -p TimersCalendar infracms-backup.timer")
    assert "*-*-* 02:30:00" in timer, timer
    # the service the timer starts backs up for real into the repository the role made
    on_host(web, "systemctl start infracms-backup.service")
    listing = on_host(
        web,
        f"restic --no-cache -r {REPOSITORY} --password-file /etc/infracms/backup/password "
        "snapshots --json",
    )
    snapshots = json.loads(listing)
    # the calendars' collections are added by the backup module (module_data): /etc held the rest
    assert len(snapshots) == 1, snapshots
    assert snapshots[0]["paths"] == ["/etc", "/srv/www", "/var/lib/radicale/collections"], snapshots


def test_wireguard_configuration(world: World, first_apply: Applied) -> None:
    vpn = world.vpn
    assert on_host(vpn, "stat -c '%a %U' /etc/wireguard/wg0.conf") == "600 root\n"
    config = on_host(vpn, "cat /etc/wireguard/wg0.conf")
    assert "Address = 10.8.0.1/24" in config and "ListenPort = 51820" in config, config
    assert "Endpoint = office.example.org:51820" in config, config
    stripped = on_host(vpn, "wg-quick strip wg0")  # parsed by WireGuard's own tools
    assert "Address" not in stripped and stripped.count("[Peer]") == 2, stripped
    public = on_host(vpn, "sed -n 's/^PrivateKey = //p' /etc/wireguard/wg0.conf | wg pubkey")
    assert public.strip() == world.wireguard_public_key, "the private key arrived altered"
    said = [e for e in world.node.events(first_apply.run_id) if e.host == "vpn1" and e.data]
    assert any("is written but not started" in str(e.data.get("msg")) for e in said), (
        "the role did not say that nothing starts the interface on a host without systemd"
    )


EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//infracms tests//EN
BEGIN:VEVENT
UID:board-meeting-1@example.org
DTSTAMP:20261207T090000Z
DTSTART:20261214T090000Z
DTEND:20261214T100000Z
SUMMARY:Board meeting
END:VEVENT
END:VCALENDAR
"""


def test_calendars_as_their_users_use_them(world: World, first_apply: Applied) -> None:
    """Over the network with TLS, as a calendar app would: alice makes a calendar and an
    event in it and reads it back; bob may not read it; a wrong password is refused."""
    web = world.web
    assert on_host(web, "systemctl is-active radicale").strip() == "active"
    users = on_host(web, "stat -c '%U %G %a' /etc/radicale/users /etc/radicale/infracms-tls.key")
    assert users.split("\n")[:2] == ["root radicale 640"] * 2, users
    stored = on_host(web, "cat /etc/radicale/users")
    assert stored.startswith("alice:$2b$") and "\nbob:$2b$" in stored, stored
    assert world.secrets["cal-alice"] not in stored and world.secrets["cal-bob"] not in stored

    base = f"https://{web.address}:{CALENDARS_PORT}"
    alice = ("alice", world.secrets["cal-alice"])
    bob = ("bob", world.secrets["cal-bob"])
    # The certificate is the test's own, for another name: TLS is checked by its use.
    with httpx.Client(verify=False, timeout=30) as http:
        made = http.request("MKCOL", f"{base}/alice/board/", auth=alice, content=MKCALENDAR)
        log = "journalctl -u radicale --no-pager -n 60"
        assert made.status_code == 201, made.text + on_host(web, log)
        put = http.put(
            f"{base}/alice/board/meeting.ics",
            auth=alice,
            content=EVENT,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert put.status_code == 201, put.text
        read = http.get(f"{base}/alice/board/meeting.ics", auth=alice)
        assert read.status_code == 200 and "SUMMARY:Board meeting" in read.text, read.text
        assert http.get(f"{base}/alice/board/meeting.ics", auth=bob).status_code == 403
        wrong = http.get(f"{base}/alice/board/meeting.ics", auth=("alice", "not her password"))
        assert wrong.status_code == 401
    # the backup module holds the calendars' data without being told where it is
    on_host(web, "systemctl start infracms-backup.service")
    listed = on_host(
        web,
        f"restic --no-cache -r {REPOSITORY} --password-file /etc/infracms/backup/password "
        "ls latest",
    )
    assert "/var/lib/radicale/collections/collection-root/alice/board/meeting.ics" in listed


MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
    <D:displayname>Board</D:displayname>
  </D:prop></D:set>
</D:mkcol>
"""
