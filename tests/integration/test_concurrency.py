"""
Issue 12, items 1 and 5, on one Debian 12 systemd target reached over SSH, with the real
``pyinfra`` command line:

- the dpkg lock held by another process (as unattended-upgrades would: a python3 holding
  apt's fcntl locks) while the deploy must install a package: the run says it is waiting
  and succeeds once the lock is released; held longer than ``omero_web_package_lock_timeout``
  the run fails saying who holds it, and a later run recovers;
- two overlapping deploys: the second waits for the first's run lock, naming its holder,
  both succeed; a lock left by a SIGKILLed run is taken over; a lock held by a run from
  another machine fails the run after ``omero_web_run_lock_timeout`` with the holder, its
  age and the command removing it.

Every scenario ends with a re-run that changes nothing.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from testbed.pyinfra_run import (PYINFRA, ROOT, Deployer, ssh_ok as ssh, systemd_target, target_data,
                                           write_inventory)

pytestmark = pytest.mark.integration

LOCK = "/var/lib/omeroweb-deploy/run.lock"
# Takes apt's locks as apt does (fcntl), holds them argv[1] seconds.
HOLDER = """
import fcntl, sys, time
files = [open(p, "a") for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")]
for f in files:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "concurrency") as target:
        yield target


@pytest.fixture(scope="module")
def deploy(target, tmp_path_factory):
    run = Deployer(target, tmp_path_factory.mktemp("concurrency"), "debian12").deployed()
    ssh(target, f"cat > /root/hold_dpkg.py <<'EOF'\n{HOLDER}\nEOF")
    return run


def hold_dpkg_lock(target, seconds: int) -> str:
    """Start the lock holder in the background; return its PID once it holds the locks."""
    ssh(target, "rm -f /root/hold.log; setsid nohup python3 /root/hold_dpkg.py "
                f"{seconds} > /root/hold.log 2>&1 < /dev/null & echo $! > /root/hold.pid")
    for _ in range(50):
        if ssh(target, "cat /root/hold.log") == "locked":
            return ssh(target, "cat /root/hold.pid")
        time.sleep(0.2)
    raise AssertionError(ssh(target, "cat /root/hold.log"))


def test_held_dpkg_lock_is_waited_for_then_fails_clearly(target, deploy):
    ssh(target, "DEBIAN_FRONTEND=noninteractive apt-get remove -y unzip")
    pid = hold_dpkg_lock(target, 20)
    waited = deploy()
    assert waited.returncode == 0, waited.tail()
    assert f"the package manager lock is held by process {pid} (python3)" in waited.output, waited.tail()
    assert "waiting up to 300 s" in waited.output and "lock released after" in waited.output
    assert ssh(target, "dpkg-query -W -f='${Status}' unzip") == "install ok installed"

    ssh(target, "DEBIAN_FRONTEND=noninteractive apt-get remove -y unzip")
    pid = hold_dpkg_lock(target, 120)
    failed = deploy(omero_web_package_lock_timeout=6)
    assert failed.returncode != 0
    assert f"the package manager lock is still held by process {pid} (python3) after" in failed.output, failed.tail()
    assert "omero_web_package_lock_timeout = 6" in failed.output
    assert "Traceback" not in failed.output
    ssh(target, f"kill {pid}")
    recovered = deploy()
    assert recovered.returncode == 0, recovered.tail()
    deploy.assert_rerun_changes_nothing()


def start_pyinfra(target, workdir, name: str) -> subprocess.Popen:
    inventory = write_inventory(workdir / f"{name}.py", {"debian12": [target_data(target)]})
    log = open(workdir / f"{name}.log", "w")
    return subprocess.Popen([PYINFRA, "-y", str(inventory), "deploy.py"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_lock(target, seconds: float = 60) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if ssh(target, f"test -s {LOCK}/owner && echo yes || true") == "yes":
            return
        time.sleep(0.3)
    raise AssertionError("no run lock on the target")


def test_overlapping_deploys_take_turns_and_a_killed_runs_lock_is_taken_over(target, deploy, tmp_path):
    # two at once: the second waits for the first and names it. The first has a package to
    # install while the package manager's lock is held for a while, so that it still holds the
    # run lock when the second connects (a no-op re-run alone can be over by then).
    ssh(target, "DEBIAN_FRONTEND=noninteractive apt-get remove -y unzip")
    hold_dpkg_lock(target, 10)
    first = start_pyinfra(target, tmp_path, "first")
    wait_for_lock(target)
    holder = ssh(target, f"cat {LOCK}/owner")
    assert f"pid={first.pid}" in holder.split()
    second = Deployer(target, tmp_path, "debian12")()
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert second.returncode == 0, second.tail()
    assert "another deploy holds the run lock on this host" in second.output, second.tail()
    assert f"pyinfra PID {first.pid}" in second.output and "run lock taken after" in second.output
    assert ssh(target, f"test -e {LOCK} && echo held || echo free") == "free"

    # a run killed while it holds the lock (waiting for the package manager, as above): the
    # next run takes it over, saying so
    ssh(target, "DEBIAN_FRONTEND=noninteractive apt-get remove -y unzip")
    hold_dpkg_lock(target, 10)
    killed = start_pyinfra(target, tmp_path, "killed")
    wait_for_lock(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert f"pid={killed.pid}" in ssh(target, f"cat {LOCK}/owner").split()
    after = deploy()
    assert after.returncode == 0, after.tail()
    assert "removing the run lock left by a run that is gone" in after.output, after.tail()

    # held by a run from another machine: waited for, then refused naming it; nothing changed
    started = int(time.time()) - 90
    ssh(target, f"mkdir -m 700 {LOCK} && echo 'control=elsewhere user=alice pid=4242 started={started} "
                f"token=0123456789abcdef' > {LOCK}/owner")
    refused = deploy(omero_web_run_lock_timeout=4)
    assert refused.returncode != 0
    assert "alice@elsewhere, pyinfra PID 4242" in refused.output, refused.tail()
    assert f"sudo rm -rf {LOCK}" in refused.output and "omero_web_run_lock_timeout = 4" in refused.output
    assert "Traceback" not in refused.output
    assert ssh(target, f"cat {LOCK}/owner").startswith("control=elsewhere")  # not ours to remove
    ssh(target, f"rm -rf {LOCK}")
    deploy.assert_rerun_changes_nothing()
