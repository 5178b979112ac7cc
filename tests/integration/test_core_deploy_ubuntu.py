"""
The core deploy, end to end, on Ubuntu 18.04 (Python 3.6), 20.04 (3.8), 22.04 (3.10) and
24.04 (3.12): each as a systemd container over SSH, and 18.04 and 20.04 also as plain
containers through ``@docker`` (the init.d script the seed's Ubuntu walkthroughs install),
all six in one real ``pyinfra INVENTORY deploy.py`` run from images of Ubuntu's own archive
(``testbed/images.py``). Ice is fetched or built once per Python ABI.

Checked from outside, as for Debian (``test_core_deploy.py``): the login page through NGINX
and in a browser, a re-run that changes nothing, the service enabled at boot, a restart
(``operations.maintenance.restart``), the maintenance page and static files with OMERO.web
stopped. Besides: the newest OMERO.web, omero-py and Django each Python can run are the ones
installed (pip's own view on the host); every Python script the deploy runs with a host's
Python compiles with 18.04's Python 3.6; and the seed's Ubuntu 18.04 and 20.04 walkthrough
steps, checked on the real init.d hosts against the commands the deploy ran there (pyinfra's
``-vv``) and the files it left (``tests/unit/test_conformance.py``'s checks).
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from testbed.cache import cache_dir
from testbed.pyinfra_run import run_pyinfra
from tests.integration.browser_checks import GITHUB_TAGS, assert_login_page, visit_login
from tests.integration.core_checks import (GENERATOR_INPUT, LOGIN, core_fleet, assert_enabled_at_boot, 
                                           assert_first_deploy_succeeded, assert_ice_fetched_or_built_once_per_abi,
                                           assert_login_page_through_nginx, assert_second_run_changes_nothing,
                                           assert_static_and_maintenance_page_while_stopped, get, run)
from tests.unit.simulate import unbuffered, unguarded
from tests.unit.walkthrough_steps import STAGED

pytestmark = pytest.mark.integration

#: release -> (inventory group, Python, Ice wheel tag)
RELEASES = {
    "bionic": ("ubuntu1804", (3, 6), "cp36"),
    "focal": ("ubuntu2004", (3, 8), "cp38"),
    "jammy": ("ubuntu2204", (3, 10), "cp310"),
    "noble": ("ubuntu2404", (3, 12), "cp312"),
}
INITD_RELEASES = ("bionic", "focal")  # the seed's Ubuntu walkthroughs: an init.d script
LABELS = [f"systemd-{r}" for r in RELEASES] + [f"plain-{r}" for r in INITD_RELEASES]
#: The walkthrough distro (tests/unit/walkthrough_steps.py) checked on each init.d host: the
#: README's conformance table counts them (test_conformance.REAL_HOSTS).
WALKTHROUGHS = {"plain-bionic": "ubuntu1804", "plain-focal": "ubuntu2004"}
VENV = "/opt/omero/web/venv3"


@pytest.fixture(scope="module")
def fleet(docker_engine, tmp_path_factory):
    groups = {release: group for release, (group, _, _) in RELEASES.items()}
    initd = {release: groups[release] for release in INITD_RELEASES}
    # -vv: pyinfra prints every command it runs, which the walkthrough check reads
    with core_fleet(tmp_path_factory.mktemp("ubuntu"), groups, initd, "ubuntu", "-vv") as deployed:
        yield deployed


def test_first_deploy_succeeds(fleet):
    assert_first_deploy_succeeded(fleet["first"])
    print(f"first deploy of {len(LABELS)} Ubuntu hosts: {fleet['first'].seconds:.0f}s")


def test_ice_fetched_or_built_at_most_once_per_abi(fleet):
    wheels = sorted((cache_dir() / "wheels").glob("ubuntu-*/zeroc_ice-3.6.5-*.whl"))
    assert_ice_fetched_or_built_once_per_abi(fleet, LABELS, list(RELEASES), wheels,
                                             [tag for _, _, tag in RELEASES.values()])


@pytest.mark.parametrize("label", LABELS)
def test_login_page_through_nginx(fleet, label):
    assert_login_page_through_nginx(fleet["targets"][label])


@pytest.mark.parametrize("label", LABELS)
def test_login_page_in_a_browser(fleet, label, browser):
    visit = visit_login(browser, fleet["targets"][label].url(80, "/webclient/login/"))
    assert_login_page(visit, outside=(GITHUB_TAGS,))


#: Run by the venv's python on the host: pip's own view (its finder, which honours
#: Requires-Python) of the newest release this Python can install of OMERO.web, and of each
#: other distribution within what the installed OMERO.web requires of it.
NEWEST = r"""
import json, sys
from pip._internal.commands import create_command
from pip._internal.metadata import get_default_environment
requires = {r.name.lower(): r.specifier
            for r in get_default_environment().get_distribution("omero-web").iter_dependencies()}
