"""
More than one machine, for real: four Debian 12 systemd containers on one Docker network (an
NGINX load balancer, two OMERO.web nodes, the shared Redis) deployed by one
``pyinfra inventory deploy.py`` run, as a site would:

- the login page through the balancer, and requests spread over both nodes (each node's
  NGINX access log); a node refuses anybody but the balancer;
- a session created on node 1 (Django's ``SessionStore``, OMERO.web's own settings) is read on
  node 2; Redis refuses a client without the password and listens only where the URL says;
- node 1's OMERO.web stopped: no request through the balancer fails; both stopped: the
  maintenance page;
- an upgrade (omero-web 5.32.0 -> 5.33.2) while a client sends requests through the balancer
  at 5+ per second: none fails, the nodes restart one at a time, both end on the new release;
- the re-run changes nothing;
- HTTPS at the balancer (a self-signed pair): plain HTTP redirected, the nodes' cookies Secure,
  and a login POST through the balancer passes Django's CSRF check and reaches OMERO.web's own
  answer (no OMERO.server here: "Server is not responding"); its re-run changes nothing.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.integration.core_checks import LOGIN, SteadyClient
from testbed.cache import cache_dir
from testbed.images import ensure_image
from testbed.pyinfra_run import run_pyinfra, ssh_ok, target_data, write_inventory
from testbed.targets import private_network, remove_targets, start_systemd_target

pytestmark = pytest.mark.integration

OLD, NEW = "5.32.0", "5.33.2"
PASSWORD = "tier-test-password-0123456789"
VENV, OMERODIR = "/opt/omero/web/venv3", "/opt/omero/web/omero-web"


@pytest.fixture(scope="module")
def tier(docker_engine, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("web-tier")
    image = ensure_image("bookworm")
    with private_network("tier") as network:
        targets = {}
        try:
            for role in ("lb", "web1", "web2", "redis"):
                ports = (80, 443) if role == "lb" else (80,)
                targets[role] = start_systemd_target(image, name=f"tier-{role}", ports=ports, network=network)
            # no user namespaces here, which Debian's redis-server unit asks for (see test_features.py)
            ssh_ok(targets["redis"], "mkdir -p /etc/systemd/system/redis-server.service.d && printf "
                   "'[Service]\\nPrivateUsers=false\\n' > /etc/systemd/system/redis-server.service.d/no-userns.conf")
            url = f"redis://:{PASSWORD}@{targets['redis'].name}:6379/0"
            runs = []

            def deploy(version: str, **balancer_data):
                shared = {"omero_web_redis": True, "omero_web_redis_url": url,
                          "omero_web_version_spec": f"omero-web=={version}"}
                inventory = write_inventory(workdir / f"inventory{len(runs) + 1}.py", {
                    "web": [target_data(targets["web1"], **shared), target_data(targets["web2"], **shared)],
                    "omero_web_balancer": [target_data(targets["lb"], **shared, **balancer_data)],
                    "omero_web_redis": [target_data(targets["redis"], **shared)],
                })
                run = run_pyinfra(inventory, "deploy.py", log=workdir / f"run{len(runs) + 1}.log")
                runs.append(run)
                return run

            first = deploy(OLD)
            assert first.returncode == 0, first.tail(120)
            yield targets, deploy
        finally:
            remove_targets(targets.values())


def through_balancer(targets, path: str = "/webclient/login/") -> requests.Response:
    return requests.get(targets["lb"].url(80, path), timeout=30)


def access_lines(target) -> int:
    return int(ssh_ok(target, "wc -l < /var/log/nginx/access.log"))


def test_the_login_page_through_the_balancer(tier):
    targets, _ = tier
    response = through_balancer(targets)
    assert response.status_code == 200 and LOGIN in response.text


def test_requests_are_spread_over_both_nodes(tier):
    targets, _ = tier
    before = {node: access_lines(targets[node]) for node in ("web1", "web2")}
    for _ in range(30):
        assert through_balancer(targets).status_code == 200
    served = {node: access_lines(targets[node]) - before[node] for node in ("web1", "web2")}
    assert sum(served.values()) >= 30 and min(served.values()) >= 5, served


def test_a_node_answers_only_the_balancer(tier):
    targets, _ = tier
    # from the other node (on the same network, not a balancer): NGINX's 403
    code = ssh_ok(targets["web2"], f"python3 -c \"import urllib.request, urllib.error\ntry:\n"
                  f"    print(urllib.request.urlopen('http://{targets['web1'].name}/webclient/login/').status)\n"
                  "except urllib.error.HTTPError as e:\n    print(e.code)\"")
    assert code == "403"


def session_store(target, code: str) -> str:
    """Run ``code`` with ``store`` = OMERO.web's own session engine (its settings, as Gunicorn
    loads them), as the OMERO.web account; its last line of output (as test_features.py does)."""
    script = ("import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'omeroweb.settings'; django.setup(); "
              "from importlib import import_module; from django.conf import settings; "
              f"store = import_module(settings.SESSION_ENGINE).SessionStore; {code}")
    return ssh_ok(target, f"cd /tmp && runuser -u omero-web -- env OMERODIR={OMERODIR} "
                          f"{VENV}/bin/python -c \"{script}\"").splitlines()[-1]


def test_a_session_made_on_one_node_is_read_on_the_other(tier):
    targets, _ = tier
    key = session_store(targets["web1"], "s = store(); s['made-on'] = 'web1'; s.save(); print(s.session_key)")
    assert len(key) >= 32
    assert session_store(targets["web2"], f"print(store(session_key='{key}').get('made-on'))") == "web1"


def test_redis_requires_the_password_and_listens_where_the_url_says(tier):
    targets, _ = tier
    probe = ("import socket, sys\ns = socket.create_connection((sys.argv[1], 6379), timeout=5)\n"
             "s.sendall(sys.argv[2].encode() + b'\\r\\n'); print(s.recv(200).decode().strip())")
    redis = targets["redis"].name
    assert ssh_ok(targets["web1"], f"python3 -c \"{probe}\" {redis} PING").startswith("-NOAUTH")
    assert ssh_ok(targets["web1"], f"python3 -c \"{probe}\" {redis} 'AUTH {PASSWORD}'") == "+OK"  # the URL's
    bind = ssh_ok(targets["redis"], f"redis-cli -a {PASSWORD} --no-auth-warning config get bind").splitlines()[-1]
    own = ssh_ok(targets["redis"], f"getent ahostsv4 {redis} | awk 'NR==1 {{print $1}}'")
    assert sorted(bind.split()) == sorted([own, "127.0.0.1"]), bind


def test_one_node_down_fails_no_request_and_all_down_serve_the_maintenance_page(tier):
    targets, _ = tier
    ssh_ok(targets["web1"], "systemctl stop omero-web")
    try:
        results = [through_balancer(targets) for _ in range(40)]
        failed = [r.status_code for r in results if r.status_code != 200 or LOGIN not in r.text]
        assert failed == [], failed
        ssh_ok(targets["web2"], "systemctl stop omero-web")
        down = through_balancer(targets, "/webclient/")
        assert down.status_code in (502, 503) and "maintenance" in down.text.lower()
    finally:
        ssh_ok(targets["web1"], "systemctl start omero-web")
        ssh_ok(targets["web2"], "systemctl start omero-web")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and through_balancer(targets).status_code != 200:
        time.sleep(1)


def release(target) -> str:
    return ssh_ok(target, f"{VENV}/bin/python -c 'from omeroweb.version import omeroweb_version as v; print(v)'")


def test_an_upgrade_under_steady_traffic_fails_no_request(tier):
    targets, deploy = tier
    client = SteadyClient(targets["lb"].url(80, "/webclient/login/"), rate=8)
    client.start()
    started = time.monotonic()
    try:
        time.sleep(3)
        run = deploy(NEW)
    finally:
        client.stop.set()
        client.join()
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.tail(120)
    assert client.sent / seconds >= 5, (client.sent, seconds)
    assert client.failed == [], client.failed[:10]
    assert release(targets["web1"]) == release(targets["web2"]) == NEW
    restarts = {node: ssh_ok(targets[node], "systemctl show -p ActiveEnterTimestampMonotonic --value omero-web")
                for node in ("web1", "web2")}
    figures = cache_dir() / "web-tier-figures.json"  # quoted in docs/performance.md
    figures.write_text(json.dumps({"requests_sent": client.sent, "requests_failed": len(client.failed),
                                   "upgrade_seconds": round(seconds, 1), "rate_per_second": round(client.sent / seconds, 1),
                                   "restarted_apart_seconds": abs(int(restarts["web1"]) - int(restarts["web2"])) / 1e6},
                                  indent=1) + "\n")
    print(figures.read_text())


def test_the_rerun_changes_nothing(tier):
    targets, deploy = tier
    again = deploy(NEW)
    assert again.returncode == 0, again.tail(120)
    assert again.changed == 0, again.changed_operations()


def login_post(base: str, session: requests.Session) -> requests.Response:
    """GET the login page (its CSRF cookie), then POST a login with the token, as a browser does."""
    page = session.get(f"{base}/webclient/login/", timeout=30, verify=False)
    token = session.cookies.get("csrftoken")
    assert page.status_code == 200 and token, page.status_code
    return session.post(f"{base}/webclient/login/", timeout=60, verify=False,
                        data={"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong", "server": "1"},
                        headers={"Referer": f"{base}/webclient/login/"})


def test_https_at_the_balancer_with_csrf_through_it(tier):
    targets, deploy = tier
    run = deploy(NEW, omero_web_https=True, omero_web_tls_self_signed=True)
    assert run.returncode == 0, run.tail(120)
    base = f"https://127.0.0.1:{targets['lb'].ports[443]}"
    plain = requests.get(targets["lb"].url(80, "/webclient/login/"), timeout=30, allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    session = requests.Session()
    answer = login_post(base, session)
    assert all(c.secure for c in session.cookies if c.name in ("csrftoken", "sessionid"))
    assert answer.status_code == 200 and "CSRF" not in answer.text, answer.text[:500]
    assert "Server is not responding" in answer.text or "Connection not available" in answer.text, answer.text[:800]
    again = deploy(NEW, omero_web_https=True, omero_web_tls_self_signed=True)
    assert again.returncode == 0, again.tail(120)
    assert again.changed == 0, again.changed_operations()
