"""Make sure a Docker engine answers, installing and starting one as root if needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import docker
import docker.errors

from .cache import cache_dir

Log = Callable[[str], None]

ENGINE_START_TIMEOUT = 60.0
_apt_lock = threading.Lock()
_apt_updated = False


def _can_manage_host() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_env() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def apt_install(packages: list[str], log: Log = print) -> None:
    """Install Debian packages on the host as root (``apt-get update`` once per process)."""
    global _apt_updated
    if not _can_manage_host():
        raise RuntimeError(
            f"Missing host tools; install the Debian packages {' '.join(packages)} as root "
            f"(apt-get install {' '.join(packages)}) and run again."
        )
    with _apt_lock:
        if not _apt_updated:
            log("host: apt-get update")
            subprocess.run(["apt-get", "update"], check=True, env=_apt_env(),
                           stdout=subprocess.DEVNULL)
            _apt_updated = True
        log(f"host: apt-get install {' '.join(packages)}")
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *packages],
            check=True, env=_apt_env(), stdout=subprocess.DEVNULL,
        )


def _client_if_answering() -> docker.DockerClient | None:
    try:
        client = docker.from_env()
        client.ping()
        return client
    except docker.errors.DockerException:
        return None


def _start_dockerd(log: Log) -> subprocess.Popen[bytes]:
    """Start ``dockerd`` in its own session so it outlives this process; log to ``$CACHE``."""
    log_path = cache_dir() / "dockerd.log"
    log(f"host: starting dockerd (log: {log_path})")
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            ["dockerd"], stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )


def _wait_for_engine(process: subprocess.Popen[bytes], timeout: float) -> docker.DockerClient:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = _client_if_answering()
        if client is not None:
            return client
        if process.poll() is not None:
            break
        time.sleep(1)
    log_path = cache_dir() / "dockerd.log"
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    state = f"exited with {process.returncode}" if process.poll() is not None else "not answering"
    raise RuntimeError(f"dockerd {state} after starting it; last lines of {log_path}:\n{tail}")


def ensure_docker_engine(log: Log = print) -> docker.DockerClient:
    """Return a client for a Docker engine that answers.

    If none answers and we are root on an apt-based host (and ``DOCKER_HOST`` does not point
    elsewhere), install ``docker.io`` if ``dockerd`` is missing, start ``dockerd`` detached and
    wait up to 60 s for it. Otherwise raise a :class:`RuntimeError` saying what to do.
    """
    client = _client_if_answering()
    if client is not None:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise RuntimeError(
            f"The Docker engine at DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; "
            "start it or unset DOCKER_HOST to use a local engine."
        )
    if not _can_manage_host():
        raise RuntimeError(
            "No Docker engine answers on this machine. Install and start one "
            "(as root on Debian/Ubuntu: `apt-get install docker.io && dockerd &`, or "
            "`systemctl start docker`), make sure your user may use it, then run again."
        )
    if shutil.which("dockerd") is None:
        apt_install(["docker.io"], log)
    started = time.monotonic()
    client = _wait_for_engine(_start_dockerd(log), ENGINE_START_TIMEOUT)
    log(f"host: Docker engine answering after {time.monotonic() - started:.1f}s")
    return client


_client_lock = threading.Lock()
_client: docker.DockerClient | None = None


def docker_client(log: Log = print) -> docker.DockerClient:
    """Return a process-wide client, from :func:`ensure_docker_engine` on first use."""
    global _client
    with _client_lock:
        if _client is None:
            _client = ensure_docker_engine(log)
        return _client
