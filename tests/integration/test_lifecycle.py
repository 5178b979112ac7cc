"""
Lifecycle behaviour on one Debian 12 systemd target reached over SSH, each step a real
``pyinfra`` run and each check made from outside:

- a tagged run touches only its sections (NGINX data with ``tags=nginx`` leaves OMERO.web
  running untouched; a property with ``tags=config`` leaves the NGINX site untouched);
- a property removed from the data is removed from the configuration, one set by hand stays;
- an NGINX directive that fails ``nginx -t`` fails the deploy with nginx's message, keeps
  the previous site in place, and NGINX keeps serving;
- the NGINX location mode serves OMERO.web through a server block of the sysadmin's, and
  switching back to the whole site works;
- selecting an unknown tag fails before connecting, listing the valid ones.

Every scenario deployed here (first deploy, tagged runs, removal, recovery after the
broken directive) is run a second time, which must change nothing.
"""

from __future__ import annotations

import pytest
import requests

from testbed.pyinfra_run import Deployer, ssh_ok as ssh, systemd_target

pytestmark = pytest.mark.integration

SITE = "/etc/nginx/conf.d/omeroweb.conf"
PIDFILE = "/opt/omero/web/omero-web/var/django.pid"


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "lifecycle", ports=(80, 8080)) as target:
        yield target


@pytest.fixture(scope="module")
def deploy(target, tmp_path_factory):
    return Deployer(target, tmp_path_factory.mktemp("lifecycle"), "debian12").deployed()


def test_first_deploy_second_run_changes_nothing(deploy):
    deploy.assert_rerun_changes_nothing()


def omero_config(target) -> str:
    return ssh(target, "runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web "
                       "/opt/omero/web/venv3/bin/omero config get")


def test_tags_nginx_changes_only_nginx(target, deploy):
    pid = ssh(target, f"cat {PIDFILE}")
    result = deploy("--data", "omero_web_tags=nginx", omero_web_nginx_server_name="omero.example.test")
    assert result.returncode == 0, result.tail()
    assert all(name.startswith("NGINX for OMERO.web") for name in result.changed_operations()), result.rows()
    assert "server_name omero.example.test;" in ssh(target, f"cat {SITE}")
    assert ssh(target, f"cat {PIDFILE}") == pid  # OMERO.web not restarted
    response = requests.get(target.url(80, "/webclient/login/"), timeout=30)
    assert "OMERO.web - Login" in response.text
    deploy.assert_rerun_changes_nothing("--data", "omero_web_tags=nginx",
                                        omero_web_nginx_server_name="omero.example.test")


def test_tags_config_leaves_nginx_untouched(target, deploy):
    before = ssh(target, f"stat -c %Y {SITE}")
    pid = ssh(target, f"cat {PIDFILE}")
    result = deploy(
        "--data", "omero_web_tags=config",
        omero_web_nginx_server_name="omero.example.test",
        omero_web_config={"omero.web.page_size": 100},
    )
    assert result.returncode == 0, result.tail()
    changed = result.changed_operations()
    assert "OMERO.web configuration | Apply OMERO.web configuration" in changed
    assert not any(name.startswith("NGINX") for name in changed)
    assert ssh(target, f"stat -c %Y {SITE}") == before
    assert "omero.web.page_size=100" in omero_config(target)
    assert ssh(target, f"cat {PIDFILE}") != pid  # restarted to apply the configuration
    deploy.assert_rerun_changes_nothing("--data", "omero_web_tags=config",
                                        omero_web_nginx_server_name="omero.example.test",
                                        omero_web_config={"omero.web.page_size": 100})


def test_removed_property_is_unset_and_hand_set_one_kept(target, deploy):
    ssh(target, "runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web "
                "/opt/omero/web/venv3/bin/omero config set omero.web.ui.top_links '[]'")
    result = deploy(omero_web_nginx_server_name="omero.example.test")
    assert result.returncode == 0, result.tail()
    config = omero_config(target)
    assert "omero.web.page_size" not in config
    assert "omero.web.ui.top_links=[]" in config
    deploy.assert_rerun_changes_nothing(omero_web_nginx_server_name="omero.example.test")


def test_broken_nginx_directive_keeps_previous_site(target, deploy):
    before = ssh(target, f"sha256sum {SITE}")
    result = deploy(
        omero_web_nginx_server_name="omero.example.test",
        omero_web_config={"omero.web.nginx_server_extra_config": ["no_such_directive on;"]},
    )
    assert result.returncode != 0
    assert 'unknown directive "no_such_directive"' in result.output  # nginx's own message
    assert "the previous configuration is kept" in result.output
    assert ssh(target, f"sha256sum {SITE}") == before
    assert "OMERO.web - Login" in requests.get(target.url(80, "/webclient/login/"), timeout=30).text
    fixed = deploy(omero_web_nginx_server_name="omero.example.test")  # and the next good run converges
    assert fixed.returncode == 0, fixed.tail()
    deploy.assert_rerun_changes_nothing(omero_web_nginx_server_name="omero.example.test")


FACILITY_SITE = "/etc/nginx/sites-enabled/facility"
INCLUDE = "/etc/nginx/omero-web-location.include"


def test_nginx_location_mode_serves_through_the_sysadmins_server_block(target, deploy):
    # the walkthrough's alternative: `omero web config nginx-location`, included by a server
    # block of the sysadmin's (here on port 8080, with its own location beside OMERO.web's)
    ssh(target, f"printf '%s\\n' 'server {{' '    listen 8080;' '    location = /facility.txt {{ return 200 facility; }}' "
                f"'    include {INCLUDE};' '}}' > {FACILITY_SITE}")
    try:
        data = dict(omero_web_nginx_server_name="omero.example.test", omero_web_nginx_mode="location")
        result = deploy(**data)
        assert result.returncode == 0, result.tail()
        assert ssh(target, f"test -e {SITE} && echo site || echo none") == "none"  # the deploy's site is gone
        assert "proxy_pass http://127.0.0.1:4080;" in ssh(target, f"cat {INCLUDE}")
        assert ssh(target, f"stat -c %U:%a {INCLUDE}") == "root:644"
        login = requests.get(target.url(8080, "/webclient/login/"), timeout=30)
        assert "OMERO.web - Login" in login.text
        assert requests.get(target.url(8080, "/static/webgateway/css/ome.body.css"), timeout=30).status_code == 200
        assert requests.get(target.url(8080, "/facility.txt"), timeout=30).text == "facility"
        assert login.headers.get("X-Content-Type-Options") == "nosniff"  # the server-level directives came along
        deploy.assert_rerun_changes_nothing(**data)
        # back to the whole site: served on port 80 again; the include stays (the server block uses it)
        back = deploy(omero_web_nginx_server_name="omero.example.test")
        assert back.returncode == 0, back.tail()
        assert "OMERO.web - Login" in requests.get(target.url(80, "/webclient/login/"), timeout=30).text
        deploy.assert_rerun_changes_nothing(omero_web_nginx_server_name="omero.example.test")
    finally:
        ssh(target, f"rm -f {FACILITY_SITE} && nginx -t && systemctl reload nginx")


def test_unknown_tag_fails_before_connecting(deploy):
    result = deploy("--data", "omero_web_tags=nginx,ngnix")
    assert result.returncode != 0
    assert "unknown tag(s) ngnix; valid tags:" in result.output
    assert "Connecting to hosts" not in result.output
