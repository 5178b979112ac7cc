"""
The deploy cannot be turned against the host: hostile data, destructive values, secrets
under ``_sudo`` and a compromised OMERO.web account, on one Debian 12 systemd target
reached over SSH.

One module fixture runs the scenario once, in this order, and the tests check the record:

1. **Hostile data** (a shell command in ``omero_web_omerodir``, ``/`` as the venv, ``root``
   as the account, a newline in ``omero_web_wsgi_args`` and in a property, a systemd ``%h``
   specifier in a path): the real ``pyinfra`` command line refuses it before connecting
   (sshd accepts no login, nothing is created on the target).
2. **Destructive values**, connected as the sudo user: an existing account (``alice``)
   the deploy did not create, an OMERODIR that another account (``bob``) owns and filled
   and a venv that ``alice`` owns (root would run its python), in one run, first without
   ``-y`` (pyinfra reads every operation's facts to show the changes, before the refusal
   runs: alice's python must not run as root then either); a data folder (``/srv/data``,
   root's, with a file in it) as the venv, in a second run. Both fail with the deploy's
   refusal; the accounts, the folders and the file are unchanged.
3. **Secrets with ``_sudo``** (a non-root SSH user, at ``-vvv --diff``): HTTPS with a
   certificate and key made on the control machine, the public user's password, a
   property declared secret, Redis with a password in its URL (the local Redis asks for
   it), a pip index URL with credentials (pypi.org through this environment's egress
   proxy accepts and ignores them). Every secret is random per run. A sampler on the
   target records every distinct process command line and every secret-holding file in
   ``/tmp`` and ``/var/tmp`` during all runs. Then a re-run changes nothing.
4. **Troubleshooting bundle** (``operations.troubleshoot.troubleshoot``): no secret in it.
5. **Links planted by a compromised OMERO.web account**: as ``omero-web`` only, every file
   the deploy writes in OMERODIR is replaced by a symbolic link to a root-only canary file
   (one to ``/etc/shadow``) and ``etc/backups`` by a link to ``/root``. The data changes
   (a new secret key and TLS key pair, and in the first run a version spec that starts an
   upgrade, the only writer of ``etc/backups``); the deploy runs as root over SSH until it
   converges: each run either refuses one link with ``omeroweb-deploy: refusing`` (the
   test then removes that link, as the message asks) or replaces it. The canaries,
   ``/etc/shadow`` and ``/root`` are unchanged, no file outside OMERODIR became
   ``omero-web``'s; the site is healthy and a re-run changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from testbed.engine import docker_client
from testbed.images import ensure_image
from testbed.targets import remove_targets, start_systemd_target
from testbed.pyinfra_run import (PYINFRA, ROOT as REPOSITORY, Deployer, Run, put, run_pyinfra, runs_summary, sh,
                                           target_data, write_inventory)

pytestmark = pytest.mark.integration

OMERODIR = "/opt/omero/web/omero-web"
VENV = "/opt/omero/web/venv3"
USER = "omero-web"
SSH_USER = "deployer"
LOGIN = "OMERO.web - Login"
REFUSED = "omeroweb-deploy: refusing"
TLS_DIR = "/etc/nginx/omeroweb-tls"
TLS_KEY = f"{TLS_DIR}/omeroweb.key"
ROOT_STAGING = "/var/lib/omeroweb-deploy/staging"
STAGING = f"{OMERODIR}/etc/.omeroweb-deploy"
TEMPLATE = "security-note.html"

# Random per test run, so that finding one anywhere cannot be a coincidence.
REDIS_PASSWORD = "rp" + secrets.token_hex(12)
PIP_PASSWORD = "pp" + secrets.token_hex(12)
PUBLIC_PASSWORD = "pw" + secrets.token_hex(12)
SECRET_KEY = "sk" + secrets.token_hex(16)
SECRET_KEY2 = "sk2" + secrets.token_hex(16)
PIP_INDEX = f"https://omeroweb-deploy-test:{PIP_PASSWORD}@pypi.org/simple"
APP = {"spec": "omero-figure", "app": "omero_figure"}

HOSTILE = {
    "omero_web_omerodir": "/opt/x;touch /tmp/pwned",
    "omero_web_venv": "/",
    "omero_web_user": "root",
    "omero_web_wsgi_args": "--timeout 60\nomero.web.debug=true",
    "omero_web_config": {"omero.web.debug": "false\nomero.web.secret_key=x"},
    "omero_web_migrate_from_omerodir": "/opt/%h/omero-web",  # %h: a systemd specifier
}

# Files the deploy writes in OMERODIR (relative path) -> where the planted link points.
PLANTED = {
    "etc/omeroweb-deploy-managed.json": "/etc/shadow",
    "etc/.omeroweb-deploy/config.properties": "/root/canary-1",
    "etc/templates/error/maintainance.html": "/root/canary-3",
    f"etc/templates/custom/{TEMPLATE}": "/root/canary-4",
    "etc/backups": "/root",  # a folder: only an upgrade writes there
}
CANARIES = ["/root/canary-1", "/root/canary-2", "/root/canary-3", "/root/canary-4", "/etc/shadow"]

SAMPLER = r"""#!/bin/sh
# Every distinct process command line, and every file in /tmp or /var/tmp (two levels)
# holding a secret, with its mode and owner and its folder's, until /root/sampler.stop exists.
while [ ! -e /root/sampler.stop ]; do
  ps -eo user=,args=
  for f in $(find /tmp /var/tmp -maxdepth 2 -type f 2>/dev/null); do
    grep -qF -f /root/.patterns "$f" 2>/dev/null && m=$(stat -c '%a %U' "$f" 2>/dev/null) && \
      d=$(stat -c '%a %U' "${f%/*}" 2>/dev/null) && echo "SECRETFILE $m $d $f"  # (gone meanwhile: no line)
  done
  sleep 0.02
