"""
Faults a sysadmin meets in production (issue 12, items 2, 4 and 6), on one Debian 12 systemd
target reached over SSH, each step a real ``pyinfra`` run or a fault injected on the host:

- the Gunicorn master killed with SIGKILL (what the OOM killer does): the unit restarts
  OMERO.web, the login page is back within 30 s; ``systemctl stop`` on purpose is not undone;
- the managed-names record cut short (as the ``omero-web`` user, as a full disk would): the
  next run fails naming the file and how to recover, without a traceback and without
  changing the configuration; removing it recovers;
- data that would flip-flop (a property set whole and appended to) is refused before
  connecting; good data converges: three runs, the second and third change nothing;
- a unit file systemd has not read (a run stopped between installing it and the reload):
  the next run reloads systemd and restarts OMERO.web, though no file changes;
- the daily clearsessions job turned off by a run of the ``sessions`` tag alone: OMERO.web's
  start purges expired sessions again (no ``--keep-sessions``) in the same run.

Every scenario ends with a re-run that changes nothing.
"""

from __future__ import annotations

import time

import pytest
import requests

from testbed.pyinfra_run import Deployer, ssh_ok as ssh, systemd_target

pytestmark = pytest.mark.integration

OMERODIR = "/opt/omero/web/omero-web"
PIDFILE = f"{OMERODIR}/var/django.pid"
RECORD = f"{OMERODIR}/etc/omeroweb-deploy-managed.json"
LINK = ["Faults", "https://faults.example.org/"]


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "faults") as target:
        yield target


@pytest.fixture(scope="module")
def deploy(target, tmp_path_factory):
    return Deployer(target, tmp_path_factory.mktemp("faults"), "debian12").deployed()


def login_page(target) -> bool:
    try:
        return "OMERO.web - Login" in requests.get(target.url(80, "/webclient/login/"), timeout=5).text
    except requests.RequestException:
        return False


def omero_config(target, *names: str) -> str:
    """``omero config get`` as the OMERO.web user (config.xml itself is rewritten on every read)."""
    return ssh(target, f"runuser -u omero-web -- env OMERODIR={OMERODIR} /opt/omero/web/venv3/bin/omero "
                       f"config get {' '.join(names)}")


def wait_for(condition, seconds: float) -> float | None:
    """Poll ``condition`` for up to ``seconds``; return the time it took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(1)
    return None


def test_killed_gunicorn_comes_back_and_a_stop_on_purpose_stays(target, deploy):
    master = ssh(target, f"cat {PIDFILE}")
    assert login_page(target)
    ssh(target, f"kill -9 {master}")
    took = wait_for(lambda: login_page(target) and ssh(target, f"cat {PIDFILE} 2>/dev/null || true") not in ("", master),
                    30)
    assert took is not None, ssh(target, "systemctl status omero-web --no-pager -l || true")
    assert ssh(target, "systemctl is-active omero-web") == "active"
    # stopped on purpose: stays down (no restart within 30 s), the maintenance page answers
    ssh(target, "systemctl stop omero-web")
    assert wait_for(lambda: login_page(target) or ssh(target, "systemctl is-active omero-web || true") != "inactive",
                    30) is None
    ssh(target, "systemctl start omero-web")
    assert wait_for(lambda: login_page(target), 60) is not None
    deploy.assert_rerun_changes_nothing()


def test_corrupted_managed_record_fails_clearly_then_recovers(target, deploy):
    config_before = omero_config(target)
    ssh(target, f"runuser -u omero-web -- truncate -s 20 {RECORD}")  # cut short, not JSON
    failed = deploy(omero_web_config={"omero.web.page_size": 120})
    assert failed.returncode != 0
    assert f"{RECORD} is corrupted" in failed.output and f"rm {RECORD}" in failed.output, failed.tail()
    assert "Traceback" not in failed.output, failed.tail()
    assert omero_config(target) == config_before  # nothing changed (page_size not set)
    assert login_page(target)
    ssh(target, f"runuser -u omero-web -- rm -- {RECORD}")  # the recovery the message gives
    fixed = deploy(omero_web_config={"omero.web.page_size": 120})
    assert fixed.returncode == 0, fixed.tail()
    deploy.assert_rerun_changes_nothing(omero_web_config={"omero.web.page_size": 120})


def test_flip_flopping_data_is_refused_and_good_data_converges(target, deploy):
    refused = deploy(omero_web_config={"omero.web.ui.top_links": []}, omero_web_top_links=[LINK])
    assert refused.returncode != 0
    assert ("omero_web_config sets omero.web.ui.top_links whole and omero_web_top_links appends to it"
            in refused.output), refused.tail()
    assert "Connecting to hosts" not in refused.output
    good = {"omero_web_config": {"omero.web.page_size": 120, "omero.web.ui.right_plugins": []},
            "omero_web_top_links": [LINK]}
    first = deploy(**good)
    assert first.returncode == 0, first.tail()
    deploy.assert_rerun_changes_nothing(**good)
    deploy.assert_rerun_changes_nothing(**good)  # the third run: still converged
    top_links = omero_config(target, "omero.web.ui.top_links")
    assert top_links.count("https://faults.example.org/") == 1
    assert login_page(target)


UNIT = "/etc/systemd/system/omero-web.service"
TIMER = "/etc/systemd/system/omero-web-clearsessions.timer"


def test_a_unit_file_systemd_has_not_read_is_read_and_omero_web_restarted(target, deploy):
    converged = deploy()  # the default data again (the tests above leave their own)
    assert converged.returncode == 0, converged.tail()
    # what a run stopped after installing the unit leaves: systemd compares the file's mtime
    ssh(target, f"touch {UNIT}")
    assert ssh(target, "systemctl show -p NeedDaemonReload omero-web.service") == "NeedDaemonReload=yes"
    master = ssh(target, f"cat {PIDFILE}")
    run = deploy()
    assert run.returncode == 0, run.tail()
    assert set(run.changed_operations()) == {"OMERO.web service | Reload systemd units",
                                             "OMERO.web service | Restart omero-web"}, run.changed_operations()
    assert ssh(target, "systemctl show -p NeedDaemonReload omero-web.service") == "NeedDaemonReload=no"
    assert wait_for(lambda: login_page(target), 60) is not None
    assert ssh(target, f"cat {PIDFILE}") != master
    deploy.assert_rerun_changes_nothing()


def started_with(target) -> str:
    """The start command systemd has loaded for OMERO.web (its ExecStart's argv)."""
    shown = ssh(target, "systemctl show -p ExecStart omero-web.service")
    return shown.split("argv[]=", 1)[1].split(" ;", 1)[0]


def test_the_sessions_tag_alone_turns_the_job_and_keep_sessions_off_together(target, deploy):
    assert started_with(target) == "/opt/omero/web/venv3/bin/omero web start --keep-sessions"
    off = {"omero_web_tags": "sessions", "omero_web_clearsessions": False}
    run = deploy(**off)
    assert run.returncode == 0, run.tail()
    assert ssh(target, f"test -e {TIMER} && echo present || echo absent") == "absent"
    assert started_with(target) == "/opt/omero/web/venv3/bin/omero web start"
    assert wait_for(lambda: login_page(target), 60) is not None
    deploy.assert_rerun_changes_nothing(**off)
    back = deploy()
    assert back.returncode == 0, back.tail()
    assert ssh(target, f"systemctl is-enabled {TIMER.rsplit('/', 1)[1]}") == "enabled"
    assert started_with(target) == "/opt/omero/web/venv3/bin/omero web start --keep-sessions"
    deploy.assert_rerun_changes_nothing()
