"""
More than one machine, without a host: which host is what, the tier built from an inventory,
the inventories refused before any connection, and deploy.py planned on a simulated tier (a
balancer, two nodes, the shared Redis) as the pyinfra CLI plans it: the balancer's upstream,
the nodes' shared secret key and access rule, the rolling restart, Redis's listening address,
and no secret on any command line. A one-host inventory is what every other simulated test
deploys, unchanged.
"""

from __future__ import annotations

import os
import re

import pytest
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.inventory import Inventory
from pyinfra_cli.util import load_deploy_file

from host.context import validate_inventory
from model.settings import validate
from model.tier import Node, TierHost, address, build_tier, everyone, roles, shared_secret_key, tier_problems
from tests.unit.simulate import ROOT, SimulatedHost, fake_run, land_staged_uploads, unbuffered, unguarded

PASSWORD = "tier-password-0123456789"
URL = f"redis://:{PASSWORD}@redis1:6379/0"
SHARED = {"omero_web_redis": True, "omero_web_redis_url": URL}


def tier_host(name, groups, **data):
    return TierHost(name, frozenset(groups), validate({**SHARED, **data}, name))


def test_roles_from_groups():
    s = validate({})
    assert roles([], s) == {"web"}
    assert roles(["web"], s) == {"web"}
    assert roles(["omero_web_balancer"], s) == {"balancer"}
    assert roles(["omero_web_redis"], s) == {"redis"}
    assert roles(["omero_web_redis", "omero_web_balancer"], s) == {"redis", "balancer"}
    assert roles(["web", "omero_web_redis"], s) == {"web", "redis"}
    assert roles(["omero_web_balancer", "@docker"], s) == {"balancer"}  # pyinfra's connector group
    renamed = validate({"omero_web_balancer_group": "lbs"})
    assert roles(["lbs"], renamed) == {"balancer"} and roles(["omero_web_balancer"], renamed) == {"web"}


def test_the_groups_pyinfra_puts_every_host_in_make_nobody_a_node():
    # the pyinfra CLI puts every host in "all" and in a group named after the inventory file
    hosts = [tier_host("lb1", ["omero_web_balancer", "mysite"]), tier_host("web1", ["web", "mysite"]),
             tier_host("server1", ["omero_server", "mysite"])]
    common = everyone(hosts)
    assert common == {"all", "mysite"}
    assert roles(["omero_web_balancer", "mysite"], hosts[0].settings, common) == {"balancer"}
    assert roles(["omero_server", "mysite"], hosts[2].settings, common) == {"omero_server"}
    assert roles(["web", "mysite"], hosts[1].settings, common) == {"web"}
    assert build_tier(hosts).nodes == (Node("web1", "web1", 80),)
    assert tier_problems(hosts) == []


def test_addresses_default_to_the_host_name_and_the_nodes_http_port():
    assert address("web1", validate({})) == ("web1", None)
    assert address("web1", validate({"omero_web_backend_address": "10.0.0.5:8080"})) == ("10.0.0.5", 8080)
    assert address("web1", validate({"omero_web_backend_address": "[2001:db8::5]:81"})) == ("2001:db8::5", 81)
    tier = build_tier([tier_host("lb1", ["omero_web_balancer"], omero_web_backend_address="192.0.2.1"),
                       tier_host("web1", ["web"]), tier_host("web2", ["web"], omero_web_nginx_port=8080),
                       tier_host("redis1", ["omero_web_redis"])])
    assert tier.balanced and tier.balancers == ("192.0.2.1",) and tier.fail_timeout == 10
    assert tier.nodes == (Node("web1", "web1", 80), Node("web2", "web2", 8080))
    assert Node("web3", "2001:db8::5", 81).upstream == "[2001:db8::5]:81"


def test_no_balancer_no_tier():
    assert not build_tier([tier_host("web1", ["web"]), tier_host("web2", ["web"])]).balanced


def test_the_secret_key_is_shared_stable_and_not_the_password():
    key = shared_secret_key(URL)
    assert key == shared_secret_key(URL) and len(key) == 64 and PASSWORD not in key
    assert key != shared_secret_key(URL.replace(PASSWORD, PASSWORD + "x"))
    with pytest.raises(ValueError):
        shared_secret_key("redis://redis1:6379/0")


