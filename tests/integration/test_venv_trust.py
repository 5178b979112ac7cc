"""
Root never runs code another account can change, however the run was selected: on one Debian
12 systemd target over SSH, a ``.pth`` file owned by the OMERO.web account is planted in the
venv's site-packages (a line starting with ``import`` in it runs at every start of that
python: it would write a marker file naming the uid that ran it). Then each run that starts
the venv's python, pip or omero, or OMERO.web itself: the upgrade docs' selection of tags,
the prerequisites section skipped, ``operations.maintenance.restart``, ``operations.ice.ice``
and the troubleshooting run, as root over SSH, and the first again through ``_sudo``. Each
fails naming the file; no marker appears; OMERO.web keeps serving (it was not restarted).
The file removed, the deploy succeeds and a re-run changes nothing.
"""

from __future__ import annotations

import pytest
import requests

from testbed.pyinfra_run import Deployer, run_pyinfra, ssh_ok as ssh, systemd_target, target_data, write_inventory

pytestmark = pytest.mark.integration

VENV = "/opt/omero/web/venv3"
OMERODIR = "/opt/omero/web/omero-web"
#: Where the planted code would leave its marker: OMERODIR/var, which root, the OMERO.web account
#: and the sandboxed service (ReadWritePaths=) can all write.
MARKERS = f"{OMERODIR}/var/pth-ran"
REFUSED = f"omeroweb-deploy: refusing to run code from {VENV}: "
SSH_USER = "deployer"
SUDO = {"ssh_user": SSH_USER, "_sudo": True}


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "venvtrust") as target:
        yield target


@pytest.fixture(scope="module")
def deploy(target, tmp_path_factory):
    deployed = Deployer(target, tmp_path_factory.mktemp("venvtrust"), "debian12").deployed()
    # a sudo user for the _sudo run: passwordless sudo, root's SSH key
    ssh(target, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null")
    ssh(target, f"useradd -m -s /bin/bash {SSH_USER} && install -d -m 700 -o {SSH_USER} -g {SSH_USER} "
                f"/home/{SSH_USER}/.ssh && install -m 600 -o {SSH_USER} -g {SSH_USER} /root/.ssh/authorized_keys "
                f"/home/{SSH_USER}/.ssh/ && echo '{SSH_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/{SSH_USER}")
    return deployed


@pytest.fixture(scope="module")
def planted(target, deploy):
    site = ssh(target, f"{VENV}/bin/python -c \"import sysconfig; print(sysconfig.get_paths()['purelib'])\"")
    pth = f"{site}/omeroweb-deploy-test.pth"
    code = f"import os; open('{MARKERS}-%d' % os.getuid(), 'w').close()"
    ssh(target, f"printf '%s\\n' \"{code}\" > {pth} && chown omero-web:omero-web {pth}")
    # (the test's own check that the planted line runs at a python start: as nobody, then removed)
    ssh(target, f"chmod 777 {OMERODIR}/var && cd / && runuser -u nobody -- {VENV}/bin/python -c pass; "
                f"chmod 755 {OMERODIR}/var; ls {MARKERS}-65534 && rm {MARKERS}-65534")
    yield {"pth": pth, "pid": ssh(target, "systemctl show -p MainPID --value omero-web")}


def selections(tmp_path) -> dict[str, tuple[tuple[str, ...], dict]]:
    """Name -> (pyinfra arguments after the inventory, extra data)."""
    return {
        "tags omeroweb,service,healthcheck": (("deploy.py",), {"omero_web_tags": "omeroweb,service,healthcheck"}),
        "skip prerequisites": (("deploy.py",), {"omero_web_skip_tags": "prerequisites"}),
        "maintenance.restart": (("operations.maintenance.restart",), {}),
        "ice.ice": (("operations.ice.ice",), {}),
        "troubleshoot": (("operations.troubleshoot.troubleshoot",), {"omero_web_troubleshoot_dir": str(tmp_path)}),
        "tags through sudo": (("deploy.py",), {"omero_web_tags": "omeroweb,service,healthcheck", **SUDO}),
    }


@pytest.mark.parametrize("selection", ["tags omeroweb,service,healthcheck", "skip prerequisites", "maintenance.restart",
                                       "ice.ice", "troubleshoot", "tags through sudo"])
def test_each_run_refuses_naming_the_file_and_runs_none_of_it(target, planted, tmp_path, selection):
    args, data = selections(tmp_path)[selection]
    inventory = write_inventory(tmp_path / "inventory.py", {"debian12": [target_data(target, **data)]})
    run = run_pyinfra(inventory, *args, "-v", log=tmp_path / "run.log")
    assert run.returncode != 0, run.tail()
    assert REFUSED + planted["pth"] in run.output, run.tail()
    assert ssh(target, f"ls {MARKERS}-* 2>/dev/null || true") == ""  # as no account: it never ran
    # OMERO.web was not restarted onto it, and keeps serving
    assert ssh(target, "systemctl show -p MainPID --value omero-web") == planted["pid"]
    assert "OMERO.web - Login" in requests.get(target.url(80, "/webclient/login/"), timeout=10).text


def test_the_file_removed_the_deploy_succeeds_and_a_rerun_changes_nothing(target, planted, deploy):
    ssh(target, f"rm {planted['pth']}")
    again = deploy()
    assert again.returncode == 0, again.tail()
    deploy.assert_rerun_changes_nothing()
    assert ssh(target, f"ls {MARKERS}-* 2>/dev/null || true") == ""
