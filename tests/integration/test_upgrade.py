"""
Upgrade (walkthrough "OMERO.web upgrade") on a Debian 12 systemd target over SSH:

- an older OMERO.web release is deployed, then the version spec is raised: the upgrade
  happens in place, the configuration survives byte for byte (secrets included), a 0600
  backup of it and a package list are left, and the site is healthy on the new release;
- a forced failed upgrade (a release from a local index whose ``omeroweb`` package cannot
  be imported) fails the health check: the previous virtualenv is put back, the deploy
  fails saying so, and the old release keeps serving;
- issue 12 (3), each ending with a re-run of the old data that changes nothing:
  pip failing halfway (a dependency installed, then a release pip refuses to install) is
  rolled back at once; a health check failing after an app was added in the same run
  restores the venv, the configuration and both records; a run after an interrupted
  upgrade (a good ``<venv>.previous`` kept, a broken venv) keeps that copy and rolls back
  to it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile

import pytest
import requests

from tests.integration.core_checks import SteadyClient
from testbed.cache import cache_dir
from testbed.pyinfra_run import Deployer, ssh_ok as ssh, systemd_target

pytestmark = pytest.mark.integration

OLD, NEW = "5.32.0", "5.33.2"
VENV = "/opt/omero/web/venv3"
BACKUPS = "/opt/omero/web/omero-web/etc/backups"
SECRET = {"omero.web.secret_key": "s3cret-Pa55"}


def wheel(name: str, version: str, files: dict[str, bytes], requires: tuple[str, ...] = ()) -> bytes:
    """A pure-Python wheel of ``name`` ``version`` holding ``files``."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {**files, f"{info}/METADATA": metadata.encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def broken_release_wheel() -> bytes:
    """A wheel of ``omero-web 99.0`` whose ``omeroweb`` package fails to import."""
    return wheel("omero-web", "99.0",
                 {"omeroweb/__init__.py": b"raise ImportError('deliberately broken release for the rollback test')\n"})


INDEX = "/srv/broken-index"


def publish(target, name: str, version: str, data: bytes) -> None:
    """Put a wheel in the local index (a PEP 503 folder, added to pip's extra index URLs)."""
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    folder = f"{INDEX}/{name}"
    ssh(target, f"mkdir -p {folder} && echo {base64.b64encode(data).decode()} | base64 -d > {folder}/{filename} && "
                f"echo '<a href=\"{filename}\">{filename}</a>' >> {folder}/index.html")


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "upgrade") as target:
        yield target


@pytest.fixture(scope="module")
def deploy(target, tmp_path_factory):
    return Deployer(target, tmp_path_factory.mktemp("upgrade"), "debian12", omero_web_config=SECRET,
                    omero_web_secret_config_keys=list(SECRET))


def installed_version(target) -> str:
    return ssh(target, f"{VENV}/bin/python -m pip show omero-web | sed -n 's/^Version: //p'")


def full_config(target) -> str:
    return ssh(target, f"runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web {VENV}/bin/omero config get --show-password")


def login(target) -> str:
    return requests.get(target.url(80, "/webclient/login/"), timeout=30).text


