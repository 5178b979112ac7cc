"""
Issue 12, items 1 and 5 without a host: lock errors of every apt/dnf/yum recognised, the
retry loop and the run lock driven by a scripted connector, the new keys validated, and
simulated deploys (apt waits through the real deploy.py, dnf/yum told not to wait forever).
"""

from __future__ import annotations

import socket

import pytest
from pyinfra.api.exceptions import PyinfraError
from pyinfra.connectors.util import CommandOutput, OutputLine

from host import packages
from run import run_lock
from model.settings import ValidationError, validate
from tests.unit.simulate import SimulatedHost, simulate

APT_19 = ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\n"
          "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?")
APT_14 = ("E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\n"
          "E: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?")
APT_LISTS = "E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)"
DNF = "Error: rpmdb_lock already locked by 4242"
YUM = "Existing lock /var/run/yum.pid: another copy is running as pid 4242."


@pytest.mark.parametrize("output, holder", [
    (APT_19, "process 4242 (unattended-upgr)"),
    (APT_14, "another process"),
    (APT_LISTS, "another process"),
    (DNF, "process 4242"),
    (YUM, "process 4242"),
])
def test_lock_errors_of_every_package_manager(output, holder):
    assert packages.package_lock_holder(output).startswith(holder)


def test_other_failures_are_not_lock_errors():
    assert packages.package_lock_holder("E: Unable to locate package nosuch") is None
    assert packages.package_lock_holder("E: dpkg was interrupted, you must manually run 'dpkg --configure -a'") is None


class ScriptedConnector:
    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def run_shell_command(self, command, **arguments):
        self.calls.append((command.get_raw_value(), arguments))
        ok, stdout, stderr = self.answers.pop(0)
        lines = [OutputLine("stdout", line) for line in stdout.splitlines()]
        return ok, CommandOutput(lines + [OutputLine("stderr", line) for line in stderr.splitlines()])


class ScriptedHost:
    name = print_prefix = "[h] "

    def __init__(self, *answers):
        self.connector, self.logged = ScriptedConnector(*answers), []

    def log_styled(self, message, **kwargs):
        self.logged.append(message)


class State:
    print_output = print_input = False


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(packages.gevent, "sleep", lambda seconds: None)


def test_package_command_retried_while_locked_then_done():
    host = ScriptedHost((False, "", APT_19), (False, "", APT_19), (True, "done", ""))
    assert packages._run_waiting(State(), host, "apt-get install -y unzip", 300, {"_sudo": True}) is True
    assert [c for c, _ in host.connector.calls] == ["apt-get install -y unzip"] * 3
    assert host.connector.calls[0][1]["_env"] == {"LC_ALL": "C"} and host.connector.calls[0][1]["_sudo"]
    assert host.logged[0].startswith("omeroweb-deploy: the package manager lock is held by process 4242 "
                                     "(unattended-upgr): waiting up to 300 s")
    assert "released" in host.logged[-1]


def test_package_lock_still_held_fails_naming_the_holder_and_the_key():
    host = ScriptedHost((False, "", APT_19))
    assert packages._run_waiting(State(), host, "apt-get update", 0, {}) is False
    assert "still held by process 4242 (unattended-upgr)" in host.logged[-1]
    assert "omero_web_package_lock_timeout = 0" in host.logged[-1]


def test_other_package_failure_is_not_retried():
    host = ScriptedHost((False, "", "E: Unable to locate package nosuch"))
    assert packages._run_waiting(State(), host, "apt-get install -y nosuch", 300, {}) is False
    assert len(host.connector.calls) == 1 and not host.logged


def test_run_lock_taken_and_released_only_with_its_token():
    host = ScriptedHost((True, "taken", ""), (True, "", ""))
    token = run_lock.take_run_lock(State(), host, {"_sudo": True}, 600)
    take = host.connector.calls[0][0]
    assert f"mkdir {run_lock.RUN_LOCK}" in take and "chmod 700" in take and f"token={token}" in take
    assert f"control={socket.gethostname()}" in take or "control=" in take
    run_lock.release_run_lock(host, {}, token)
    assert host.connector.calls[1][0].endswith(f" {token}")


def test_run_lock_of_another_machine_fails_with_holder_age_and_removal():
    owner = "control=elsewhere user=alice pid=4242 started=1000 token=abc\nnow=1090"
    host = ScriptedHost((True, "held\n" + owner, ""))
    with pytest.raises(RuntimeError) as error:
        run_lock.take_run_lock(State(), host, {}, 0)
    message = str(error.value)
    assert "alice@elsewhere, pyinfra PID 4242" in message and "(90 s ago)" in message
    assert f"`sudo rm -rf {run_lock.RUN_LOCK}`" in message and "omero_web_run_lock_timeout = 0" in message
    assert len(host.connector.calls) == 1  # never removed


def test_run_lock_of_a_killed_run_from_this_machine_is_taken_over():
    owner = f"control={run_lock._clean(socket.gethostname())} user=bob pid=999999999 started=1000 token=dead\nnow=1090"
    host = ScriptedHost((True, "held\n" + owner, ""), (True, "", ""), (True, "taken", ""))
    run_lock.take_run_lock(State(), host, {}, 600)
    assert host.connector.calls[1][0].endswith(" dead")  # removed by its token
    assert "left by a run that is gone" in host.logged[0]


@pytest.mark.parametrize("key", ["omero_web_package_lock_timeout", "omero_web_run_lock_timeout"])
@pytest.mark.parametrize("value", [-1, 86401, "300", True, 1.5, None])
def test_lock_timeouts_are_whole_numbers_in_range(key, value):
    with pytest.raises(ValidationError) as error:
        validate({key: value}, "h")
    assert f"{key} = {value!r}: expected a whole number from 0 to 86400" in str(error.value)


def test_lock_timeouts_defaults_and_zero():
    assert validate({}).package_lock_timeout == 300 and validate({}).run_lock_timeout == 600
    assert validate({"omero_web_package_lock_timeout": 0, "omero_web_run_lock_timeout": 0}).run_lock_timeout == 0


def test_simulated_deploy_fails_clearly_when_the_dpkg_lock_stays_held(tmp_path, caplog):
    host = SimulatedHost("debian", "12", extra_responses={"apt-get -y": {"success": False, "stderr": APT_19}})
    with pytest.raises(PyinfraError, match="No hosts remaining"):  # the only host failed
        simulate(host, {"omero_web_ice_cache_dir": str(tmp_path), "omero_web_package_lock_timeout": 0})
    assert ("the package manager lock is still held by process 4242 (unattended-upgr) after 0 s "
            "(omero_web_package_lock_timeout = 0)") in caplog.text


@pytest.mark.parametrize("version, manager", [("7", "yum"), ("9", "dnf")])
def test_simulated_rhel_package_managers_do_not_wait_forever(version, manager, tmp_path):
    distro = "centos" if version == "7" else "rocky"
    sim = simulate(SimulatedHost(distro, version), {"omero_web_ice_cache_dir": str(tmp_path)})
    installs = sim.find(rf"^{manager} install -y")
    assert installs and all("--setopt=exit_on_lock=True" in c for c in installs)
