"""The wireguard module: keys, addresses, peers that do not share networks, the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infracms.modules.wireguard.module import Wireguard, WireguardSettings
from tests.modules.ansible import render
from tests.modules.conftest import errors_of
from tests.modules.samples import SECRETS, _key, role_variables, sample

ROLE = Path(Wireguard.role)


def peer(name: str, seed: int, *networks: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "public_key": _key(seed), "allowed_ips": list(networks)} | fields


def interface(**fields: Any) -> dict[str, Any]:
    return {"private_key": {"$credential": "wg-private"}, "addresses": ["10.8.0.1/24"]} | fields


def test_defaults() -> None:
    settings = WireguardSettings.model_validate(interface())
    assert (settings.interface, settings.listen_port, settings.mtu, settings.peers) == (
        "wg0",
        51820,
        None,
        [],
    )
    assert Wireguard.secret_fields() == {"private_key"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"private_key": _key(1)}, "private_key"),
        ({"interface": "wireguard-interface0"}, "interface"),
        ({"addresses": []}, "addresses"),
        ({"addresses": ["10.8.0.1"]}, None),  # a bare address is a /32: accepted
        ({"addresses": ["10.8.0.300/24"]}, "addresses"),
        ({"listen_port": 0}, "listen_port"),
        ({"mtu": 100}, "mtu"),
        ({"peers": [peer("a", 2, "10.8.0.2/32"), peer("b", 2, "10.8.0.3/32")]}, "peers"),
        ({"peers": [peer("a", 2, "10.8.0.0/24"), peer("b", 3, "10.8.0.7/32")]}, "peers"),
        ({"peers": [peer("a", 2, "10.8.0.2/32"), peer("a", 3, "10.8.0.3/32")]}, "peers"),
    ],
)
def test_bad_values_are_refused(fields: dict[str, Any], field: str | None) -> None:
    errors = errors_of(WireguardSettings, interface(**fields))
    if field is None:
        assert errors == {}
    else:
        assert {location.split(".")[0] for location in errors} == {field}, errors


@pytest.mark.parametrize(
    ("bad", "location"),
    [
        ({"public_key": "c2hvcnQ="}, "peers.0.public_key"),
        ({"allowed_ips": []}, "peers.0.allowed_ips"),
        ({"allowed_ips": ["10.8.0.1/24"]}, "peers.0.allowed_ips.0"),
        ({"endpoint": "vpn.example.org"}, "peers.0.endpoint"),
        ({"endpoint": "vpn.example.org:99999"}, "peers.0.endpoint"),
        ({"name": "a\n[Peer]"}, "peers.0.name"),
        ({"persistent_keepalive": 0}, "peers.0.persistent_keepalive"),
    ],
)
def test_bad_peers_are_refused(bad: dict[str, Any], location: str) -> None:
    errors = errors_of(WireguardSettings, interface(peers=[peer("a", 2, "10.8.0.2/32") | bad]))
    assert location in errors, errors


def test_one_peer_may_list_nested_networks() -> None:
    data = interface(
        peers=[peer("hub", 2, "10.8.0.0/16", "10.8.1.0/24"), peer("b", 3, "10.9.0.0/16")]
    )
    assert errors_of(WireguardSettings, data) == {}


def test_configuration(tmp_path: Path) -> None:
    text = render(ROLE, "interface.conf.j2", role_variables(Wireguard), tmp_path)
    settings = sample("wireguard")
    assert f"PrivateKey = {SECRETS['wg-private']}" in text
    assert "Address = 10.8.0.1/24, fd00:8::1/64" in text
    assert "ListenPort = 51820" in text
    office = settings["peers"][1]
    block = text.split("# office\n")[1]
    assert block.splitlines() == [
        "[Peer]",
        f"PublicKey = {office['public_key']}",
        "AllowedIPs = 10.8.1.0/24, fd00:8:1::/64",
        "Endpoint = office.example.org:51820",
        "PersistentKeepalive = 25",
    ]