def test_upgrade_in_place_keeps_configuration(target, deploy):
    first = deploy(omero_web_version_spec=f"omero-web=={OLD}")
    assert first.returncode == 0, first.tail()
    assert installed_version(target) == OLD
    deploy.assert_rerun_changes_nothing(omero_web_version_spec=f"omero-web=={OLD}")
    before = full_config(target)
    assert "s3cret-Pa55" in before

    # the one-machine figure beside the web tier's (docs/performance.md): requests to the
    # login page during the upgrade, some of which the restart fails (no other node to go to)
    client = SteadyClient(target.url(80, "/webclient/login/"), rate=8)
    client.start()
    started = time.monotonic()
    try:
        upgraded = deploy(omero_web_version_spec=f"omero-web>={NEW}")
    finally:
        client.stop.set()
        client.join()
    figures = {"requests_sent": client.sent, "requests_failed": len(client.failed),
               "upgrade_seconds": round(time.monotonic() - started, 1)}
    (cache_dir() / "one-host-upgrade-figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(figures)
    assert upgraded.returncode == 0, upgraded.tail()
    assert installed_version(target) == NEW
    assert full_config(target) == before  # byte for byte, secrets included
    assert "OMERO.web - Login" in login(target)
    assert ssh(target, f"test -e {VENV}.previous || echo gone") == "gone"  # removed once healthy

    listing = ssh(target, f"stat -c '%a %U %n' {BACKUPS} {BACKUPS}/*").splitlines()
    assert listing[0] == f"700 omero-web {BACKUPS}"
    configs = [line for line in listing if "/config-" in line]
    assert len(configs) == 1 and configs[0].startswith("600 omero-web ")
    backup = configs[0].split(" ", 2)[2]
    assert ssh(target, f"cat {backup}") == before
    assert any("/packages-" in line for line in listing)
    assert f"omero-web=={OLD}" in ssh(target, f"cat {BACKUPS}/packages-*.txt")
    deploy.assert_rerun_changes_nothing(omero_web_version_spec=f"omero-web>={NEW}")


def test_failed_upgrade_rolls_back(target, deploy):
    publish(target, "omero-web", "99.0", broken_release_wheel())
    failed = deploy(
        omero_web_version_spec="omero-web==99.0",
        omero_web_pip_extra_index_urls=[f"file://{INDEX}"],
        omero_web_healthcheck_timeout=30,
    )
    assert failed.returncode != 0
    assert "Upgrade rolled back: the previous virtualenv is restored" in failed.output
    assert installed_version(target) == NEW
    assert "OMERO.web - Login" in login(target)
    # the good data converges again, and a second run changes nothing
    converged = deploy(omero_web_version_spec=f"omero-web>={NEW}")
    assert converged.returncode == 0, converged.tail()
    deploy.assert_rerun_changes_nothing(omero_web_version_spec=f"omero-web>={NEW}")


# the managed names (the account's, in OMERODIR) and the deployed apps (root's, per venv)
APPS_RECORD = f"/var/lib/omeroweb-deploy/apps-{hashlib.sha256(VENV.encode()).hexdigest()[:16]}"
RECORDS = ("/opt/omero/web/omero-web/etc/omeroweb-deploy-managed.json", f"{APPS_RECORD}.json")


def state_of(target) -> dict:
    """What a rollback must leave as it was: configuration, records, release, package list."""
    records = {path: ssh(target, f"cat {path} 2>/dev/null || echo absent") for path in RECORDS}
    return {"config": full_config(target), "records": records, "version": installed_version(target),
            "packages": ssh(target, f"{VENV}/bin/python -m pip freeze --all")}


def assert_rolled_back(target, run, before: dict, because: str) -> None:
    assert run.returncode != 0
    assert "Upgrade rolled back: the previous virtualenv is restored, with the configuration and records" in run.output, run.tail()
    assert because in run.output, run.tail()
    assert state_of(target) == before
    assert "OMERO.web - Login" in login(target)
    assert ssh(target, f"ls -d {VENV}.previous* {BACKUPS}/rollback {APPS_RECORD}.rollback 2>/dev/null || echo none") \
        == "none"


def back_to_old_data(deploy) -> None:
    """The old data again: only the venv's pip.conf (it follows the data, and the failed run's
    extra index was written before the venv was copied) may change; then a re-run changes nothing."""
    back = deploy(omero_web_version_spec=f"omero-web>={NEW}")
    assert back.returncode == 0, back.tail()
    assert set(back.changed_operations()) <= {"OMERO.web virtual environment | Configure pip in the virtualenv"}
    deploy.assert_rerun_changes_nothing(omero_web_version_spec=f"omero-web>={NEW}")


def test_pip_failing_halfway_rolls_back(target, deploy):
    # pip installs the new dependency, then refuses the release (a file outside its folder)
    publish(target, "deploytest-dep", "1.0", wheel("deploytest-dep", "1.0", {"deploytest_dep.py": b""}))
    publish(target, "omero-web", "99.1", wheel("omero-web", "99.1", {"omeroweb/__init__.py": b"", "../outside.py": b""},
                                               requires=("deploytest-dep",)))
    before = state_of(target)
    failed = deploy(omero_web_version_spec="omero-web==99.1", omero_web_pip_extra_index_urls=[f"file://{INDEX}"])
    assert "trying to install outside the target directory" in failed.output, failed.tail()
    assert_rolled_back(target, failed, before, "pip failed halfway through the upgrade")
    back_to_old_data(deploy)


def test_failed_health_check_restores_configuration_and_records(target, deploy):
    # an app that imports (the import check and ``omero web start`` pass) but not in Gunicorn:
    # OMERO.web restarts, then no worker boots and the health check fails
    broken = b"import sys\nif any('gunicorn' in arg for arg in sys.argv):\n    raise RuntimeError('deliberately broken app')\n"
    publish(target, "omero-deploytest-app", "1.0", wheel("omero-deploytest-app", "1.0", {"deploytest_app/__init__.py": broken}))
    before = state_of(target)
    failed = deploy(omero_web_version_spec=f"omero-web>={NEW}", omero_web_pip_extra_index_urls=[f"file://{INDEX}"],
                    omero_web_apps=[{"spec": "omero-deploytest-app", "app": "deploytest_app"}],
                    omero_web_healthcheck_timeout=20)
    assert_rolled_back(target, failed, before, "OMERO.web health check failed")
    assert "deploytest_app" not in before["config"]
    back_to_old_data(deploy)


def test_run_after_interrupted_upgrade_keeps_the_good_copy(target, deploy):
    # as a run killed during pip leaves it: a good copy kept (marked here), the venv broken
    ssh(target, f"cp -a {VENV} {VENV}.previous && touch {VENV}.previous/good-copy && "
                f"rm -rf {VENV}/lib/python3*/site-packages/omeroweb")
    publish(target, "omero-web", "99.0", broken_release_wheel())
    failed = deploy(omero_web_version_spec="omero-web==99.0", omero_web_pip_extra_index_urls=[f"file://{INDEX}"])
    assert failed.returncode != 0
    assert "Upgrade rolled back" in failed.output and "does not start" in failed.output, failed.tail()
    assert ssh(target, f"test -e {VENV}/good-copy && rm {VENV}/good-copy && echo restored") == "restored"
    assert installed_version(target) == NEW
    assert "OMERO.web - Login" in login(target)
    back_to_old_data(deploy)
