"""
Upgrade (walkthrough "OMERO.web upgrade") on a Debian 12 systemd target over SSH:

- an older OMERO.web release is deployed, then the version spec is raised: the upgrade
  happens in place, the configuration survives byte for byte (secrets included), a 0600
  backup of it and a package list are left, and the site is healthy on the new release;
- a forced failed upgrade (a release from a local index whose ``omeroweb`` package cannot
  be imported) fails the health check: the previous virtualenv is put back, the deploy
  fails saying so, and the old release keeps serving.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest
import requests

from tests.integration.pyinfra_run import Deployer, ssh_ok as ssh, systemd_target

pytestmark = pytest.mark.integration

OLD, NEW = "5.32.0", "5.33.2"
VENV = "/opt/omero/web/venv3"
BACKUPS = "/opt/omero/web/omero-web/etc/backups"
SECRET = {"omero.web.secret_key": "s3cret-Pa55"}


def broken_release_wheel() -> bytes:
    """A wheel of ``omero-web 99.0`` whose ``omeroweb`` package fails to import."""
    files = {
        "omeroweb/__init__.py": b"raise ImportError('deliberately broken release for the rollback test')\n",
        "omero_web-99.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: omero-web\nVersion: 99.0\n",
        "omero_web-99.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("omero_web-99.0.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("omero_web-99.0.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


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

    upgraded = deploy(omero_web_version_spec=f"omero-web>={NEW}")
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
    index = "/srv/broken-index"
    wheel = broken_release_wheel()
    ssh(target, f"mkdir -p {index}/omero-web && echo {base64.b64encode(wheel).decode()} | base64 -d "
                f"> {index}/omero-web/omero_web-99.0-py3-none-any.whl && "
                f"echo '<a href=\"omero_web-99.0-py3-none-any.whl\">omero_web-99.0-py3-none-any.whl</a>' "
                f"> {index}/omero-web/index.html")
    failed = deploy(
        omero_web_version_spec="omero-web==99.0",
        omero_web_pip_extra_index_urls=[f"file://{index}"],
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
