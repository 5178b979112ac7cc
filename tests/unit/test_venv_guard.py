"""
The one check in front of every use of a venv's code (``install.trusted``): with a real ``sh``
on venvs made here, and over the deploy's whole plan (every command that runs a venv's
python, pip or omero has the check before it), however the run was selected.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra_cli.util import load_func

from operations import maintenance

from operations import troubleshoot
from model.omero_install import UNTRUSTED_VENV, OmeroInstall, trusted
from tests.unit.simulate import SimulatedHost, fake_run, simulate

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the venv must be root's, as on a host")


def make_venv(folder: Path) -> Path:
    """A venv as the deploy leaves it: root's, nothing writable by group or others."""
    folder.mkdir(mode=0o755, exist_ok=True)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    for path in (venv, *venv.rglob("*")):
        if not path.is_symlink():
            path.chmod((0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644))
    return venv


def site_packages(venv: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([f"{venv}/bin/python", "-c", code], capture_output=True, text=True,
                               check=True).stdout.strip())


def run(command: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, text=True)


def test_a_venv_only_root_can_change_runs_its_command(trusted_tmp):
    venv = make_venv(trusted_tmp)
    done = run(trusted(str(venv), f"{venv}/bin/python -c 'import sys; print(sys.stdin.read().upper())'"), "piped")
    assert done.returncode == 0 and done.stdout.strip() == "PIPED", done.stderr
    # a here-document after it, and what follows it, as a caller writes them
    heredoc = run(trusted(str(venv), "cat") + " <<'END' && echo after\nline\nEND")
    assert heredoc.stdout.split() == ["line", "after"]


@pytest.mark.parametrize("plant", ["pth of another account", "file writable by the group", "folder writable by others",
                                   "folder above it writable", "folder above it another account's", "venv a link"])
def test_anything_another_account_could_change_is_refused_naming_it(trusted_tmp, plant):
    venv = make_venv(trusted_tmp / "web")
    site = site_packages(venv)
    marker = trusted_tmp / "marker"
    # a .pth line starting with "import" runs at every start of the venv's python
    pth = site / "planted.pth"
    pth.write_text(f"import os; open({str(marker)!r}, 'w').write(str(os.getuid()))\n")
    pth.chmod(0o644)
    named = str(pth)
    if plant == "pth of another account":
        os.chown(pth, NOBODY, NOBODY)
    elif plant == "file writable by the group":
        pth.chmod(0o664)
    elif plant == "folder writable by others":
        site.chmod(0o777)
        named = str(site)
    elif plant == "folder above it writable":
        venv.parent.chmod(0o777)
        named = str(venv.parent)
    elif plant == "folder above it another account's":
        os.chown(venv.parent, NOBODY, NOBODY)
        named = str(venv.parent)
    else:
        real = venv.rename(trusted_tmp / "elsewhere")
        venv.symlink_to(real)
        named = str(venv)
    refused = run(trusted(str(venv), f"{venv}/bin/python -c 'print(1)'"))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"{UNTRUSTED_VENV} {venv}: {named} (owner uid "), refused.stderr
    assert not marker.exists()  # the planted code never ran
    # the same venv, given back to root: the code runs (the test's own check that it would have)
    if plant == "venv a link":
        return
    for path in (venv.parent, *venv.parent.rglob("*")):
        os.chown(path, 0, 0, follow_symlinks=False)
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert run(trusted(str(venv), f"{venv}/bin/python -c 'print(1)'")).returncode == 0
    assert marker.exists()


# -- Over the plan: every command that runs a venv's code is checked first ----------------------

VENV = "/opt/omero/web/venv3"
#: A venv's program run (not a path tested, listed or written into a unit or cron line).
RUNS = re.compile(rf"(?<![-\w/=.])({re.escape(VENV)}(?:\.previous)?)/bin/(?:python|pip|omero)\b(?! \]|;)")
def unchecked(commands: list[str]) -> list[str]:
    """Each run of a venv's program that no ``install.trusted`` check for that venv comes before
    (path tests such as ``[ -x PROGRAM ]`` name it without running it)."""
    found = []
    for command in commands:
        for match in RUNS.finditer(command):
            before = command[:match.start()]
            if before.endswith(("[ -x ", "[ -e ", "[ -L ", "[ -f ")):
                continue
            if f"owd_v={match.group(1)};" not in before:
                found.append(command[max(0, match.start() - 120):match.end() + 60])
    return found


