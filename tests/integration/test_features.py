"""
Every optional feature of the walkthroughs, deployed for real and checked from outside.

Three targets in one fleet run, many features each (one deploy proves many features):

- ``full``, twice: Debian 12 and Ubuntu 24.04, each systemd over SSH, the same data (every
  test of ``full`` runs for both, ids ``debian12`` and ``ubuntu2404``): Redis sessions, CORS
  whitelist, an app (omero-figure) with a top link and an "Open with" item, gevent workers,
  URL prefix ``/omero``, HTTPS with a certificate from a test CA made here, session cookie
  settings and the daily clearsessions timer, UI customization (index page, base include
  template, login logo and redirect, no client download links), public user and
  publication redirects. Its login, maintenance and publication pages are also opened in a
  real headless Chromium (``testbed/browser.py``): with the client download links off,
  the login page requests nothing outside the site.
- ``alt``: Debian 13, plain container (init.d): CORS allow-all, sync workers with threads,
  the clearsessions cron job, no prefix, plain HTTP.

Then a second run must change nothing, and a third run on both ``full`` hosts with features
turned off must take them away again (app uninstalled, middleware and settings removed, HTTPS
redirect gone) and still serve the login page.
"""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from testbed.images import ensure_images
from testbed.targets import remove_targets, start_plain_target, start_systemd_target
from tests.integration.browser_checks import assert_login_page, assert_maintenance_page, visit_login
from testbed.pyinfra_run import run_pyinfra, ssh_ok, target_data, write_inventory

pytestmark = pytest.mark.integration

