"""
The SSH connection itself: settings pyinfra's connector does not make. Called by the run
lock's callback (``run.run_lock.RunLock``) right after each host is connected. They reach into
pyinfra's SSH connector (its paramiko ``client``) and paramiko's transport: checked against
pyinfra 3.10.0's ``SSHConnector.connect`` (``CHECKED_SOURCE_SHA256``; ``run.install`` checks it
before the run connects anywhere).
"""

from __future__ import annotations

import socket

from pyinfra.connectors.ssh import SSHConnector

from run.checked import require

#: sha256 of the source of pyinfra's ``SSHConnector.connect`` (which makes ``client``) checked against.
CHECKED_SOURCE_SHA256 = "32da021d77c0af3ef7e7d66f51928c5e8bbd1c64a8ae84f60b27b12863e280ee"


def check() -> None:
    """Raise ``UncheckedPyinfra`` unless pyinfra's SSH connector is the one this module was read against."""
    require(SSHConnector.connect, CHECKED_SOURCE_SHA256, "the SSH connection's settings (run.connection)")


def _transport_and_socket(connector):
    """The connection's paramiko transport and its socket (None, None without an SSH client)."""
    client = getattr(connector, "client", None)
    transport = client.get_transport() if client is not None else None
    return transport, getattr(transport, "sock", None)


def no_delay(connector) -> bool:
    """
    Issue 15: Nagle's algorithm off on the SSH connection's socket (True when set). paramiko
    leaves it on, so the small packets of each command (channel open, exec, exit status) wait
    for the peer's delayed ACK: 48 ms -> 6 ms per ``true`` with paramiko alone, a no-op re-run
    1.87 s -> 1.56 s and a cold deploy 33.5 s -> 28.5 s (~100 commands) on a local Debian 12
    target. Connectors without a
    TCP socket of their own (``@docker``, ``@local``, a ProxyCommand) are left as they are.
    """
    _, sock = _transport_and_socket(connector)
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


#: Issue 15: how often paramiko's transport wakes up while the connection is idle (a long
#: ``apt-get``, ``pip install``, a restart), to see whether it was closed and to send
#: keepalives. paramiko's 0.1 s costs the control side 3.8 ms of CPU per second a command
#: runs (a ``socket.timeout`` raised through gevent ten times a second): 116 ms for a
#: ``sleep 30``, against 13 ms at 1 s and 6 ms at 5 s. It adds up over a fleet's run, as every
#: host's connection stays open for the whole run. Closing the connection does not wait for
#: it (paramiko closes the socket, which ends the wait at once).
IDLE_CHECK_SECONDS = 5.0


def idle_check(connector, seconds: float = IDLE_CHECK_SECONDS) -> float | None:
    """
    Issue 15: paramiko's transport checks an idle connection every ``seconds`` instead of
    every 0.1 s, or at the connection's keepalive interval (``ServerAliveInterval`` in the SSH
    config) when that is shorter, so keepalives are still sent on time. Returns the interval
    set, None for connections without a socket of their own (``@docker``, ``@local``, a
    ProxyCommand), which are left as they are.
    """
    transport, sock = _transport_and_socket(connector)
    if not isinstance(sock, socket.socket):
        return None
    # paramiko keeps the interval on its packetizer (set_keepalive) and offers no getter
    keepalive = getattr(getattr(transport, "packetizer", None), "_Packetizer__keepalive_interval", 0) or 0
    interval = min(seconds, keepalive) if keepalive > 0 else seconds
    sock.settimeout(interval)
    return interval
