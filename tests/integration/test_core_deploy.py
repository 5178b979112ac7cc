"""
The core deploy, end to end, on Debian 11, 12 and 13 in both service-manager modes:

- systemd containers reached over SSH (systemd is PID 1: the unit path),
- plain containers through pyinfra's ``@docker`` connector (PID 1 is not systemd, though
  systemctl exists: the init.d path),

all six in one real ``pyinfra INVENTORY deploy.py`` run, as a fleet: Ice is fetched or
built once per distro + Python ABI and shared through the control machine's cache. Every
assertion is made from outside the targets, over HTTP on 127.0.0.1, except the boot
registration of the service; the login and maintenance pages are also opened in a real
headless Chromium (``testbed/browser.py``), which takes the docs' screenshots.
"""

from __future__ import annotations

import shlex
import time

import pytest
import requests

from testbed.cache import cache_dir
from testbed.images import ensure_images
from testbed.targets import remove_targets, start_plain_target, start_systemd_target
from tests.integration.browser_checks import GITHUB_TAGS, assert_login_page, assert_maintenance_page, visit_login
from testbed.pyinfra_run import run_pyinfra, sh, target_data, write_inventory

pytestmark = pytest.mark.integration

RELEASES = {"bullseye": "debian11", "bookworm": "debian12", "trixie": "debian13"}
KINDS = ("systemd", "plain")
LABELS = [f"{kind}-{release}" for release in RELEASES for kind in KINDS]
LOGIN = "OMERO.web - Login"
SCREENSHOT_LABEL = "systemd-bookworm"  # the host whose pages are the docs' screenshots


@pytest.fixture(scope="module")
def fleet(docker_engine, tmp_path_factory):
    images = ensure_images(list(RELEASES))
    targets = {}
    try:
        for release in RELEASES:
            targets[f"systemd-{release}"] = start_systemd_target(images[release], name=f"core-sd-{release}")
            targets[f"plain-{release}"] = start_plain_target(images[release], name=f"core-plain-{release}")
        workdir = tmp_path_factory.mktemp("core")
        groups: dict[str, list] = {}
        for target in targets.values():
            groups.setdefault(RELEASES[target.release], []).append(target_data(target))
        inventory = write_inventory(workdir / "inventory.py", groups)
        started = time.time()
        first = run_pyinfra(inventory, log=workdir / "first.log")
        yield {"targets": targets, "inventory": inventory, "workdir": workdir, "first": first, "started": started}
    finally:
        remove_targets(targets.values())


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=30, **kwargs)


def test_first_deploy_succeeds(fleet):
    first = fleet["first"]
    assert first.returncode == 0, first.tail()
    assert first.errors == 0
    print(f"first deploy of {len(LABELS)} hosts: {first.seconds:.0f}s")


def test_ice_fetched_or_built_at_most_once_per_abi(fleet):
    rows = fleet["first"].rows()
    (hosts, builds, errors, _) = rows["ZeroC IcePy 3.6.5 | Fetch or build the Ice wheel (one host per distro + Python ABI)"]
    assert hosts == len(LABELS) and errors == 0
    assert builds <= len(RELEASES)  # at most one builder per ABI; none when the cache had it
    for release in RELEASES:
        # Only a builder has the unpacked sdist; the other host of its ABI got the wheel uploaded.
        built_here = [
            label for label in LABELS if label.endswith(release)
            and fleet["targets"][label].exec("test -d /var/cache/omeroweb-deploy/ice/src")[0] == 0
        ]
        assert len(built_here) <= 1, built_here
    wheels = sorted((cache_dir() / "wheels").glob("debian-*/zeroc_ice-3.6.5-*.whl"))
    for tag in ("cp39", "cp311", "cp313"):
        assert any(f"-{tag}-" in w.name for w in wheels), wheels
    # built in this run (linked with --strip-debug): about 3 MB instead of 30 MB
    built = {w.name: w.stat().st_size for w in wheels if w.stat().st_mtime >= fleet["started"]}
    assert all(size < 10_000_000 for size in built.values()), built


@pytest.mark.parametrize("label", LABELS)
def test_login_page_through_nginx(fleet, label):
    target = fleet["targets"][label]
    response = get(target.url(80, "/"))
    assert response.status_code == 200
    assert LOGIN in response.text
    assert response.headers.get("Server", "").startswith("nginx")


