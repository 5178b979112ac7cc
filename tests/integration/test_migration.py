"""
Migration to a new virtualenv and OMERODIR (walkthrough "OMERO.web upgrade": export and
re-import the configuration), on one Debian 12 plain container:

1. deploy with the default venv and OMERODIR, a secret in the data, and a property set by
   hand afterwards (the deploy does not manage it);
2. deploy again with a new venv and OMERODIR and ``omero_web_migrate_from_omerodir``: the
   new configuration must equal the old one byte for byte (secrets and the hand-set
   property included), the old OMERODIR must be untouched, OMERO.web must serve from the
   new place;
3. a third run changes nothing.
"""

from __future__ import annotations

import pytest
import requests

from testbed.images import ensure_images
from testbed.targets import remove_targets, start_plain_target
from testbed.pyinfra_run import Deployer

pytestmark = pytest.mark.integration

OLD_DIR, OLD_VENV = "/opt/omero/web/omero-web", "/opt/omero/web/venv3"
NEW_DIR, NEW_VENV = "/srv/omero-web/omero-web", "/srv/omero-web/venv3"
SECRET = "Migr4tion-Secret"
DATA = {"omero_web_config": {"omero.web.email_host_password": SECRET, "omero.web.debug": False}}


def config_dump(target, venv: str, omerodir: str) -> str:
    code, out = target.exec(
        f"runuser -u omero-web -- env OMERODIR={omerodir} {venv}/bin/omero config get --show-password")
    assert code == 0, out
    return out


@pytest.fixture(scope="module")
def migrated(docker_engine, tmp_path_factory):
    image = ensure_images(["bookworm"])["bookworm"]
    target = start_plain_target(image, name="migrate", ports=(80,))
    try:
        deploy = Deployer(target, tmp_path_factory.mktemp("migration"), "debian12", **DATA)
        first = deploy()
        assert first.returncode == 0, first.tail()
        deploy.assert_rerun_changes_nothing()
        code, out = target.exec(
            f"runuser -u omero-web -- env OMERODIR={OLD_DIR} {OLD_VENV}/bin/omero config set "
            "omero.web.ui.top_links '[[\"Lab wiki\", \"https://wiki.example.org\"]]'")
        assert code == 0, out
        before = config_dump(target, OLD_VENV, OLD_DIR)
        code, old_tree = target.exec(f"cd {OLD_DIR} && find etc -type f | sort | xargs sha256sum")
        second = deploy(omero_web_omerodir=NEW_DIR, omero_web_venv=NEW_VENV, omero_web_migrate_from_omerodir=OLD_DIR)
        yield {"target": target, "deploy": deploy, "before": before, "old_tree": old_tree, "second": second}
    finally:
        remove_targets([target])


def test_migration_deploy_succeeds(migrated):
    second = migrated["second"]
    assert second.returncode == 0, second.tail()
    assert SECRET not in second.output


def test_configuration_survives_byte_for_byte(migrated):
    target = migrated["target"]
    assert config_dump(target, NEW_VENV, NEW_DIR) == migrated["before"]
    assert SECRET in migrated["before"] and "Lab wiki" in migrated["before"]


def test_old_omerodir_left_as_it_was(migrated):
    target = migrated["target"]
    code, old_tree = target.exec(f"cd {OLD_DIR} && find etc -type f | sort | xargs sha256sum")
    assert old_tree == migrated["old_tree"]


def test_served_from_the_new_place(migrated):
    target = migrated["target"]
    page = requests.get(target.url(80, "/webclient/login/"), timeout=30)
    assert page.status_code == 200 and "OMERO.web - Login" in page.text
    code, out = target.exec("ps -eo args | grep '[g]unicorn'")
    assert NEW_VENV in out and OLD_VENV not in out, out
    code, site = target.exec("cat /etc/nginx/conf.d/omeroweb.conf")
    assert NEW_DIR in site and OLD_DIR not in site


def test_rerun_after_migration_changes_nothing(migrated):
    third = migrated["deploy"](omero_web_omerodir=NEW_DIR, omero_web_venv=NEW_VENV,
                               omero_web_migrate_from_omerodir=OLD_DIR)
    assert third.returncode == 0, third.tail()
    assert third.changed == 0, third.changed_operations()
