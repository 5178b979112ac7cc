"""
The SSH connection's socket (issue 15): Nagle's algorithm off, paramiko's idle check every
few seconds (keepalives kept on time); connections without a socket of their own untouched.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import paramiko

from run.connection import IDLE_CHECK_SECONDS, idle_check, no_delay


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


def paramiko_connector(sock):
    """A real paramiko transport over ``sock`` (its thread not started: no SSH server needed)."""
    transport = paramiko.Transport(sock)
    return SimpleNamespace(client=SimpleNamespace(get_transport=lambda: transport)), transport


def test_idle_check_every_few_seconds_instead_of_paramikos_tenth():
    left, right = socket.socketpair()
    with left, right:
        connector, transport = paramiko_connector(left)
        assert left.gettimeout() == transport._active_check_timeout == 0.1  # what paramiko sets
        assert idle_check(connector) == IDLE_CHECK_SECONDS == left.gettimeout()
        assert 1 <= IDLE_CHECK_SECONDS <= 10  # a closed connection still ends at once; see the docstring


def test_idle_check_keeps_a_shorter_keepalive_on_time():
    for keepalive, expected in ((2, 2), (30, IDLE_CHECK_SECONDS)):
        left, right = socket.socketpair()
        with left, right:
            connector, transport = paramiko_connector(left)
            transport.set_keepalive(keepalive)  # what pyinfra does for ServerAliveInterval
            assert idle_check(connector) == expected == left.gettimeout()


def test_idle_check_leaves_other_connections_alone():
    assert idle_check(connector(object())) is None  # paramiko's ProxyCommand
    assert idle_check(SimpleNamespace()) is None  # @docker, @local: no SSH client
    assert idle_check(SimpleNamespace(client=None)) is None
    assert idle_check(SimpleNamespace(client=SimpleNamespace(get_transport=lambda: None))) is None
