"""Start, use and remove the containers that deploys are tested against.

Two kinds of target run from the same image:

- ``systemd``: ``/sbin/init`` is PID 1; reached over SSH as root on a port published on
  127.0.0.1 (pyinfra's ssh connector), like a real server.
- ``plain``: ``sleep infinity`` is PID 1, so ``systemctl`` exists but systemd does not run (the
  init.d path); reached with ``docker exec`` (pyinfra's ``@docker/<container id>`` connector).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from docker.models.containers import Container

from .cache import cache_dir, file_lock
from .engine import Log, docker_client
from .images import IMAGE_LABEL, RELEASE_LABEL

TEST_LABEL = "omeroweb-deploy.test"
OWNER_LABEL = "omeroweb-deploy.test.owner-pid"
NAME_PREFIX = "owd-test-"
BOOT_TIMEOUT = 120.0
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
SYSTEMD_RUN_OPTIONS: dict[str, Any] = {
    "cap_add": ["SYS_ADMIN"],
    "security_opt": ["seccomp=unconfined"],
    "volumes": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
    "tmpfs": {"/run": "", "/run/lock": ""},
    "stop_signal": "SIGRTMIN+3",
}

Kind = Literal["systemd", "plain"]


@dataclass
class Target:
    """A running test container and how to reach it."""

    name: str
    container_id: str
    kind: Kind
    release: str
    ports: dict[int, int] = field(default_factory=dict)  # container port -> 127.0.0.1 port
    ssh_port: int | None = None
    ssh_key: str | None = None

    def exec(self, cmd: str) -> tuple[int, str]:
        """Run ``sh -c cmd`` as root via ``docker exec``; return (exit code, stdout+stderr)."""
        result = docker_client().containers.get(self.container_id).exec_run(["sh", "-c", cmd])
        return result.exit_code, result.output.decode(errors="replace")

    def ssh(self, cmd: str, timeout: float = 300) -> tuple[int, str]:
        """Run ``cmd`` as root over SSH (systemd targets); return (exit code, stdout+stderr)."""
        if self.ssh_port is None or self.ssh_key is None:
            raise ValueError(f"{self.name} is a {self.kind} target without SSH")
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.MissingHostKeyPolicy())  # accept any
        try:
            client.connect("127.0.0.1", port=self.ssh_port, username="root",
                           key_filename=self.ssh_key, allow_agent=False, look_for_keys=False,
                           timeout=30)
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=30)
            channel.settimeout(timeout)
            channel.set_combine_stderr(True)
            channel.exec_command(cmd)
            output = channel.makefile("rb").read().decode(errors="replace")
            return channel.recv_exit_status(), output
        finally:
            client.close()

    def url(self, port: int, path: str = "/") -> str:
        """Return ``http://127.0.0.1:<host port>/path`` for a published container port."""
        if port not in self.ports:
            raise ValueError(f"Port {port} is not published by {self.name}: {sorted(self.ports)}")
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def pyinfra_host(self) -> tuple[str, dict[str, Any]]:
        """Return this target's pyinfra inventory entry ``(name, data)``.

        SSH targets are named after the container (``ssh_hostname`` is 127.0.0.1), so several
        of them can share one inventory.
        """
        if self.kind == "plain":
            return f"@docker/{self.container_id}", {}
        return self.name, {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": self.ssh_port,
            "ssh_user": "root",
            "ssh_key": self.ssh_key,
            "ssh_known_hosts_file": "/dev/null",
            "ssh_strict_host_key_checking": "no",
        }


def ssh_keypair(directory: Path) -> tuple[Path, str]:
    """Return (private key path, public key line) of an ed25519 key in ``directory``.

    The key is created (no passphrase) if missing, with ``ssh-keygen`` or else ``cryptography``.
    """
    private = Path(directory) / "id_ed25519"
    public = private.with_name("id_ed25519.pub")
    with file_lock("ssh-keypair"):
        if not (private.exists() and public.exists()):
            private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            private.unlink(missing_ok=True)
            public.unlink(missing_ok=True)
            _generate_keypair(private, public)
    return private, public.read_text().strip()


