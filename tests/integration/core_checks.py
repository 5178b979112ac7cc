"""
The core deploy's checks from outside, shared by the Debian and Ubuntu fleets
(``test_core_deploy.py``, ``test_core_deploy_ubuntu.py``).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import requests

from testbed.images import ensure_images
from testbed.pyinfra_run import run_pyinfra, sh, target_data, write_inventory
from testbed.targets import remove_targets, start_plain_target, start_systemd_target
from tests.integration.browser_checks import assert_maintenance_page

LOGIN = "OMERO.web - Login"
#: Rewritten (a new inode) each time the NGINX site generator runs (nginx.site_command).
GENERATOR_INPUT = "/var/lib/omeroweb-deploy/nginx-site/site.properties"


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=30, **kwargs)


def assert_login_page_through_nginx(target) -> None:
    response = get(target.url(80, "/"))
    assert response.status_code == 200
    assert LOGIN in response.text
    assert response.headers.get("Server", "").startswith("nginx")


def assert_second_run_changes_nothing(fleet, unchanged: tuple[str, ...]):
    """A re-run of the fleet's inventory changes nothing and leaves the files ``unchanged``
    (inode and modification time) as they were on every target; returns the run."""
    stat = f"stat -c '%i %Y' {' '.join(unchanged)}"
    before = {label: sh(t, stat) for label, t in fleet["targets"].items()}
    second = run_pyinfra(fleet["inventory"], log=fleet["workdir"] / "second.log")
    assert second.returncode == 0, second.tail()
    assert second.changed == 0, second.changed_operations()
    for label, target in fleet["targets"].items():
        assert sh(target, stat) == before[label], label
    return second


def assert_enabled_at_boot(target) -> None:
    if target.kind == "systemd":
        code, out = target.ssh("systemctl is-enabled omero-web.service nginx.service")
        assert code == 0 and out.split() == ["enabled", "enabled"], out
    else:
        code, out = target.exec("ls /etc/rc2.d/")
        assert "S" in out and "omero-web" in out and "nginx" in out, out


def run(target, command: str) -> tuple[int, str]:
    """Run a command as root on a target: over SSH on a systemd target, else ``docker exec``."""
    return target.ssh(command) if target.kind == "systemd" else target.exec(command)


def assert_static_and_maintenance_page_while_stopped(target, browser, screenshot=None) -> None:
    """OMERO.web stopped: a static file still served by NGINX itself, the maintenance page (502)
    on the application's URLs, whole in a browser."""
    code, out = run(target, "systemctl stop omero-web" if target.kind == "systemd" else "/etc/init.d/omero-web stop")
    assert code == 0, out
    static = get(target.url(80, "/static/webgateway/css/ome.body.css"))
    assert static.status_code == 200 and "body" in static.text  # served by NGINX itself
    page = get(target.url(80, "/webclient/login/"))
    assert page.status_code == 502
    assert "OMERO.web is down for maintenance" in page.text
    # and in a browser: the page is whole (it loads nothing it lacks) and says so
    assert_maintenance_page(browser.visit(target.url(80, "/webclient/login/"), screenshot=screenshot))


def assert_first_deploy_succeeded(first) -> None:
    assert first.returncode == 0, first.tail()
    assert first.errors == 0


ICE_ROW = "ZeroC IcePy 3.6.5 | Fetch or build the Ice wheel (one host per distro + Python ABI)"


def assert_ice_fetched_or_built_once_per_abi(fleet, labels: list[str], releases, wheels: list, tags) -> None:
    """At most one builder per ABI (none when the cache had its wheel): only a builder has the
    unpacked sdist, the other hosts of its release got the wheel uploaded; the control
    machine's cache (``wheels``) then holds a wheel of each tag."""
    (hosts, builds, errors, _) = fleet["first"].rows()[ICE_ROW]
    assert hosts == len(labels) and errors == 0
    assert builds <= len(releases)
    for release in releases:
        built_here = [label for label in labels if label.endswith(release)
                      and fleet["targets"][label].exec("test -d /var/cache/omeroweb-deploy/ice/src")[0] == 0]
        assert len(built_here) <= 1, built_here
    for tag in tags:
        assert any(f"-{tag}-" in w.name for w in wheels), wheels


@contextmanager
def core_fleet(workdir, systemd: dict[str, str], plain: dict[str, str], name: str, *args: str):
    """Start a systemd target of each release of ``systemd`` and a plain (init.d) one of each of
    ``plain`` ({release: inventory group}), deploy them all in one real run (pyinfra ``args``
    before ``deploy.py``) and yield the fleet: targets by label (``systemd-<release>``,
    ``plain-<release>``), inventory, workdir, the first run and when it started. Removed after."""
    images = ensure_images(list(dict.fromkeys([*systemd, *plain])))
    targets = {}
    groups: dict[str, list] = {}
    try:
        for kind, short, releases, start in (("systemd", "sd", systemd, start_systemd_target),
                                             ("plain", "plain", plain, start_plain_target)):
            for release, group in releases.items():
                target = targets[f"{kind}-{release}"] = start(images[release], name=f"{name}-{short}-{release}")
                groups.setdefault(group, []).append(target_data(target))
        inventory = write_inventory(workdir / "inventory.py", groups)
        started = time.time()
        first = run_pyinfra(inventory, *args, "deploy.py", log=workdir / "first.log")
        yield {"targets": targets, "inventory": inventory, "workdir": workdir, "first": first, "started": started}
    finally:
        remove_targets(targets.values())


class SteadyClient(threading.Thread):
    """Sends GETs of the login page through the balancer at ``rate`` per second until stopped."""

    def __init__(self, url: str, rate: float):
        super().__init__(daemon=True)
        self.url, self.rate, self.sent, self.failed = url, rate, 0, []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            self.sent += 1
            try:
                response = requests.get(self.url, timeout=30)
                if response.status_code != 200 or LOGIN not in response.text:
                    self.failed.append(response.status_code)
            except requests.RequestException as error:
                self.failed.append(repr(error))
            time.sleep(max(0.0, 1 / self.rate - (time.monotonic() - started)))