done | awk '!seen[$0]++ { print; fflush() }' > /root/sampler.out
"""


# -- helpers -----------------------------------------------------------------------------------


def as_web(target, command: str) -> tuple[int, str]:
    """A command run as the OMERO.web account only (what a compromised account can do)."""
    return target.exec(f"cd / && runuser -u {USER} -- sh -c '{command}'")



def fingerprint(target, *paths: str) -> dict[str, str]:
    """path -> "sha256 mode owner:group inode" (or "missing")."""
    found = {}
    for path in paths:
        code, out = target.exec(f"[ -e {path} ] && echo $(sha256sum < {path} | cut -c1-64) "
                                f"$(stat -c '%a %U:%G %i' {path})")
        found[path] = out.strip() if code == 0 else "missing"
    return found


def tree(target, path: str) -> str:
    """Every entry below ``path`` with owner, mode and (files) content hash."""
    return sh(target, f"cd {path} && find . -printf '%p %u:%g %m %y\\n' | sort && "
                      "find . -type f -exec sha256sum {} + | sort")


def make_tls(directory: Path) -> dict:
    """A self-signed certificate for localhost / 127.0.0.1 and its key, made with openssl here."""
    directory.mkdir(parents=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "30", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    key.chmod(0o600)
    # the key's base64 lines: any of them anywhere is the key leaking
    lines = [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
    return {"cert": cert, "key": key, "lines": lines}


def https_login(target, tls) -> requests.Response:
    return requests.get(f"https://127.0.0.1:{target.ports[443]}/webclient/login/", timeout=30,
                        verify=str(tls["cert"]), allow_redirects=False)


def login_ok(target, tls) -> bool:
    try:
        response = https_login(target, tls)
    except requests.RequestException:
        return False
    return response.status_code == 200 and LOGIN in response.text


def config_sha256(target, key: str) -> str:
    """The sha256 of a property's value (compared by hash: the value is never printed)."""
    return sh(target, f"cd / && runuser -u {USER} -- env OMERODIR={OMERODIR} {VENV}/bin/omero config get "
                      f"--show-password {key} | tr -d '\\n' | sha256sum | cut -c1-64")


def ssh_logins(target) -> int:
    return int(sh(target, "journalctl --no-pager -q _COMM=sshd | grep -c 'Accepted ' || true"))


def outside_omerodir_owned_by_web(target) -> list[str]:
    """Paths owned by the OMERO.web account outside OMERODIR, but for the service's own /tmp
    (PrivateTmp: systemd makes it for the unit; its entries are named after PIDs)."""
    found = sh(target, f"find / -xdev -user {USER} -not -path '{OMERODIR}/*' -not -path {OMERODIR} "
                       "-print 2>/dev/null | sort || true").splitlines()
    private_tmp = re.compile(r"/tmp/systemd-private-[0-9a-f]+-omero-web\.service-[^/]+/tmp/")
    return [path for path in found if not private_tmp.match(path)]