def _generate_keypair(private: Path, public: Path) -> None:
    comment = "omeroweb-deploy-tests"
    if shutil.which("ssh-keygen"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                        "-f", str(private)], check=True, stdin=subprocess.DEVNULL)
        return
    key = Ed25519PrivateKey.generate()
    private.touch(mode=0o600)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    openssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                            serialization.PublicFormat.OpenSSH)
    public.write_text(f"{openssh.decode()} {comment}\n")


def host_ca_certificates() -> list[str]:
    """Paths of the extra CA certificates this machine trusts (e.g. a TLS-intercepting proxy's).

    Pass them as ``omero_web_extra_ca_certificates``: the images do not trust them themselves.
    """
    if not HOST_CA_DIR.is_dir():
        return []
    return [str(path) for path in sorted(HOST_CA_DIR.rglob("*.crt"))
            if b"-----BEGIN CERTIFICATE-----" in path.read_bytes()]


def _run(image: str, name: str, exact_name: bool, ports: Iterable[int], command: list[str],
         **options: Any) -> Container:
    """Run a labelled container. Generated names carry the owner's PID for :func:`cleanup_stale`."""
    labels = {TEST_LABEL: "1"}
    if exact_name:
        container_name = name
    else:
        container_name = f"{NAME_PREFIX}{name}-{secrets.token_hex(4)}"
        labels[OWNER_LABEL] = str(os.getpid())
    return docker_client().containers.run(
        image, command, name=container_name, detach=True, hostname=container_name, labels=labels,
        ports={f"{port}/tcp": ("127.0.0.1", None) for port in ports},
        **options,
    )


def _published_ports(container: Container) -> dict[int, int]:
    container.reload()
    published: dict[int, int] = {}
    for spec, bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).items():
        if bindings:
            published[int(spec.split("/")[0])] = int(bindings[0]["HostPort"])
    return published


def _release(image: str) -> str:
    labels: dict[str, str] = docker_client().images.get(image).labels or {}
    return labels.get(RELEASE_LABEL, "")


