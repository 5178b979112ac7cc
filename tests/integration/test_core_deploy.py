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

import pytest

from testbed.cache import cache_dir
from tests.integration.browser_checks import GITHUB_TAGS, assert_login_page, visit_login
from tests.integration.core_checks import (GENERATOR_INPUT, core_fleet, assert_enabled_at_boot, assert_first_deploy_succeeded, 
                                           assert_ice_fetched_or_built_once_per_abi, assert_login_page_through_nginx,
                                           assert_second_run_changes_nothing,
                                           assert_static_and_maintenance_page_while_stopped)
from testbed.pyinfra_run import sh

pytestmark = pytest.mark.integration

RELEASES = {"bullseye": "debian11", "bookworm": "debian12", "trixie": "debian13"}
KINDS = ("systemd", "plain")
LABELS = [f"{kind}-{release}" for release in RELEASES for kind in KINDS]
SCREENSHOT_LABEL = "systemd-bookworm"  # the host whose pages are the docs' screenshots


@pytest.fixture(scope="module")
def fleet(docker_engine, tmp_path_factory):
    with core_fleet(tmp_path_factory.mktemp("core"), RELEASES, RELEASES, "core") as deployed:
        yield deployed


def test_first_deploy_succeeds(fleet):
    assert_first_deploy_succeeded(fleet["first"])
    print(f"first deploy of {len(LABELS)} hosts: {fleet['first'].seconds:.0f}s")


def test_ice_fetched_or_built_at_most_once_per_abi(fleet):
    wheels = sorted((cache_dir() / "wheels").glob("debian-*/zeroc_ice-3.6.5-*.whl"))
    assert_ice_fetched_or_built_once_per_abi(fleet, LABELS, RELEASES, wheels, ("cp39", "cp311", "cp313"))
    # built in this run (linked with --strip-debug): about 3 MB instead of 30 MB
    built = {w.name: w.stat().st_size for w in wheels if w.stat().st_mtime >= fleet["started"]}
    assert all(size < 10_000_000 for size in built.values()), built


@pytest.mark.parametrize("label", LABELS)
def test_login_page_through_nginx(fleet, label):
    assert_login_page_through_nginx(fleet["targets"][label])


@pytest.mark.parametrize("label", LABELS)
def test_login_page_in_a_browser(fleet, label, browser, screenshots):
    """Every stylesheet, script and image loads, no console error, the form shows; the
    page's call to api.github.com (client download links, on by default) is blocked, not sent."""
    target = fleet["targets"][label]
    shot = screenshots / "login-default.png" if label == SCREENSHOT_LABEL else None
    visit = visit_login(browser, target.url(80, "/webclient/login/"), screenshot=shot)
    assert_login_page(visit, outside=(GITHUB_TAGS,))


#: Saved again (a new inode) by every `omero config` command, `omero config get` included.
CONFIG_XML = "/opt/omero/web/omero-web/etc/grid/config.xml"


def test_second_run_changes_nothing(fleet):
    # issue 15: a no-op reads the state without starting OMERO's CLI: the NGINX site generator
    # did not run (its inputs are recorded), the configuration was read from config.xml
    second = assert_second_run_changes_nothing(fleet, (GENERATOR_INPUT, CONFIG_XML))
    print(f"no-op re-run: {second.seconds:.0f}s")
    for label, target in fleet["targets"].items():
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
    assert_enabled_at_boot(fleet["targets"][label])


@pytest.mark.parametrize("label", LABELS)
def test_nginx_serves_static_files_and_maintenance_page_when_omeroweb_stops(fleet, label, browser, screenshots):
    shot = screenshots / "maintenance.png" if label == SCREENSHOT_LABEL else None
    assert_static_and_maintenance_page_while_stopped(fleet["targets"][label], browser, screenshot=shot)