LOGIN = "OMERO.web - Login"
SECRET = "Publ1c-Secr3t-Pw"
FIGURE_LINK = ["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}]
OPEN_WITH = ["omero_figure", "new_figure", {"supported_objects": ["images"], "target": "_blank", "label": "OMERO.figure"}]
# a logo the site itself serves: the login page must request nothing from elsewhere
LOGIN_LOGO = "/omero/static/webgateway/img/logo_login2.png"
LOGIN_REDIRECT = {"redirect": ["webindex"], "viewname": "load_template", "args": ["userdata"],
                  "query_string": "experimenter=-1"}


def make_test_ca(directory):
    """A test CA and a certificate for localhost / 127.0.0.1 signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omeroweb-deploy test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def make_templates(directory):
    root = directory / "templates"
    (root / "mysite").mkdir(parents=True)
    (root / "mysite" / "index.html").write_text(
        "<html><head><title>Lab index</title></head><body><h1>Welcome to the test lab index</h1></body></html>\n")
    (root / "base_include.html").write_text('<script>console.log("omeroweb-deploy-include-marker");</script>\n')
    return root


def full_data(tls, templates) -> dict:
    return dict(
        omero_web_redis=True,
        omero_web_cors_origins=["https://allowed.example.org"],
        omero_web_apps=[{"spec": "omero-figure", "app": "omero_figure", "top_links": [FIGURE_LINK],
                         "open_with": [OPEN_WITH]}],
        omero_web_wsgi_worker_class="gevent",
        omero_web_wsgi_worker_connections=500,
        omero_web_prefix="/omero",
        omero_web_https=True,
        omero_web_tls_certificate=str(tls["cert"]),
        omero_web_tls_key=str(tls["key"]),
        omero_web_session_expire_at_browser_close=False,
        omero_web_session_cookie_age=3600,
        omero_web_clearsessions=True,
        omero_web_templates=str(templates),
        omero_web_index_template="mysite/index.html",
        omero_web_base_include_template="base_include.html",
        omero_web_login_logo=LOGIN_LOGO,
        omero_web_show_client_downloads=False,
        omero_web_login_redirect=LOGIN_REDIRECT,
        omero_web_top_links=[["GRE", "https://www.lifesci.dundee.ac.uk/gre"]],
        omero_web_public_enabled=True,
        omero_web_public_user="public-reader",
        omero_web_public_password=SECRET,
        omero_web_public_url_filter="^/omero/webgateway",
        omero_web_public_cache_enabled=True,
        omero_web_publications={"test-et-al-2024": "project-42"},
    )


#: The hosts that get every feature (``full``): inventory group -> (image release, container name).
FULL_HOSTS = {"debian12": ("bookworm", "feat-full"), "ubuntu2404": ("noble", "feat-full-noble")}

ALT_DATA = dict(
    omero_web_cors_allow_all=True,
    omero_web_wsgi_threads=4,
    omero_web_clearsessions=True,
    omero_web_clearsessions_time="04:05",
)


@pytest.fixture(scope="module")
def fleet(docker_engine, tmp_path_factory):
    images = ensure_images(["bookworm", "trixie", "noble"])
    workdir = tmp_path_factory.mktemp("features")
    tls, templates = make_test_ca(workdir), make_templates(workdir)
    targets = {}
    try:
        for group, (release, name) in FULL_HOSTS.items():
            targets[group] = start_systemd_target(images[release], name=name, ports=(80, 443))
        targets["alt"] = start_plain_target(images["trixie"], name="feat-alt", ports=(80,))
        # This test environment has no user namespaces, which Debian's redis-server unit asks
        # for (PrivateUsers=true: "Failed to set up user namespacing", status 217/USER); Ubuntu's
        # unit is Debian's. Real hosts have them; here the unit gets a drop-in before the deploy
        # installs Redis.
        for group in FULL_HOSTS:
            ssh_ok(targets[group], "mkdir -p /etc/systemd/system/redis-server.service.d && printf "
                   "'[Service]\\nPrivateUsers=false\\n' > /etc/systemd/system/redis-server.service.d/no-userns.conf")
        data = {"full": full_data(tls, templates), "alt": ALT_DATA}

        def inventory(name: str, overrides: dict | None = None):
            """The fleet's inventory; ``overrides`` change the data of every ``full`` host."""
            groups = {group: [target_data(targets[group], **{**data["full"], **(overrides or {})})]
                      for group in FULL_HOSTS}
            groups["debian13"] = [target_data(targets["alt"], **data["alt"])]
            return write_inventory(workdir / f"{name}.py", groups)

        first = run_pyinfra(inventory("first"), log=workdir / "first.log")
        yield {"targets": targets, "full_hosts": {group: targets[group] for group in FULL_HOSTS},
               "first": first, "inventory": inventory, "workdir": workdir, "tls": tls}
    finally:
        remove_targets(targets.values())


@pytest.fixture(params=list(FULL_HOSTS))
def full(fleet, request):
    """Each host with every feature in turn (Debian 12, Ubuntu 24.04), all from the one first
    run. Function-scoped: module-scoped params would make pytest regroup the tests by host and
    run the module's later, fleet-wide runs (features turned off) before the other host's checks."""
    assert fleet["first"].returncode == 0, fleet["first"].tail()
    return fleet["full_hosts"][request.param]


@pytest.fixture(scope="module")
def alt(fleet):
    assert fleet["first"].returncode == 0, fleet["first"].tail()
    return fleet["targets"]["alt"]


def https_url(target, path: str) -> str:
    # 127.0.0.1, not localhost: the port is published on IPv4 only (the test certificate
    # names both)
    return f"https://127.0.0.1:{target.ports[443]}{path}"


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False, **kwargs)


def omero(target, *args: str) -> str:
    argv = " ".join(args)
    command = ("runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web "
               f"/opt/omero/web/venv3/bin/omero {argv}")
    if target.kind == "systemd":
        return ssh_ok(target, command)
    code, out = target.exec(command)
    assert code == 0, out
    return out.strip()


def django_settings(target, *names: str) -> dict:
    """Settings as OMERO.web itself parses them from its configuration (on the host)."""
    script = ("import json, omeroweb.settings as s; "
              f"print(json.dumps({{n: getattr(s, n) for n in {json.dumps(list(names))}}}, default=str))")
    command = ("cd /tmp && runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web "
               f"/opt/omero/web/venv3/bin/python -c '{script}'")
    out = ssh_ok(target, command) if target.kind == "systemd" else target.exec(command)[1]
    return json.loads(out.strip().splitlines()[-1])


