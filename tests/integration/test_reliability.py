"""
Reliability and security under faults and bad conditions (issue #6), on two Debian 12
targets deployed together in one inventory:

- ``sd``: systemd is PID 1, reached over SSH as a non-root user with ``_sudo = True``
  (so pyinfra uploads through temporary files), with secret configuration values: the
  public user's password (``omero_web_public_password``) and a value declared secret
  through ``omero_web_secret_config_keys`` (``omero.web.secret_key``);
- ``plain``: pyinfra's ``@docker`` connector, init.d service.

One module fixture runs everything once, in this order, and the tests check the record:

1. the first deploy of both hosts is killed (SIGKILL of pyinfra's process group, then of
   the remote ``pip install``) while pip installs OMERO.web;
2. the deploy is run again: both hosts end healthy, nothing duplicated;
3. a second run changes nothing;
4. on ``sd``: an unreachable package index (``http://127.0.0.1:9/simple``) and a version
   spec the venv does not satisfy (pip has to reach the index): the run fails with pip's
   error, OMERO.web keeps running on the same release, not restarted;
5. both hosts in one run, ``plain`` made to fail (a directive ``nginx -t`` rejects), ``sd``
   with good data and a rotated password: ``sd`` completes, the output names the failed
   host and why;
6. good data on both: converges; 7. a second run changes nothing.

Each run uses another pyinfra verbosity (``-v``, ``-vv``, ``-vvv``, ``--debug``); no output
holds a secret. A sampler on each target records every distinct process command line
(``ps``) and every secret-holding temporary upload in ``/tmp`` during all runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import time

import pytest
import requests

from testbed.engine import docker_client
from testbed.images import ensure_image
from testbed.targets import remove_targets, start_plain_target, start_systemd_target
from testbed.pyinfra_run import PYINFRA, ROOT, put, run_pyinfra, runs_summary, sh, target_data, write_inventory

pytestmark = pytest.mark.integration

OMERODIR = "/opt/omero/web/omero-web"
VENV = "/opt/omero/web/venv3"
SITE = "/etc/nginx/conf.d/omeroweb.conf"
LOGIN = "OMERO.web - Login"
USER = "omero-web"
# Random per test run, so that finding one anywhere cannot be a coincidence.
PASSWORD = "pw-" + secrets.token_hex(12)
ROTATED = "pw2-" + secrets.token_hex(12)
SECRET_KEY = "sk-" + secrets.token_hex(16)
SECRETS = (PASSWORD, ROTATED, SECRET_KEY)
BAD_INDEX = "http://127.0.0.1:9/simple"
BAD_SPEC = "omero-web>=99"
BOGUS = "bogus_directive_for_test on;"

SAMPLER = r"""#!/bin/sh
# Every distinct process command line, and every secret-holding pyinfra temporary file in
# /tmp with its mode and its folder's mode, until /root/sampler.stop exists.
while [ ! -e /root/sampler.stop ]; do
  ps -eo user=,args=
  for f in /tmp/pyinfra-* /tmp/pyinfra-*/*; do
    [ -f "$f" ] && grep -qF -f /root/.patterns "$f" 2>/dev/null && m=$(stat -c %a "$f" 2>/dev/null) && \
      d=$(stat -c %a "${f%/*}" 2>/dev/null) && echo "SECRETFILE $m $d $f"  # (gone meanwhile: no line)
  done
  sleep 0.02
done | awk '!seen[$0]++ { print; fflush() }' > /root/sampler.out
"""




def omero(target, *args: str) -> str:
    return sh(target, f"runuser -u {USER} -- env OMERODIR={OMERODIR} {VENV}/bin/omero " + " ".join(args))


def pip_pids(target) -> list[int]:
    """PIDs of a running ``pip install`` of OMERO.web (and the shells around it)."""
    code, out = target.exec("ps -eo pid=,args=")
    pids = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "pip install" in args and "omero-web" in args and "ps -eo" not in args:
            pids.append(int(pid))
    return pids


def login(target) -> requests.Response:
    return requests.get(target.url(80, "/webclient/login/"), timeout=30)


def snapshot(target) -> dict:
    """What the checks need from a target, from outside (docker exec, HTTP)."""
    ps = sh(target, "ps -eo user:32=,pid=,ppid=,stat=,args=")
    # (zombies aside: on the plain target PID 1 is `sleep`, which never reaps them)
    gunicorn = [line.split(None, 4) for line in ps.splitlines()
                if "gunicorn" in line and "ps -eo" not in line and not line.split()[3].startswith("Z")]
    pids = {g[1] for g in gunicorn}
    response = login(target)
    return {
        "status": response.status_code,
        "login": LOGIN in response.text,
        "version": sh(target, f"{VENV}/bin/python -m pip show omero-web | sed -n 's/^Version: //p'"),
        "django_pid": sh(target, f"cat {OMERODIR}/var/django.pid"),
        "pip_check": target.exec(f"{VENV}/bin/python -m pip check")[1].strip(),
        "middleware": json.loads(omero(target, "config", "get", "omero.web.middleware")),
        "workers": int(omero(target, "config", "get", "omero.web.wsgi_workers")),
        "gunicorn_users": sorted({g[0] for g in gunicorn}),
        "gunicorn_masters": [g for g in gunicorn if g[2] not in pids],
        "gunicorn_count": len(gunicorn),
        "nginx_sites": sh(target, "ls -A /etc/nginx/conf.d /etc/nginx/sites-enabled"),
        "strays": sh(target, f"find / -xdev \\( -name '*.deploy-new' -o -name '*.deploy-previous' "
                             f"-o -path {VENV}.previous \\) -print 2>/dev/null; ls -A {OMERODIR}/etc/.omeroweb-deploy"),
        # OMERO.web's own unit, script and start link (not the clearsessions timer and its service)
        "services": sh(target, "ls /etc/systemd/system /etc/init.d /etc/rc2.d 2>/dev/null "
                               "| grep -cE '^(S[0-9]+)?omero-web(\\.service)?$' || true"),
    }


def start_sampler(target) -> None:
    put(target, "/root/.patterns", "".join(f"{s}\n" for s in SECRETS).encode())
    put(target, "/root/sampler.sh", SAMPLER.encode(), 0o700)
    sh(target, "rm -f /root/sampler.stop /root/sampler.out")
    docker_client().containers.get(target.container_id).exec_run(["sh", "/root/sampler.sh"], detach=True)


def stop_sampler(target) -> str:
    sh(target, "touch /root/sampler.stop")
    time.sleep(1)
    return sh(target, "cat /root/sampler.out")


def add_sudo_user(target) -> None:
    """A login user ``deployer`` with passwordless sudo and the root SSH key."""
    sh(target, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null "
               "&& useradd -m -s /bin/bash deployer "
               "&& install -d -m 700 -o deployer -g deployer /home/deployer/.ssh "
               "&& install -m 600 -o deployer -g deployer /root/.ssh/authorized_keys /home/deployer/.ssh/ "
               "&& echo 'deployer ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/deployer "
               "&& chmod 440 /etc/sudoers.d/deployer")


def interrupted_run(inventory, flags, log, targets, timeout=1800) -> dict:
    """Run the deploy, SIGKILL pyinfra's process group while a target runs ``pip install``
    of OMERO.web, then kill that pip too (by PID) if it survived."""
    started = time.monotonic()
    seen = None
    with open(log, "w") as out:
        proc = subprocess.Popen([PYINFRA, "-y", str(inventory), "deploy.py", *flags], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while proc.poll() is None and time.monotonic() - started < timeout and not seen:
                for target in targets:
                    if pip_pids(target):
                        seen = target.name
                        break
                else:
                    time.sleep(1)
            if seen:
                time.sleep(3)  # pip is downloading / installing now
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    survivors = {}
    for target in targets:
        pids = pip_pids(target)
        survivors[target.name] = pids
        if pids:
            target.exec("kill -9 " + " ".join(map(str, pids)))
    return {"seen_on": seen, "returncode": proc.returncode, "survivors": survivors,
            "output": log.read_text(), "seconds": time.monotonic() - started}


def entry(target, **data):
    name, host_data = target_data(target, **data)
    if target.kind == "systemd":
        host_data.update(ssh_user="deployer", _sudo=True)
    return name, host_data


def secret_data(password: str) -> dict:
    """The public user's password, and Django's secret key declared secret by name."""
    return dict(
        omero_web_public_enabled=True,
        omero_web_public_user="public",
        omero_web_public_password=password,
        omero_web_public_url_filter="^/reliability-test-only/",  # matches no page: no OMERO server here
        omero_web_config={"omero.web.secret_key": SECRET_KEY},
        omero_web_secret_config_keys=["omero.web.secret_key"],
    )


SECRET_DATA, ROTATED_DATA = secret_data(PASSWORD), secret_data(ROTATED)


@pytest.fixture(scope="module")
def record(docker_engine, tmp_path_factory):
    image = ensure_image("bookworm")
    workdir = tmp_path_factory.mktemp("reliability")
    targets = []
    try:
        sd = start_systemd_target(image, name="rely-sd")
        targets.append(sd)
        plain = start_plain_target(image, name="rely-plain")
        targets.append(plain)
        add_sudo_user(sd)
        for target in targets:
            start_sampler(target)
        rec: dict = {"sd": sd, "plain": plain, "runs": {}, "workdir": workdir}
        runs = rec["runs"]

        def inventory(name, hosts):
            return write_inventory(workdir / f"{name}.py", {"debian12": hosts})

        both = inventory("both", [entry(sd, **SECRET_DATA), entry(plain)])
        rec["interrupted"] = interrupted_run(both, ["-vvv", "--debug"], workdir / "1-interrupted.log", targets)
        rec["after_kill"] = {t.name: t.exec(f"{VENV}/bin/python -m pip show omero-web 2>&1 | head -2")[1] for t in targets}
        runs["resume"] = run_pyinfra(both, "deploy.py", "-vvv", "--debug", log=workdir / "2-resume.log")
        rec["resumed"] = {t.name: snapshot(t) for t in targets} if runs["resume"].returncode == 0 else {}
        runs["resume-again"] = run_pyinfra(both, "deploy.py", "-v", log=workdir / "3-again.log")
        rec["again"] = {t.name: snapshot(t) for t in targets}

        rec["before_index"] = snapshot(sd)
        bad_index = inventory("bad-index", [entry(sd, omero_web_pip_index_url=BAD_INDEX,
                                                  omero_web_version_spec=BAD_SPEC, **SECRET_DATA)])
        runs["bad-index"] = run_pyinfra(bad_index, "deploy.py", "-vv", log=workdir / "4-bad-index.log")
        rec["after_index"] = snapshot(sd)

        rec["plain_site_before"] = sh(plain, f"sha256sum {SITE}")
        mixed = inventory("mixed", [
            entry(sd, **ROTATED_DATA),
            entry(plain, omero_web_config={"omero.web.nginx_server_extra_config": [BOGUS]}),
        ])
        runs["one-host-fails"] = run_pyinfra(mixed, "deploy.py", "-vvv", log=workdir / "5-one-fails.log")
        rec["mixed"] = {t.name: snapshot(t) for t in targets}
        rec["mixed_password_sha256"] = password_sha256(sd)
        rec["plain_site_after"] = sh(plain, f"sha256sum {SITE}")

        good = inventory("good", [entry(sd, **ROTATED_DATA), entry(plain)])
        runs["converge"] = run_pyinfra(good, "deploy.py", "--debug", log=workdir / "6-converge.log")
        runs["converge-again"] = run_pyinfra(good, "deploy.py", log=workdir / "7-again.log")
        rec["final"] = {t.name: snapshot(t) for t in targets}
        rec["sampled"] = {t.name: stop_sampler(t) for t in targets}
        print(runs_summary(runs))
        yield rec
    finally:
        remove_targets(targets)


# -- interrupted deploys converge ------------------------------------------------------------

def test_deploy_killed_during_pip_install_converges(record):
    interrupted = record["interrupted"]
    assert interrupted["seen_on"], "the deploy never reached pip install of omero-web:\n" + interrupted["output"][-3000:]
    assert interrupted["returncode"] == -signal.SIGKILL
    print(f"killed on {interrupted['seen_on']} after {interrupted['seconds']:.0f}s; "
          f"remote pip survivors killed: {interrupted['survivors']}; state: {record['after_kill']}")
    resume = record["runs"]["resume"]
    assert resume.returncode == 0, resume.tail()
    for name, snap in record["resumed"].items():
        assert snap["status"] == 200 and snap["login"], name
        assert "No broken requirements" in snap["pip_check"], (name, snap["pip_check"])


@pytest.mark.parametrize("host", ["sd", "plain"])
def test_nothing_duplicated_after_interrupted_deploy(record, host):
    snap = record["resumed"][record[host].name]
    items = [json.dumps(item, sort_keys=True) for item in snap["middleware"]]
    assert len(items) == len(set(items)), snap["middleware"]
    assert sum("WhiteNoiseMiddleware" in item for item in items) == 1
    assert snap["nginx_sites"].split().count("omeroweb.conf") == 1, snap["nginx_sites"]
    assert "default" not in snap["nginx_sites"].replace("default.disabled", ""), snap["nginx_sites"]
    assert snap["strays"] == "", snap["strays"]  # no *.deploy-new/-previous, no venv copy, staging empty
    assert len(snap["gunicorn_masters"]) == 1, snap["gunicorn_masters"]
    assert snap["gunicorn_count"] == snap["workers"] + 1  # one master and its workers, no second server
    # one unit (systemd) / one init.d script and its one rc2.d start link
    assert int(snap["services"]) == (1 if host == "sd" else 2), snap["services"]


# -- idempotency: every scenario deployed here, run twice ------------------------------------

SCENARIOS = {"interrupted then resumed, sudo + secrets, systemd + init.d": ("resume", "resume-again"),
             "converged after an index outage and a failing host, rotated secret": ("converge", "converge-again")}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_second_run_changes_nothing(record, scenario):
    first, second = (record["runs"][name] for name in SCENARIOS[scenario])
    assert first.returncode == 0, first.tail()
    assert second.returncode == 0, second.tail()
    assert second.changed == 0, second.changed_operations()
    assert second.errors == 0


# -- secrets ---------------------------------------------------------------------------------

def all_outputs(record) -> dict[str, str]:
    return {"interrupted": record["interrupted"]["output"], **{n: r.output for n, r in record["runs"].items()}}


def test_secrets_never_in_pyinfra_output_at_any_verbosity(record):
    # runs at -vvv --debug (interrupted, resume), -v, -vv, -vvv, --debug and the default
    for name, output in all_outputs(record).items():
        for secret in SECRETS:
            assert secret not in output, f"a secret is printed in the {name} run's output"
    resume = record["runs"]["resume"].output
    assert "omero config load" in resume or "config load" in resume  # -vv shows the commands
    assert "Loaded fact host.facts.OmeroConfig" in record["runs"]["resume-again"].output  # -v: facts and their arguments


def test_secrets_never_on_a_command_line(record):
    for name, sampled in record["sampled"].items():
        for secret in SECRETS:
            assert secret not in sampled, f"a secret was on a command line on {name}"
    sd = record["sampled"][record["sd"].name]
    # the sampler did see the deploy: the configuration being loaded, gunicorn, pip
    assert "config load" in sd and "gunicorn" in sd and "pip install" in sd, sd[-2000:]


def test_sudo_uploads_of_secrets_are_never_world_readable(record):
    seen = [line.split() for line in record["sampled"][record["sd"].name].splitlines() if line.startswith("SECRETFILE")]
    for _, mode, folder_mode, path in seen:
        # readable by others only if the file is o+r and its folder o+x
        assert not (int(mode, 8) & 0o004 and int(folder_mode, 8) & 0o001), (path, mode, folder_mode)
    # With -vvv pyinfra shows how each upload made with sudo is copied into place: the staged
    # configuration goes into the root-only staging folder (then written as omero-web).
    output = record["runs"]["resume"].output
    copies = [match.group(1) for line in output.splitlines() if record["sd"].name in line and ">>> sudo" in line
              for match in [re.search(r"cp (\S+) '?/var/lib/omeroweb-deploy/staging/[0-9a-f]+", line)] if match]
    assert copies, "no sudo upload of the staged configuration in the output"
    for temp in copies:
        folder = os.path.dirname(temp.strip("'\""))
        assert folder != "/tmp" and f"mkdir -m 700 {folder}" in record["runs"]["resume"].output, temp
    print(f"secret temporary files caught by the sampler: {seen}")


def readable_by_others(target, path: str) -> bool:
    """Whether a user other than the file's owner (and root) can read it: the file readable by
    others or by a group other than the owner's, and every folder above it open to them."""
    chain = [path]
    while chain[-1] != "/":
        chain.append(os.path.dirname(chain[-1]))
    stats = [line.split() for line in sh(target, "stat -c '%a %U %G' " + " ".join(chain)).splitlines()]
    mode, owner, group = int(stats[0][0], 8), stats[0][1], stats[0][2]
    others = bool(mode & 0o004) and all(int(m, 8) & 0o001 for m, _, _ in stats[1:])
    group_read = bool(mode & 0o040) and group not in (owner, "root") and all(int(m, 8) & 0o011 for m, _, _ in stats[1:])
    return others or group_read


@pytest.mark.parametrize("host", ["sd", "plain"])
def test_files_holding_secrets_are_owner_only(record, host):
    target = record[host]
    listing = sh(target, f"stat -c '%a %U %n' {OMERODIR}/etc/grid {OMERODIR}/etc/.omeroweb-deploy "
                         f"{OMERODIR}/etc/omeroweb-deploy-managed.json").splitlines()
    assert listing == [f"700 {USER} {OMERODIR}/etc/grid", f"700 {USER} {OMERODIR}/etc/.omeroweb-deploy",
                       f"600 {USER} {OMERODIR}/etc/omeroweb-deploy-managed.json"]
    # Every file on the host that holds a secret (the sampler's own files aside):
    code, found = target.exec(
        "grep -rlsF -f /root/.patterns /etc /opt /srv /home /var /tmp /run /root "
        "--exclude=.patterns --exclude=sampler.out")
    files = found.split()
    print(f"{host}: files holding a secret: {files}")
    for path in files:
        assert sh(target, f"stat -c %U {path}") in (USER, "root"), path
        assert not readable_by_others(target, path), sh(target, f"stat -c '%a %U %G %n' {path}")
    if host == "sd":
        assert f"{OMERODIR}/etc/grid/config.xml" in files
        backups = sh(target, f"stat -c '%a %U %n' {OMERODIR}/etc/backups {OMERODIR}/etc/backups/*").splitlines()
        assert backups[0] == f"700 {USER} {OMERODIR}/etc/backups"  # made by the failed upgrade (index outage)
        assert all(line.startswith(f"600 {USER} ") for line in backups[1:]), backups


def password_sha256(target) -> str:
    return sh(target, f"runuser -u {USER} -- env OMERODIR={OMERODIR} {VENV}/bin/omero config get --show-password "
                      "omero.web.public.password | tr -d '\\n' | sha256sum | cut -d' ' -f1")


def test_secrets_are_applied(record):
    """The rotated password is the one in effect (compared by hash: never printed)."""
    assert password_sha256(record["sd"]) == hashlib.sha256(ROTATED.encode()).hexdigest()


# -- unreachable package index ---------------------------------------------------------------

def test_unreachable_index_fails_clearly_and_leaves_omeroweb_running(record):
    run, before, after = record["runs"]["bad-index"], record["before_index"], record["after_index"]
    assert run.returncode != 0
    assert BAD_SPEC in run.output and "127.0.0.1" in run.output, run.tail()
    assert "Connection refused" in run.output or "Could not find a version" in run.output, run.tail()
    block = run.output[run.output.rfind("--> Failed hosts (1):"):].splitlines()
    assert block[0] == "--> Failed hosts (1):" and block[1].startswith(f"    {record['sd'].name}: OMERO.web | Install")
    assert f"No matching distribution found for {BAD_SPEC}" in block[1], block[1]
    assert after["status"] == 200 and after["login"]
    assert after["version"] == before["version"]
    assert after["django_pid"] == before["django_pid"]  # not restarted
    assert "No broken requirements" in after["pip_check"]


# -- many hosts ------------------------------------------------------------------------------

def test_one_failing_host_does_not_stop_the_others(record):
    run, sd, plain = record["runs"]["one-host-fails"], record["sd"], record["plain"]
    assert run.returncode != 0
    mixed = record["mixed"]
    # the healthy host went on to the end: new secret applied, OMERO.web restarted for it, healthy
    assert record["mixed_password_sha256"] == hashlib.sha256(ROTATED.encode()).hexdigest()
    assert mixed[sd.name]["django_pid"] != record["after_index"]["django_pid"]
    assert mixed[sd.name]["login"] and mixed[sd.name]["status"] == 200
    # the failing host keeps serving its previous site
    assert record["plain_site_after"] == record["plain_site_before"]
    assert mixed[plain.name]["login"]
    # the output says which host failed and why
    host_name = f"@docker/{plain.container_id}"
    assert any(host_name in line and 'unknown directive "bogus_directive_for_test"' in line
               for line in run.output.splitlines()), run.tail()
    # and the end-of-run summary repeats it, one line per failed host
    assert "--> Failed hosts (1):" in run.output, run.tail()
    block = run.output[run.output.rfind("--> Failed hosts (1):"):].splitlines()[1:]
    summary = block[0]
    print(summary)
    assert summary.startswith(f"    {host_name}: NGINX for OMERO.web | Install the OMERO.web NGINX site"), summary
    assert "nginx -t rejected" in summary and "bogus_directive_for_test" in summary, summary


# -- hardening by default --------------------------------------------------------------------

@pytest.mark.parametrize("host", ["sd", "plain"])
def test_hardening(record, host):
    target, snap = record[host], record["final"][record[host].name]
    for path in ("/webclient/login/", "/static/webgateway/css/ome.body.css", "/no-such-page"):
        response = requests.head(target.url(80, path), timeout=30)
        assert response.headers.get("Server") == "nginx", (path, response.headers.get("Server"))
    writable = sh(target, f"find {OMERODIR} {VENV} /etc/nginx /etc/systemd/system /etc/init.d -xdev "
                          "-perm -o+w ! -type l -print 2>/dev/null || true")
    assert writable == "", writable
    assert snap["gunicorn_users"] == [USER]
    if target.kind == "systemd":
        assert sh(target, "systemctl show -p User omero-web.service") == f"User={USER}"