def prepare(target, tls_lines) -> None:
    """Sudo user, the accounts and folders of step 2, the canaries, the sampler."""
    # This environment has no user namespaces, which Debian's redis-server unit asks for
    # (PrivateUsers=true): a drop-in first (see test_features.py). The deploy installs Redis
    # and gives it the URL's password: nothing of Redis is configured here.
    sh(target, "mkdir -p /etc/systemd/system/redis-server.service.d && printf '[Service]\\nPrivateUsers=false\\n' "
               "> /etc/systemd/system/redis-server.service.d/no-userns.conf "
               "&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null")
    put(target, "/root/.redispw", REDIS_PASSWORD.encode())  # the test's own copy, for redis-cli
    # the SSH user: passwordless sudo, root's SSH key
    sh(target, f"useradd -m -s /bin/bash {SSH_USER} "
               f"&& install -d -m 700 -o {SSH_USER} -g {SSH_USER} /home/{SSH_USER}/.ssh "
               f"&& install -m 600 -o {SSH_USER} -g {SSH_USER} /root/.ssh/authorized_keys /home/{SSH_USER}/.ssh/ "
               f"&& echo '{SSH_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/{SSH_USER} "
               f"&& chmod 440 /etc/sudoers.d/{SSH_USER}")
    # step 2: a person's account, another account's filled folder, a data folder of root's
    sh(target, "useradd -m -s /bin/bash alice && useradd -m -s /bin/bash bob "
               "&& install -d -m 755 -o bob -g bob /srv/bob-web && echo notes > /srv/bob-web/notes.txt "
               "&& chown bob:bob /srv/bob-web/notes.txt && install -d -m 755 /srv/data")
    put(target, "/srv/data/precious", secrets.token_bytes(64), 0o600)
    # a virtualenv another account made (or could change): root would run its python
    sh(target, "install -d -m 755 -o alice -g alice /srv/alice-venv /srv/alice-venv/bin "
               "&& printf '#!/bin/sh\\nid -un >> /srv/alice-venv/ran-as\\n' > /srv/alice-venv/bin/python "
               "&& chmod 755 /srv/alice-venv/bin/python && chown alice:alice /srv/alice-venv/bin/python")
    # step 5: root-only canaries with random content
    for canary in CANARIES[:-1]:
        put(target, canary, secrets.token_bytes(48), 0o600)
    secret_values = [REDIS_PASSWORD, PIP_PASSWORD, PUBLIC_PASSWORD, SECRET_KEY, SECRET_KEY2, *tls_lines]
    put(target, "/root/.patterns", "".join(f"{s}\n" for s in secret_values).encode())
    put(target, "/root/sampler.sh", SAMPLER.encode(), 0o700)
    docker_client().containers.get(target.container_id).exec_run(["sh", "/root/sampler.sh"], detach=True)


def stop_sampler(target) -> str:
    sh(target, "touch /root/sampler.stop")
    time.sleep(1)
    return sh(target, "cat /root/sampler.out")


def good_data(tls, templates, secret_key=SECRET_KEY, **extra) -> dict:
    return dict(
        omero_web_https=True,
        omero_web_tls_certificate=str(tls["cert"]),
        omero_web_tls_key=str(tls["key"]),
        omero_web_public_enabled=True,
        omero_web_public_user="public",
        omero_web_public_password=PUBLIC_PASSWORD,
        omero_web_public_url_filter="^/security-test-only/",  # matches no page: no OMERO server here
        omero_web_config={"omero.web.secret_key": secret_key},
        omero_web_secret_config_keys=["omero.web.secret_key"],
        omero_web_redis=True,
        omero_web_redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        # pypi.org through this environment's egress proxy: credentials in the URL are sent
        # (Basic auth) and ignored, so pip works with them; they are still a secret to keep.
        omero_web_pip_index_url=PIP_INDEX,
        omero_web_apps=[APP],
        omero_web_templates=str(templates),
        **extra,
    )


SUDO = {"ssh_user": SSH_USER, "_sudo": True}
ROOT = {"ssh_user": "root", "_sudo": False}


