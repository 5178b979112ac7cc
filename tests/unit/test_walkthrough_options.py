"""
Options the walkthroughs document besides their main path, on simulated hosts: several
OMERO.servers in ``omero.web.server_list``, Gunicorn's port, the ``nginx-location``
alternative to a whole NGINX site, and omero-py upgraded on its own.
"""

from __future__ import annotations

import json

import pytest

from model.settings import ValidationError, validate
from tests.unit.simulate import SimulatedHost, simulate

STAGED = "/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"
INCLUDE = "/etc/nginx/omero-web-location.include"


def staged(sim) -> dict:
    return dict(line.split("=", 1) for line in sim.uploads[STAGED].splitlines())


def refused(data: dict) -> str:
    with pytest.raises(ValidationError) as error:
        validate(data, "web1")
    return str(error.value)


def test_several_omero_servers_in_the_server_list():
    servers = [["omero1.example.org", 4064, "Imaging facility"], ["10.0.0.7", 4064, "Archive"]]
    sim = simulate(SimulatedHost("ubuntu", "20.04"), {"omero_web_servers": servers})
    assert json.loads(staged(sim)["omero.web.server_list"]) == servers


@pytest.mark.parametrize("data, message", [
    ({"omero_web_servers": [["omero1.example.org", 4064, "a"]], "omero_web_server_host": "omero2.example.org"},
     "omero_web_servers and omero_web_server_host = 'omero2.example.org' both say which OMERO.server"),
    ({"omero_web_servers": []}, "expected a list of [host, port, name]"),
    ({"omero_web_servers": [["a.example.org", 4064]]}, "expected a list of [host, port, name]"),
    ({"omero_web_servers": [["a.example.org; rm -rf /", 4064, "a"]]}, "expected a host name or IP address"),
    ({"omero_web_servers": [["a.example.org", 4064, "a"], ["a.example.org", 4064, "b"]]}, "each host and port once"),
    ({"omero_web_servers": [["a.example.org", 4064, "line\nbreak"]]}, "expected a single line"),
])
def test_bad_server_lists_are_refused(data, message):
    assert message in refused(data)


def test_application_server_port_must_not_be_nginx_port():
    # omero web config nginx itself dies on this ("Port conflict"); the deploy says so before connecting
    text = refused({"omero_web_nginx_port": 4080})
    assert "omero_web_nginx_port = 4080 is also OMERO.web's application server port" in text
    text = refused({"omero_web_application_server_port": 8443, "omero_web_https": True,
                    "omero_web_tls_self_signed": True, "omero_web_https_port": 8443})
    assert "omero_web_https_port = 8443 is also OMERO.web's application server port" in text
    assert "omero_web_application_server_port" in refused({"omero_web_config": {"omero.web.application_server.port": 1}})


def test_nginx_location_mode_writes_an_include_for_the_sysadmins_server_block():
    data = {"omero_web_nginx_mode": "location", "omero_web_prefix": "/omero",
            "omero_web_publications": {"paper-2024": "project-7"}}
    site = "/etc/nginx/conf.d/omeroweb.conf"
    sim = simulate(SimulatedHost("debian", "12", existing_paths=("/etc/nginx/sites-enabled/default", site)), data)
    generate = sim.find(r"omero-web-location.include.deploy-new")
    assert len(generate) == 1
    # the walkthrough's command, from the data alone in the root-only scratch OMERODIR
    assert " nginx-location 80 localhost" in generate[0]
    # server-level directives the location template leaves out follow its blocks
    assert "location /omero/pub/paper-2024 { return 307 /omero/webclient/?show=project-7; }" in generate[0]
    assert "error_page 502 @maintenance_omero;" in generate[0]
    # checked inside a scratch server block (nothing includes it yet), then NGINX's own configuration
    assert f"include {INCLUDE};" in generate[0]
    assert "nginx -t -q -c /var/lib/omeroweb-deploy/nginx-site-location-test.conf && nginx -t;" in generate[0]
    # the default site and the sysadmin's server blocks are left alone; the deploy's own site goes
    assert not sim.find(r"sites-enabled/default")
    assert any(op.endswith(f"No OMERO.web NGINX site {site} (location mode)") for op in sim.operations)
    assert not sim.find(r"omeroweb.conf.deploy-new")
    # health: from Gunicorn, since the server block that serves it is the sysadmin's
    assert any(op.endswith("OMERO.web answers with its login page through Gunicorn (NGINX location mode)")
               for op in sim.operations)


def test_nginx_site_mode_is_the_default():
    sim = simulate(SimulatedHost("debian", "12"))
    assert sim.find(r" nginx 80 localhost") and not sim.find(r"nginx-location")


@pytest.mark.parametrize("path, message", [
    ("/etc/nginx/conf.d/omero.conf", "outside the folders NGINX loads at http level"),
    ("/etc/nginx/sites-enabled/omero", "outside the folders NGINX loads at http level"),
    ("/etc/nginx/nginx.conf", "outside the folders NGINX loads at http level"),
    ("/opt/omero/web/omero-web/omero-web-location.include", "expected a file under /etc/nginx"),
    ("/etc/nginx/../passwd", "without '.' or '..' components"),
])
def test_location_include_stays_root_owned_and_unloaded(path, message):
    assert message in refused({"omero_web_nginx_mode": "location", "omero_web_nginx_location_file": path})


def test_location_mode_leaves_https_to_the_server_block():
    text = refused({"omero_web_nginx_mode": "location", "omero_web_https": True, "omero_web_tls_self_signed": True})
    assert "omero_web_https = True and omero_web_nginx_mode = 'location' exclude each other" in text


def test_omero_py_upgraded_on_its_own():
    installed = ["=omero-web==5.33.2", "=whitenoise==6.9.0", "omero-py>=5.19.5"]
    sim = simulate(SimulatedHost("debian", "12", extra_responses={"packaging.requirements": installed}),
                   {"omero_web_omero_py_spec": "omero-py>=5.19.5"})
    assert validate({"omero_web_omero_py_spec": "omero_py >= 5.19.5"}).omero_py_spec == "omero_py>=5.19.5"
    install = sim.find(r"-m pip install --upgrade ")
    assert len(install) == 1
    # only omero-py is upgraded; OMERO.web and WhiteNoise stay pinned as installed
    assert "'omero-py>=5.19.5' omero-web==5.33.2 whitenoise==6.9.0 --no-compile && " in install[0]
    assert install[0].index(" --no-compile && ") < install[0].index(" || { ")  # then the failure handling
    assert "expected a pip requirement for omero-py" in refused({"omero_web_omero_py_spec": "omero-web>=5.6"})