@pytest.mark.parametrize("label", LABELS)
def test_login_page_in_a_browser(fleet, label, browser, screenshots):
    """Every stylesheet, script and image loads, no console error, the form shows; the
    page's call to api.github.com (client download links, on by default) is blocked, not sent."""
    target = fleet["targets"][label]
    shot = screenshots / "login-default.png" if label == SCREENSHOT_LABEL else None
    visit = visit_login(browser, target.url(80, "/webclient/login/"), screenshot=shot)
    assert_login_page(visit, outside=(GITHUB_TAGS,))


#: Rewritten (a new inode) each time the NGINX site generator runs (nginx.site_command).
GENERATOR_INPUT = "/var/lib/omeroweb-deploy/nginx-site/site.properties"
#: Saved again (a new inode) by every `omero config` command, `omero config get` included.
CONFIG_XML = "/opt/omero/web/omero-web/etc/grid/config.xml"


def test_second_run_changes_nothing(fleet):
    stat = f"stat -c '%i %Y' {GENERATOR_INPUT} {CONFIG_XML}"
    before = {label: sh(t, stat) for label, t in fleet["targets"].items()}
    second = run_pyinfra(fleet["inventory"], log=fleet["workdir"] / "second.log")
    assert second.returncode == 0, second.tail()
    assert second.changed == 0, second.changed_operations()
    print(f"no-op re-run: {second.seconds:.0f}s")
    # issue 15: a no-op reads the state without starting OMERO's CLI: the NGINX site generator
    # did not run (its inputs are recorded), the configuration was read from config.xml
    for label, target in fleet["targets"].items():
        assert sh(target, stat) == before[label], label
        assert sh(target, "ls /var/lib/omeroweb-deploy/nginx-site-*.record | wc -l") == "1", label


#: Run by the deployed venv's python: how many modules its packages hold, and those that
#: compile but have no ``.pyc`` (pip installs with --no-compile, then the deploy compiles).
UNCOMPILED = r"""
import importlib.util, os, sysconfig
total, missing = 0, []
for top in sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")}):
    for folder, _, names in os.walk(top):
        for name in (n for n in names if n.endswith(".py")):
            path, total = os.path.join(folder, name), total + 1
            if os.path.exists(importlib.util.cache_from_source(path)):
                continue
            try:
                compile(open(path, "rb").read(), path, "exec")
            except (SyntaxError, ValueError):
                continue
            missing.append(path)
print(total, len(missing), *missing[:5])
"""


@pytest.mark.parametrize("label", LABELS)
def test_venv_modules_are_byte_compiled(fleet, label):
    """Every module of the venv that compiles has its .pyc: the root-owned venv is not writable
    by OMERO.web's account, so a missing one would be compiled again by every worker start."""
    target = fleet["targets"][label]
    code, out = target.exec(f"/opt/omero/web/venv3/bin/python -c {shlex.quote(UNCOMPILED)}")
    assert code == 0, out
    total, missing, *examples = out.split()
    assert int(total) > 3000 and int(missing) == 0, (total, missing, examples)  # Django, omero-py, Ice, ...


@pytest.mark.parametrize("label", LABELS)
def test_service_enabled_at_boot(fleet, label):
    target = fleet["targets"][label]
    if target.kind == "systemd":
        code, out = target.ssh("systemctl is-enabled omero-web.service nginx.service")
        assert code == 0 and out.split() == ["enabled", "enabled"], out
    else:
        code, out = target.exec("ls /etc/rc2.d/")
        assert "S" in out and "omero-web" in out and "nginx" in out, out


@pytest.mark.parametrize("label", LABELS)
def test_nginx_serves_static_files_and_maintenance_page_when_omeroweb_stops(fleet, label, browser, screenshots):
    target = fleet["targets"][label]
    stop = "systemctl stop omero-web" if target.kind == "systemd" else "/etc/init.d/omero-web stop"
    code, out = target.ssh(stop) if target.kind == "systemd" else target.exec(stop)
    assert code == 0, out
    static = get(target.url(80, "/static/webgateway/css/ome.body.css"))
    assert static.status_code == 200 and "body" in static.text  # served by NGINX itself
    page = get(target.url(80, "/webclient/login/"))
    assert page.status_code == 502
    assert "OMERO.web is down for maintenance" in page.text
    # and in a browser: the page is whole (it loads nothing it lacks) and says so
    shot = screenshots / "maintenance.png" if label == SCREENSHOT_LABEL else None
    assert_maintenance_page(browser.visit(target.url(80, "/webclient/login/"), screenshot=shot))
