"""The firewall module: rules, the lockout hook, the SSH ports kept open, nft -c."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infracms.modules.firewall.module import Firewall, FirewallSettings
from infracms.modules.targets import HostFacts, Target
from infracms.plugins import Registry
from tests.modules.ansible import render, role_play, run_playbook
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import role_variables, sample

ROLE = Path(Firewall.role)
TARGET = Target(kind="group", name="web", organisation="coop", hosts=("web1", "web2"))


def problems(registry: Registry, data: dict[str, Any]) -> dict[str, str] | None:
    settings = FirewallSettings.model_validate(data)
    return registry.modules["firewall"].validate_settings(settings=settings, target=TARGET) or None


def test_defaults_drop_and_keep_ssh() -> None:
    settings = FirewallSettings.model_validate({})
    assert (settings.input_policy, settings.forward_policy, settings.ssh_port) == (
        "drop",
        "drop",
        22,
    )
    assert settings.ssh_sources == [] and settings.rules == []


def test_rules_are_normalised() -> None:
    settings = FirewallSettings.model_validate(
        {"rules": [{"ports": [443, "8000-8100", " 53 ", "25-25"], "sources": ["10.1.2.3"]}]}
    )
    (rule,) = settings.rules
    assert rule.ports == [443, "8000-8100", 53, 25]  # a single port stays a number
    assert rule.sources == ["10.1.2.3/32"] and rule.proto == "tcp"


@pytest.mark.parametrize(
    ("rule", "location"),
    [
        ({"ports": []}, "rules.0.ports"),
        ({"ports": [0]}, "rules.0.ports.0"),
        ({"ports": ["70000"]}, "rules.0.ports.0"),
        ({"ports": ["100-10"]}, "rules.0.ports.0"),
        ({"ports": ["80,443"]}, "rules.0.ports.0"),
        ({"ports": [80], "proto": "icmp"}, "rules.0.proto"),
        ({"ports": [80], "sources": ["10.0.0.1/8"]}, "rules.0.sources.0"),
        ({"ports": [80], "sources": ["example.org"]}, "rules.0.sources.0"),
        ({"ports": [80], "comment": 'web" accept; drop'}, "rules.0.comment"),
        ({"ports": [80], "action": "reject"}, "rules.0.action"),
    ],
)
def test_bad_rules_are_refused(rule: dict[str, Any], location: str) -> None:
    errors = errors_of(FirewallSettings, {"rules": [rule]})
    assert location in errors, errors


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"input_policy": "reject"}, "input_policy"),
        ({"ssh_port": 0}, "ssh_port"),
        ({"ssh_sources": ["300.0.0.0/8"]}, "ssh_sources"),
    ],
)
def test_bad_values_are_refused(data: dict[str, Any], field: str) -> None:
    assert refused_field(FirewallSettings, data) == field


@pytest.mark.parametrize(
    "sources", [["127.0.0.0/8"], ["fe80::/10", "::1/128"], ["224.0.0.0/4"], ["169.254.0.0/16"]]
)
def test_hook_refuses_ssh_sources_no_node_can_use(registry: Registry, sources: list[str]) -> None:
    found = problems(registry, {"ssh_sources": sources})
    assert found is not None and "ssh_sources" in found
    assert "shut out" in found["ssh_sources"]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"ssh_sources": ["127.0.0.0/8", "192.0.2.0/24"]},
        {"ssh_sources": ["127.0.0.0/8"], "input_policy": "accept"},
    ],
)
def test_hook_accepts_reachable_ssh(registry: Registry, data: dict[str, Any]) -> None:
    assert problems(registry, data) is None


def test_extra_variables_keep_the_connection_port(registry: Registry) -> None:
    settings = FirewallSettings().model_dump(mode="json")
    found = registry.modules["firewall"].extra_variables(
        settings=settings, host=HostFacts(name="web1", ssh_port=2222)
    )
    assert found == {"connection_port": 2222}


def _filters() -> Any:
    path = ROLE / "filter_plugins/networks.py"
    spec = importlib.util.spec_from_file_location("firewall_networks", path)
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    return plugin.FilterModule().filters()


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("192.0.2.1", False),
        ("2001:db8::5", True),
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_address_in_networks_filter(address: str, inside: bool) -> None:
    check = _filters()["infracms_address_in_networks"]
    assert check(address, ["10.0.0.0/8", "2001:db8::/32"]) is inside


def _ruleset(tmp_path: Path, settings: dict[str, Any], connection_port: int) -> str:
    variables = role_variables(Firewall, settings)
    ports = sorted({settings.get("ssh_port", 22), connection_port})
    return render(ROLE, "nftables.conf.j2", variables | {"firewall_ssh_ports": ports}, tmp_path)


def test_ruleset_keeps_both_ssh_ports_open(tmp_path: Path) -> None:
    text = _ruleset(tmp_path, sample("firewall"), 2222)
    assert (
        'ip saddr { 10.0.0.0/8, 127.0.0.0/8 } tcp dport { 22, 2222 } accept comment "SSH"' in text
    )
    assert 'ip6 saddr { 2001:db8::/32 } tcp dport { 22, 2222 } accept comment "SSH"' in text
    assert 'tcp dport { 80, 443 } accept comment "web"' in text
    assert "ip saddr { 192.168.0.0/16 } udp dport { 51820, 6000-6010 } accept" in text
    assert "policy drop;" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings", [{}, sample("firewall"), {"input_policy": "accept", "allow_ping": False}]
)
def test_ruleset_passes_nft_check(tmp_path: Path, settings: dict[str, Any]) -> None:
    config = tmp_path / "nftables.conf"
    config.write_text(_ruleset(tmp_path, settings, 22))
    done = subprocess.run(["nft", "-c", "-f", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + config.read_text()


@pytest.mark.slow
def test_role_refuses_to_shut_out_the_connecting_address(tmp_path: Path) -> None:
    variables = role_variables(Firewall, {"ssh_sources": ["10.0.0.0/8"]})
    env = {"SSH_CONNECTION": "192.0.2.7 50000 10.0.0.1 22"}
    run = run_playbook(role_play(ROLE), variables, tmp_path, "--check", env=env)
    assert run.returncode != 0
    assert "this run reaches the host from 192.0.2.7" in run.output