command = create_command("list")
options, _ = command.parse_args([])
found = {}
with command.main_context():
    finder = command._build_package_finder(options, command.get_default_session(options))
    for name in sys.argv[1:]:
        best = finder.find_best_candidate(name, specifier=requires.get(name.lower())).best_candidate
        found[name] = str(best.version) if best else None
print(json.dumps(found))
"""


@pytest.mark.parametrize("release", list(RELEASES))
def test_the_newest_releases_this_python_can_run_are_installed(fleet, release):
    target = fleet["targets"][f"systemd-{release}"]
    code, out = run(target, f"{VENV}/bin/python -c {shlex.quote(NEWEST)} omero-web omero-py Django "
                            f"&& {VENV}/bin/python -m pip list --format=json")
    assert code == 0, out
    newest, installed = (json.loads(line) for line in out.strip().splitlines()[-2:])
    versions = {p["name"].lower(): p["version"] for p in installed}
    print(release, newest)
    assert {name: versions[name.lower()] for name in newest} == newest
    code, version = run(target, f"{VENV}/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    assert version.strip() == "%d.%d" % RELEASES[release][1]


def test_every_host_python_script_compiles_on_python_3_6(fleet):
    from tests.unit.test_host_python import SCRIPTS

    target = fleet["targets"]["systemd-bionic"]
    checker = "import sys, json; [compile(s, 'script', 'exec') for s in json.load(sys.stdin)]; print(sys.version)"
    code, out = target.ssh(f"printf '%s' {shlex.quote(json.dumps(SCRIPTS))} | /usr/bin/python3 -c {shlex.quote(checker)}")
    assert code == 0, out
    assert out.startswith("3.6."), out


def test_second_run_changes_nothing(fleet):
    second = assert_second_run_changes_nothing(fleet, (GENERATOR_INPUT,))
    print(f"no-op re-run of {len(LABELS)} Ubuntu hosts: {second.seconds:.0f}s")


@pytest.mark.parametrize("label", LABELS)
def test_service_enabled_at_boot(fleet, label):
    assert_enabled_at_boot(fleet["targets"][label])


def gunicorn_master(target) -> str:
    code, out = run(target, "cat /opt/omero/web/omero-web/var/django.pid")
    assert code == 0, out
    return out.strip()


def test_restart_brings_the_login_page_back_on_every_host(fleet):
    before = {label: gunicorn_master(t) for label, t in fleet["targets"].items()}
    restarted = run_pyinfra(fleet["inventory"], "operations.maintenance.restart", log=fleet["workdir"] / "restart.log")
    assert restarted.returncode == 0, restarted.tail()
    for label, target in fleet["targets"].items():
        assert gunicorn_master(target) != before[label], label
        response = get(target.url(80, "/webclient/login/"))
        assert response.status_code == 200 and LOGIN in response.text, label


@pytest.mark.parametrize("label", LABELS)
def test_nginx_serves_static_files_and_maintenance_page_when_omeroweb_stops(fleet, label, browser):
    assert_static_and_maintenance_page_while_stopped(fleet["targets"][label], browser)


# The seed's Ubuntu walkthroughs, checked on the real init.d hosts

#: A command pyinfra printed at -vv: ``[host]  >>> COMMAND`` (COMMAND may span lines).
PRINTED = re.compile(r"^\s*\[(?P<host>[^\]\s]+)\]\s+>>> ", re.M)


def unwrapped(command: str) -> str:
    """The command as the deploy wrote it: without pyinfra's ``sh -c '...'`` and the docker
    connector's ``docker exec -i ID sh -c '...'`` around it (each a whole command line)."""
    while True:
        try:
            words = shlex.split(command)
        except ValueError:
            return command
        if len(words) == 3 and words[:2] == ["sh", "-c"]:
            command = words[2]
        elif len(words) == 7 and words[:3] == ["docker", "exec", "-i"] and words[4:6] == ["sh", "-c"]:
            command = words[6]
        else:  # and the environment pyinfra exports first (``export LC_ALL=C && ...``)
            return re.sub(r"\Aexport (?:\w+=\S+ )+&& ", "", command)


