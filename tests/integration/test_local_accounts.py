"""
What the OMERO.web account and the host's other local accounts cannot reach, on one Debian 12
plain container (no systemd: the init.d script), each step a real ``pyinfra`` run:

1. **A pip extra index URL with credentials** (``omero_web_pip_extra_index_urls``): an index
   served on the target on 127.0.0.1 answers 404 to every project and records the hash of
   each request's ``Authorization`` header. The deploy (with an app, omero-figure) at
   ``-vvv``, a sampler recording every distinct process command line: the index saw pip's
   credentials, and the password is nowhere in pyinfra's output, on no command line, nowhere
   in the troubleshooting bundle; ``pip.conf`` is root's, 0600.
2. **Root's apps record**: 0600 root's in the root-only state folder (0700), which the
   OMERO.web account cannot even list; nothing in OMERODIR.
3. **A host deployed by an earlier release**, whose OMERO.web account rewrote the old record
   in OMERODIR to name OMERO.web's own packages (pip, setuptools, omero-web, Pillow,
   NumPy), root's record not made yet: the run uninstalls nothing (``pip freeze --all``
   unchanged), makes root's record from the data and removes the old one; a re-run changes
   nothing. The same record written again once root's exists: not read, nothing changes.
4. **Root's record still drives uninstalls**: omero-figure dropped from the data is
   uninstalled, everything else stays; a re-run changes nothing.
5. **OMERO.web's file sessions** (named after the session keys): the Gunicorn master the
   init.d script started runs with ``TMPDIR=OMERODIR/var/tmp`` (0700, the account's);
   OMERO.web's session store, in that process's environment, writes its session there;
   nothing session-like in the shared ``/tmp``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shlex
import time

import pytest

from testbed.engine import docker_client
from testbed.images import ensure_image
from testbed.pyinfra_run import Deployer, put, run_pyinfra, runs_summary, sh, target_data, write_inventory
from testbed.targets import remove_targets, start_plain_target

pytestmark = pytest.mark.integration

OMERODIR = "/opt/omero/web/omero-web"
VENV = "/opt/omero/web/venv3"
USER = "omero-web"
STATE_DIR = "/var/lib/omeroweb-deploy"
RECORD = f"{STATE_DIR}/apps-{hashlib.sha256(VENV.encode()).hexdigest()[:16]}.json"
LEGACY = f"{OMERODIR}/etc/omeroweb-deploy-apps.json"
APP = {"spec": "omero-figure", "app": "omero_figure"}
# what a compromised account would have root uninstall: OMERO.web's own packages
HOSTILE = [{"app": "x", "distribution": name} for name in ("pip", "setuptools", "omero-web", "Pillow", "numpy")]

PORT = 8765
INDEX_USER = "idx"
INDEX_PASSWORD = "ix" + secrets.token_hex(12)  # random per run: finding it cannot be a coincidence
INDEX = f"http://{INDEX_USER}:{INDEX_PASSWORD}@127.0.0.1:{PORT}/simple"
SENT = "Basic " + base64.b64encode(f"{INDEX_USER}:{INDEX_PASSWORD}".encode()).decode()

# An index that has nothing: 404 for every project (pip goes on with pypi.org); logs the path
# and the SHA-256 of the Authorization header (never the header itself).
INDEX_SERVER = r"""
import hashlib, http.server, sys
class Index(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization")
        with open(sys.argv[2], "a") as log:
            log.write("%s %s\n" % (self.path, hashlib.sha256(auth.encode()).hexdigest() if auth else "-"))
        self.send_response(404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Index).serve_forever()
"""

SAMPLER = r"""#!/bin/sh
# every distinct process command line until /root/sampler.stop exists
while [ ! -e /root/sampler.stop ]; do ps -eo user=,args=; sleep 0.02; done \
  | awk '!seen[$0]++ { print; fflush() }' > /root/sampler.out
"""

# Run as the OMERO.web account with the Gunicorn master's environment (argv[1]: its PID):
# OMERO.web's settings and session store create a session; prints where it went.
SESSION_PROBE = r"""
import os, sys, tempfile
env = open("/proc/%s/environ" % sys.argv[1]).read().split("\0")
os.environ.clear()
os.environ.update(item.split("=", 1) for item in env if "=" in item)
os.environ["DJANGO_SETTINGS_MODULE"] = "omeroweb.settings"
tempfile.tempdir = None  # read TMPDIR again
import django
django.setup()
from importlib import import_module
from django.conf import settings
store = import_module(settings.SESSION_ENGINE).SessionStore()
store["probe"] = 1
store.create()
print(settings.SESSION_ENGINE)
print(os.path.join(settings.SESSION_FILE_PATH, settings.SESSION_COOKIE_NAME + store.session_key))
"""


def as_web(target, command: str) -> tuple[int, str]:
    """A command run as the OMERO.web account only (what a compromised account can do)."""
    return target.exec(f"cd / && runuser -u {USER} -- sh -c {shlex.quote(command)}")


def freeze(target) -> str:
    return sh(target, f"{VENV}/bin/python -m pip freeze --all")


def write_hostile_record(target) -> None:
    code, out = as_web(target, f"printf '%s\\n' {shlex.quote(json.dumps(HOSTILE))} > {LEGACY}")
    assert code == 0, out  # (infrastructure: the account can write there)


def record_state(target) -> dict:
    return {
        "stat": sh(target, f"stat -c '%a %U:%G %F' {STATE_DIR} {RECORD}"),
        "content": json.loads(sh(target, f"cat {RECORD}")),
        "legacy": sh(target, f"ls {LEGACY} 2>/dev/null || true"),
        "web_can_list": as_web(target, f"ls {STATE_DIR}")[0] == 0,
    }


@pytest.fixture(scope="module")
def record(docker_engine, tmp_path_factory):
    image = ensure_image("bookworm")
    workdir = tmp_path_factory.mktemp("local-accounts")
    target = start_plain_target(image, name="local-accounts", ports=(80,))
    started = time.monotonic()
    try:
        rec: dict = {"target": target, "runs": {}}
        runs = rec["runs"]
        container = docker_client().containers.get(target.container_id)
        # the local index (python3 for it, before the deploy) and the sampler
        sh(target, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal "
                   "procps >/dev/null")
        put(target, "/root/index.py", INDEX_SERVER.encode())
        container.exec_run(["python3", "/root/index.py", str(PORT), "/root/index.log"], detach=True)
        put(target, "/root/sampler.sh", SAMPLER.encode(), 0o700)
        container.exec_run(["sh", "/root/sampler.sh"], detach=True)

        deploy = Deployer(target, workdir, "debian12", omero_web_pip_extra_index_urls=[INDEX],
                          omero_web_apps=[APP])
        # 1. the credentialed extra index, at -vvv
        runs["first"] = deploy("-vvv")
        rec["index_log"] = sh(target, "cat /root/index.log 2>/dev/null || true")
        rec["pip_conf"] = sh(target, f"stat -c '%a %U:%G' {VENV}/pip.conf")
        rec["pip_conf_has_index"] = sh(target, f"grep -c '^extra-index-url = http://{INDEX_USER}:' {VENV}/pip.conf")
        runs["first-again"] = deploy("-vvv")

        bundle = workdir / "bundle"
        inventory = write_inventory(workdir / "troubleshoot.py", {"debian12": [target_data(
            target, omero_web_pip_extra_index_urls=[INDEX], omero_web_apps=[APP],
            omero_web_troubleshoot_dir=str(bundle))]})
        runs["troubleshoot"] = run_pyinfra(inventory, "operations.troubleshoot.troubleshoot", "-vvv",
                                           log=workdir / "troubleshoot.log")
        rec["bundle"] = {str(p.relative_to(bundle)): p.read_text(errors="replace")
                         for p in sorted(bundle.rglob("*")) if p.is_file()}

        # 2. root's record
        rec["after_first"] = record_state(target)

        # 3. an earlier release's host, its old record rewritten by the account
        rec["freeze_before"] = freeze(target)
        sh(target, f"rm {RECORD}")
        write_hostile_record(target)
        runs["migrate"] = deploy("-vvv")
        rec["freeze_migrated"] = freeze(target)
        rec["migrated"] = record_state(target)
        runs["migrate-again"] = deploy()
        write_hostile_record(target)
        runs["hostile-again"] = deploy()
        rec["freeze_hostile_again"] = freeze(target)
        sh(target, f"rm -f {LEGACY}")  # (the test's own leftover)

        # 4. the app dropped from the data
        runs["dropped"] = deploy(omero_web_apps=[])
        rec["freeze_dropped"] = freeze(target)
        rec["dropped"] = record_state(target)
        runs["dropped-again"] = deploy(omero_web_apps=[])

        # 5. sessions
        pid = sh(target, f"cat {OMERODIR}/var/django.pid")
        # (read as the account: root without CAP_SYS_PTRACE, in a container, may not read it)
        code, out = as_web(target, f"tr '\\0' '\\n' < /proc/{pid}/environ")
        rec["master_tmpdir"] = (code, [line for line in out.splitlines() if line.startswith("TMPDIR=")])
        rec["tmpdir_stat"] = sh(target, f"stat -c '%a %U' {OMERODIR}/var/tmp")
        code, out = as_web(target, f"{VENV}/bin/python -c {shlex.quote(SESSION_PROBE)} {pid}")
        rec["probe"] = (code, out.strip().splitlines())
        rec["var_tmp"] = sh(target, f"ls -A {OMERODIR}/var/tmp")
        rec["shared_tmp"] = sh(target, "find /tmp /var/tmp -maxdepth 2 -name 'sessionid*' 2>/dev/null || true")

        sh(target, "touch /root/sampler.stop")
        time.sleep(1)
        rec["sampled"] = sh(target, "cat /root/sampler.out")
        print(runs_summary(runs))
        print(f"local accounts scenario: {time.monotonic() - started:.0f}s")
        yield rec
    finally:
        remove_targets([target])


def assert_converged(run) -> None:
    assert run.returncode == 0, run.tail()
    assert run.changed == 0, run.changed_operations()


# -- 1. a pip extra index URL with credentials -------------------------------------------------

def test_deploy_with_a_credentialed_extra_index_succeeds_and_rerun_changes_nothing(record):
    assert record["runs"]["first"].returncode == 0, record["runs"]["first"].tail()
    assert_converged(record["runs"]["first-again"])


def test_pip_used_the_index_with_its_credentials(record):
    lines = [line.split() for line in record["index_log"].splitlines()]
    assert any(path.startswith("/simple/omero-web/") for path, _ in lines), record["index_log"]
    assert {digest for _, digest in lines} == {hashlib.sha256(SENT.encode()).hexdigest()}, record["index_log"]


def test_index_password_never_in_the_output(record):
    outputs = {name: run.output for name, run in record["runs"].items()}
    assert [name for name, output in outputs.items() if INDEX_PASSWORD in output] == []
    # -vvv shows pip's own output: it names the index with its password masked
    assert f"http://{INDEX_USER}:****@127.0.0.1:{PORT}/simple" in outputs["first"]


def test_index_password_never_on_a_command_line(record):
    sampled = record["sampled"]
    assert INDEX_PASSWORD not in sampled
    assert "pip install" in sampled and "gunicorn" in sampled, sampled[-2000:]  # the sampler saw the deploy


def test_index_password_not_in_the_troubleshooting_bundle(record):
    run, bundle = record["runs"]["troubleshoot"], record["bundle"]
    assert run.returncode == 0 and run.changed == 0, run.tail()
    assert {"omero-config.txt", "omeroweb-log.txt", "service-status.txt"} <= {os.path.basename(p) for p in bundle}
    assert [path for path, text in bundle.items() if INDEX_PASSWORD in text] == []


def test_pip_conf_is_roots_only(record):
    assert record["pip_conf"] == "600 root:root" and record["pip_conf_has_index"] == "1"


# -- 2.-4. the apps record -----------------------------------------------------------------------

def test_apps_record_is_roots_in_a_root_only_folder(record):
    state = record["after_first"]
    assert state["stat"].splitlines() == ["700 root:root directory", "600 root:root regular file"]
    assert state["content"] == {"venv": VENV, "apps": [{"app": "omero_figure", "distribution": "omero-figure"}]}
    assert state["legacy"] == "" and not state["web_can_list"]


def test_hostile_old_record_uninstalls_nothing_and_is_replaced_by_roots(record):
    before = record["freeze_before"].lower()
    assert "pillow==" in before and "numpy==" in before and "omero-web==" in before  # what it named is there
    assert record["runs"]["migrate"].returncode == 0, record["runs"]["migrate"].tail()
    assert "pip uninstall" not in record["runs"]["migrate"].output
    assert record["freeze_migrated"] == record["freeze_before"]
    migrated = record["migrated"]
    assert migrated["content"] == record["after_first"]["content"] and migrated["legacy"] == ""
    assert migrated["stat"] == record["after_first"]["stat"]
    assert_converged(record["runs"]["migrate-again"])


def test_hostile_old_record_beside_roots_is_ignored(record):
    assert_converged(record["runs"]["hostile-again"])
    assert record["freeze_hostile_again"] == record["freeze_before"]


def test_app_dropped_from_the_data_is_uninstalled_from_roots_record(record):
    run = record["runs"]["dropped"]
    assert run.returncode == 0, run.tail()
    before = {line for line in record["freeze_before"].splitlines()}
    after = {line for line in record["freeze_dropped"].splitlines()}
    assert {line.split("==")[0].lower() for line in before - after} == {"omero-figure"} and after < before
    assert record["dropped"]["content"] == {"venv": VENV, "apps": []}
    assert_converged(record["runs"]["dropped-again"])


# -- 5. sessions ----------------------------------------------------------------------------------

def test_omero_web_runs_with_its_private_tmpdir(record):
    assert record["master_tmpdir"] == (0, [f"TMPDIR={OMERODIR}/var/tmp"])
    assert record["tmpdir_stat"] == f"700 {USER}"


def test_sessions_are_written_to_the_private_tmpdir_not_the_shared_tmp(record):
    code, lines = record["probe"]
    assert code == 0, lines
    engine, session_file = lines[-2:]
    assert engine in ("django.contrib.sessions.backends.file", "omeroweb.filesessionstore"), lines  # the default
    assert os.path.dirname(session_file) == f"{OMERODIR}/var/tmp", lines
    assert os.path.basename(session_file) in record["var_tmp"].split()
    assert record["shared_tmp"] == ""
