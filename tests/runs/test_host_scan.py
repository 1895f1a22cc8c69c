"""Scanning a host says why it failed, one sentence for each way: the name does not
resolve, no route, no answer in time, nothing listening, not an SSH server, a server
that hangs up; against real sockets on loopback where the machine can make them."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator

import pytest

from infracms.errors import InvalidInput
from infracms.orchestration.bootstrap import connect_failure, probe


def serve_once(answer: bytes | None) -> tuple[int, threading.Thread, socket.socket]:
    """A loopback server that accepts one connection, sends `answer` (None: nothing)
    and hangs up."""
    server = socket.create_server(("127.0.0.1", 0))

    def handle() -> None:
        conn, _ = server.accept()
        with conn:
            if answer is not None:
                conn.sendall(answer)

    thread = threading.Thread(target=handle, daemon=True)
    thread.start()
    return server.getsockname()[1], thread, server


@pytest.fixture
def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says anything."""
    with socket.create_server(("127.0.0.1", 0), backlog=4) as server:
        yield int(server.getsockname()[1])


def refusal(address: str, port: int) -> str:
    with pytest.raises(InvalidInput) as refused:
        probe(address, port, timeout=0.3)
    return refused.value.detail


def test_an_ssh_server_passes(closed_port: int) -> None:
    port, thread, server = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")
    with server:
        probe("127.0.0.1", port, timeout=2)
        thread.join()


def test_nothing_listening_is_a_refused_connection(closed_port: int) -> None:
    said = refusal("127.0.0.1", closed_port)
    assert f"nothing listens on port {closed_port} of 127.0.0.1 (connection refused)" in said


def test_a_name_that_does_not_resolve_says_so() -> None:
    said = refusal("nothing.invalid", 22)
    assert said.startswith("the name nothing.invalid does not resolve"), said


def test_a_web_server_on_the_port_is_not_an_ssh_server() -> None:
    port, thread, server = serve_once(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with server:
        said = refusal("127.0.0.1", port)
        thread.join()
    assert said == (
        f"127.0.0.1:{port} is not an SSH server (it said 'HTTP/1.1 400 Bad Request'): "
        "is this the SSH port?"
    )


def test_a_port_that_stays_silent_sent_no_greeting(silent_port: int) -> None:
    said = refusal("127.0.0.1", silent_port)
    assert "accepts connections but sent no SSH greeting within 0.3 s" in said


def test_a_server_that_hangs_up_at_once_says_so() -> None:
    port, thread, server = serve_once(None)
    with server:
        said = refusal("127.0.0.1", port)
        thread.join()
    assert "closed the connection without a greeting" in said


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "has no route to the network"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to host 10.9.8.7"),
        (TimeoutError("timed out"), "did not answer on port 22 within 5 s"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "nothing listens on port 22"),
        (OSError(errno.EACCES, "Permission denied"), "cannot connect to 10.9.8.7:22"),
    ],
)
def test_each_connect_failure_has_its_sentence(error: OSError, sentence: str) -> None:
    # no route and a black hole cannot be made on loopback without root: the mapping
    assert sentence in connect_failure(error, "10.9.8.7", 22, 5)