# -- the scenario ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def record(docker_engine, tmp_path_factory):
    image = ensure_image("bookworm")
    workdir = tmp_path_factory.mktemp("security")
    tls, tls2 = make_tls(workdir / "tls1"), make_tls(workdir / "tls2")
    templates = workdir / "templates"
    templates.mkdir()
    (templates / TEMPLATE).write_text("<p>omeroweb-deploy security test template</p>\n")
    target = start_systemd_target(image, name="security", ports=(80, 443))
    started = time.monotonic()
    try:
        rec: dict = {"target": target, "tls": tls, "tls2": tls2, "runs": {}, "workdir": workdir}
        runs = rec["runs"]
        deploy = Deployer(target, workdir, "debian12")

        # 1. hostile data: refused before connecting
        logins = ssh_logins(target)
        inventory = write_inventory(workdir / "hostile.py", {"debian12": [target_data(target, **HOSTILE)]})
        runs["hostile"] = run_pyinfra(inventory, "deploy.py", "-vvv", log=workdir / "hostile.log")
        rec["hostile"] = {"logins_before": logins, "logins_after": ssh_logins(target),
                          "leftovers": sh(target, "ls -d /opt/x* /opt/omero /tmp/pwned 2>/dev/null || true")}

        prepare(target, tls["lines"] + tls2["lines"])

        # 2. destructive values: refused on the host, nothing changed
        watched = "/srv/data/precious", "/etc/passwd", "/etc/shadow", "/etc/group"
        rec["destructive_before"] = {"files": fingerprint(target, *watched), "bob": tree(target, "/srv/bob-web"),
                                     "data": tree(target, "/srv/data"), "alice": tree(target, "/home/alice"),
                                     "venv": tree(target, "/srv/alice-venv")}
        foreign = good_data(tls, templates, omero_web_user="alice", omero_web_omerodir="/srv/bob-web",
                            omero_web_venv="/srv/alice-venv")
        # pyinfra's default mode (no -y) shows what would change, then asks: facts are read for every
        # operation before the refusal runs; nothing of alice's venv may run as root then either
        inventory = write_inventory(workdir / "foreign-detect.py", {"debian12": [target_data(target, **SUDO, **foreign)]})
        runs["foreign-account-detect"] = detect_changes(inventory, workdir / "foreign-detect.log")
        rec["after_detect"] = {"venv": tree(target, "/srv/alice-venv")}
        runs["foreign-account"] = deploy("-vv", **SUDO, **foreign)
        rec["after_foreign"] = {
            "files": fingerprint(target, *watched), "bob": tree(target, "/srv/bob-web"),
            "alice": tree(target, "/home/alice"), "venv": tree(target, "/srv/alice-venv"),
            "installed": sh(target, "ls -d /opt/omero /var/lib/omeroweb-deploy 2>/dev/null; getent passwd omero-web; "
                                    "dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -c ' installed' || true"),
        }
        runs["data-folder-venv"] = deploy("-vv", **SUDO, **good_data(tls, templates, omero_web_venv="/srv/data"))
        rec["after_data_venv"] = {"files": fingerprint(target, "/srv/data/precious"), "data": tree(target, "/srv/data"),
                                  "marker": sh(target, "ls -d /srv/data.* 2>/dev/null || true")}

        # 3. secrets, as the sudo user, at -vvv --diff; then a re-run changes nothing
        data = good_data(tls, templates)
        runs["secrets"] = deploy("-vvv", "--diff", **SUDO, **data)
        rec["secrets"] = snapshot(target, tls)
        runs["secrets-again"] = deploy("-v", **SUDO, **data)

        # 4. the troubleshooting bundle
        bundle = workdir / "bundle"
        inventory = write_inventory(workdir / "troubleshoot.py", {"debian12": [
            target_data(target, **SUDO, **data, omero_web_troubleshoot_dir=str(bundle))]})
        runs["troubleshoot"] = run_pyinfra(inventory, "operations.troubleshoot.troubleshoot", "-vvv",
                                           log=workdir / "troubleshoot.log")
        rec["bundle"] = {str(p.relative_to(bundle)): p.read_text(errors="replace")
                         for p in sorted(bundle.rglob("*")) if p.is_file()}

        # 5. links planted by the OMERO.web account; the deploy runs as root over SSH
        rec["links"] = planted_links(target, deploy, good_data(tls2, templates, secret_key=SECRET_KEY2), tls2)
        runs.update(rec["links"].pop("runs"))

        rec["sampled"] = stop_sampler(target)
        rec["secret_files"] = secret_files(target)
        rec["seconds"] = time.monotonic() - started
        print(runs_summary(runs))
        print(f"security scenario: {rec['seconds']:.0f}s")
        yield rec
    finally:
        remove_targets([target])


def detect_changes(inventory: Path, log: Path) -> Run:
    """``pyinfra INVENTORY deploy.py`` without ``-y``: it detects the changes, then asks to press
    enter; the answer "no" stops the run there."""
    started = time.monotonic()
    result = subprocess.run([PYINFRA, str(inventory), "deploy.py", "-vv"], cwd=REPOSITORY, capture_output=True,
                            text=True, timeout=900, input="no\n")
    log.write_text(result.stdout + result.stderr)
    return Run(result.returncode, result.stdout + result.stderr, time.monotonic() - started)


def snapshot(target, tls) -> dict:
    """After the deploy with secrets: modes, owners, staging folders, the site, Redis."""
    redis_probe = ("import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'omeroweb.settings'; django.setup(); "
                   "from importlib import import_module; from django.conf import settings; "
                   "s = import_module(settings.SESSION_ENGINE).SessionStore(); s['probe'] = 1; s.create(); "
                   "print(s.session_key)")
    code, session = target.exec(f"cd / && runuser -u {USER} -- env OMERODIR={OMERODIR} {VENV}/bin/python -c \"{redis_probe}\"")
    return {
        "stat": sh(target, f"stat -c '%a %U:%G %n' {VENV}/pip.conf {TLS_DIR} {TLS_KEY} {OMERODIR}/etc/grid "
                           f"{STAGING}").splitlines(),
        # root's staging folder is removed with the run lock when empty (intended change, issue 15)
        "staged": sh(target, f"find {STAGING} -mindepth 1; [ ! -e {ROOT_STAGING} ] || find {ROOT_STAGING} -mindepth 1"),
        "pip_index": sh(target, f"grep -c '^index-url = https://omeroweb-deploy-test:' {VENV}/pip.conf || true"),
        "login": login_ok(target, tls),
        "redis_noauth": {f"{account} {command}": target.exec(f"cd / && runuser -u {account} -- redis-cli {command}")[1]
                         for account in ("nobody", USER) for command in ("ping", "dbsize")},
        "redis_auth": sh(target, "stat -c '%U:%G %a' /etc/omeroweb-deploy/redis-auth.conf"),
        "redis_session": (code, session.strip().splitlines()[-1] if session.strip() else ""),
        "redis_keys": sh(target, "REDISCLI_AUTH=$(cat /root/.redispw) redis-cli --scan"),
        "secret_key_sha256": config_sha256(target, "omero.web.secret_key"),
    }