def test_first_deploy_succeeds(fleet):
    first = fleet["first"]
    assert first.returncode == 0, first.tail()
    assert SECRET not in first.output
    print(f"features deploy of {len(fleet['targets'])} hosts: {first.seconds:.0f}s")


# HTTPS and the URL prefix

def test_https_serves_login_page_under_prefix_with_the_test_ca(full, fleet):
    response = get(https_url(full, "/omero/webclient/login/"), verify=str(fleet["tls"]["ca"]))
    assert response.status_code == 200 and LOGIN in response.text
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["Server"] == "nginx"  # server_tokens off: no version
    csrf = [c for c in response.cookies if c.name == "csrftoken"]
    assert csrf and csrf[0].secure, "OMERO.web must mark its cookies Secure behind HTTPS"


def test_http_redirects_to_https(full):
    response = get(full.url(80, "/omero/webclient/login/?x=1"))
    assert response.status_code == 301
    assert response.headers["Location"] == "https://localhost/omero/webclient/login/?x=1" or \
        response.headers["Location"].startswith("https://127.0.0.1/omero/webclient/login/?x=1")


def test_tls_is_1_2_or_newer(full, fleet):
    context = ssl.create_default_context(cafile=str(fleet["tls"]["ca"]))
    with socket.create_connection(("127.0.0.1", full.ports[443]), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    site = ssh_ok(full, "cat /etc/nginx/conf.d/omeroweb.conf")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site and "listen 443 ssl;" in site


def test_static_files_under_prefix(full, fleet):
    response = get(https_url(full, "/omero/static/webgateway/css/ome.body.css"), verify=str(fleet["tls"]["ca"]))
    assert response.status_code == 200 and "body" in response.text


def test_omero_web_told_it_is_behind_https(full):
    found = django_settings(full, "SECURE", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER",
                            "FORCE_SCRIPT_NAME", "STATIC_URL")
    assert found["SECURE"] is True and found["SESSION_COOKIE_SECURE"] is True and found["CSRF_COOKIE_SECURE"] is True
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["FORCE_SCRIPT_NAME"] == "/omero" and found["STATIC_URL"] == "/omero/static/"


# Redis: the deploy's own, with the password it made on the host (none in the URL)

REDIS_AUTH = "/etc/omeroweb-deploy/redis-auth.conf"
#: root reads the password the deploy made into redis-cli's environment (never a command line)
AS_ROOT_WITH_PASSWORD = f"REDISCLI_AUTH=$(sed -n 's/^requirepass //p' {REDIS_AUTH}) "


def session_store(target, code: str) -> str:
    """Run ``code`` with ``store`` = OMERO.web's own session engine (its settings, as Gunicorn
    loads them), as the OMERO.web account; its last line of output."""
    script = ("import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'omeroweb.settings'; django.setup(); "
              "from importlib import import_module; from django.conf import settings; "
              f"store = import_module(settings.SESSION_ENGINE).SessionStore; {code}")
    return ssh_ok(target, "cd /tmp && runuser -u omero-web -- env OMERODIR=/opt/omero/web/omero-web "
                          f"/opt/omero/web/venv3/bin/python -c \"{script}\"").splitlines()[-1]


def new_session(target) -> str:
    """A session created through OMERO.web's session store (a login needs an OMERO.server): its key."""
    return session_store(target, "s = store(); s['probe'] = 1; s.create(); print(s.session_key)")


def generated_redis_password(target) -> str:
    return ssh_ok(target, f"sed -n 's/^requirepass //p' {REDIS_AUTH}")


def test_redis_holds_the_sessions_and_they_round_trip(full):
    key = new_session(full)
    # read back by OMERO.web's own session store, as the OMERO.web account
    assert session_store(full, f"print(store(session_key='{key}').load().get('probe'))") == "1"
    keys = ssh_ok(full, AS_ROOT_WITH_PASSWORD + "redis-cli --scan").split()
    assert any(k.endswith("django.contrib.sessions.cache" + key) for k in keys), keys
    assert ssh_ok(full, "systemctl is-enabled redis-server") == "enabled"


def test_redis_answers_no_other_local_account(full):
    new_session(full)
    for account in ("nobody", "omero-web", "www-data"):  # OMERO.web's account too, without its password
        for command in ("ping", "dbsize", "--scan", "get x"):
            code, out = full.ssh(f"cd / && runuser -u {account} -- redis-cli -h 127.0.0.1 -p 6379 {command} 2>&1")
            assert "NOAUTH" in out and "PONG" not in out, (account, command, out)
    # ...and over IPv6's loopback, where Debian's Redis listens too (when the host has it)
    code, out = full.ssh("cd / && runuser -u nobody -- redis-cli -h ::1 dbsize 2>&1")
    assert "NOAUTH" in out or "Could not connect" in out, out
    assert ssh_ok(full, AS_ROOT_WITH_PASSWORD + "redis-cli ping") == "PONG"


def test_redis_password_made_on_the_host_is_root_s_and_never_printed(full, fleet):
    password = generated_redis_password(full)
    assert len(password) == 64 and int(password, 16) >= 0
    assert ssh_ok(full, f"stat -c '%U:%G %a' {REDIS_AUTH} /etc/omeroweb-deploy") == "root:redis 640\nroot:root 755"
    assert ssh_ok(full, "tail -n 1 /etc/redis/redis.conf") == f"include {REDIS_AUTH}"
    assert password not in fleet["first"].output
    # OMERO.web was given it: its cache location holds it (config.xml is the account's, 0700 folder)
    assert ssh_ok(full, "stat -c %a /opt/omero/web/omero-web/etc/grid") == "700"
    assert password in omero(full, "config", "get", "--show-password", "omero.web.caches")


# CORS

def test_cors_whitelist(full, fleet):
    verify = str(fleet["tls"]["ca"])
    allowed = get(https_url(full, "/omero/api/"), verify=verify, headers={"Origin": "https://allowed.example.org"})
    other = get(https_url(full, "/omero/api/"), verify=verify, headers={"Origin": "https://evil.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://allowed.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers
    middleware = json.loads(omero(full, "config", "get", "omero.web.middleware"))
    assert {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"} in middleware
    assert {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"} in middleware


def test_cors_allow_all(alt):
    for origin in ("https://anywhere.example.net", "http://other.example.com:8080"):
        response = get(alt.url(80, "/api/"), headers={"Origin": origin})
        assert response.status_code == 200
        # OMERO.web allows credentials, so django-cors-headers echoes the origin instead of "*"
        assert response.headers.get("Access-Control-Allow-Origin") == origin


# Apps

def test_app_url_answers(full, fleet):
    response = get(https_url(full, "/omero/figure/"), verify=str(fleet["tls"]["ca"]))
    # the app's view exists and asks for a login (an unknown URL would be 404)
    assert response.status_code == 302, response.status_code
    assert "/omero/webclient/login/" in response.headers["Location"]
    found = django_settings(full, "INSTALLED_APPS", "TOP_LINKS", "OPEN_WITH")
    assert "omero_figure" in found["INSTALLED_APPS"]
    assert FIGURE_LINK in found["TOP_LINKS"] and ["GRE", "https://www.lifesci.dundee.ac.uk/gre"] in found["TOP_LINKS"]
    assert OPEN_WITH in found["OPEN_WITH"]


# Gunicorn

def gunicorn_args(target) -> str:
    command = "ps -eo args | grep '[g]unicorn' | grep -v defunct | head -n 1"
    return ssh_ok(target, command) if target.kind == "systemd" else target.exec(command)[1]


def test_gevent_workers_run(full):
    args = gunicorn_args(full)
    assert "--worker-class gevent" in args and "--worker-connections 500" in args and "--max-requests 0" in args, args
    assert ssh_ok(full, "/opt/omero/web/venv3/bin/python -c 'import gevent; print(1)'") == "1"


def test_sync_workers_with_threads_run(alt):
    args = gunicorn_args(alt)
    assert "--threads 4" in args and "gevent" not in args, args


# Session maintenance

def test_session_settings(full):
    found = django_settings(full, "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SESSION_COOKIE_AGE", "SESSION_ENGINE")
    assert found == {"SESSION_EXPIRE_AT_BROWSER_CLOSE": False, "SESSION_COOKIE_AGE": 3600,
                     "SESSION_ENGINE": "django.contrib.sessions.backends.cache"}


def test_clearsessions_timer_exists_and_succeeds(full):
    assert ssh_ok(full, "systemctl is-enabled omero-web-clearsessions.timer") == "enabled"
    assert "omero-web-clearsessions.timer" in ssh_ok(full, "systemctl list-timers --all --no-pager")
    ssh_ok(full, "systemctl start omero-web-clearsessions.service")
    assert ssh_ok(full, "systemctl show -p Result --value omero-web-clearsessions.service") == "success"


def test_clearsessions_cron_job_exists_and_succeeds(alt):
    code, job = alt.exec("cat /etc/cron.d/omero-web-clearsessions")
    assert code == 0, job
    line = [entry for entry in job.splitlines() if entry and not entry.startswith(("#", "SHELL"))][0]
    minute, hour, _, _, _, user, command = line.split(None, 6)
    assert (minute, hour, user) == ("5", "4", "omero-web")
    code, out = alt.exec(f"cd / && runuser -u omero-web -- sh -c '{command}'")
    assert code == 0, out
    code, out = alt.exec("pgrep -x cron")
    assert code == 0, "cron must be running for the job to run"


# UI customization

def test_index_page_and_base_include(full, fleet):
    verify = str(fleet["tls"]["ca"])
    index = get(https_url(full, "/omero/index/"), verify=verify)
    assert index.status_code == 200 and "Welcome to the test lab index" in index.text
    login = get(https_url(full, "/omero/webclient/login/"), verify=verify)
    assert "omeroweb-deploy-include-marker" in login.text  # base_include_template
    assert f'<img src="{LOGIN_LOGO}"' in login.text  # login_logo
    assert django_settings(full, "LOGIN_REDIRECT")["LOGIN_REDIRECT"] == LOGIN_REDIRECT


@pytest.fixture
def visitor(full, chromium):
    """A browser that sees ``full`` at its real ports, 80 and 443, as a visitor of that server
    would: the absolute redirects NGINX makes (HTTP to HTTPS, /pub/<id>) land where they say.
    It does not know the test CA: requests checks the certificate (above). One per test and
    host (``full`` is function-scoped)."""
    from testbed.browser import Browser

    started = Browser(chromium, ports={80: full.ports[80], 443: full.ports[443]})
    try:
        yield started
    finally:
        started.close()


def test_login_page_in_a_browser_over_https_under_prefix(full, visitor, screenshots, tmp_path):
    """Typed as http://, redirected to HTTPS; with the client download links off, the login
    page requests nothing outside the site; all of it over https (no mixed content); the
    custom logo and the base include are in."""
    # the docs' picture is Debian 12's; the other host's screenshot stays in a temp folder
    screenshot = (screenshots / "login-customised.png" if full.release == FULL_HOSTS["debian12"][0]
                  else tmp_path / f"login-customised-{full.release}.png")
    visit = visit_login(visitor, "http://127.0.0.1/omero/webclient/login/", ignore_https_errors=True,
                        visible=(f'img[src="{LOGIN_LOGO}"]',), screenshot=screenshot)
    assert [status for status, _ in visit.redirects] == [301], visit.report()
    landed = urlsplit(visit.final_url)
    assert (landed.scheme, landed.port, landed.path) == ("https", None, "/omero/webclient/login/"), visit.report()
    assert_login_page(visit, outside=())
    assert all(r.url.startswith("https://") for r in visit.requests[1:]), visit.report()
    logo = [r.status for r in visit.requests if urlsplit(r.url).path == LOGIN_LOGO]
    assert logo == [200], visit.report()
    assert ("log", "omeroweb-deploy-include-marker") in [(kind, text) for kind, text, _ in visit.console]
    assert "Download OMERO.insight" not in visit.text, visit.text


# Publishing

def test_publication_redirect(full, fleet):
    # a prefix location, as the walkthrough's: deeper paths redirect too
    for path in ("/omero/pub/test-et-al-2024", "/omero/pub/test-et-al-2024/", "/omero/pub/test-et-al-2024/figure-1"):
        response = get(https_url(full, path), verify=str(fleet["tls"]["ca"]))
        assert response.status_code == 307, path
        assert response.headers["Location"].endswith("/omero/webclient/?show=project-42"), path


def test_publication_lands_on_the_login_for_its_project_in_a_browser(visitor):
    """/pub/<id> -> the project in the webclient, which asks for a login first (no OMERO.server here)."""
    visit = visit_login(visitor, "https://127.0.0.1/omero/pub/test-et-al-2024", ignore_https_errors=True)
    hops = [(status, urlsplit(url).path, urlsplit(url).query) for status, url in visit.redirects]
    assert hops == [(307, "/omero/pub/test-et-al-2024", ""), (302, "/omero/webclient/", "show=project-42")], \
        visit.report()
    landed = urlsplit(visit.final_url)
    assert landed.path == "/omero/webclient/login/", visit.final_url
    assert parse_qs(landed.query)["url"] == ["/omero/webclient/?show=project-42"], visit.final_url
    assert_login_page(visit, outside=())


def test_public_user_settings(full):
    found = django_settings(full, "PUBLIC_ENABLED", "PUBLIC_USER", "PUBLIC_PASSWORD", "PUBLIC_URL_FILTER",
                            "PUBLIC_GET_ONLY", "PUBLIC_SERVER_ID", "PUBLIC_CACHE_ENABLED")
    assert found["PUBLIC_ENABLED"] is True and found["PUBLIC_USER"] == "public-reader"
    assert found["PUBLIC_PASSWORD"] == SECRET and found["PUBLIC_GET_ONLY"] is True
    assert found["PUBLIC_URL_FILTER"].startswith("re.compile('^/omero/webgateway") or \
        "^/omero/webgateway" in found["PUBLIC_URL_FILTER"]
    assert str(found["PUBLIC_SERVER_ID"]) == "1" and found["PUBLIC_CACHE_ENABLED"] is True
    # config.xml holds the password; omero rewrites it with the default umask, so its
    # folder is what keeps other users out
    mode = ssh_ok(full, "stat -c '%a %U' /opt/omero/web/omero-web/etc/grid")
    assert mode == "700 omero-web", mode


# The maintenance page, over HTTPS under the prefix

def test_maintenance_page_in_a_browser_while_omeroweb_is_stopped(full, fleet, visitor):
    ssh_ok(full, "systemctl stop omero-web")
    try:
        visit = visitor.visit("https://127.0.0.1/omero/webclient/login/", ignore_https_errors=True)
        assert_maintenance_page(visit)
        assert visit.final_url == "https://127.0.0.1/omero/webclient/login/", visit.report()
    finally:
        ssh_ok(full, "systemctl start omero-web")
    deadline = time.monotonic() + 90
    while True:  # OMERO.web answers again before the re-runs below
        login = get(https_url(full, "/omero/webclient/login/"), verify=str(fleet["tls"]["ca"]))
        if login.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert login.status_code == 200


# A host an earlier release deployed: its Redis open to every local account

OPEN_CACHES = '{"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}}'


def omero_web_pid(target) -> str:
    return ssh_ok(target, "systemctl show -p MainPID --value omero-web")


def hosts_changed(output: str, operation: str) -> list[str]:
    """The hosts pyinfra's per-host lines say ``operation`` changed (``Success``), in every
    operation of that name (one per service manager here)."""
    changed = []
    for block in output.split("--> Starting operation: ")[1:]:
        header, _, lines = block.partition("\n")
        if header.strip() == operation:
            changed += re.findall(r"^\s+\[(\S+)\]\s+Success\s*$", lines.split("\n\n")[0], re.M)
    return sorted(changed)


def test_redis_left_open_by_an_earlier_release_is_locked_keeping_its_sessions(fleet, full):
    # as an earlier release left it: no password in Redis, none in OMERO.web's cache location
    ssh_ok(full, f"sed -i '\\#^include {REDIS_AUTH}$#d' /etc/redis/redis.conf && rm {REDIS_AUTH} "
                 "&& systemctl restart redis-server")
    omero(full, "config", "set", "omero.web.caches", f"'{OPEN_CACHES}'")
    ssh_ok(full, "systemctl restart omero-web")
    assert ssh_ok(full, "cd / && runuser -u nobody -- redis-cli ping") == "PONG"  # (open, as it was)
    key, pid = new_session(full), omero_web_pid(full)
    locked = run_pyinfra(fleet["inventory"](f"relock-{full.release}"), log=fleet["workdir"] / f"relock-{full.release}.log")
    assert locked.returncode == 0, locked.tail()
    code, out = full.ssh("cd / && runuser -u nobody -- redis-cli dbsize 2>&1")
    assert "NOAUTH" in out, out
    # the session stored before is still there, read by OMERO.web's own store: nothing lost
    assert session_store(full, f"print(store(session_key='{key}').load().get('probe'))") == "1"
    # OMERO.web restarted once, onto the new cache location
    assert omero_web_pid(full) != pid
    # (only this host restarted, once; every other host, the other full host included, not at
    # all. The results table has a row per restart operation, not per host: the systemd one
    # counts both full hosts, the init.d one the other host; their Success column adds up to 1,
    # the one host, and the run's per-host lines name it)
    restarts = re.findall(r"^\s+OMERO\.web service \| Restart omero-web\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)",
                          locked.output, re.M)
    assert sum(int(hosts) for hosts, _, _, _ in restarts) == len(fleet["targets"]), restarts
    assert sorted(success for _, success, _, _ in restarts) == ["-"] * (len(restarts) - 1) + ["1"], restarts
    assert all(error == "-" for _, _, error, _ in restarts), restarts
    assert hosts_changed(locked.output, "OMERO.web service | Restart omero-web") == [full.name]
    assert generated_redis_password(full) not in locked.output


# Idempotency, then taking features away

def test_second_run_changes_nothing(fleet):
    second = run_pyinfra(fleet["inventory"]("second"), log=fleet["workdir"] / "second.log")
    assert second.returncode == 0, second.tail()
    assert second.changed == 0, second.changed_operations()


def test_features_turned_off_are_removed(fleet):
    off = dict(omero_web_apps=[], omero_web_cors_origins=[], omero_web_https=False, omero_web_tls_certificate=None,
               omero_web_tls_key=None, omero_web_clearsessions=False, omero_web_publications={},
               omero_web_wsgi_worker_class=None, omero_web_wsgi_worker_connections=None)
    third = run_pyinfra(fleet["inventory"]("third", off), log=fleet["workdir"] / "third.log")
    assert third.returncode == 0, third.tail()
    for group, full in fleet["full_hosts"].items():
        code, out = full.ssh("/opt/omero/web/venv3/bin/python -m pip show omero-figure")
        assert code != 0, f"{group}: the removed app must be uninstalled"
        apps = omero(full, "config", "get", "omero.web.apps")
        assert "omero_figure" not in apps, group
        assert "CorsMiddleware" not in omero(full, "config", "get", "omero.web.middleware"), group
        assert "gevent" not in gunicorn_args(full), group
        code, _ = full.ssh("test -e /etc/nginx/conf.d/omeroweb-http-redirect.conf")
        assert code != 0, group
        code, _ = full.ssh("test -e /etc/systemd/system/omero-web-clearsessions.timer")
        assert code != 0, group
        page = get(full.url(80, "/omero/webclient/login/"))
        assert page.status_code == 200 and LOGIN in page.text, group
    fourth = run_pyinfra(fleet["inventory"]("fourth", off), log=fleet["workdir"] / "fourth.log")
    assert fourth.returncode == 0 and fourth.changed == 0, fourth.changed_operations()
