"""
Every supported distro, both service managers: the real deploy.py is planned and executed
against pyinfra's @fake connector fed with that distro's facts, and the exact commands
and uploads are checked. No Docker; a few seconds in all.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pathlib
import pwd
import re
import shlex
import subprocess

import pytest

from host import uploads
from host.uploads import staged_path
from tests.unit.simulate import OS_RELEASES, SimulatedHost, simulate

DISTROS = sorted(OS_RELEASES)


@pytest.fixture
def data(tmp_path):
    return {"omero_web_ice_cache_dir": str(tmp_path / "wheels")}


def distro_id(value):
    return "-".join(value) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "initd"])
@pytest.mark.parametrize("distro", DISTROS, ids=distro_id)
def test_fresh_host(distro, systemd, data):
    name, version = distro
    rhel = name not in ("debian", "ubuntu")
    default_site = "/etc/nginx/conf.d/default.conf" if rhel else "/etc/nginx/sites-enabled/default"
    host = SimulatedHost(
        name,
        version,
        systemd=systemd,
        existing_paths=(default_site, "/etc/nginx/sites-available/default"),
        nginx_conf="        listen       80 default_server;" if rhel else "",
    )
    sim = simulate(host, data)

    # Packages through the manager the facts select
    if rhel:
        manager = "yum" if version == "7" else "dnf"
        assert sim.find(rf"^{manager} install -y .*epel-release")
        install = sim.find(rf"^{manager} install -y .*nginx")
        assert install, sim.commands
        python = "python3.11" if name in ("rocky", "almalinux") else "python3"
        assert f" {python}" in install[-1] and "unzip" in install[-1]
        assert not sim.find(r"^(DEBIAN_FRONTEND=\S+ )?apt-get ")
    else:
        assert sim.find(r"apt-get update")
        install = sim.find(r"apt-get .*install .*nginx")
        assert install and "python3-venv" in install[0] and "unzip" in install[0]
        assert not sim.find(r"^(yum|dnf) ")

    # The venv from the profile's interpreter
    interpreter = "/usr/bin/python3.11" if name in ("rocky", "almalinux") else "/usr/bin/python3"
    # (made new, never with --clear: that is only for a venv this deploy left half-made)
    marker = "/opt/omero/web/venv3.omeroweb-deploy-creating"
    assert sim.find(rf"^mkdir -p /opt/omero/web && touch {marker} && {interpreter} -m venv /opt/omero/web/venv3 "
                    rf"&& rm -f {marker}$")
    assert not sim.find(r"venv --clear")

    # Default NGINX site disabled the documented way for the family
    if rhel:
        assert sim.find(r"^mv /etc/nginx/conf.d/default.conf /etc/nginx/conf.d/default.disabled$")
        assert sim.find(r"^sed -i.bak -re .*default_server.* /etc/nginx/nginx.conf$")
    else:
        assert sim.find(r"^rm -f /etc/nginx/sites-enabled/default$")
        renamed = sim.find(r"^mv /etc/nginx/sites-available/default /etc/nginx/sites-available/default.disabled$")
        # only Debian 9's walkthrough renames it (intended change: Debian 10 did too, unlike its walkthrough)
        assert bool(renamed) == (name == "debian" and version == "9")

    # The OMERO.web site is generated and tested before use
    # ... from the data alone, in a root-only scratch OMERODIR (the real one is the web user's),
    # then pointed at the real OMERODIR
    scratch = "OMERODIR=/var/lib/omeroweb-deploy/nginx-site "
    site = sim.find(r"/var/lib/omeroweb-deploy/nginx-site/site.properties nginx 80 localhost; } "
                    r"\| sed 's\|/var/lib/omeroweb-deploy/nginx-site/\|/opt/omero/web/omero-web/\|g' "
                    r"> /etc/nginx/conf.d/omeroweb.conf")
    assert site and scratch + "PATH=/opt/omero/web/venv3/bin:/usr/bin:/bin /opt/omero/web/venv3/bin/python -c " in site[0]
    assert '"omero", "web", "config", template, "--http", port, "--servername", name' in site[0]
    assert "OMERODIR=/opt/omero/web/omero-web" not in site[0]
    assert sim.find(r"if ! nginx -t; then")

    # Service: unit under systemd, init.d script otherwise, registered the family's way
    if systemd:
        unit = sim.uploads["/etc/systemd/system/omero-web.service"]
        assert "Type=forking" in unit and "PIDFile=/opt/omero/web/omero-web/var/django.pid" in unit
        assert "User=omero-web" in unit and 'Environment="OMERODIR=/opt/omero/web/omero-web"' in unit
        assert sim.find(r"^systemctl enable omero-web.service$")
        assert "/etc/init.d/omero-web" not in sim.uploads
    else:
        script = sim.uploads["/etc/init.d/omero-web"]
        assert "OMERODIR=/opt/omero/web/omero-web" in script and "omero-web" in script
        registration = "update-rc.d omero-web defaults 98 02" if not rhel else "chkconfig --add omero-web"
        assert sim.find(rf"^{registration}$")
        assert not sim.find(r"^systemctl ")
        assert "/etc/systemd/system/omero-web.service" not in sim.uploads


PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----"


@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "initd"])
def test_root_files_are_staged_then_renamed_into_place_in_one_command(systemd, data, tmp_path):
    """Units, the init.d script, the cron job, CA certificates (uploads.root_file): uploaded to
    root's staging folder only, then given owner and mode and renamed in one command (issue 15:
    files.put read three facts and ran chown and chmod on the destination after uploading to it)."""
    ca = tmp_path / "site-ca.pem"
    ca.write_text(PEM + "\n")
    sim = simulate(SimulatedHost("debian", "12", systemd=systemd), {**data, "omero_web_extra_ca_certificates": [str(ca)]})
    digest = hashlib.sha256(PEM.encode()).hexdigest()[:16]
    dests = {f"/usr/local/share/ca-certificates/omeroweb-deploy-{digest}.crt": "644"}
    if systemd:
        dests.update({f"/etc/systemd/system/{unit}": "644" for unit in (
            "omero-web.service", "omero-web-clearsessions.service", "omero-web-clearsessions.timer")})
    else:
        dests.update({"/etc/init.d/omero-web": "755", "/etc/cron.d/omero-web-clearsessions": "644"})
    for dest, mode in dests.items():
        staged = staged_path(dest)
        assert staged.startswith("/var/lib/omeroweb-deploy/staging/")
        assert f"PUT {staged}" in sim.commands and f"PUT {dest}" not in sim.commands
        assert sim.find(rf"^chown root:root {staged} && chmod {mode} {staged} && mv -fTZ {staged} {re.escape(dest)} "
                        rf"\|\| {{ rm -f {staged}; exit 1; }}$"), dest
        assert not sim.find(rf"^(chmod|chown) \S+ {re.escape(dest)}$")
        assert dest in sim.uploads
    assert sim.uploads[next(iter(dests))] == PEM + "\n"
    assert sim.find(r"^update-ca-certificates$")


def test_install_staged_replaces_a_link_and_refuses_a_folder(tmp_path, monkeypatch):
    """The command root runs (real sh): a link at the destination is replaced, not written
    through; a folder there fails; the staged copy never stays behind."""
    monkeypatch.setattr(uploads, "ROOT_STAGING", str(tmp_path / "staging"))
    (tmp_path / "staging").mkdir()
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    victim, dest = tmp_path / "victim", tmp_path / "unit"
    victim.write_text("root's\n")

    def install(text, mode="644"):
        pathlib.Path(uploads.staged_path(str(dest))).write_text(text)
        return subprocess.run(["sh", "-c", uploads.install_staged(str(dest), user, group, mode)], capture_output=True)

    assert install("first\n").returncode == 0 and dest.read_text() == "first\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    dest.unlink()
    dest.symlink_to(victim)
    assert install("second\n", "755").returncode == 0
    assert not dest.is_symlink() and dest.read_text() == "second\n" and victim.read_text() == "root's\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o755"
    dest.unlink()
    dest.mkdir()
    assert install("third\n").returncode != 0 and dest.is_dir() and not any(dest.iterdir())
    assert not any((tmp_path / "staging").iterdir())


@pytest.mark.parametrize(
    "distro, url_fragment, builds",
    [
        (("centos", "7"), "zeroc-ice-py-centos7/releases/download/0.2.1/zeroc_ice-3.6.5-cp36-cp36m", True),
        (("ubuntu", "20.04"), "zeroc-ice-ubuntu2004/releases/download/0.2.0/zeroc_ice-3.6.5-cp38-cp38", True),
        (("debian", "10"), "zeroc-ice-debian10/releases/download/0.1.0/zeroc_ice-3.6.5-cp37-cp37m", True),
        (("rocky", "9"), "zeroc-ice-py-linux-x86_64/releases/download/20240202/zeroc_ice-3.6.5-cp311-cp311-manylinux", True),
        (("debian", "13"), None, True),
    ],
    ids=distro_id,
)
def test_ice_source_auto(distro, url_fragment, builds, data):
    sim = simulate(SimulatedHost(*distro), data)
    script = sim.find(r"ice_build_account_gone\(\) \{")[0]
    if url_fragment:
        # the URL in a root-only file, fetched before any build
        assert url_fragment in sim.uploads["/var/cache/omeroweb-deploy/ice/wheel-url.txt"]
        assert script.index("pip download --no-deps --retries 1") < script.index("--no-binary :all:")
    else:
        assert "wheel-url.txt" not in script and "/var/cache/omeroweb-deploy/ice/wheel-url.txt" not in sim.uploads
    assert "patch_zeroc_ice.py" in script and "pip wheel --no-deps" in script
    assert "LDFLAGS=-Wl,--strip-debug env/bin/python -m pip wheel " in script  # linked without debug information
    assert "PUT /var/cache/omeroweb-deploy/ice/patch_zeroc_ice.py" in sim.commands
    assert "umask 077 && mkdir -p /var/cache/omeroweb-deploy/ice" in sim.commands  # root's only


def test_ice_from_local_wheel_is_uploaded_not_built(tmp_path, data):
    wheel = tmp_path / "zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    sim = simulate(
        SimulatedHost("debian", "12"),
        {**data, "omero_web_ice_source": "wheel", "omero_web_ice_wheel": str(wheel)},
    )
    assert "PUT /var/cache/omeroweb-deploy/ice/upload/" + wheel.name in sim.commands
    assert sim.find(r"pip install --no-deps --force-reinstall /var/cache/omeroweb-deploy/ice/upload/")
    assert not sim.find(r"pip (wheel|download)")


def test_ice_from_control_machine_cache(tmp_path, data):
    abi_dir = tmp_path / "wheels" / "debian-12-x86_64-cp311"
    abi_dir.mkdir(parents=True)
    wheel = abi_dir / "zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()
    (abi_dir / (wheel.name + ".sha256")).write_text(digest + "\n")  # recorded when it was fetched
    sim = simulate(SimulatedHost("debian", "12"), data)
    assert not sim.find(r"pip (wheel|download)")  # nothing fetched or built
    remote = "/var/cache/omeroweb-deploy/ice/upload/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    assert f"PUT {remote}" in sim.commands
    # installed only once the host holds exactly the recorded bytes
    check = sim.find(rf"^echo '{digest}  {remote}' \| sha256sum -c --quiet - \|\| ")
    install = sim.find(rf"pip install --no-deps --force-reinstall {remote} --no-compile && ")
    assert check and install and sim.commands.index(check[0]) < sim.commands.index(install[0])

    # a cached wheel whose bytes changed since (or with no record) is not used: built instead
    wheel.write_bytes(b"tampered")
    sim = simulate(SimulatedHost("debian", "12"), data)
    assert f"PUT {remote}" not in sim.commands and sim.find(r"pip wheel --no-deps")


FRESH_VENV = ["omero-web>=5.6.1", "whitenoise"]  # what the venv report prints: every spec unsatisfied


@pytest.mark.parametrize("venv_report, existing, tags, together", [
    (FRESH_VENV, (), None, True),
    (["=omero-web==5.33.2", "whitenoise"], (), None, False),  # OMERO.web installed: an upgrade's business
    (FRESH_VENV, ("/opt/omero/web/venv3/bin/omero",), None, False),
    (FRESH_VENV, ("/opt/omero/web/venv3.previous",), None, False),  # a failed upgrade's copy: rollback ahead
    (FRESH_VENV, (), "ice", False),  # OMERO.web's section not selected
], ids=["fresh", "omero-web-installed", "bin-omero", "previous-venv", "ice-tag-only"])
def test_ice_and_omero_web_in_one_pip_run_only_on_a_fresh_install(tmp_path, data, venv_report, existing, tags,
                                                                    together):
    abi_dir = tmp_path / "wheels" / "debian-12-x86_64-cp311"
    abi_dir.mkdir(parents=True)
    wheel = abi_dir / "zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"x")
    (abi_dir / (wheel.name + ".sha256")).write_text(hashlib.sha256(b"x").hexdigest() + "\n")
    remote = "/var/cache/omeroweb-deploy/ice/upload/" + wheel.name
    host = SimulatedHost("debian", "12", existing_paths=existing,
                         extra_responses={"packaging.requirements": venv_report})
    sim = simulate(host, {**data, **({"omero_web_tags": tags} if tags else {})})
    ice = sim.find(rf"-m pip install .*{remote} --no-compile && ")
    assert len(ice) == 1
    if together:
        assert ice[0].startswith(f"/opt/omero/web/venv3/bin/python -m pip install --upgrade 'omero-web>=5.6.1' "
                                 f"whitenoise {remote} --no-compile && ")
    else:
        assert ice[0].startswith(f"/opt/omero/web/venv3/bin/python -m pip install --no-deps --force-reinstall {remote} "
                                 "--no-compile && ")


def test_explicit_wheel_url_is_not_replaced_by_a_build(data):
    url = "https://wheels.example.org/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_ice_source": "wheel", "omero_web_ice_wheel": url})
    script = sim.find(r"pip download")[0]
    assert sim.uploads["/var/cache/omeroweb-deploy/ice/wheel-url.txt"] == url + "\n" and url not in script
    assert "pip wheel" not in script


@pytest.mark.parametrize("mode", ["Enforcing", "Permissive", "Disabled"])
def test_selinux_on_rhel(mode, data):
    # The walkthrough's `semanage port -a -t http_port_t -p tcp 4080` labels Gunicorn's
    # upstream port, with NGINX on its default port 80 (intended change: the deploy used to
    # label NGINX's listen port, and this test moved NGINX to 4080 to fake the command).
    sim = simulate(SimulatedHost("rocky", "9", selinux=mode), data)
    if mode == "Disabled":
        assert not sim.find(r"^(setsebool|semanage) ")
        return
    assert sim.find(r"^dnf install -y .*policycoreutils-python-utils")
    assert sim.find(r"^setsebool -P httpd_read_user_content on$")
    assert sim.find(r"^setsebool -P httpd_enable_homedirs on$")
    assert sim.find(r"^semanage port -a -t http_port_t -p tcp 4080$")


def test_selinux_port_already_labelled_is_left_alone(data):
    labelled = {"semanage port -ln": ["http_port_t                    tcp      4080, 80, 81, 443, 488, 8008, 8009"]}
    sim = simulate(SimulatedHost("centos", "7", selinux="Enforcing", extra_responses=labelled), data)
    assert sim.find(r"^yum install -y .*policycoreutils-python")
    assert not sim.find(r"semanage port -[am]")


def test_selinux_labels_the_application_server_port_and_an_unusual_nginx_port(data):
    sim = simulate(SimulatedHost("centos", "8", selinux="Enforcing"),
                   {**data, "omero_web_application_server_port": 8081, "omero_web_nginx_port": 8080})
    assert sim.find(r"^semanage port -a -t http_port_t -p tcp 8081$")
    assert sim.find(r"^semanage port -a -t http_port_t -p tcp 8080$")
    assert not sim.find(r"semanage port -a .* 4080$")
    staged = sim.uploads["/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"]
    assert "omero.web.application_server.port=8081\n" in staged


def test_no_selinux_steps_on_debian(data):
    assert not simulate(SimulatedHost("debian", "12", selinux="Enforcing"), data).find(r"^(setsebool|semanage) ")


def test_wsgi_workers_from_cpu_facts(data):
    sim = simulate(SimulatedHost("debian", "12"), data)
    staged = sim.uploads["/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"]
    assert "omero.web.wsgi_workers=5\n" in staged  # 2 x 2 cores + 1
    assert 'omero.web.server_list=[["localhost", 4064, "omero"]]\n' in staged


def test_tags_select_sections(data):
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_tags": "nginx"})
    assert all(op.startswith("NGINX for OMERO.web") for op in sim.operations), sim.operations
    # (the site's own scratch OMERODIR is loaded with the data: not OMERO.web's configuration)
    assert not sim.find(r"apt-get|pip install|OMERODIR=/opt/omero/web/omero-web .*omero config")


def test_skip_tags(data):
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_skip_tags": "healthcheck,service"})
    assert not any(op.startswith(("OMERO.web service", "OMERO.web health check")) for op in sim.operations)
    assert any(op.startswith("NGINX for OMERO.web") for op in sim.operations)


def test_upgrade_backs_up_config_and_keeps_previous_venv(data):
    host = SimulatedHost(
        "debian", "12", existing_paths=("/opt/omero/web/venv3/bin/omero",),
        extra_responses={"packaging.requirements": ["omero-web>=5.6.1"]},  # installed, spec raised
    )
    sim = simulate(host, data)
    # exported and listed into files the OMERO.web user writes (umask 077), never root
    as_web_user = r"\| runuser -u omero-web -- sh -c 'cd / && umask 077 && \[ ! -L \"\$1\" \] && cat > \"\$1\"' sh "
    backup = sim.find(r"omero config get --show-password\) && printf .* " + as_web_user
                      + r"/opt/omero/web/omero-web/etc/backups/config-\d{8}T\d{6}Z\.properties$")
    assert backup and backup[0].startswith("out=$(runuser -u omero-web -- ")
    assert sim.find(r"pip freeze\) && printf .* " + as_web_user + r"/opt/omero/web/omero-web/etc/backups/packages-")
    assert sim.find(r"^runuser -u omero-web -- sh -c .*mkdir -p.* sh 700 /opt/omero/web/omero-web/etc/backups$")
    # the venv copied only when no copy exists (an existing one is the good copy), under
    # another name then renamed
    keep = sim.find(r"^if \[ -e /opt/omero/web/venv3.previous \]; then echo 'Keeping the existing .*; else "
                    r"rm -rf /opt/omero/web/venv3.previous.omeroweb-deploy-new && cp -a /opt/omero/web/venv3 "
                    r"/opt/omero/web/venv3.previous.omeroweb-deploy-new && mv /opt/omero/web/venv3.previous.omeroweb-deploy-new "
                    r"/opt/omero/web/venv3.previous; fi$")
    # config.xml and both records kept as the OMERO.web user, unless a kept copy exists
    snapshot = sim.find(r"^runuser -u omero-web -- sh -c .*\[ -e \\?\"\$dir\\?\" \].* sh "
                        r"/opt/omero/web/omero-web/etc/backups/rollback /opt/omero/web/omero-web/etc/grid/config.xml "
                        r"/opt/omero/web/omero-web/etc/omeroweb-deploy-managed.json "
                        # root's apps record, by root, in the root-only state folder
                        r"&& sh -c .* sh /var/lib/omeroweb-deploy/apps-\w+\.rollback /var/lib/omeroweb-deploy/apps-\w+\.json$")
    upgrade = sim.find(r"-m pip install --upgrade 'omero-web>=5.6.1'")
    assert keep and snapshot and upgrade
    assert sim.commands.index(snapshot[0]) < sim.commands.index(keep[0]) < sim.commands.index(upgrade[0])
    # pip failing during the upgrade: rolled back when it changed the venv, else nothing restarted
    on_failure = upgrade[0].split(" || ", 1)[1]
    # (a venv refused by the check is not "the same": the status of each freeze decides)
    assert on_failure.startswith("{ if [ -d /opt/omero/web/venv3.previous ]; then if now=$(/opt/omero/web/venv3/bin/python -m pip freeze --all")
    assert "pip changed nothing: nothing to roll back, OMERO.web not restarted" in on_failure
    assert "{ rm -rf /opt/omero/web/venv3 && mv /opt/omero/web/venv3.previous /opt/omero/web/venv3 && runuser -u omero-web" in on_failure
    assert "&& { systemctl reset-failed omero-web 2>/dev/null; systemctl restart omero-web; } && echo 'pip failed halfway" in on_failure
    assert "Upgrade rolled back: the previous virtualenv is restored, with the configuration and records" in on_failure
    assert "pip failed halfway through the upgrade" in on_failure and on_failure.endswith("exit 1; fi; fi; exit 1; }")


def test_fresh_install_keeps_no_previous_venv(data):
    sim = simulate(SimulatedHost("debian", "12"), data)
    assert not sim.find(r"cp -a .*venv3.previous|--show-password >")


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "failing"])
def test_upgrade_outcome_decided_by_health_check(healthy, data):
    host = SimulatedHost(
        "debian", "12", systemd=False,
        existing_paths=("/opt/omero/web/venv3/bin/omero", "/opt/omero/web/venv3.previous"),
        extra_responses={"import omeroweb": ["[exit status 0]"]} if healthy else {
            "import omeroweb": ["[exit status 0]"],
            "OMERO.web - Login": ["FAILED: GET http://127.0.0.1:80/: 502"],
        },
    )
    sim = simulate(host, data)
    if healthy:
        # both copies dropped: the configuration snapshot (as the OMERO.web user) first
        assert sim.find(r"^runuser -u omero-web -- sh -c .*rm -rf.* sh /opt/omero/web/omero-web/etc/backups/rollback "
                        r"&& rm -rf /var/lib/omeroweb-deploy/apps-\w+\.rollback /opt/omero/web/venv3.previous$")
        assert not sim.find(r"^\{ rm -rf /opt/omero/web/venv3 && mv /opt/omero/web/venv3.previous")
        # a restart failing during an upgrade would be rolled back at once
        restart = sim.find(r"^/etc/init.d/omero-web restart \|\| \{ if \[ -d /opt/omero/web/venv3.previous \]; "
                           r"then \{ rm -rf /opt/omero/web/venv3 && mv /opt/omero/web/venv3.previous /opt/omero/web/venv3 && ")
        assert restart and "OMERO.web did not restart after the upgrade" in restart[0]
    else:
        rollback = sim.find(r"^\{ rm -rf /opt/omero/web/venv3 && mv /opt/omero/web/venv3.previous /opt/omero/web/venv3 && ")
        assert rollback and "&& /etc/init.d/omero-web restart && echo 'OMERO.web health check failed" in rollback[0]
        assert "Upgrade rolled back: the previous virtualenv is restored, with the configuration and records" in rollback[0]
        # configuration and records put back as the OMERO.web user, before the restart
        restore = rollback[0].split("/opt/omero/web/venv3.previous /opt/omero/web/venv3 && ", 1)[1]
        assert restore.startswith("runuser -u omero-web -- sh -c ") and (
            " sh /opt/omero/web/omero-web/etc/backups/rollback /opt/omero/web/omero-web/etc/grid/config.xml "
            "/opt/omero/web/omero-web/etc/omeroweb-deploy-managed.json && sh -c ") in restore
        assert re.search(r" sh /var/lib/omeroweb-deploy/apps-\w+\.rollback /var/lib/omeroweb-deploy/apps-\w+\.json "
                         r"&& /etc/init\.d/omero-web restart && ", restore)
        assert "OMERO.web health check failed" in rollback[0] and rollback[0].endswith("; exit 1")


def test_upgrade_that_cannot_import_rolls_back_before_nginx(data):
    host = SimulatedHost(
        "debian", "12",
        existing_paths=("/opt/omero/web/venv3/bin/omero", "/opt/omero/web/venv3.previous"),
        extra_responses={"import omeroweb": ["ImportError: deliberately broken", "[exit status 1]"]},
    )
    sim = simulate(host, data)
    rollback = sim.find(r"^\{ rm -rf /opt/omero/web/venv3 && mv /opt/omero/web/venv3.previous /opt/omero/web/venv3 && runuser ")
    assert rollback and "&& { systemctl reset-failed omero-web 2>/dev/null; systemctl restart omero-web; } && echo" in rollback[0]
    failure = sim.find(r"Upgrade rolled back")[0]
    assert "The upgraded OMERO.web does not start" in failure and "deliberately broken" in failure


def _run_as_account(script: str, *args: str) -> subprocess.CompletedProcess:
    """An ``as_user`` script run by this account (the scripts never rely on being another)."""
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True)


def test_snapshot_kept_once_then_restored(tmp_path):
    from host.upgrade import _RESTORE, _SNAPSHOT

    etc = tmp_path / "etc"
    (etc / "grid").mkdir(parents=True)
    config, managed, apps = etc / "grid" / "config.xml", etc / "managed.json", etc / "apps.json"
    config.write_text("old config")
    managed.write_text('{"names": []}')
    files = [str(config), str(managed), str(apps)]
    snapshot = str(tmp_path / "backups" / "rollback")
    (tmp_path / "backups").mkdir()
    assert _run_as_account(_SNAPSHOT, snapshot, *files).returncode == 0
    assert oct((tmp_path / "backups" / "rollback").stat().st_mode & 0o777) == "0o700"
    # the failed upgrade changed everything; a re-run keeps the first (good) snapshot
    config.write_text("new config with an app")
    managed.write_text('{"names": ["omero.web.apps"]}')
    apps.write_text('{"apps": []}')
    assert _run_as_account(_SNAPSHOT, snapshot, *files).returncode == 0
    assert (tmp_path / "backups" / "rollback" / "config.xml").read_text() == "old config"
    restored = _run_as_account(_RESTORE, snapshot, *files)
    assert restored.returncode == 0, restored.stderr
    assert config.read_text() == "old config" and managed.read_text() == '{"names": []}'
    assert not apps.exists()  # absent before the upgrade: removed
    assert not (tmp_path / "backups" / "rollback").exists()
    # no snapshot (nothing kept): nothing restored, no failure
    assert _run_as_account(_RESTORE, snapshot, *files).returncode == 0 and config.read_text() == "old config"


def test_restore_refuses_a_link(tmp_path):
    from host.upgrade import _RESTORE, _SNAPSHOT

    config = tmp_path / "config.xml"
    config.write_text("old")
    snapshot = str(tmp_path / "rollback")
    assert _run_as_account(_SNAPSHOT, snapshot, str(config)).returncode == 0
    config.unlink()
    config.symlink_to(tmp_path / "elsewhere")
    refused = _run_as_account(_RESTORE, snapshot, str(config))
    assert refused.returncode != 0 and "not a regular file" in refused.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_pip_failure_rolls_back_only_a_changed_venv(trusted_tmp):
    """The pip failure handler run against fake venvs (``runuser`` and the restart replaced), in a
    folder only root can change (the venvs' code runs only there: ``install.trusted``)."""
    tmp_path = trusted_tmp
    from model.omero_install import OmeroInstall
    from host.upgrade import pip_failure_command

    def fake_venv(path, packages):
        (path / "bin").mkdir(parents=True)
        (path / "bin" / "python").write_text(f"#!/bin/sh\necho '{packages}'\n")
        (path / "bin" / "python").chmod(0o755)

    venv = tmp_path / "venv3"
    for changed in (False, True):
        for path in (venv, tmp_path / "venv3.previous"):
            subprocess.run(["rm", "-rf", str(path)], check=True)
        fake_venv(venv, "omero-web==5.33.2\ndeploytest-dep==1.0" if changed else "omero-web==5.33.2")
        fake_venv(tmp_path / "venv3.previous", "omero-web==5.33.2")
        command = pip_failure_command(OmeroInstall(str(venv), str(tmp_path / "omerodir"), "nobody"),
                                      f"touch {tmp_path}/restarted")
        command = command.replace("runuser -u nobody -- ", "")
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert done.returncode == 1
        assert not (tmp_path / "venv3.previous").exists()
        assert (tmp_path / "restarted").exists() == changed
        if changed:
            assert "Upgrade rolled back" in done.stderr and "pip failed halfway" in done.stderr
            assert "deploytest" not in (venv / "bin" / "python").read_text()
        else:
            assert "pip changed nothing" in done.stdout and done.stderr == ""


def _index(sim, pattern: str) -> int:
    found = [n for n, command in enumerate(sim.commands) if re.search(pattern, command)]
    assert found, f"no command matches {pattern!r}"
    return found[0]


def test_units_enabled_before_started_with_one_reload_of_systemd():
    """Issue 15: on a fresh host each unit is enabled first (`systemctl enable` makes systemd
    read every unit file again), then (re)started; no separate daemon-reload is run."""
    sim = simulate(SimulatedHost("debian", "12"), {})
    assert not sim.find(r"systemctl daemon-reload")
    assert _index(sim, r"mv -fTZ \S+ /etc/systemd/system/omero-web\.service ") \
        < _index(sim, r"^systemctl enable omero-web\.service$") \
        < _index(sim, r"systemctl restart omero-web;")
    assert not sim.find(r"^systemctl start omero-web\.service$")  # the restart started it
    assert _index(sim, r"mv -fTZ \S+ /etc/systemd/system/omero-web-clearsessions\.timer ") \
        < _index(sim, r"^systemctl enable omero-web-clearsessions\.timer$") \
        < _index(sim, r"^systemctl start omero-web-clearsessions\.timer$")


#: The deploy's systemd units, and the state reading's command for them (``host_state.HostState``).
UNITS = ("omero-web.service", "omero-web-clearsessions.timer", "nginx.service")
SHOWS_UNITS = re.compile(r"systemctl show -p Id")


def _units_reading(not_loaded: tuple[str, ...] = ()) -> list[str]:
    """The state reading's lines for UNITS, each running and enabled; ``not_loaded``: units
    whose file systemd has not read (NeedDaemonReload=yes)."""
    return [line for unit in UNITS for line in (
        f"U|Id={unit}", "U|SubState=running", "U|UnitFileState=enabled",
        f"U|NeedDaemonReload={'yes' if unit in not_loaded else 'no'}")]


def test_changed_units_of_enabled_services_are_reloaded_before_the_restart():
    """Where the units are enabled already (`systemctl enable` is not run), changed unit files
    are read again by one daemon-reload per section, before the restart."""
    host = SimulatedHost("debian", "12", extra_responses={SHOWS_UNITS: _units_reading()})
    sim = simulate(host, {})
    assert not sim.find(r"^systemctl (enable|start) omero-web")
    reloads = [n for n, command in enumerate(sim.commands) if command == "systemctl daemon-reload"]
    assert len(reloads) == 2, sim.commands
    assert _index(sim, r"mv -fTZ \S+ /etc/systemd/system/omero-web\.service ") < reloads[0] \
        < _index(sim, r"systemctl restart omero-web;")
    assert _index(sim, r"mv -fTZ \S+ /etc/systemd/system/omero-web-clearsessions\.timer ") < reloads[1]


@pytest.mark.parametrize("need_reload", ["yes", "no"])
def test_a_unit_file_systemd_has_not_read_is_read_and_its_service_restarted(need_reload, monkeypatch):
    """A run stopped between installing the unit and reloading systemd leaves the file as wanted
    but not loaded (NeedDaemonReload=yes): the next run reloads systemd and restarts OMERO.web,
    though it changes no file; a loaded unit is left alone."""
    from host import snapshot as host_state

    monkeypatch.setattr(host_state, "run_key", lambda: "key")  # the run's key of file digests
    data = {"omero_web_tags": "service"}  # no other section's change restarts OMERO.web
    unit = simulate(SimulatedHost("debian", "12", extra_responses={SHOWS_UNITS: _units_reading()}), data) \
        .uploads["/etc/systemd/system/omero-web.service"]
    installed = f"F|regular file|root|root|644|{hashlib.sha256(('key' + unit).encode()).hexdigest()}|" \
                "/etc/systemd/system/omero-web.service"
    reading = _units_reading(not_loaded=("omero-web.service",) if need_reload == "yes" else ())
    sim = simulate(SimulatedHost("debian", "12", extra_responses={SHOWS_UNITS: [installed, *reading]}), data)
    assert not sim.find(r"mv -fTZ \S+ /etc/systemd/system/omero-web\.service ")  # the unit file is left as it is
    assert not sim.find(r"^systemctl (enable|start) omero-web")
    if need_reload == "yes":
        assert _index(sim, r"^systemctl daemon-reload$") < _index(sim, r"systemctl restart omero-web;")
    else:
        assert not sim.find(r"daemon-reload|systemctl restart"), sim.commands


@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "initd"])
@pytest.mark.parametrize("clearsessions", [True, False], ids=["daily-job", "no-job"])
def test_the_service_keeps_sessions_only_when_the_daily_job_clears_them(systemd, clearsessions):
    """`omero web start` clears expired sessions first (~1.3 s of each start): skipped with
    --keep-sessions where the daily clearsessions job does it."""
    sim = simulate(SimulatedHost("debian", "12", systemd=systemd), {"omero_web_clearsessions": clearsessions})
    _assert_start(sim, systemd, keep_sessions=clearsessions)