@pytest.mark.parametrize("data", [
    {},
    {"omero_web_tags": "omeroweb,service,healthcheck"},  # the upgrade docs' own selection
    {"omero_web_skip_tags": "prerequisites"},
    {"omero_web_redis": True, "omero_web_apps": [{"spec": "omero-figure", "app": "omero_figure"}],
     "omero_web_wsgi_worker_class": "gevent", "omero_web_clearsessions": True},
], ids=["default", "tags", "skip-prerequisites", "features"])
@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "initd"])
def test_every_run_of_a_venv_program_in_a_deploy_is_checked_first(data, systemd, tmp_path):
    host = SimulatedHost("debian", "12", systemd=systemd, existing_paths=(f"{VENV}/bin/omero",))
    # no Ice wheel cached on this machine: the host fetches (with the venv's pip) or builds one
    sim = simulate(host, {**data, "omero_web_ice_cache_dir": str(tmp_path)})
    assert [c for c in sim.raw if RUNS.search(c)], "the plan runs the venv's programs"
    assert unchecked(sim.raw) == []


@pytest.mark.parametrize("func", [maintenance.restart, maintenance.clearsessions, troubleshoot.troubleshoot],
                         ids=["restart", "clearsessions", "troubleshoot"])
def test_every_run_of_a_venv_program_in_a_single_section_is_checked_first(func, tmp_path):
    hosts = {"@fake/web": SimulatedHost("debian", "12")}
    data = {"omero_web_troubleshoot_dir": str(tmp_path)}
    with fake_run(hosts, data, lambda state: load_func(state, func)) as (state, inventory):
        raw = list(inventory.get_host("@fake/web").connector.executed_commands)
    if func is maintenance.restart:  # OMERO.web's code starts as its account: checked before the restart
        (restart,) = [c for c in raw if "systemctl restart omero-web" in c]
        assert restart.startswith("{ owd_v=/opt/omero/web/venv3;")
    else:
        assert [c for c in raw if RUNS.search(c)]
    assert unchecked(raw) == []


def test_a_service_start_or_restart_of_omero_web_is_checked_first():
    for systemd in (True, False):
        sim = simulate(SimulatedHost("debian", "12", systemd=systemd), {})
        starts = [c for c in sim.raw if re.search(r"(systemctl (re)?start |/etc/init\.d/)omero-web(\.service)?( |;|$)", c)
                  and re.search(r"\b(re)?start\b", c)]
        assert starts, sim.raw
        assert all(c.startswith(f"{{ owd_v={VENV};") for c in starts), starts


def test_the_check_is_one_rule_for_the_facts_too():
    # the facts that would run the venv's code read the same rule (install.find_untrusted)
    from host.facts import NginxSite, OmeroConfig, VenvReport

    install = OmeroInstall(VENV, "/opt/omero/web/omero-web", "omero-web")
    for command in (VenvReport().command(install, ["omero-web"]), OmeroConfig().command(install, "/r.json"),
                    NginxSite().command(install, "/etc/nginx/conf.d/omeroweb.conf", "true", "/rec")):
        assert f"owd_v={VENV};" in command


def test_a_link_above_the_venv_into_a_folder_of_another_account_is_refused(trusted_tmp):
    """/…/good/app -> /…/evil/real, evil another account's: it could point ``real`` at any tree,
    or swap one in between the check and the run; the path the venv resolves to is checked too."""
    evil = trusted_tmp / "evil"
    evil.mkdir(mode=0o755)
    venv = make_venv(evil / "real")
    os.chown(evil, NOBODY, NOBODY)
    (trusted_tmp / "good").mkdir(mode=0o755)
    (trusted_tmp / "good" / "app").symlink_to(evil / "real")
    refused = run(trusted(str(trusted_tmp / "good" / "app" / "venv"), "echo RAN"))
    assert refused.returncode == 1 and "RAN" not in refused.stdout
    assert f": {evil} (owner uid {NOBODY}," in refused.stderr, refused.stderr
    assert run(trusted(str(venv), "echo RAN")).returncode == 1  # and by its own path
    os.chown(evil, 0, 0)
    assert run(trusted(str(trusted_tmp / "good" / "app" / "venv"), "echo RAN")).stdout == "RAN\n"