def _install_authorized_key(container: Container, public_key: str) -> None:
    """Write /root/.ssh/authorized_keys (0600, dir 0700) with ``put_archive`` (not via /tmp)."""
    data = (public_key.strip() + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo(".ssh")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(directory)
        keys = tarfile.TarInfo(".ssh/authorized_keys")
        keys.size, keys.mode = len(data), 0o600
        tar.addfile(keys, io.BytesIO(data))
    if not container.put_archive("/root", buffer.getvalue()):
        raise RuntimeError(f"Could not write /root/.ssh/authorized_keys into {container.name}")


def _ssh_banner(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(64)
    except OSError:
        return b""


def _boot_failure(container: Container, reason: str) -> RuntimeError:
    container.reload()
    state = container.attrs["State"]
    details = [(f"{container.name}: {reason} (container {state.get('Status')}, "
                f"exit code {state.get('ExitCode')})")]
    if state.get("Running"):
        for cmd in ("systemctl is-system-running", "systemctl --failed --no-pager",
                    "journalctl -b --no-pager -n 30"):
            result = container.exec_run(["sh", "-c", cmd])
            details.append(f"$ {cmd}\n{result.output.decode(errors='replace').rstrip()}")
    logs = container.logs(tail=30).decode(errors="replace").rstrip()
    details.append(f"$ docker logs --tail 30\n{logs or '(empty)'}")
    return RuntimeError("\n".join(details))


def _wait_for_boot(container: Container, ssh_port: int, timeout: float) -> None:
    """Wait until systemd reports ``running`` and sshd sends its banner on ``ssh_port``."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            raise _boot_failure(container, "container stopped while booting")
        state = container.exec_run(["systemctl", "is-system-running"]).output.decode().strip()
        if state == "degraded":
            raise _boot_failure(container, "systemd booted with failed units")
        if state == "running" and _ssh_banner(ssh_port).startswith(b"SSH-"):
            return
        time.sleep(0.5)
    raise _boot_failure(container, f"not up with SSH after {timeout:.0f}s (systemd: {state!r})")


def start_systemd_target(image: str, name: str = "systemd", ports: Iterable[int] = (80,),
                         key: Path | None = None, exact_name: bool = False,
                         timeout: float = BOOT_TIMEOUT, log: Log = print, network: str | None = None) -> Target:
    """Boot ``image`` with systemd as PID 1 and return it once SSH answers.

    The container is named ``owd-test-<name>-<random>``, or exactly ``name`` with
    ``exact_name`` (such a long-lived target is left alone by :func:`cleanup_stale`).
    ``key`` is a private key with ``<key>.pub`` beside it (default: ``$CACHE/ssh/id_ed25519``).
    Port 22 and ``ports`` are published on 127.0.0.1 at random host ports. ``network``: a
    Docker network of the test's (``private_network``), where the targets reach each other by name.
    """
    if key is None:
        key, public_key = ssh_keypair(cache_dir() / "ssh")
    else:
        public_key = Path(f"{key}.pub").read_text()
    started = time.monotonic()
    container = _run(image, name, exact_name, [22, *ports], ["/sbin/init"],
                     **SYSTEMD_RUN_OPTIONS, **({"network": network} if network else {}))
    try:
        _install_authorized_key(container, public_key)
        published = _published_ports(container)
        _wait_for_boot(container, published[22], timeout)
    except BaseException:
        container.remove(force=True, v=True)
        raise
    log(f"target {container.name}: systemd and sshd up in {time.monotonic() - started:.1f}s "
        f"(ssh 127.0.0.1:{published[22]})")
    return Target(name=container.name, container_id=container.id, kind="systemd",
                  release=_release(image), ports={p: h for p, h in published.items() if p != 22},
                  ssh_port=published[22], ssh_key=str(key))


def start_plain_target(image: str, name: str = "plain", ports: Iterable[int] = (80,),
                       exact_name: bool = False, log: Log = print) -> Target:
    """Run ``image`` with ``sleep infinity`` as PID 1 (no systemd), ports on 127.0.0.1.

    Naming as for :func:`start_systemd_target`.
    """
    container = _run(image, name, exact_name, ports, ["sleep", "infinity"])
    try:
        published = _published_ports(container)
    except BaseException:
        container.remove(force=True, v=True)
        raise
    log(f"target {container.name}: plain container running")
    return Target(name=container.name, container_id=container.id, kind="plain",
                  release=_release(image), ports=published)


@contextlib.contextmanager
def private_network(name: str):
    """A Docker bridge network of its own (containers on it resolve each other's names), removed after."""
    network = docker_client().networks.create(f"{NAME_PREFIX}{name}-{secrets.token_hex(4)}", driver="bridge",
                                              labels={TEST_LABEL: "1", OWNER_LABEL: str(os.getpid())})
    try:
        yield network.name
    finally:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()


def remove_targets(targets: Iterable[Target]) -> None:
    """Remove the targets' containers (and anonymous volumes); already gone is fine."""
    client = docker_client()
    for target in targets:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(target.container_id).remove(force=True, v=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def cleanup_stale(log: Log = print) -> None:
    """Remove leftovers of crashed runs.

    - test containers whose creating process is gone (those of running suites, and
      ``exact_name`` targets such as the demo's, are kept);
    - dangling images that ``docker commit`` made from our images (pyinfra's
      ``@docker/<image>`` form): untagged, with a parent image and our image label.
    """
    client = docker_client(log)
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"}):
        owner = (container.labels or {}).get(OWNER_LABEL, "")
        if not owner.isdigit() or _pid_alive(int(owner)):
            continue
        log(f"cleanup: removing stale container {container.name}")
        # another run's cleanup was faster (gone, or its removal already in progress: 409)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": f"{TEST_LABEL}=1"}):
        owner = (network.attrs.get("Labels") or {}).get(OWNER_LABEL, "")
        if owner.isdigit() and not _pid_alive(int(owner)):
            log(f"cleanup: removing stale network {network.name}")
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
    for image in client.images.list(filters={"dangling": True}):
        labels = image.attrs.get("Config", {}).get("Labels") or {}
        if image.attrs.get("Parent") and IMAGE_LABEL in labels:
            try:
                client.images.remove(image.id, noprune=False)
                log(f"cleanup: removed dangling committed image {image.short_id}")
            except docker.errors.APIError as error:  # still used by a container: keep it
                log(f"cleanup: kept {image.short_id}: {error.explanation}")