def planted_links(target, deploy, data: dict, tls) -> dict:
    rec: dict = {"runs": {}}
    rec["hardlink"] = as_web(target, f"ln /etc/shadow {OMERODIR}/etc/x")
    rec["hardlink_left"] = sh(target, f"ls -d {OMERODIR}/etc/x 2>/dev/null || true")
    rec["before"] = fingerprint(target, *CANARIES)
    rec["root_before"] = sh(target, "ls -A /root")
    rec["web_owned_before"] = outside_omerodir_owned_by_web(target)
    for rel, points_to in PLANTED.items():
        code, out = as_web(target, f"ln -sfn {points_to} {OMERODIR}/{rel}")
        assert code == 0, (rel, out)  # (infrastructure: the account can plant them)
    rec["planted"] = sh(target, f"cd {OMERODIR} && find etc -type l -printf '%p -> %l\\n' | sort")
    remaining, outcome = dict(PLANTED), {}
    for attempt in range(1, len(PLANTED) + 3):
        # the first run raises the version spec: an upgrade, the only writer of etc/backups, starts
        # (pip never gets to run: the backup comes first)
        upgrade = {"omero_web_version_spec": "omero-web>=99"} if attempt == 1 else {}
        run = deploy("-vv", "--diff", **ROOT, **{**data, **upgrade})
        rec["runs"][f"links-{attempt}"] = run
        if run.returncode == 0:
            break
        # the paths the deploy's refusals name (the scripts echoed at -vv hold only "$dest")
        named = set(re.findall(REFUSED + r" to (?:write|use) (/\S+?):", run.output))
        refused = [rel for rel in remaining if f"{OMERODIR}/{rel}" in named]
        if len(refused) != 1:
            outcome[f"run {attempt}"] = "failed without refusing exactly one planted link"
            break
        outcome[refused[0]] = f"refused (run {attempt})"
        del remaining[refused[0]]
        sh(target, f"rm -f {OMERODIR}/{refused[0]}")  # as the message asks (rm removes a link, never follows it)
    rec["last"] = run
    for rel in list(remaining):
        kind = sh(target, f"stat -c '%F %U' {OMERODIR}/{rel} 2>/dev/null || echo missing")
        outcome[rel] = "replaced: " + kind if not kind.startswith("symbolic link") else "left as it was"
        if kind.startswith("symbolic link"):
            sh(target, f"rm -f {OMERODIR}/{rel}")  # the test removes what is left
        else:
            del remaining[rel]
    rec["outcome"] = outcome
    rec["after"] = fingerprint(target, *CANARIES)
    rec["root_after"] = sh(target, "ls -A /root")
    rec["web_owned_after"] = outside_omerodir_owned_by_web(target)
    rec["template"] = sh(target, f"stat -c '%F %U %a' {OMERODIR}/etc/templates/custom/{TEMPLATE} && "
                                 f"cat {OMERODIR}/etc/templates/custom/{TEMPLATE}")
    if remaining or run.returncode != 0:
        rec["runs"]["links-converge"] = rec["last"] = deploy("-vv", "--diff", **ROOT, **data)
    rec["healthy"] = login_ok(target, tls)
    rec["written"] = sh(target, f"cd {OMERODIR} && stat -c '%n %F %U %a' etc/omeroweb-deploy-managed.json "
                                "etc/templates/error/maintainance.html; "
                                "ls -A etc/.omeroweb-deploy; ls -d etc/backups 2>/dev/null || true")
    rec["secret_key_sha256"] = config_sha256(target, "omero.web.secret_key")
    rec["runs"]["links-again"] = deploy(**ROOT, **data)
    rec["links_left"] = sh(target, f"find {OMERODIR} -type l -print")
    return rec


def secret_files(target) -> dict:
    """Every file on the target holding a secret (the test's own aside), with what protects it."""
    code, found = target.exec("grep -rlsF -f /root/.patterns /etc /opt /srv /home /var /tmp /run /root "
                              "--exclude=.patterns --exclude=sampler.out --exclude=.redispw")
    files = {}
    for path in found.split():
        chain = [path]
        while chain[-1] != "/":
            chain.append(os.path.dirname(chain[-1]))
        files[path] = [line.split() for line in sh(target, "stat -c '%a %U %G' " + " ".join(chain)).splitlines()]
    left = sh(target, "find /tmp /var/tmp -type f -exec grep -lF -f /root/.patterns {} + 2>/dev/null || true")
    return {"files": files, "left_in_tmp": left}


