"""Self-test of the container test-target library in ``testbed`` (real Docker, real Debian).

Builds the image (bookworm by default; set ``OMEROWEB_DEPLOY_SELFTEST_RELEASES`` to e.g.
``bullseye,bookworm,trixie`` for more), starts one systemd and one plain target per release and
checks how they can be reached, including through pyinfra's ssh and docker connectors.

Needs root (to install/start Docker and debootstrap) or a running Docker engine plus
debootstrap, and HTTP access to deb.debian.org. Run with ``pytest -m integration``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.inventory import Inventory
from pyinfra.api.state import State
from pyinfra.facts.server import Command

from testbed.engine import docker_client
from testbed.images import ensure_images
from testbed.targets import (
    OWNER_LABEL,
    TEST_LABEL,
    Target,
    cleanup_stale,
    host_ca_certificates,
    remove_targets,
    start_plain_target,
    start_systemd_target,
)

pytestmark = pytest.mark.integration

RELEASES = os.environ.get("OMEROWEB_DEPLOY_SELFTEST_RELEASES", "bookworm").split(",")


@pytest.fixture(scope="module")
def images(docker_engine: object) -> dict[str, str]:
    return ensure_images(RELEASES)


@pytest.fixture(scope="module", params=RELEASES)
def targets(request: pytest.FixtureRequest,
            images: dict[str, str]) -> Iterator[tuple[Target, Target]]:
    release = request.param
    started: list[Target] = []
    try:
        started.append(start_systemd_target(images[release], f"self-{release}-systemd"))
        started.append(start_plain_target(images[release], f"self-{release}-plain"))
        yield started[0], started[1]
    finally:
        remove_targets(started)


def test_systemd_target_runs_systemd_and_accepts_ssh(targets: tuple[Target, Target]) -> None:
    systemd, _ = targets
    assert systemd.ssh("ps -p 1 -o comm=") == (0, "systemd\n")
    assert systemd.ssh("systemctl is-system-running") == (0, "running\n")


def test_plain_target_runs_sleep_as_pid_1(targets: tuple[Target, Target]) -> None:
    _, plain = targets
    assert plain.exec("cat /proc/1/comm") == (0, "sleep\n")


def test_images_lack_what_the_deploy_installs(targets: tuple[Target, Target]) -> None:
    _, plain = targets
    for tool in ("python3", "nginx", "curl", "sudo"):
        assert plain.exec(f"command -v {tool}")[0] != 0, f"{tool} is in the image"


def test_plain_target_reaches_debian_mirror(targets: tuple[Target, Target]) -> None:
    _, plain = targets
    code, output = plain.exec("apt-get update")
    assert code == 0, output


def test_targets_publish_ports_on_loopback(targets: tuple[Target, Target]) -> None:
    for target in targets:
        assert set(target.ports) == {80}
        assert target.url(80, "/omero/").startswith("http://127.0.0.1:")
        assert target.url(80, "/omero/").endswith("/omero/")


def test_pyinfra_reaches_both_targets(targets: tuple[Target, Target]) -> None:
    inventory = Inventory(([target.pyinfra_host() for target in targets], {}))
    state = State(inventory, Config())
    connect_all(state)
    try:
        pid1 = {host.name: host.get_fact(Command, command="cat /proc/1/comm") for host in inventory}
    finally:
        disconnect_all(state)
    systemd, plain = targets
    assert pid1 == {systemd.name: "systemd", f"@docker/{plain.container_id}": "sleep"}


def test_remove_targets_removes_containers(images: dict[str, str]) -> None:
    target = start_plain_target(images[RELEASES[0]], "self-removal", ports=())
    remove_targets([target])
    with pytest.raises(docker.errors.NotFound):
        docker_client().containers.get(target.container_id)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_cleanup_stale_removes_only_leftovers_of_dead_runs(images: dict[str, str]) -> None:
    client = docker_client()
    image = images[RELEASES[0]]
    stale = client.containers.run(image, ["sleep", "infinity"], detach=True,
                                  name=f"owd-test-stale-{os.getpid()}",
                                  labels={TEST_LABEL: "1", OWNER_LABEL: str(_dead_pid())})
    live = start_plain_target(image, "self-live", ports=())
    named = start_plain_target(image, f"owd-selftest-named-{os.getpid()}", ports=(),
                               exact_name=True)
    try:
        cleanup_stale()
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(stale.id)
        assert client.containers.get(live.container_id).status == "running"
        assert client.containers.get(named.container_id).name == named.name
    finally:
        remove_targets([live, named])
        with contextlib.suppress(docker.errors.NotFound):
            stale.remove(force=True)


def test_cleanup_stale_removes_images_committed_by_pyinfra_docker_image_form(
        images: dict[str, str]) -> None:
    client = docker_client()
    image = client.images.get(images[RELEASES[0]])
    pyinfra = Path(sys.executable).parent / "pyinfra"
    run = subprocess.run([str(pyinfra), "-y", f"@docker/{image.tags[0]}", "exec", "--", "true"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr

    def committed() -> list[str]:
        return [i.id for i in client.images.list(filters={"dangling": True})
                if i.attrs.get("Parent") == image.id]

    assert committed(), "pyinfra's @docker/<image> form left no committed image"
    cleanup_stale()
    assert committed() == []
    assert client.images.get(image.id)


def test_host_ca_certificates_are_pem_files() -> None:
    for path in host_ca_certificates():
        assert "-----BEGIN CERTIFICATE-----" in Path(path).read_text()