@pytest.mark.parametrize("hosts, expected", [
    ([tier_host("lb1", ["omero_web_balancer"]), tier_host("web1", ["web"], omero_web_redis=False)],
     "web1: behind a balancer, the nodes share their sessions in one Redis"),
    ([tier_host("lb1", ["omero_web_balancer"]),
      tier_host("web1", ["web"], omero_web_redis_url="redis://127.0.0.1:6379/0")], "web1: behind a balancer"),
    ([tier_host("lb1", ["omero_web_balancer"]), tier_host("web1", ["web"], omero_web_https=True,
                                                           omero_web_tls_self_signed=True)],
     "HTTPS is terminated at the balancer"),
    ([tier_host("lb1", ["omero_web_balancer", "web"]), tier_host("web2", ["other"])],
     "a balancer is not an OMERO.web node too"),
    ([tier_host("lb1", ["omero_web_balancer"])], "no host is an OMERO.web node"),
    ([tier_host("r1", ["omero_web_redis"]), tier_host("r2", ["omero_web_redis"])], "one shared Redis"),
    ([tier_host("r1", ["omero_web_redis"], omero_web_redis_url="redis://redis1:6379/0")], "carry its password"),
    ([tier_host("lb1", ["omero_web_balancer"]), tier_host("r1", ["omero_web_redis"]),
      tier_host("web1", ["web"], omero_web_redis_url=f"redis://:{PASSWORD}@other:6379/0")],
     "the shared Redis host r1 serves 'redis1'"),
    ([tier_host("lb1", ["omero_web_balancer"]), tier_host("web1", ["web"], omero_web_config={"omero.web.secret_key": "a"}),
      tier_host("web2", ["web"])], "omero.web.secret_key differs between the nodes"),
    ([tier_host("lb1", ["omero_web_balancer"]), tier_host("web1", ["web"]),
      tier_host("web2", ["web"], omero_web_balancer_group="lbs")], "omero_web_balancer_group differs"),
])
def test_unsound_tiers_are_refused_naming_host_and_fix(hosts, expected):
    problems = tier_problems(hosts)
    assert any(expected in p for p in problems), problems


def test_a_sound_tier_and_one_machine_have_no_problem():
    assert tier_problems([tier_host("lb1", ["omero_web_balancer"]), tier_host("web1", ["web"]),
                          tier_host("web2", ["web"]), tier_host("redis1", ["omero_web_redis"])]) == []
    assert tier_problems([TierHost("web1", frozenset(), validate({}))]) == []


def test_the_inventory_is_refused_before_connecting():
    inventory = Inventory((["lb1", ("web1", {"omero_web_redis": False})], {}), omero_web_balancer=(["lb1"], {}))
    with pytest.raises(PyinfraError, match="web1: behind a balancer"):
        validate_inventory(inventory)


# --- deploy.py planned on a simulated tier ---------------------------------------------------

ADDRESSES = {"lb1": "192.0.2.10", "redis1": "192.0.2.20"}
HOSTS = {"@fake/lb1": "lb1", "@fake/web1": "web1", "@fake/web2": "web2", "@fake/redis1": "redis1"}


def tier_host_facts() -> SimulatedHost:
    resolve = {re.compile(r"getent ahosts"): [f"{name} {ip}" for name, ip in ADDRESSES.items()]}
    return SimulatedHost("debian", "12", extra_responses=resolve)


def run_tier(balancer_data: dict | None = None):
    hosts = {name: tier_host_facts() for name in HOSTS}
    groups = {"omero_web_balancer": ["@fake/lb1"], "omero_web_redis": ["@fake/redis1"],
              "web": ["@fake/web1", "@fake/web2"]}
    host_data = {name: {"omero_web_backend_address": short} for name, short in HOSTS.items()}
    host_data["@fake/lb1"].update(balancer_data or {})
    load = lambda state: load_deploy_file(state, os.path.join(ROOT, "deploy.py"))  # noqa: E731
    return fake_run(hosts, SHARED, load, groups=groups, host_data=host_data)


@pytest.fixture(scope="module")
def tier_run():
    with run_tier() as (state, inventory):
        found = {}
        for name, short in HOSTS.items():
            connector = inventory.get_host(name).connector
            commands = [unguarded(unbuffered(c)) for c in connector.executed_commands]
            found[short] = (commands, land_staged_uploads(commands, connector.uploads))
        serial = {", ".join(sorted(state.get_op_meta(h).names)): state.get_op_meta(h).global_arguments.get("_serial")
                  for h in state.get_op_order()}
        yield found, serial


def test_the_balancer_checks_through_the_nodes_after_they_restarted(tier_run):
    # pyinfra runs each host's operations in order, steps of different hosts side by side: the
    # balancer's check shares its step with the nodes' own checks, after their restarts
    _, serial = tier_run
    order = list(serial)
    check = [i for i, name in enumerate(order) if "through the balancer" in name]
    restarts = [i for i, name in enumerate(order) if name.endswith("Restart omero-web")]
    assert len(check) == 1 and "through NGINX" in order[check[0]], order[check[0]]
    assert restarts and check[0] > max(restarts)