# -- 1. hostile data ---------------------------------------------------------------------------

def test_hostile_data_refused_before_connecting(record):
    run, found = record["runs"]["hostile"], record["hostile"]
    assert run.returncode != 0
    for key in HOSTILE:
        assert f"  - {key} = " in run.output, (key, run.tail())
    assert "Connecting to hosts" not in run.output, run.tail()
    assert found["logins_after"] == found["logins_before"], "sshd accepted a login: pyinfra connected"
    assert found["leftovers"] == "", found["leftovers"]


# -- 2. destructive values ---------------------------------------------------------------------

def test_foreign_account_and_omerodir_refused_before_any_change(record):
    run, before, after = record["runs"]["foreign-account"], record["destructive_before"], record["after_foreign"]
    assert run.returncode != 0
    assert "omeroweb-deploy: refusing to install" in run.output, run.tail()
    assert "the account alice exists and was not created by omeroweb-deploy" in run.output, run.tail()
    assert "/srv/bob-web (OMERODIR) belongs to bob and is not empty" in run.output, run.tail()
    # root would run the python of a venv alice can change
    assert "/srv/alice-venv (in /srv/alice-venv) is not root's" in run.output, run.tail()
    # alice's entry (passwd, shadow, group), her home and venv, bob's folder: as they were
    assert after["files"] == before["files"]
    assert after["alice"] == before["alice"] and after["bob"] == before["bob"]
    assert after["venv"] == before["venv"]  # (its python never ran: no ran-as file)
    # refused before the first change: no package, no account, no folder
    assert after["installed"] == "0", after["installed"]


def test_foreign_venv_never_runs_as_root_while_changes_are_detected(record):
    run = record["runs"]["foreign-account-detect"]
    assert "Detected changes" in run.output and "Unexpected user input: no" in run.output, run.tail()
    # its python writes who ran it into ran-as: the venv must be as it was
    assert record["after_detect"]["venv"] == record["destructive_before"]["venv"], record["after_detect"]["venv"]


def test_data_folder_as_venv_refused_and_kept(record):
    run, before, after = record["runs"]["data-folder-venv"], record["destructive_before"], record["after_data_venv"]
    assert run.returncode != 0
    assert "omeroweb-deploy: refusing to create the virtualenv in /srv/data" in run.output, run.tail()
    assert after["files"]["/srv/data/precious"] == before["files"]["/srv/data/precious"]
    assert after["data"] == before["data"]  # nothing added, removed or changed in it
    assert after["marker"] == ""  # not taken for a venv this deploy was making


# -- 3. secrets with _sudo ---------------------------------------------------------------------

def test_deploy_with_secrets_succeeds_and_rerun_changes_nothing(record):
    first, again = record["runs"]["secrets"], record["runs"]["secrets-again"]
    assert first.returncode == 0, first.tail()
    assert again.returncode == 0, again.tail()
    assert again.changed == 0, again.changed_operations()
    snap = record["secrets"]
    assert snap["login"], "login page through NGINX over HTTPS"
    assert snap["pip_index"] == "1"  # the index URL with credentials is the one pip uses
    assert snap["secret_key_sha256"] == hashlib.sha256(SECRET_KEY.encode()).hexdigest()


def test_redis_requires_the_password_of_the_url(record):
    snap = record["secrets"]
    for probe, out in snap["redis_noauth"].items():  # the deploy's Redis asks any other client for it...
        assert "NOAUTH" in out and "PONG" not in out, (probe, out)
    assert snap["redis_auth"] == "root:redis 640"
    code, session = snap["redis_session"]
    assert code == 0, session
    assert any(key.endswith("django.contrib.sessions.cache" + session) for key in snap["redis_keys"].split())


def all_outputs(record) -> dict[str, str]:
    return {name: run.output for name, run in record["runs"].items()}


SECRETS = {"Redis password": REDIS_PASSWORD, "pip index password": PIP_PASSWORD, "public password": PUBLIC_PASSWORD,
           "secret key": SECRET_KEY, "rotated secret key": SECRET_KEY2}


def secret_values(record) -> dict[str, str]:
    found = dict(SECRETS)
    for name in ("tls", "tls2"):
        for number, line in enumerate(record[name]["lines"]):
            found[f"{name} key line {number + 1}"] = line
    return found


def test_no_secret_in_pyinfra_output(record):
    # -vvv --diff (the sudo deploy), -vv, -v, --diff (the planted links), the bundle at -vvv; as
    # given, and in the forms the deploy sends them to a host's standard input (hex, JSON)
    forms = {}
    for what, value in secret_values(record).items():
        for form in (value, value.encode().hex(), json.dumps(value)[1:-1]):
            forms[form] = what
    leaks = [(run, what) for run, output in all_outputs(record).items()
             for value, what in forms.items() if value in output]
    assert leaks == [], f"secrets printed by pyinfra (run, secret): {leaks}"
    assert "Loaded fact host.facts.OmeroConfig" in record["runs"]["secrets-again"].output  # -v shows facts


