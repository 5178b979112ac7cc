"""
Optional features on simulated hosts (pyinfra's @fake connector): exact packages, staged
properties, NGINX directives, units, cron jobs, secrets, and what the distro profile
chooses for each family. The containers of tests/integration/test_features.py prove the
effects; these cover the distros no container can run here.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from model import features
from model.tier import roles as host_roles
from model.settings import validate
from tests.unit.simulate import SimulatedHost, omero_commands, simulate

SECRET = "Sup3r-Secret-Public-Pw"
STAGED = "/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (folder / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    templates = folder / "templates"
    (templates / "site").mkdir(parents=True)
    (templates / "site" / "index.html").write_text("<h1>index</h1>\n")
    return folder


def all_features(folder) -> dict:
    return dict(
        omero_web_redis=True,
        omero_web_cors_origins=["https://a.example.org"],
        omero_web_apps=[{"spec": "omero-figure>=6", "app": "omero_figure", "top_links": [["Figure", "figure_index"]]}],
        omero_web_wsgi_worker_class="gevent",
        omero_web_wsgi_worker_connections=500,
        omero_web_prefix="/omero",
        omero_web_https=True,
        omero_web_tls_certificate=str(folder / "cert.pem"),
        omero_web_tls_key=str(folder / "key.pem"),
        omero_web_clearsessions=True,
        omero_web_clearsessions_time="02:30",
        omero_web_templates=str(folder / "templates"),
        omero_web_index_template="site/index.html",
        omero_web_public_enabled=True,
        omero_web_public_user="public",
        omero_web_public_password=SECRET,
        omero_web_public_url_filter="^/omero/webgateway",
        omero_web_publications={"paper-2024": "project-7"},
    )


def staged_properties(sim) -> dict:
    body = sim.uploads[STAGED]
    return dict(line.split("=", 1) for line in body.splitlines())


def test_debian_systemd_host_gets_every_feature(tls_files):
    # installed venv: OMERO.web satisfied (pinned while pip adds the rest), the features' packages missing
    pip_state = ["=omero-web==5.33.2", "=whitenoise==6.9.0", "gevent>=0.13", "django-redis", "django-cors-headers",
                 "omero-figure>=6"]
    host = SimulatedHost("debian", "12", extra_responses={"packaging.requirements": pip_state})
    sim = simulate(host, all_features(tls_files))
    packages = sim.find(r"apt-get .*install")
    assert packages and "redis-server" in packages[0] and "cron" not in packages[0]  # systemd: a timer
    props = staged_properties(sim)
    assert json.loads(props["omero.web.caches"])["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert props["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert json.loads(props["omero.web.cors_origin_whitelist"]) == ["https://a.example.org"]
    assert props["omero.web.wsgi_worker_class"] == "gevent"
    assert props["omero.web.application_server.max_requests"] == "0"
    assert props["omero.web.prefix"] == "/omero" and props["omero.web.static_url"] == "/omero/static/"
    assert props["omero.web.secure"] == "true" and props["omero.web.session_cookie_secure"] == "true"
    assert props["omero.web.public.password"] == SECRET  # only in the owner-only staged file
    extra = json.loads(props["omero.web.nginx_server_extra_config"])
    assert "error_page 502 @maintenance_omero;" in extra and "server_tokens off;" in extra
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in extra
    # a prefix location as in the walkthrough (intended change: it was an exact `location =`)
    assert "location /omero/pub/paper-2024 { return 307 /omero/webclient/?show=project-7; }" in extra
    appends = [c for c in omero_commands(sim.commands) if c.startswith("config append --set ")]
    assert any("corsheaders.middleware.CorsMiddleware" in c and "0.5" in c for c in appends)
    assert any("omero.web.apps" in c and "omero_figure" in c for c in appends)
    assert any("omero.web.template_dirs" in c for c in appends)
    pip = sim.find(r"pip install --upgrade .*omero-figure")
    assert pip and all(spec in pip[0] for spec in ("'gevent>=0.13'", "django-redis", "django-cors-headers"))
    assert "omero-web==5.33.2" in pip[0] and "whitenoise==6.9.0" in pip[0]  # kept as installed
    site = sim.find(r"(?s)\"omero\", \"web\", \"config\", template.*/site.properties nginx 443 localhost; } .*sed -E")
    assert site, "the site is generated for the HTTPS port and its listen made ssl"
    assert "listen 80;" in sim.uploads["/etc/nginx/conf.d/omeroweb-http-redirect.conf"]
    assert "OnCalendar=*-*-* 02:30:00" in sim.uploads["/etc/systemd/system/omero-web-clearsessions.timer"]
    assert sim.find(r"systemctl (start|enable) omero-web-clearsessions.timer")
    assert any(SECRET in c for c in sim.commands) is False
    assert "/opt/omero/web/omero-web/etc/templates/custom/site/index.html" in sim.uploads


def test_rhel_initd_host_gets_cron_and_the_distro_redis(tls_files):
    data = {**all_features(tls_files), "omero_web_service_manager": "initd"}
    sim = simulate(SimulatedHost("rocky", "9", pythons={"/usr/bin/python3.11": "3.11"}), data)
    installs = " ".join(sim.find(r"dnf .*install"))
    assert "redis" in installs and "cronie" in installs
    cron = sim.uploads["/etc/cron.d/omero-web-clearsessions"]
    assert "30 2 * * * omero-web OMERODIR=/opt/omero/web/omero-web TMPDIR=/opt/omero/web/omero-web/var/tmp " in cron
    assert cron.rstrip().endswith("omero web clearsessions")
    assert sim.find(r"/etc/init.d/crond start") or sim.find(r"crond")
    assert "/etc/systemd/system/omero-web-clearsessions.timer" not in sim.uploads


def test_features_off_by_default_add_nothing():
    sim = simulate(SimulatedHost("debian", "12"))
    props = staged_properties(sim)
    assert not any(k.startswith(("omero.web.public", "omero.web.cors", "omero.web.caches", "omero.web.secure"))
                   for k in props)
    # (the hardening headers are on every deploy: model/features.py)
    assert json.loads(props["omero.web.nginx_server_extra_config"]) == [
        "error_page 502 @maintenance;", "server_tokens off;",
        "proxy_hide_header X-Content-Type-Options;", 'add_header X-Content-Type-Options "nosniff" always;',
        "proxy_hide_header Referrer-Policy;", 'add_header Referrer-Policy "same-origin" always;',
        "disable_symlinks if_not_owner;"]
    assert not sim.find(r"(?s)\"omero\", \"web\", \"config\", template.*sed -E")
    assert "/etc/nginx/conf.d/omeroweb-http-redirect.conf" not in sim.uploads


def test_clearsessions_daily_by_default_as_the_walkthrough_recommends():
    # (intended change: the job used to be off by default)
    timer = "/etc/systemd/system/omero-web-clearsessions.timer"
    assert "OnCalendar=*-*-* 03:17:00" in simulate(SimulatedHost("debian", "12")).uploads[timer]
    cron = simulate(SimulatedHost("debian", "10", systemd=False)).uploads["/etc/cron.d/omero-web-clearsessions"]
    assert cron.rstrip().endswith("omero web clearsessions")
    off = simulate(SimulatedHost("debian", "12", existing_paths=(timer,)), {"omero_web_clearsessions": False})
    assert not [p for p in off.uploads if "clearsessions" in p]
    assert off.find(r"systemctl disable --now omero-web-clearsessions.timer")
    off_cron = simulate(SimulatedHost("debian", "10", systemd=False), {"omero_web_clearsessions": False})
    assert any(op.endswith("No omero-web-clearsessions cron job") for op in off_cron.operations)


def test_self_signed_certificate_made_on_the_host():
    sim = simulate(SimulatedHost("debian", "12"), {"omero_web_https": True, "omero_web_tls_self_signed": True})
    made = sim.find(r"openssl req -x509")
    assert made and "umask 077" in made[0] and "subjectAltName=DNS:localhost,IP:127.0.0.1" in made[0]
    assert "openssl" in sim.find(r"apt-get .*install")[0]


def test_host_roles_from_groups():
    settings = validate({})
    assert host_roles(["debian12"], settings) == {"web"}
    assert host_roles(["omero_server"], settings) == {"omero_server"}
    assert host_roles(["omero_server", "debian12"], settings) == {"web", "omero_server"}


def test_migration_to_a_new_omerodir_loads_the_old_configuration_once():
    data = {"omero_web_omerodir": "/srv/web/omero-web", "omero_web_migrate_from_omerodir": "/opt/omero/web/omero-web"}
    host = SimulatedHost("debian", "12", existing_paths=("/opt/omero/web/omero-web/etc/grid/config.xml",))
    sim = simulate(host, data)
    # copied, exported and recorded by the OMERO.web user (owner-only files), never by root
    as_web_user = r"^runuser -u omero-web -- sh -c "
    copy = sim.find(as_web_user + r".*cp -- .* sh /opt/omero/web/omero-web/etc/grid/config.xml "
                    r"/srv/web/omero-web/etc/.omeroweb-deploy/old-omerodir$")
    assert copy and "umask 077" in copy[0]
    export = sim.find(r"omero config get --show-password\) && printf .*\| runuser -u omero-web -- sh -c .*umask 077.* "
                      r"/srv/web/omero-web/etc/.omeroweb-deploy/migrated.properties")
    assert export and "OMERODIR=/srv/web/omero-web/etc/.omeroweb-deploy/old-omerodir" in export[0]  # a copy: the old stays
    assert sim.find(r"OMERODIR=/opt/omero/web/omero-web .*omero web stop")
    assert sim.find(r"OMERODIR=/srv/web/omero-web .*omero config load /srv/web/omero-web/etc/.omeroweb-deploy/")
    assert sim.find(r"\| runuser -u omero-web -- sh -c .* /srv/web/omero-web/etc/omeroweb-deploy-migrated-from$")
    done = SimulatedHost("debian", "12", existing_paths=(
        "/opt/omero/web/omero-web/etc/grid/config.xml", "/srv/web/omero-web/etc/omeroweb-deploy-migrated-from"))
    assert not simulate(done, data).find(r"omero config get --show-password\) && printf")


def test_redis_password_is_a_secret():
    secret = "r3dis-Pa55"
    sim = simulate(SimulatedHost("debian", "12"),
                   {"omero_web_redis": True, "omero_web_redis_url": f"redis://:{secret}@127.0.0.1:6379/0"})
    assert f":{secret}@" in staged_properties(sim)["omero.web.caches"]  # only in the owner-only staged file
    assert not any(secret in c for c in sim.commands)
    assert not any(secret in name for name in sim.operations)
    # declared secret: the configuration fact hashes it, it is never read back in clear
    settings = validate({"omero_web_redis": True, "omero_web_redis_url": f"redis://:{secret}@127.0.0.1:6379/0"})
    profile = SimpleNamespace(redis_package="redis-server")
    assert features.redis(settings, profile).secrets == ("omero.web.caches",)


@pytest.mark.parametrize("value, staged", [(False, "false"), (True, "true")])
def test_show_client_downloads_sets_the_login_property(value, staged):
    """issue 16 (5): false keeps the login page from making visitors' browsers call api.github.com."""
    sim = simulate(SimulatedHost("debian", "12"), {"omero_web_show_client_downloads": value})
    assert staged_properties(sim)["omero.web.login.show_client_downloads"] == staged
    # not set: OMERO.web's own default (true), no property staged
    assert "omero.web.login.show_client_downloads" not in staged_properties(simulate(SimulatedHost("debian", "12")))
    with pytest.raises(ValueError, match="omero_web_show_client_downloads"):
        validate({"omero_web_show_client_downloads": "no"})
    with pytest.raises(ValueError, match="omero_web_show_client_downloads manages"):
        validate({"omero_web_config": {"omero.web.login.show_client_downloads": "false"}})