def _assert_start(sim, systemd: bool, keep_sessions: bool) -> None:
    """The unit's or init.d script's start command: with --keep-sessions or not."""
    start = "start --keep-sessions" if keep_sessions else "start"
    if systemd:
        unit = sim.uploads["/etc/systemd/system/omero-web.service"].splitlines()
        assert [line for line in unit if line.startswith("ExecStart=")] == \
            [f'ExecStart="/opt/omero/web/venv3/bin/omero" web {start}']
    else:
        script = sim.uploads["/etc/init.d/omero-web"].splitlines()
        assert [line.strip() for line in script if "run_omero start" in line] == [f"run_omero {start} &> /dev/null"]


@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "initd"])
@pytest.mark.parametrize("run, job_on_host, keep_sessions", [
    ({"omero_web_tags": "sessions", "omero_web_clearsessions": False}, True, False),
    ({"omero_web_tags": "sessions"}, False, True),
    ({"omero_web_skip_tags": "sessions"}, False, False),
    ({"omero_web_skip_tags": "sessions", "omero_web_clearsessions": False}, True, True),
    ({"omero_web_tags": "service", "omero_web_clearsessions": False}, True, True),
    ({"omero_web_tags": "config"}, False, False),
], ids=["sessions-tag-removes-job", "sessions-tag-adds-job", "sessions-skipped-no-job",
        "sessions-skipped-job-left", "service-tag-job-left", "config-tag-no-job"])