def test_no_digest_of_a_secret_in_pyinfra_output(record):
    # a digest of a weak secret in a saved log can be guessed offline: secrets are compared on
    # the host, and neither their values nor any hash of them (of the value, of a file holding
    # it, of a property line) comes back, at -vvv included
    forms = {}
    for what, value in secret_values(record).items():
        for form in (value, value + "\n", f"requirepass {value}\n", f"requirepass \"{value}\"\n"):
            for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
                forms[digest(form.encode()).hexdigest()] = what
    # the files holding secrets as the deploy wrote them (pip.conf, the TLS key, Redis's password)
    for path in (f"{VENV}/pip.conf", TLS_KEY, "/etc/omeroweb-deploy/redis-auth.conf"):
        forms[sh(record["target"], f"sha256sum < {path} | cut -c1-64")] = path
    leaks = [(run, what) for run, output in all_outputs(record).items()
             for digest, what in forms.items() if digest in output]
    assert leaks == [], f"digests of secrets printed by pyinfra (run, secret): {leaks}"


def test_no_secret_on_a_command_line(record):
    sampled = record["sampled"]
    leaks = [what for what, value in secret_values(record).items() if value in sampled]
    assert leaks == [], f"on a command line: {leaks}"
    # the sampler did see the deploy: configuration loaded, pip, gunicorn
    assert "config load" in sampled and "pip install" in sampled and "gunicorn" in sampled, sampled[-2000:]


def test_secrets_in_tmp_only_readable_by_the_ssh_user_and_none_left(record):
    seen = [line.split() for line in record["sampled"].splitlines() if line.startswith("SECRETFILE")]
    print(f"secret-holding temporary files the sampler saw: {seen}")
    for _, mode, owner, folder_mode, folder_owner, path in seen:
        private_file = owner in (SSH_USER, "root") and not int(mode, 8) & 0o044
        private_folder = folder_owner in (SSH_USER, "root") and not int(folder_mode, 8) & 0o011
        assert private_file or private_folder, (path, mode, owner, folder_mode, folder_owner)
    assert record["secret_files"]["left_in_tmp"] == ""


def sudo_copies(output: str) -> list[tuple[str, str, bool]]:
    """pyinfra uploads with sudo to a temporary file as the SSH user, then copies it into place
    (``cp TEMP DEST``, shown from -vv): (temp, dest, whether TEMP is in a folder the run made
    0700 as the SSH user)."""
    copies = []
    for line in output.splitlines():
        match = re.search(r">>> sudo .*\bcp (\S+) (\S+?)'?$", line)
        if match:
            temp, dest = match.group(1).strip("'\""), match.group(2).strip("'\"")
            folder = os.path.dirname(temp)
            private = folder not in ("/tmp", "/var/tmp") and f"mkdir -m 700 {folder}" in output
            copies.append((temp, dest, private))
    return copies


def test_sudo_copies_of_secrets_come_from_a_private_folder(record):
    # secrets (pip.conf, the TLS key, the staged configuration) are uploaded to the root-only
    # staging folder, then moved or written into place; nothing else copies to the TLS key
    copies = sudo_copies(record["runs"]["secrets"].output)
    secret_copies = [c for c in copies if c[1].startswith(ROOT_STAGING) or c[1] in (TLS_KEY, f"{VENV}/pip.conf")]
    assert len([c for c in secret_copies if c[1].startswith(ROOT_STAGING)]) >= 3, copies
    assert [c for c in secret_copies if not c[2]] == []


# pyinfra names the temporary file of an upload made with _sudo after its destination: in a
# shared /tmp any local account could create it first and change what root copies into place
# (reproduced with fs.protected_regular and protected_symlinks at 0, as in this environment).
# config.py makes each run's temporary folder private to the SSH user, with an unguessable name.
def test_every_sudo_upload_goes_through_a_private_folder(record):
    copies = [c for run in ("data-folder-venv", "secrets") for c in sudo_copies(record["runs"][run].output)]
    assert len(copies) > 5, copies
    assert [(temp, dest) for temp, dest, private in copies if not private] == []