def commands_run(output: str, host: str) -> list[str]:
    """The commands pyinfra ran on ``host`` (printed at ``-vv``), unwrapped."""
    starts = list(PRINTED.finditer(output))
    hosts = "|".join(re.escape(name) for name in {m.group("host") for m in starts})
    # a record ends where pyinfra prints its next line: a host's, or a heading
    following = re.compile(rf"^(\s*\[({hosts})\]|--> )", re.M)
    found = []
    for match in starts:
        if match.group("host") != host:
            continue
        rest = output[match.end():]
        end = following.search(rest)
        command = unwrapped(rest[:end.start() if end else len(rest)].rstrip("\n"))
        # as the simulated plans hold them: held output and the venv check taken off (simulate.py)
        found.append(unguarded(unbuffered(command)))
    return found


class RealHost:
    """What ``test_conformance.problems`` reads of a plan, from a real host: the commands the
    deploy ran there and the files as they are on the host after it."""

    def __init__(self, target, commands: list[str]):
        self.target, self.commands = target, commands
        self.uploads = _HostFiles(target)

    def find(self, pattern: str) -> list[str]:
        return [c for c in self.commands if re.search(pattern, c) and not c.startswith("echo '[os-release]'")]


CONFIG_GET = f"cd / && runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web {VENV}/bin/omero config get"


class _HostFiles(dict):
    def __init__(self, target):
        super().__init__()
        self.target = target

    def get(self, path, default=None):
        if path not in self:
            # the properties the deploy staged are loaded then removed: what the configuration
            # holds on the host instead (``omero config get``, as OMERO.web's account)
            command = CONFIG_GET if path == STAGED else f"cat -- {shlex.quote(path)}"
            code, out = self.target.exec(command)
            self[path] = out if code == 0 else None
        value = dict.get(self, path)
        return default if value is None else value


#: Steps whose simulated check cannot hold on these real hosts, each with why and what is
#: checked instead (``instead(target)`` returns what is wrong, or nothing).
NOT_HERE = {
    # The walkthrough's wheel is on GitHub, which this environment does not reach; the fleet's
    # builder built it and the init.d host of the release got it from the control machine's
    # cache (as every later host of that ABI does): no `pip download` of the URL there.
    "ice-wheel": lambda target: [] if target.exec(f"{VENV}/bin/python -c 'import Ice'")[0] == 0
    else ["IcePy does not import"],
    # Ubuntu's nginx.conf has no `listen ... default_server` (its default site has, which the
    # deploy removes): nothing for the walkthrough's sed to comment out (the simulated host has one).
    "default-server-sed": lambda target: [line for line in target.exec("cat /etc/nginx/nginx.conf")[1].splitlines()
                                          if "default_server" in line and not line.strip().startswith("#")],
}


@pytest.mark.parametrize("label", list(WALKTHROUGHS))
def test_the_walkthrough_steps_are_done_on_the_real_host(fleet, label):
    from tests.unit.test_conformance import problems, real_host_steps

    target = fleet["targets"][label]
    name, _ = target.pyinfra_host()
    commands = commands_run(fleet["first"].output, name)
    assert len(commands) > 50, commands[:5]
    real = RealHost(target, commands)
    steps = real_host_steps(WALKTHROUGHS[label])
    assert len(steps) >= 50
    failed = {}
    for step in steps:
        if step["id"] in NOT_HERE:
            found = NOT_HERE[step["id"]](target)
        else:
            # pyinfra does not print its uploads: what one wrote is checked as the file on the host
            match = {**step["match"], "commands": [c for c in step["match"].get("commands", ()) if not c.startswith("^PUT ")]}
            found = problems(real, match)
        if found:
            failed[step["id"]] = found
    assert not failed, json.dumps(failed, indent=1)
    print(f"{WALKTHROUGHS[label]}: {len(steps)} walkthrough steps found on the real host")
