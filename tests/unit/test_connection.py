"""Nagle's algorithm off on the SSH connection's TCP socket (issue 15), nothing else touched."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from operations.connection import no_delay


def connector(sock):
    transport = SimpleNamespace(sock=sock)
    return SimpleNamespace(client=SimpleNamespace(get_transport=lambda: transport))


def test_tcp_socket_gets_no_delay():
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert no_delay(connector(sock)) is True
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_other_connections_are_left_alone():
    left, right = socket.socketpair()  # AF_UNIX: e.g. a ProxyCommand's pipe is not a TCP socket either
    with left, right:
        assert no_delay(connector(left)) is False
    assert no_delay(connector(object())) is False  # paramiko's ProxyCommand
    assert no_delay(SimpleNamespace()) is False  # @docker, @local: no SSH client
    assert no_delay(SimpleNamespace(client=None)) is False
    assert no_delay(SimpleNamespace(client=SimpleNamespace(get_transport=lambda: None))) is False
