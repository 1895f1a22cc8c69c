"""Bootstrap's mechanics: scan a host's SSH key, run the one-time bootstrap playbook.

Deciding who may do it, pinning the key and recording what happened (audited) is
``services/bootstrap.py``, which calls these. The one-time password or key reaches
ansible-runner's private data dir only, which is removed when the playbook ends; it is
redacted from the output.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

from infracms.errors import InvalidInput
from infracms.models.host import HostPublic
from infracms.runs import workdir
from infracms.runs.adapter import run_playbook
from infracms.runs.events import Redactor
from infracms.runs.render import CredentialInput, HostInput, RenderInput, render
from infracms.sshkeys import host_key_fingerprint, normalise_host_key

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")
ONE_TIME = "one-time"


@dataclass(frozen=True)
class ScannedKey:
    """The key a host presents, and its fingerprint."""

    host_key: str
    fingerprint: str


def scan_host_key(address: str, port: int, *, timeout: int = 5) -> ScannedKey:
    """Ask the host for its SSH key (preferring Ed25519); a host that does not answer as
    an SSH server is refused with the reason in words (see ``probe``)."""
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        raise InvalidInput("ssh-keyscan is not installed on the node (Debian: openssh-client)")
    probe(address, port, timeout=timeout)
    try:
        # the address was validated as an IP address or a host name (no leading '-')
        found = subprocess.run(  # noqa: S603
            [
                keyscan,
                "-T",
                str(timeout),
                "-p",
                str(port),
                "-t",
                ",".join(("ed25519", "ecdsa", "rsa")),
                address,
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"cannot scan {address}:{port}: {exc}") from exc
    keys = {}
    for line in found.splitlines():
        words = line.split()
        if len(words) >= 3 and not line.startswith("#") and words[1] in KEY_TYPES:
            keys[words[1]] = normalise_host_key(f"{words[1]} {words[2]}")
    for key_type in KEY_TYPES:
        if key_type in keys:
            return ScannedKey(keys[key_type], host_key_fingerprint(keys[key_type]))
    raise InvalidInput(
        f"{address}:{port} answers as an SSH server but presented no SSH host key of the "
        f"types infracms pins ({', '.join(KEY_TYPES)})"
    )


def probe(address: str, port: int, *, timeout: float = 5) -> None:
    """Connect to `address`:`port` and read its greeting; refuse with a sentence for each
    way it can fail: the name does not resolve, no route, no answer in time, nothing
    listening, or something other than an SSH server listening."""
    try:
        found = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise _unreachable(
            f"the name {address} does not resolve ({why}): check the spelling, or give "
            "its IP address"
        ) from exc
    family, kind, proto, _, where = found[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except OSError as exc:
            raise _unreachable(connect_failure(exc, address, port, timeout)) from exc
        _check_greeting(sock, address, port, timeout)


def connect_failure(exc: OSError, address: str, port: int, timeout: float) -> str:
    """Why a connection to `address`:`port` failed, as a sentence for the sysadmin."""
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"nothing listens on port {port} of {address} (connection refused): is sshd "
            "running there, and is this its port?"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"{address} did not answer on port {port} within {timeout:g} s: the host is off, "
            "or a firewall drops the connection"
        )
    if exc.errno == errno.ENETUNREACH:
        return (
            f"this node has no route to the network of {address}: check the address (is it "
            "a private address of another network?)"
        )
    if exc.errno == errno.EHOSTUNREACH:
        return f"no route to host {address}: it is off, or not on the network it seems to be on"
    return f"cannot connect to {address}:{port}: {exc.strerror or exc}"


def _check_greeting(sock: socket.socket, address: str, port: int, timeout: float) -> None:
    try:
        greeting = sock.recv(256)
    except TimeoutError:
        raise _unreachable(
            f"{address}:{port} accepts connections but sent no SSH greeting within "
            f"{timeout:g} s: is this the SSH port? (a web server waits for the client to speak)"
        ) from None
    except OSError as exc:
        raise _unreachable(connect_failure(exc, address, port, timeout)) from exc
    if not greeting:
        raise _unreachable(
            f"{address}:{port} closed the connection without a greeting: its sshd may refuse "
            "this node (a firewall, TCP wrappers, or too many connections at once)"
        )
    if not greeting.startswith(b"SSH-"):
        said = greeting.decode("ascii", "replace").splitlines()[0][:60]
        raise _unreachable(
            f"{address}:{port} is not an SSH server (it said {said!r}): is this the SSH port?"
        )


def _unreachable(sentence: str) -> InvalidInput:
    return InvalidInput(sentence)


@dataclass(frozen=True)
class PlaybookOutcome:
    """How the bootstrap playbook ended, and its output with the secret masked."""

    status: str
    output: str


def run_bootstrap_playbook(
    host: HostPublic, *, host_key: str, kind: str, secret: str, node_public_key: str
) -> PlaybookOutcome:
    """Install `node_public_key` on `host`, logging in with the one-time `secret`."""
    data = RenderInput(
        hosts=(
            HostInput(
                name=host.name,
                address=host.address,
                port=host.ssh_port,
                user=host.ssh_user,
                host_key=host_key,
                credential=ONE_TIME,
                variables={"infracms_node_public_key": node_public_key},
                modules=(),
                settings={},
            ),
        ),
        credentials={ONE_TIME: CredentialInput(kind=kind, secret=secret)},
        roles={},
        check=False,
        timeout_seconds=300,
        playbook="bootstrap.yml",
    )
    lines: list[str] = []
    redactor = Redactor([secret])
    directory = workdir.new_run_dir()
    try:
        spec = render(data, directory)
        result = run_playbook(
            spec, on_event=lambda e: _collect(e, lines, redactor), should_cancel=lambda: False
        )
    finally:
        workdir.remove(directory)
    status = "succeeded" if result.status == "successful" else "failed"
    return PlaybookOutcome(status=status, output="\n".join(lines))


def _collect(event: dict[str, Any], lines: list[str], redactor: Redactor) -> None:
    stdout = event.get("stdout")
    if stdout:
        lines.append(redactor.text(str(stdout)))