def test_the_balancer_lists_every_node_and_checks_the_login_page_through_them(tier_run):
    found, _ = tier_run
    commands, uploads = found["lb1"]
    site = uploads["/etc/nginx/conf.d/omeroweb-balancer.conf"]
    assert "server web1:80 max_fails=1 fail_timeout=10s;" in site and "server web2:80 max_fails=1" in site
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in site
    assert "error_page 502 503 504 /omeroweb-maintenance.html;" in site
    assert any(c.startswith("nginx -t") for c in commands)
    assert any("OMERO.web - Login" in c and "http://127.0.0.1:80/webclient/login/" in c for c in commands)
    assert not [c for c in commands if "omero " in c or "/venv3/" in c], [c for c in commands if "omero " in c or "/venv3/" in c]


def test_the_nodes_share_the_secret_key_and_let_only_the_balancer_in(tier_run):
    found, _ = tier_run
    keys = set()
    for node in ("web1", "web2"):
        commands, uploads = found[node]
        text = "\n".join(commands) + "\n".join(str(v) for v in uploads.values())
        assert shared_secret_key(URL) in text  # in the owner-only file omero config load reads
        assert not any(shared_secret_key(URL) in c or PASSWORD in c for c in commands)  # never on a command line
        assert "allow 192.0.2.10;" in text and "deny all;" in text
        assert "real_ip" not in text  # NGINX would check the client's address, not the balancer's
        keys.add(shared_secret_key(URL))
        assert not any("redis-server" in c and "install" in c for c in commands)  # no local Redis on a node
    assert len(keys) == 1


def test_the_nodes_restart_one_at_a_time_each_serving_before_the_next(tier_run):
    found, serial = tier_run
    restart = [name for name in serial if name.endswith("Restart omero-web")]
    assert restart and all(serial[name] for name in restart), serial
    for node in ("web1", "web2"):
        commands, _ = found[node]
        restarts = [c for c in commands if "systemctl restart omero-web" in c]
        assert restarts and all("OMERO.web - Login" in c and "http://127.0.0.1:80/webclient/login/" in c
                                for c in restarts)
        # and until the balancer, which skips a failed node for 10 s, sends it requests again
        assert all(c.rstrip().endswith("sleep 11; }") for c in restarts), restarts[0][-200:]


def test_the_shared_redis_requires_the_password_and_listens_on_the_urls_address(tier_run):
    found, _ = tier_run
    commands, uploads = found["redis1"]
    conf = uploads["/etc/omeroweb-deploy/redis-auth.conf"]
    assert f'requirepass "{PASSWORD}"' in conf and "bind 192.0.2.20 127.0.0.1" in conf
    assert "protected-mode yes" in conf and "port 6379" in conf
    assert not any(PASSWORD in c for c in commands)
    assert not [c for c in commands if "/venv3/" in c or "/etc/nginx/conf.d" in c]  # the Redis host only


def test_https_ends_at_the_balancer_and_the_nodes_know_it():
    with run_tier({"omero_web_https": True, "omero_web_tls_self_signed": True}) as (state, inventory):
        lb = inventory.get_host("@fake/lb1").connector
        commands = [unguarded(unbuffered(c)) for c in lb.executed_commands]
        site = land_staged_uploads(commands, lb.uploads)["/etc/nginx/conf.d/omeroweb-balancer.conf"]
        assert "listen 443 ssl;" in site and "ssl_certificate /etc/nginx/omeroweb-tls/omeroweb.crt;" in site
        assert "return 301 https://$host$request_uri;" in site and "listen 80;" in site
        assert "proxy_set_header X-Forwarded-Scheme $scheme;" in site and "Strict-Transport-Security" in site
        assert any("openssl req -x509" in c for c in commands)
        assert any("https://127.0.0.1:443/webclient/login/" in c for c in commands)
        for node in ("@fake/web1", "@fake/web2"):
            connector = inventory.get_host(node).connector
            node_commands = [unguarded(unbuffered(c)) for c in connector.executed_commands]
            text = "\n".join(node_commands) + "\n".join(str(v) for v in land_staged_uploads(
                node_commands, connector.uploads).values())
            assert "HTTP_X_FORWARDED_SCHEME" in text and "omero.web.session_cookie_secure" in text
            assert "ssl_certificate" not in text and not any("openssl req" in c for c in node_commands)


def test_only_ip_addresses_from_the_host_reach_nginx_and_redis():
    # what getent (the host, its DNS) answers is written into allow/bind lines: addresses only
    from host.facts import ResolvedAddresses

    found = ResolvedAddresses().process(["lb1 192.0.2.10", "lb1 all; include /etc/shadow", "lb1 192.0.2.10",
                                         "r1 2001:db8::1", "x not-an-address"])
    assert found == {"lb1": ["192.0.2.10"], "r1": ["2001:db8::1"], "x": []}