def test_a_partial_run_starts_omero_web_as_the_daily_job_it_leaves_requires(systemd, run, job_on_host, keep_sessions):
    """--keep-sessions only where a daily job purges expired sessions after this run: the job
    this run installs or removes (sessions selected: the service section runs along), else the
    one found on the host (a run that skips the sessions section still runs the service's)."""
    job = "/etc/systemd/system/omero-web-clearsessions.timer" if systemd else "/etc/cron.d/omero-web-clearsessions"
    sim = simulate(SimulatedHost("debian", "12", systemd=systemd, existing_paths=(job,) if job_on_host else ()), run)
    sections = {op.split(" | ")[0] for op in sim.operations}
    assert "OMERO.web service" in sections
    assert ("OMERO.web session maintenance" in sections) == (run.get("omero_web_tags") == "sessions")
    if run.get("omero_web_tags") == "sessions":
        # (the configuration sets the session properties of this tag)
        assert sections == {"OMERO.web configuration", "OMERO.web service", "OMERO.web session maintenance"}, sections
    _assert_start(sim, systemd, keep_sessions)


def test_initd_script_passes_each_argument_quoted_to_su(tmp_path):
    """The init.d script's `run_omero` gives `su -c` the walkthrough's command with each word
    quoted for the second parse (run with bash and a stand-in `su` that prints what it gets)."""
    sim = simulate(SimulatedHost("debian", "12", systemd=False), {})
    text = sim.uploads["/etc/init.d/omero-web"]
    defaults = "[ -r /etc/default/$prog ] && . /etc/default/$prog"
    assert defaults in text
    script = tmp_path / "omero-web"
    script.write_text(text.replace(defaults, ""))  # not this machine's /etc/default/omero-web
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "su").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SU_ARGS"\n')
    (fake / "su").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "SU_ARGS": str(tmp_path / "args")}
    subprocess.run(["bash", str(script), "start"], env=env, check=True, capture_output=True)
    args = (tmp_path / "args").read_text().splitlines()
    # (OMERO.web's owner-only TMPDIR first: its file sessions stay out of the shared /tmp)
    assert args == ["-", "omero-web", "-s", "/bin/bash", "-c",
                    "mkdir -p -m 700 /opt/omero/web/omero-web/var/tmp || exit 1; "
                    "export TMPDIR=/opt/omero/web/omero-web/var/tmp; "
                    ". /opt/omero/web/venv3/bin/activate; OMERODIR=/opt/omero/web/omero-web "
                    "/opt/omero/web/venv3/bin/omero web start --keep-sessions"]
    # a value the shell would split or expand (VENVDIR may come from /etc/default/omero-web)
    # reaches the second parse as one word, unexpanded
    env["VENVDIR"] = "/opt/a b/$(touch pwned)'"
    subprocess.run(["bash", str(script), "stop"], env=env, check=True, capture_output=True, cwd=tmp_path)
    command = (tmp_path / "args").read_text().splitlines()[5]
    assert shlex.split(command)[-6:] == [".", "/opt/a b/$(touch pwned)'/bin/activate;",
                                         "OMERODIR=/opt/omero/web/omero-web", "/opt/omero/web/venv3/bin/omero", "web", "stop"]
    assert not (tmp_path / "pwned").exists()