def test_files_holding_secrets_are_private(record):
    snap = record["secrets"]
    assert snap["stat"] == [f"600 root:root {VENV}/pip.conf", f"700 root:root {TLS_DIR}",
                            f"600 root:root {TLS_KEY}", f"700 {USER}:{USER} {OMERODIR}/etc/grid",
                            f"700 {USER}:{USER} {STAGING}"]
    assert snap["staged"] == "", snap["staged"]  # the staged configuration is gone
    found = record["secret_files"]["files"]
    print(f"files holding a secret: {sorted(found)}")
    assert f"{OMERODIR}/etc/grid/config.xml" in found and TLS_KEY in found and f"{VENV}/pip.conf" in found
    # Redis's password file: root's, read by Redis's own group (the server reads it at start)
    assert found["/etc/omeroweb-deploy/redis-auth.conf"][0] == ["640", "root", "redis"]
    readers = {"/etc/omeroweb-deploy/redis-auth.conf": "redis"}
    for path, chain in found.items():
        (mode, owner, group), folders = chain[0], chain[1:]
        assert owner in ("root", USER), (path, chain)
        others = int(mode, 8) & 0o004 and all(int(m, 8) & 0o001 for m, _, _ in folders)
        group_read = (int(mode, 8) & 0o040 and group not in (owner, "root", readers.get(path))
                      and all(int(m, 8) & 0o011 for m, _, _ in folders))
        assert not others and not group_read, (path, chain)


# -- 4. troubleshooting bundle -----------------------------------------------------------------

def test_troubleshooting_bundle_holds_no_secret(record):
    run, bundle = record["runs"]["troubleshoot"], record["bundle"]
    assert run.returncode == 0 and run.changed == 0, run.tail()
    names = {os.path.basename(p) for p in bundle}
    assert {"omero-config.txt", "omeroweb-log.txt", "service-journal.txt", "nginx-test.txt"} <= names, names
    leaks = [(path, what) for path, text in bundle.items() for what, value in secret_values(record).items()
             if value in text]
    assert leaks == [], leaks
    config = next(text for path, text in bundle.items() if path.endswith("omero-config.txt")).splitlines()
    assert "omero.web.caches=********" in config, config
    assert "omero.web.secret_key=********" in config and "omero.web.public.password=********" in config, config


# -- 5. links planted by the OMERO.web account -------------------------------------------------

def test_hard_link_to_a_root_file_is_refused_by_the_kernel(record):
    # fs.protected_hardlinks=1 (the kernel's default on Debian): an account cannot hard-link a
    # file it does not own and cannot write, so the deploy only has symbolic links to defend
    # against in the folders that account owns.
    code, out = record["links"]["hardlink"]
    assert code != 0 and "Operation not permitted" in out, out
    assert record["links"]["hardlink_left"] == ""


def test_planted_links_are_refused_or_replaced_never_written_through(record):
    links = record["links"]
    print(f"planted:\n{links['planted']}\noutcome: {links['outcome']}")
    assert links["planted"].count(" -> ") == len(PLANTED), links["planted"]
    for rel, outcome in links["outcome"].items():
        assert outcome.startswith(("refused", "replaced: regular file omero-web")), (rel, outcome)
    # each writer met its link: records, staged configuration, maintenance page and upgrade
    # backups are refused; the custom templates are a copy, so a link there is replaced
    # (the apps record is root's, outside OMERODIR: test_local_accounts.py)
    for rel in ("etc/omeroweb-deploy-managed.json", "etc/.omeroweb-deploy/config.properties",
                "etc/templates/error/maintainance.html", "etc/backups"):
        assert links["outcome"].get(rel, "").startswith("refused"), (rel, links["outcome"])
    assert links["template"].splitlines() == ["regular file omero-web 644",
                                              "<p>omeroweb-deploy security test template</p>"]


def test_canaries_shadow_and_root_unchanged(record):
    links = record["links"]
    assert links["after"] == links["before"]  # content, mode, owner and inode
    assert all(value != "missing" for value in links["before"].values())
    assert links["root_after"] == links["root_before"]  # nothing written into /root through etc/backups


def test_no_file_outside_omerodir_became_the_web_accounts(record):
    links = record["links"]
    print(f"owned by {USER} outside OMERODIR: {links['web_owned_after']}")
    assert links["web_owned_after"] == links["web_owned_before"]
    assert all(path == f"/home/{USER}" or path.startswith(f"/home/{USER}/") for path in links["web_owned_after"]), \
        links["web_owned_after"]


def test_after_removing_the_links_the_deploy_converges(record):
    links = record["links"]
    assert links["last"].returncode == 0, links["last"].tail()
    assert links["healthy"], "login page through NGINX over HTTPS with the new certificate"
    assert links["secret_key_sha256"] == hashlib.sha256(SECRET_KEY2.encode()).hexdigest()
    again = record["runs"]["links-again"]
    assert again.returncode == 0, again.tail()
    assert again.changed == 0, again.changed_operations()
    assert links["links_left"] == ""
    # what the deploy writes in OMERODIR is there again, the account's own regular files
    assert links["written"].splitlines() == [
        f"etc/omeroweb-deploy-managed.json regular file {USER} 600",
        f"etc/templates/error/maintainance.html regular file {USER} 644",
    ], links["written"]  # (the staging folder empty, no etc/backups: the upgrade never ran)
